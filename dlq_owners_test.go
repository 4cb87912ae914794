package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
	"github.com/plexica/eventbus/wire"
)

// Two processes run the queue (one scheduler group), a group fails events
// and their retries, and operators retry and delete entries through both
// processes while automatic retries and their answers flow (issue 27).
// Afterwards: no deleted entry came back, in either process or a fresh
// one; every retry was sent once (one record per entry and attempt); and
// every retry's answer is recorded on its entry, against that attempt.
func TestDLQOneWriterAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	a := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	b := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	tp := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("fulfilment")

	// Each event fails its first delivery; events whose payload ends in an
	// even digit fail their first retry too. Retries of events deleted
	// meanwhile may still arrive: their answers change nothing.
	var mu sync.Mutex
	calls := map[string]int{}
	eventbustest.MustSubscribe(t, a, tp, func(_ context.Context, ev eventbus.RawEvent) error {
		mu.Lock()
		calls[ev.ID]++
		n := calls[ev.ID]
		mu.Unlock()
		even := strings.ContainsAny(string(ev.Data)[len(ev.Data)-1:], "02468")
		if n == 1 || (n == 2 && even) {
			return fmt.Errorf("attempt %d failed", n)
		}
		return nil
	}, eventbus.InGroup(group))

	const n = 24
	ids := make([]string, n)
	for i := range n {
		ids[i] = deadletter.ID(group, tp, "acme", eventbustest.MustPublish(t, a, tp, i, eventbus.PublishMetadata{TenantID: "acme"}))
	}
	// Operators, through both processes at once, while retries flow.
	deleted := map[string]bool{}
	var ops sync.WaitGroup
	for i, id := range ids {
		via := []*eventbus.Bus{a, b}[i%2]
		waitEntry(t, via.DLQ(), id, func(deadletter.Entry) bool { return true })
		switch i % 3 {
		case 0:
			deleted[id] = true
			ops.Go(func() {
				if err := via.DLQ().Delete(ctxT(t), id); err != nil {
					t.Errorf("delete %s: %v", id, err)
				}
			})
		case 1:
			ops.Go(func() {
				if err := via.DLQ().Retry(ctxT(t), id); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
					t.Errorf("retry %s: %v", id, err)
				}
			})
		}
	}
	ops.Wait()

	// Settled: every entry left is resolved.
	for _, id := range ids {
		if !deleted[id] {
			waitEntry(t, b.DLQ(), id, hasStatus(deadletter.StatusResolved))
		}
	}
	fresh := eventbustest.NewBus(t, fastDLQ(), brokers...) // reads the topics, starts nothing
	for id := range deleted {
		for name, bus := range map[string]*eventbus.Bus{"a": a, "b": b, "a fresh process": fresh} {
			if e, err := bus.DLQ().Get(ctxT(t), id); !errors.Is(err, deadletter.ErrNotFound) {
				t.Errorf("deleted entry %s is back in %s: %s after %d retries (%v)", id, name, e.Status, e.RetryCount, err)
			}
		}
	}

	// Every retry sent once, and its answer recorded against it.
	retryTopic, err := topic.RetryFor(group, tp)
	if err != nil {
		t.Fatal(err)
	}
	sent := retriesSent(t, brokers, retryTopic)
	for key, count := range sent {
		if count != 1 {
			t.Errorf("retry %s sent %d times", key, count)
		}
	}
	for _, id := range ids {
		if deleted[id] {
			continue
		}
		e, err := b.DLQ().Get(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		answered := map[int]bool{}
		for _, st := range e.Attempts {
			if st.Kind == "failed" || st.Kind == "late-failed" || st.Kind == "resolved" {
				answered[st.Number] = true
			}
		}
		for attempt := 1; attempt <= e.RetryCount; attempt++ {
			if sent[fmt.Sprintf("%s#%d", id, attempt)] != 1 {
				t.Errorf("entry %s counts retry %d, which was not sent once", id, attempt)
			}
			if !answered[attempt] {
				t.Errorf("entry %s lost the answer to retry %d: history %+v", id, attempt, e.Attempts)
			}
		}
	}
}

// retriesSent counts the committed retry records of topic by entry and
// attempt ("<id>#<attempt>").
func retriesSent(t *testing.T, brokers []string, topic string) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), // the commit markers reach the end
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	got := map[string]int{}
	done := func() bool {
		for _, end := range want {
			if end > 0 {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctxT(t))
		if err := fetches.Err0(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= want[r.Partition] {
				want[r.Partition] = 0
			}
			if r.Attrs.IsControl() {
				return
			}
			var id, attempt string
			for _, h := range r.Headers {
				switch h.Key {
				case wire.HeaderDLQID:
					id = string(h.Value)
				case wire.HeaderRetryAttempt:
					attempt = string(h.Value)
				}
			}
			got[id+"#"+attempt]++
		})
	}
	return got
}
