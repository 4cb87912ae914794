package eventbus_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/eventbustest"
)

// TestBreakerKeepsPublishingWhileOneLeaderIsDown (issue 24): on three
// brokers, the leader of two of six partitions stops taking writes. The
// publishes to those partitions fail (ErrBrokerUnavailable, after the
// delivery timeout), more of them than the breaker's threshold; meanwhile
// the other partitions' leaders acknowledge. One broker's failover is not
// the cluster's: the breaker stays closed and publishes to the partitions
// whose leader is alive keep succeeding. The broker is stopped with the
// embedded broker's control functions, so the test runs on a cluster of
// its own whatever the suite's brokers.
func TestBreakerKeepsPublishingWhileOneLeaderIsDown(t *testing.T) {
	t.Parallel()
	const partitions = 6
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dead := c.LeaderFor(topic, 0)
	deadParts := map[int32]bool{}
	for p := range int32(partitions) {
		deadParts[p] = c.LeaderFor(topic, p) == dead
	}
	if len(deadParts) == 0 || countTrue(deadParts) == partitions {
		t.Fatalf("leaders of %s: %v; want some on broker %d, some elsewhere", topic, deadParts, dead)
	}

	// Tenants key the records: one tenant per partition whose leader goes
	// down, and tenants on the others.
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	var deadTenants, liveTenants []string
	deadSeen := map[int32]bool{}
	for i := 0; len(deadSeen) < countTrue(deadParts) || len(liveTenants) < 4; i++ {
		tenant := fmt.Sprintf("tenant-%d", i)
		p := int32(part.Partition(&kgo.Record{Key: []byte(tenant)}, partitions))
		switch {
		case deadParts[p] && !deadSeen[p]:
			deadSeen[p] = true
			deadTenants = append(deadTenants, tenant)
		case !deadParts[p] && len(liveTenants) < 4:
			liveTenants = append(liveTenants, tenant)
		}
	}

	var mu sync.Mutex
	var down bool
	failed := map[int32]bool{} // dead partitions a produce request was refused for
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		if !down || c.CurrentNode() != dead {
			return nil, nil, false
		}
		for _, rt := range kreq.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				failed[rp.Partition] = true
			}
		}
		return nil, errors.New("the leader is down"), true
	})
	bus := eventbustest.NewBus(t, eventbus.Config{
		DeliveryTimeout: time.Second,
		Breaker:         breaker.Config{FailureThreshold: uint32(len(deadTenants)), OpenTimeout: time.Hour},
	}, c.ListenAddrs()...)
	for _, tenant := range append(deadTenants, liveTenants...) {
		eventbustest.MustPublish(t, bus, topic, "before", eventbus.PublishMetadata{TenantID: tenant})
	}

	mu.Lock()
	down = true
	mu.Unlock()
	errs := make(chan error, len(deadTenants))
	for _, tenant := range deadTenants {
		go func() {
			_, err := bus.Publish(ctxT(t), topic, "to a dead leader", eventbus.PublishMetadata{TenantID: tenant})
			errs <- err
		}()
	}
	// Every one of them is in the producer (let through by the breaker)
	// once the dead leader refused a request for each of its partitions.
	eventbustest.Eventually(t, "the dead leader refuses a write for each of its partitions", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(failed) < len(deadTenants) {
			return fmt.Errorf("refused for partitions %v so far", failed)
		}
		return nil
	})
	for _, tenant := range liveTenants {
		if _, err := bus.Publish(ctxT(t), topic, "meanwhile", eventbus.PublishMetadata{TenantID: tenant}); err != nil {
			t.Fatalf("publish to a live leader while the other is down: %v", err)
		}
	}
	for range deadTenants {
		if err := <-errs; !errors.Is(err, eventbus.ErrBrokerUnavailable) || errors.Is(err, eventbus.ErrCircuitOpen) {
			t.Fatalf("publish to the dead leader: %v; want ErrBrokerUnavailable", err)
		}
	}
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s after %d failures on one broker's partitions while the others took writes; want closed", s, len(deadTenants))
	}
	for _, tenant := range liveTenants {
		if _, err := bus.Publish(ctxT(t), topic, "after", eventbus.PublishMetadata{TenantID: tenant}); err != nil {
			t.Fatalf("publish to a live leader after the other's failures: %v", err)
		}
	}
}

func countTrue(m map[int32]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
