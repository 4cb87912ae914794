package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// taggingTransport marks each push request with the process that sent it.
type taggingTransport struct{ name string }

func (t taggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Replica", t.name)
	return http.DefaultTransport.RoundTrip(r)
}

// TestPushReplicasShareASubscription: two gateways (two processes' buses
// on the same brokers) running the same subscription are members of one
// group: they split its partitions, and each event published once both
// have joined is delivered once, by one of them.
func TestPushReplicasShareASubscription(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var mu sync.Mutex
	delivered, byReplica := map[string]int{}, map[string]int{}
	srv := endpoint(t, func(d delivery, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		delivered[d.event.ID]++
		byReplica[r.Header.Get("X-Replica")]++
		mu.Unlock()
	})
	sub := gateway.Subscription{Name: eventbustest.UniqueID("shared"), Events: []string{topic}, Endpoint: srv.URL}
	var buses []*eventbus.Bus
	for _, name := range []string{"one", "two"} {
		bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
		gw, err := gateway.New(gateway.Config{Bus: bus, AdminTokens: []string{adminToken}, Client: &http.Client{Transport: taggingTransport{name}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
		if err := gw.Subscribe(ctx, sub); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		t.Cleanup(func() { _ = gw.Close(context.Background()) })
		buses = append(buses, bus)
	}
	// Both members hold partitions once the group has settled: wait for
	// each replica to deliver, publishing keys over every partition.
	var ids []string
	for i := 0; ; i++ {
		ids = append(ids, eventbustest.MustPublish(t, buses[0], topic, keyed{fmt.Sprintf("k%d", i), i},
			eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(fmt.Sprintf("k%d", i))))
		if i%10 == 9 {
			done := false
			eventbustest.Eventually(t, "the events delivered", func() error {
				mu.Lock()
				defer mu.Unlock()
				for _, id := range ids {
					if delivered[id] == 0 {
						return fmt.Errorf("event %s not delivered yet", id)
					}
				}
				done = byReplica["one"] > 0 && byReplica["two"] > 0
				return nil
			})
			if done {
				break
			}
			if i > 500 {
				t.Fatalf("after %d events, deliveries by replica: %v; want both replicas to share the group", len(ids), byReplica)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if delivered[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, delivered[id])
		}
	}
	t.Logf("%d events, deliveries by replica %v", len(ids), byReplica)
}
