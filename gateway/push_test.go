package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// keyed is the data of the push tests' events.
type keyed struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// delivery is one push request as an endpoint saw it.
type delivery struct {
	header http.Header
	body   []byte
	event  eventbus.Event[keyed]
}

// endpoint is an httptest server whose answers a test decides.
func endpoint(t *testing.T, answer func(d delivery, w http.ResponseWriter, r *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{header: r.Header.Clone(), body: body}
		if err := json.Unmarshal(body, &d.event); err != nil {
			t.Errorf("the push body is not the bus's event: %v: %s", err, body)
		}
		answer(d, w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func subscribe(t *testing.T, f *fixture, s gateway.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if err := f.gw.Subscribe(ctx, s); err != nil {
		t.Fatalf("subscribe %s: %v", s.Name, err)
	}
}

func publishKeyed(t *testing.T, bus *eventbus.Bus, topic, key string, seq int) string {
	t.Helper()
	return eventbustest.MustPublish(t, bus, topic, keyed{Key: key, Seq: seq}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(key))
}

// TestPushKeepsOrderPerKeyAndRunsKeysConcurrently: an endpoint with
// random delays sees each key's events one at a time in order, and a
// request of one key held open does not stop the other keys (the first
// request waits for another key's request to arrive).
func TestPushKeepsOrderPerKeyAndRunsKeysConcurrently(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	const keys, perKey = 4, 25
	var mu sync.Mutex
	inFlight := map[string]int{}
	seen := map[string][]int{}
	total := 0
	// k0's first request and another key's request must be in flight at
	// once: each waits for the other to have started.
	k0Started, overlap := make(chan struct{}), make(chan struct{})
	var k0Once, overlapOnce sync.Once
	all := make(chan struct{})
	srv := endpoint(t, func(d delivery, w http.ResponseWriter, r *http.Request) {
		k := d.event.Data.Key
		mu.Lock()
		inFlight[k]++
		if inFlight[k] > 1 {
			t.Errorf("key %s: %d requests in flight at once", k, inFlight[k])
		}
		mu.Unlock()
		wait := func(ch chan struct{}, what string) {
			select {
			case <-ch:
			case <-r.Context().Done():
				t.Errorf("%s: the gateway gave up the request: keys do not run concurrently", what)
			case <-time.After(eventbustest.WaitTimeout):
				t.Errorf("%s: keys do not run concurrently", what)
			}
		}
		switch {
		case k == "k0" && d.event.Data.Seq == 0:
			k0Once.Do(func() { close(k0Started) })
			wait(overlap, "k0's first request was held and no other key's request came")
		case k != "k0":
			wait(k0Started, "key "+k+" was held and k0's first request never came")
			overlapOnce.Do(func() { close(overlap) })
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // shuffles the keys' interleaving
		mu.Lock()
		inFlight[k]--
		seen[k] = append(seen[k], d.event.Data.Seq)
		if total++; total == keys*perKey {
			close(all)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	subscribe(t, f, gateway.Subscription{Name: "order-" + eventbustest.UniqueID("s"), Events: []string{topic}, Endpoint: srv.URL + "/hook", MaxConcurrency: 8})
	events := make([]eventbus.BatchEvent, 0, keys*perKey)
	for seq := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			events = append(events, eventbus.BatchEvent{EventType: topic, Data: keyed{key, seq},
				Metadata: eventbus.PublishMetadata{TenantID: "acme"}, Options: []eventbus.PublishOption{eventbus.WithPartitionKey(key)}})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if _, err := f.bus.PublishBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d events delivered", total, keys*perKey)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, seqs := range seen {
		for i, s := range seqs {
			if s != i {
				t.Fatalf("key %s: delivered in the order %v, want 0..%d", k, seqs, perKey-1)
			}
		}
	}
}

// TestPushRequestIsACloudEvent: the request carries the CloudEvents
// attributes in ce-* headers, the caller's trace context, and as body the
// record's value byte for byte.
func TestPushRequestIsACloudEvent(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	got := make(chan delivery, 1)
	srv := endpoint(t, func(d delivery, w http.ResponseWriter, _ *http.Request) {
		got <- d
	})
	subscribe(t, f, gateway.Subscription{Name: eventbustest.UniqueID("ce"), Events: []string{topic}, Endpoint: srv.URL})
	a := f.post("/api/events", fmt.Sprintf(`{"type":%q,"tenantId":"acme","workspaceId":"ws-1","data":{"key":"k","seq":1},"metadata":{"source":"crm","userId":"u-7","correlationId":"corr-1"}}`, topic),
		map[string]string{"Content-Type": "application/json", "traceparent": traceparent})
	if a.Status != http.StatusOK {
		t.Fatalf("publish: %d %s", a.Status, a.Raw)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("no push request")
	}
	want := map[string]string{
		"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": a.Body["id"].(string), "Ce-Type": topic,
		"Ce-Source": "crm", "Ce-Tenantid": "acme", "Ce-Workspaceid": "ws-1", "Ce-Userid": "u-7", "Ce-Correlationid": "corr-1",
		"Ce-Eventversion": "1.0", "Ce-Time": d.event.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	for k, v := range want {
		if got := d.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if tp := d.header.Get("traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent %q does not continue the publisher's trace 4bf92f3577b34da6a3ce929d0e0e4736", tp)
	}
	rec := records(t, f.brokers, topic, 1)[0]
	if string(d.body) != string(rec.Value) {
		t.Errorf("the body is not the record's value:\nbody   %s\nrecord %s", d.body, rec.Value)
	}
}

// TestPush503RetriesInPlaceHoldingOnlyItsKey: a 503 with Retry-After is
// tried again in place; the key's next event waits for it, and another
// key's event is delivered meanwhile.
func TestPush503RetriesInPlaceHoldingOnlyItsKey(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var mu sync.Mutex
	var done []string // key/seq of the events answered 2xx, in order
	tries := 0
	bArrived := make(chan struct{})
	aTried := make(chan struct{}) // a0 was refused once: only then is b's event published
	finished := make(chan struct{})
	srv := endpoint(t, func(d delivery, w http.ResponseWriter, _ *http.Request) {
		k, seq := d.event.Data.Key, d.event.Data.Seq
		mu.Lock()
		defer mu.Unlock()
		if k == "a" && seq == 0 {
			if tries++; tries == 1 {
				close(aTried)
			}
			select {
			case <-bArrived:
			default: // until b's event arrived, "come back later"
				w.Header().Set("Retry-After", "0")
				status := http.StatusServiceUnavailable
				if tries%2 == 0 {
					status = http.StatusTooManyRequests
				}
				w.WriteHeader(status)
				return
			}
		}
		if k == "b" {
			close(bArrived)
		}
		done = append(done, fmt.Sprintf("%s%d", k, seq))
		if len(done) == 3 {
			close(finished)
		}
	})
	name := eventbustest.UniqueID("busy")
	subscribe(t, f, gateway.Subscription{Name: name, Events: []string{topic}, Endpoint: srv.URL})
	publishKeyed(t, f.bus, topic, "a", 0)
	publishKeyed(t, f.bus, topic, "a", 1)
	select {
	case <-aTried:
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("a0 never reached the endpoint")
	}
	publishKeyed(t, f.bus, topic, "b", 0)
	select {
	case <-finished:
	case <-time.After(eventbustest.WaitTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("answered 2xx: %v after %d tries of a0; a 503 must hold only its key", done, tries)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "b0 a0 a1"; strings.Join(done, " ") != want {
		t.Fatalf("answered 2xx in the order %v, want %s", done, want)
	}
	if tries < 2 {
		t.Fatalf("a0 was tried %d times, want at least 2 (refused, then accepted)", tries)
	}
	answers := func(class string) float64 {
		return metricValue(t, f.gw, "eventbus_gateway_push_answers_total", map[string]string{"subscription": name, "class": class})
	}
	retries := float64(tries - 1)
	mu.Unlock() // the last answer is counted once the gateway has read it
	eventbustest.Eventually(t, "the answers counted", func() error {
		if answers("2xx") != 3 || answers("retry") != retries {
			return fmt.Errorf("answers counted: 2xx %v, retry %v; want 3 and %v", answers("2xx"), answers("retry"), retries)
		}
		return nil
	})
	mu.Lock()
}

// dlqEntry waits for the dead-letter entry of eventID in topic to reach
// status, and returns it.
func dlqEntry(t *testing.T, bus *eventbus.Bus, topic, eventID string, status deadletter.Status) deadletter.Entry {
	t.Helper()
	var found deadletter.Entry
	eventbustest.Eventually(t, "dead-letter entry "+string(status), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		items, _, err := bus.DLQ().List(ctx, deadletter.Query{Topic: topic})
		if err != nil {
			return err
		}
		for _, e := range items {
			if e.EventID == eventID {
				found = e
				if e.Status == status {
					return nil
				}
				return fmt.Errorf("entry %s is %s", e.ID, e.Status)
			}
		}
		return fmt.Errorf("no entry for event %s among %d", eventID, len(items))
	})
	return found
}

func startDLQ(t *testing.T, bus *eventbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if err := bus.DLQ().Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPush400DeadLettersWithoutRetries: a 4xx other than 429 is
// permanent: the event is dead-lettered as max-retries-exceeded at once,
// with the answer in its reason, and never sent again automatically.
func TestPush400DeadLettersWithoutRetries(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 10 * time.Millisecond}})
	startDLQ(t, f.bus)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var mu sync.Mutex
	calls := map[string]int{}
	srv := endpoint(t, func(d delivery, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls[d.event.ID]++
		mu.Unlock()
		if d.event.Data.Seq == 0 {
			http.Error(w, "seq 0 is not a valid order", http.StatusBadRequest)
		}
	})
	name := eventbustest.UniqueID("strict")
	subscribe(t, f, gateway.Subscription{Name: name, Events: []string{topic}, Endpoint: srv.URL})
	bad := publishKeyed(t, f.bus, topic, "a", 0)
	e := dlqEntry(t, f.bus, topic, bad, deadletter.StatusMaxRetriesExceeded)
	if !e.Permanent || e.RetryCount != 0 || !strings.Contains(e.FailureReason, "400") || !strings.Contains(e.FailureReason, "not a valid order") {
		t.Fatalf("entry: permanent %v, retries %d, reason %q; want permanent, 0 retries, the 400 and its body in the reason", e.Permanent, e.RetryCount, e.FailureReason)
	}
	if e.ConsumerGroup != gateway.GroupPrefix+name {
		t.Fatalf("entry of group %q, want the subscription's %q", e.ConsumerGroup, gateway.GroupPrefix+name)
	}
	// The key moves on; by then the scheduler has had the entry, and a
	// permanent failure is not retried.
	good := publishKeyed(t, f.bus, topic, "a", 1)
	eventbustest.Eventually(t, "the next event delivered", func() error {
		mu.Lock()
		defer mu.Unlock()
		if calls[good] == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if calls[bad] != 1 {
		t.Fatalf("the refused event was sent %d times, want 1", calls[bad])
	}
}

// TestPush500RetryReachesOnlyThatSubscription: a 5xx answer dead-letters
// the event with automatic retries; the retry reaches the failing
// subscription and not another subscription of the same events.
func TestPush500RetryReachesOnlyThatSubscription(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 10 * time.Millisecond}})
	startDLQ(t, f.bus)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var mu sync.Mutex
	failing, healthy := map[string]int{}, map[string]int{}
	failSrv := endpoint(t, func(d delivery, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing[d.event.ID]++; failing[d.event.ID] == 1 {
			http.Error(w, "database down", http.StatusInternalServerError)
		}
	})
	okSrv := endpoint(t, func(d delivery, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		healthy[d.event.ID]++
	})
	subscribe(t, f, gateway.Subscription{Name: eventbustest.UniqueID("failing"), Events: []string{topic}, Endpoint: failSrv.URL})
	subscribe(t, f, gateway.Subscription{Name: eventbustest.UniqueID("healthy"), Events: []string{topic}, Endpoint: okSrv.URL})
	id := publishKeyed(t, f.bus, topic, "a", 0)
	e := dlqEntry(t, f.bus, topic, id, deadletter.StatusResolved)
	if e.Permanent || !strings.Contains(e.FailureReason, "500") {
		t.Fatalf("entry: permanent %v, reason %q; want an automatic retry of the 500", e.Permanent, e.FailureReason)
	}
	// A later event of the same key comes after the retry on the
	// partition: once the healthy subscription has it, it has passed the
	// retry too.
	marker := publishKeyed(t, f.bus, topic, "a", 1)
	eventbustest.Eventually(t, "the healthy subscription has the later event", func() error {
		mu.Lock()
		defer mu.Unlock()
		if healthy[marker] == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if failing[id] != 2 || healthy[id] != 1 {
		t.Fatalf("the failing subscription got the event %d times (want 2: the failure and its retry), the healthy one %d (want 1)", failing[id], healthy[id])
	}
}

// TestPushTimeoutIsDeadLettered: an endpoint that does not answer within
// the subscription's timeout fails the event with automatic retries.
func TestPushTimeoutIsDeadLettered(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 10 * time.Millisecond}})
	startDLQ(t, f.bus)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var mu sync.Mutex
	calls := 0
	srv := endpoint(t, func(_ delivery, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			<-r.Context().Done() // never answers: the gateway gives up
		}
	})
	subscribe(t, f, gateway.Subscription{Name: eventbustest.UniqueID("slow"), Events: []string{topic}, Endpoint: srv.URL, Timeout: gateway.Duration(50 * time.Millisecond)})
	id := publishKeyed(t, f.bus, topic, "a", 0)
	e := dlqEntry(t, f.bus, topic, id, deadletter.StatusResolved)
	if !strings.Contains(e.FailureReason, "no answer within 50ms") {
		t.Fatalf("reason %q; want the timeout", e.FailureReason)
	}
}
