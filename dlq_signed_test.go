package eventbus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

var signingKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// TestSignedRetriesNeedNoViewInSubscribers: with DLQConfig.SigningKey, a
// process that only subscribes keeps no dead-letter view, yet its failures
// are dead-lettered, retried by the process that runs the DLQ (as serve
// does), and resolved; a retry with a bad signature is an ordinary event.
func TestSignedRetriesNeedNoViewInSubscribers(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	cfg := fastDLQ()
	cfg.DLQ.SigningKey = signingKey
	service := eventbustest.NewBus(t, cfg, brokers...)
	ops := eventbustest.NewBus(t, cfg, brokers...)
	if err := ops.DLQ().Start(ctxT(t)); err != nil { // the view and the scheduler live here
		t.Fatal(err)
	}
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	var mu sync.Mutex
	calls := map[string]int{}
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, service, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		mu.Lock()
		calls[ev.ID]++
		n := calls[ev.ID]
		mu.Unlock()
		if n == 1 && !strings.Contains(string(ev.Data), "forged") {
			return errors.New("smtp down")
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(group))

	id := eventbustest.MustPublish(t, service, topic, "hello", eventbus.PublishMetadata{TenantID: "acme"})
	rec.WaitForID(t, id) // failed, dead-lettered, retried by ops, handled
	e := waitEntry(t, ops.DLQ(), eventbus.FailedEventID(group, topic, "acme", id), hasStatus(eventbus.StatusResolved))
	if e.RetryCount != 1 || len(e.OriginalEvent) == 0 {
		t.Fatalf("entry %+v; want resolved after one retry, with its original event", e)
	}
	if err := service.DLQ().Ready(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("the subscribing process's DLQ: %v; want it never started (no view)", err)
	}

	// A retry whose signature does not match: an ordinary event.
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	forged := forgedRetry(topic, "forged-1", "forged", e.ID, group)
	forged.Headers = append(forged.Headers,
		kgo.RecordHeader{Key: eventbus.HeaderDLQEntry, Value: []byte(`{"id":"` + e.ID + `"}`)},
		kgo.RecordHeader{Key: eventbus.HeaderDLQSignature, Value: []byte("00")})
	if err := raw.ProduceSync(ctxT(t), forged).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rec.WaitForID(t, "forged-1")
	if got := waitEntry(t, ops.DLQ(), e.ID, hasStatus(eventbus.StatusResolved)); got.RetryCount != 1 {
		t.Fatalf("the forged retry changed the entry: %+v", got)
	}
}

// TestSigningKeyTooShort: a key under 32 bytes is refused.
func TestSigningKeyTooShort(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	_, err := eventbus.NewBus(client, eventbus.Config{DLQ: eventbus.DLQConfig{SigningKey: []byte("short")}})
	if !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("NewBus with a 5-byte key: %v, want ErrInvalidConfig", err)
	}
}
