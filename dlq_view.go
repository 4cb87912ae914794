package eventbus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// viewEntry is the newest record seen for one dead-letter ID.
type viewEntry struct {
	event   FailedEvent
	deleted bool
	at      topicPartition
	offset  int64
}

// dlqView is this process's copy of every dlq.* topic, folded by entry ID.
// It reads the topics from the start outside any group, so every instance
// sees every entry.
type dlqView struct {
	q  *DeadLetterQueue
	cl *kgo.Client

	mu       sync.RWMutex
	entries  map[string]*viewEntry
	progress map[topicPartition]int64 // next offset the reader will see
	changed  chan struct{}            // closed and replaced on every change
	targets  map[topicPartition]int64 // end offsets when the view started
	ready    chan struct{}
	readyErr error

	cancel context.CancelFunc
	done   chan struct{}
}

func newDLQView(q *DeadLetterQueue) *dlqView {
	return &dlqView{
		q:        q,
		entries:  map[string]*viewEntry{},
		progress: map[topicPartition]int64{},
		changed:  make(chan struct{}),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// dlqTopicPattern matches every dead-letter topic.
const dlqTopicPattern = `^dlq\..+`

func (v *dlqView) start() error {
	cl, err := v.q.bus.client.newKgo(
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(dlqTopicPattern),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(3*time.Second),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchMaxWait(time.Second),
	)
	if err != nil {
		return err
	}
	v.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	targets, err := v.endOffsets(ctx)
	if err != nil {
		cancel()
		cl.Close()
		return fmt.Errorf("dead letter queue: read dlq.* end offsets: %w", err)
	}
	v.targets = targets
	v.checkReady()
	go v.run(ctx)
	return nil
}

// endOffsets returns the end offset of every dlq.* partition that holds
// records.
func (v *dlqView) endOffsets(ctx context.Context) (map[topicPartition]int64, error) {
	adm, err := v.q.bus.client.Admin()
	if err != nil {
		return nil, err
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var dlqTopics []string
	for name := range topics {
		if strings.HasPrefix(name, "dlq.") {
			dlqTopics = append(dlqTopics, name)
		}
	}
	out := map[topicPartition]int64{}
	if len(dlqTopics) == 0 {
		return out, nil
	}
	ends, err := adm.ListEndOffsets(ctx, dlqTopics...)
	if err != nil {
		return nil, err
	}
	// A partition whose records all went (retention, DeleteRecords) has
	// its start offset at its end: nothing is left to read there.
	starts, err := adm.ListStartOffsets(ctx, dlqTopics...)
	if err != nil {
		return nil, err
	}
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Err == nil && o.Offset > 0 && o.Offset > start.Offset {
			out[topicPartition{o.Topic, o.Partition}] = o.Offset
		}
	})
	return out, nil
}

func (v *dlqView) run(ctx context.Context) {
	defer close(v.done)
	for {
		fetches := v.cl.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			v.q.logger.Warn("eventbus: dead letter queue read failed", "topic", t, "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) { v.apply(r, true) })
		v.checkReady()
	}
}

// apply folds one DLQ record into the view. Records from the reader advance
// its progress; records this process wrote are applied as soon as they are
// acknowledged, so a caller reads its own writes.
func (v *dlqView) apply(r *kgo.Record, fromReader bool) {
	tp := topicPartition{r.Topic, r.Partition}
	id := string(r.Key)
	v.mu.Lock()
	defer v.mu.Unlock()
	if fromReader && r.Offset+1 > v.progress[tp] {
		v.progress[tp] = r.Offset + 1
	}
	if !isEntryID(id) {
		return // not ours: the TypeScript original keys its entries by tenant
	}
	if cur, ok := v.entries[id]; ok && cur.at == tp && cur.offset > r.Offset {
		return // an older version than the one applied already
	}
	ve := &viewEntry{at: tp, offset: r.Offset, deleted: r.Value == nil}
	if !ve.deleted {
		if err := json.Unmarshal(r.Value, &ve.event); err != nil || ve.event.ID != id {
			v.q.logger.Warn("eventbus: unreadable dead-letter entry skipped", "topic", r.Topic, "offset", r.Offset, "err", err)
			return
		}
	}
	v.entries[id] = ve
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *dlqView) checkReady() {
	v.mu.RLock()
	defer v.mu.RUnlock()
	select {
	case <-v.ready:
		return
	default:
	}
	for tp, end := range v.targets {
		if v.progress[tp] < end {
			return
		}
	}
	close(v.ready)
}

// loading reports, while the view is not ready, how many dlq.* partitions
// it has read up to their end offsets at start, of how many.
func (v *dlqView) loading() (caughtUp, total int, ready bool) {
	select {
	case <-v.ready:
		return 0, 0, true
	default:
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for tp, end := range v.targets {
		if v.progress[tp] >= end {
			caughtUp++
		}
	}
	return caughtUp, len(v.targets), false
}

// caughtUp reports whether the reader has read tp up to end.
func (v *dlqView) caughtUp(tp topicPartition, end int64) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.progress[tp] >= end
}

func (v *dlqView) waitReady(ctx context.Context) error {
	select {
	case <-v.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dead letter queue: still reading the dlq.* topics: %w", ctx.Err())
	}
}

func (v *dlqView) get(id string) (FailedEvent, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.entries[id]
	if !ok || e.deleted {
		return FailedEvent{}, false
	}
	return e.event, true
}

// getWait returns the entry once it is there with at least minRetries
// retries sent, waiting up to d for the reader to bring that version. After
// d it returns what it has, if anything.
func (v *dlqView) getWait(ctx context.Context, id string, minRetries int, d time.Duration) (FailedEvent, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		v.mu.RLock()
		e, ok := v.entries[id]
		sig := v.changed
		v.mu.RUnlock()
		found := ok && !e.deleted
		if found && e.event.RetryCount >= minRetries {
			return e.event, true
		}
		select {
		case <-sig:
		case <-deadline.C:
			if found {
				return e.event, true
			}
			return FailedEvent{}, false
		case <-ctx.Done():
			return FailedEvent{}, false
		}
	}
}

func (v *dlqView) list(keep func(*FailedEvent) bool) []FailedEvent {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []FailedEvent
	for _, e := range v.entries {
		if !e.deleted && keep(&e.event) {
			out = append(out, e.event)
		}
	}
	return out
}

// due returns, by partition, the IDs of the live entries that are due at
// now and that keep accepts, in one pass over the view.
func (v *dlqView) due(now time.Time, keep func(topicPartition, *FailedEvent) bool) map[topicPartition][]string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := map[topicPartition][]string{}
	for id, e := range v.entries {
		if !e.deleted && isDue(&e.event, now) && keep(e.at, &e.event) {
			out[e.at] = append(out[e.at], id)
		}
	}
	return out
}

func (v *dlqView) stop() {
	if v.cancel != nil {
		v.cancel()
		<-v.done
		v.cl.Close()
	}
}

// isEntryID reports whether key has the shape of FailedEventID's IDs (32
// lowercase hex characters): the keys of this bus's entries.
func isEntryID(key string) bool {
	if len(key) != 32 {
		return false
	}
	for _, c := range key {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
