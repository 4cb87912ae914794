package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

type pullAnswer struct {
	Events []struct {
		LeaseID string                `json:"leaseId"`
		Event   eventbus.Event[keyed] `json:"event"`
	} `json:"events"`
}

func pull(t *testing.T, f *fixture, name, query string) pullAnswer {
	t.Helper()
	status, body := send(t, f.srv, http.MethodGet, "/api/subscriptions/"+name+"/events?"+query, adminToken, "")
	if status != http.StatusOK {
		t.Fatalf("pull: %d %s", status, body)
	}
	var a pullAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPullKeepsOrderPerKeyAndSettles: a pull subscription hands out one
// event per key at a time (a key's next event only once the previous one
// is acknowledged), other keys concurrently; a permanent nack
// dead-letters without retries and a lease that ends dead-letters with
// retries.
func TestPullKeepsOrderPerKeyAndSettles(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: time.Hour}})
	startDLQ(t, f.bus)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	name := eventbustest.UniqueID("puller")
	subscribe(t, f, gateway.Subscription{Name: name, Events: []string{topic}, Pull: true, Timeout: gateway.Duration(time.Hour)})
	a0 := publishKeyed(t, f.bus, topic, "a", 0)
	publishKeyed(t, f.bus, topic, "a", 1)
	b0 := publishKeyed(t, f.bus, topic, "b", 0)

	leases := map[string]string{} // "a0" -> lease
	eventbustest.Eventually(t, "a0 and b0 taken", func() error {
		for _, e := range pull(t, f, name, "max=10&wait=1s").Events {
			k := fmt.Sprintf("%s%d", e.Event.Data.Key, e.Event.Data.Seq)
			if k == "a1" {
				t.Fatalf("a1 was handed out before a0 was acknowledged")
			}
			leases[k] = e.LeaseID
		}
		if leases["a0"] == "" || leases["b0"] == "" {
			return fmt.Errorf("taken: %v", leases)
		}
		return nil
	})
	if got := pull(t, f, name, "wait=0s").Events; len(got) != 0 {
		t.Fatalf("with a0 and b0 taken, a pull got %d events, want none", len(got))
	}
	status, body := send(t, f.srv, http.MethodPost, "/api/subscriptions/"+name+"/ack", adminToken,
		fmt.Sprintf(`{"ack":[%q,"no-such-lease"],"nack":[{"leaseId":%q,"reason":"bad order","permanent":true}]}`, leases["a0"], leases["b0"]))
	if status != http.StatusOK || !strings.Contains(body, `"settled":2`) || !strings.Contains(body, "no-such-lease") {
		t.Fatalf("ack: %d %s", status, body)
	}
	var a1 string
	eventbustest.Eventually(t, "a1 handed out after a0's ack", func() error {
		for _, e := range pull(t, f, name, "wait=1s").Events {
			if e.Event.Data.Key == "a" && e.Event.Data.Seq == 1 {
				a1 = e.LeaseID
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	if e := dlqEntry(t, f.bus, topic, b0, deadletter.StatusMaxRetriesExceeded); !strings.Contains(e.FailureReason, "bad order") || e.RetryCount != 0 {
		t.Fatalf("b0's entry: %q, %d retries", e.FailureReason, e.RetryCount)
	}
	if status, body := send(t, f.srv, http.MethodPost, "/api/subscriptions/"+name+"/ack", adminToken, fmt.Sprintf(`{"ack":[%q]}`, a1)); status != http.StatusOK || !strings.Contains(body, `"settled":1`) {
		t.Fatalf("ack a1: %d %s", status, body)
	}
	if e, _ := f.bus.DLQ().Get(context.Background(), deadletter.ID(gateway.GroupPrefix+name, topic, "acme", a0)); e.ID != "" {
		t.Fatalf("the acknowledged a0 was dead-lettered: %+v", e)
	}
}

// TestPullLeaseEnds: an event taken and not acknowledged within the
// subscription's timeout is dead-lettered with automatic retries.
func TestPullLeaseEnds(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: time.Hour}})
	startDLQ(t, f.bus)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	name := eventbustest.UniqueID("forgetful")
	subscribe(t, f, gateway.Subscription{Name: name, Events: []string{topic}, Pull: true, Timeout: gateway.Duration(50 * time.Millisecond)})
	id := publishKeyed(t, f.bus, topic, "a", 0)
	if got := pull(t, f, name, "wait=30s").Events; len(got) != 1 || got[0].Event.ID != id {
		t.Fatalf("pulled %+v, want event %s", got, id)
	}
	e := dlqEntry(t, f.bus, topic, id, deadletter.StatusPending)
	if !strings.Contains(e.FailureReason, "not acknowledged within 50ms") || e.Permanent {
		t.Fatalf("entry: %q, permanent %v", e.FailureReason, e.Permanent)
	}
	// A pull subscription another tenant's token may not use.
	if status, _ := send(t, f.srv, http.MethodGet, "/api/subscriptions/"+name+"/events?wait=0s", acmeToken, ""); status != http.StatusNotFound {
		t.Fatalf("a tenant token pulled from a subscription of every tenant: %d", status)
	}
	if status, _ := send(t, f.srv, http.MethodGet, "/api/subscriptions/"+name+"/events?max=1000", adminToken, ""); status != http.StatusBadRequest {
		t.Fatalf("max=1000: %d, want 400", status)
	}
}
