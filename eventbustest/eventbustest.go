// Package eventbustest helps test code that uses the event bus: a broker per
// test (the embedded one, or a real cluster named by EVENTBUS_TEST_BROKERS),
// a connected client and bus that are cleaned up with the test, topic names
// that no other test uses, and a recorder that waits for events.
//
//	func TestSignup(t *testing.T) {
//		bus := eventbustest.NewBus(t, eventbus.Config{})
//		topic := eventbustest.UniqueTopic(t, "core.user.created")
//		rec := eventbustest.NewRecorder()
//		eventbustest.MustSubscribe(t, bus, topic, rec.Handle)
//		...
//		rec.WaitFor(t, 1)
//	}
package eventbustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/topic"
)

// BrokersEnv names the environment variable that points tests at a real
// cluster ("host:port,host:port"). When it is empty, tests use an embedded
// broker each.
const BrokersEnv = "EVENTBUS_TEST_BROKERS"

// WaitTimeout bounds every wait of this package; a test that waits longer
// has failed.
var WaitTimeout = 30 * time.Second

// RealBrokers returns the brokers named by EVENTBUS_TEST_BROKERS, or nil.
func RealBrokers() []string {
	v := strings.TrimSpace(os.Getenv(BrokersEnv))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Brokers returns brokers for one test: the real cluster when
// EVENTBUS_TEST_BROKERS is set, else a new embedded broker closed with the test.
func Brokers(t testing.TB) []string {
	t.Helper()
	if b := RealBrokers(); b != nil {
		return b
	}
	return StartEmbedded(t, embedded.Config{}).Addrs()
}

// StartEmbedded starts an embedded broker closed with the test.
func StartEmbedded(t testing.TB, cfg embedded.Config) *embedded.Broker {
	t.Helper()
	b, err := embedded.Start(cfg)
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// NewClient returns a connected client on brokers (Brokers(t) when none are
// given), closed with the test.
func NewClient(t testing.TB, brokers ...string) *eventbus.Client {
	t.Helper()
	if len(brokers) == 0 {
		brokers = Brokers(t)
	}
	c, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: brokers, ClientID: "test-" + randomSuffix()})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// NewBus returns a bus on a new client (see NewClient), shut down with the test.
func NewBus(t testing.TB, cfg eventbus.Config, brokers ...string) *eventbus.Bus {
	t.Helper()
	return NewBusOn(t, NewClient(t, brokers...), cfg)
}

// NewBusOn returns a bus on client, shut down with the test. Unless
// cfg.DLQ.SchedulerGroup is set, the buses of one test share a DLQ
// scheduler group of their own, so that tests sharing a cluster never send
// each other's retries.
func NewBusOn(t testing.TB, client *eventbus.Client, cfg eventbus.Config) *eventbus.Bus {
	t.Helper()
	if cfg.DLQ.SchedulerGroup == "" {
		cfg.DLQ.SchedulerGroup = schedulerGroupOf(t)
	}
	bus, err := eventbus.NewBus(client, cfg)
	if err != nil {
		t.Fatalf("new bus: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		_ = bus.Shutdown(ctx)
	})
	return bus
}

// UniqueTopic returns name with a random suffix in its domain (core) or
// entity (plugin), so tests sharing a real cluster never share topics:
// "core.user.created" becomes "core.user_3f9a1c.created".
func UniqueTopic(t testing.TB, name string) string {
	t.Helper()
	parsed, err := topic.Parse(name)
	if err != nil {
		t.Fatalf("UniqueTopic(%q): %v", name, err)
	}
	suffix := "_" + randomSuffix()
	switch parsed.Kind {
	case topic.KindCore:
		return "core." + parsed.Domain + suffix + "." + parsed.Action
	case topic.KindPlugin:
		return "plugin." + parsed.PluginID + "." + parsed.Entity + suffix + "." + parsed.Action
	default:
		t.Fatalf("UniqueTopic(%q): give a core or plugin topic", name)
		return ""
	}
}

// schedulerGroups holds the DLQ scheduler group of each running test.
var schedulerGroups sync.Map // testing.TB -> string

func schedulerGroupOf(t testing.TB) string {
	group, loaded := schedulerGroups.LoadOrStore(t, UniqueID("eventbustest-dlq-scheduler"))
	if !loaded {
		t.Cleanup(func() { schedulerGroups.Delete(t) })
	}
	return group.(string)
}

// UniqueID returns prefix plus a random suffix, for group and tenant IDs.
func UniqueID(prefix string) string { return prefix + "-" + randomSuffix() }

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MustSubscribe subscribes the raw handler h to eventType on target (a
// *Bus, *PluginClient or *PluginHost; see eventbus.Subscribe) or fails the
// test.
func MustSubscribe(t testing.TB, target eventbus.Subscriber, eventType string, h eventbus.Handler, opts ...eventbus.SubscribeOption) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	id, err := eventbus.Subscribe(ctx, target, eventbus.Name[json.RawMessage](eventType), h, opts...)
	if err != nil {
		t.Fatalf("subscribe %s: %v", eventType, err)
	}
	return id
}

// MustPublish publishes or fails the test, returning the event ID.
func MustPublish(t testing.TB, bus *eventbus.Bus, eventType string, data any, meta eventbus.PublishMetadata, opts ...eventbus.PublishOption) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	id, err := bus.Publish(ctx, eventType, data, meta, opts...)
	if err != nil {
		t.Fatalf("publish %s: %v", eventType, err)
	}
	return id
}

// Recorder records the events its Handle receives and lets a test wait for
// them. It is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []eventbus.RawEvent
	signal chan struct{}
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{signal: make(chan struct{})} }

// Handle is an eventbus.Handler that records the event and returns nil.
func (r *Recorder) Handle(_ context.Context, ev eventbus.RawEvent) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	close(r.signal)
	r.signal = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// Events returns a copy of what was recorded so far.
func (r *Recorder) Events() []eventbus.RawEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventbus.RawEvent(nil), r.events...)
}

// Len returns how many events were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// WaitFor waits until at least n events were recorded and returns them; the
// test fails after WaitTimeout.
func (r *Recorder) WaitFor(t testing.TB, n int) []eventbus.RawEvent {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, sig := len(r.events), r.signal
		r.mu.Unlock()
		if got >= n {
			return r.Events()
		}
		select {
		case <-sig:
		case <-deadline.C:
			t.Fatalf("waited %s for %d events, got %d", WaitTimeout, n, got)
			return nil
		}
	}
}

// WaitForID waits until an event with the given ID was recorded.
func (r *Recorder) WaitForID(t testing.TB, id string) eventbus.RawEvent {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		sig := r.signal
		for _, ev := range r.events {
			if ev.ID == id {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-sig:
		case <-deadline.C:
			t.Fatalf("waited %s for event %s", WaitTimeout, id)
			return eventbus.RawEvent{}
		}
	}
}
