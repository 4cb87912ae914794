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

	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/internal/logread"
	"github.com/plexica/eventbus/internal/redact"
	"github.com/plexica/eventbus/internal/wire"
)

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// dlqView is this process's view of every dlq.* topic: an index of the
// entries (internal/dlqindex), read from the start of the topics outside
// any group, so every instance sees every entry; entries are read back from
// their records on demand (internal/logread).
type dlqView struct {
	q      *DeadLetterQueue
	cl     *kgo.Client
	reader *logread.Reader

	index *dlqindex.Index

	mu       sync.RWMutex
	progress map[topicPartition]int64 // next offset the reader will see
	targets  map[topicPartition]int64 // end offsets when the view started
	ready    chan struct{}

	warnedCompacted sync.Map // dlq topics already warned about (dlq_legacy.go)

	cancel context.CancelFunc
	done   chan struct{}
}

func newDLQView(q *DeadLetterQueue) *dlqView {
	return &dlqView{
		q:        q,
		index:    dlqindex.New(),
		progress: map[topicPartition]int64{},
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
	// Entries are read back through a client that never long-polls: on this
	// consuming client a read would queue behind the view's own fetch.
	if v.reader, err = v.q.recordReader(); err != nil {
		cl.Close()
		return err
	}
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

// apply folds one DLQ record into the index. Records from the reader
// advance its progress; records this process wrote are applied as soon as
// they are acknowledged, so a caller reads its own writes.
func (v *dlqView) apply(r *kgo.Record, fromReader bool) {
	if id, e, ok := v.decodeIndex(r); ok {
		v.index.Apply(id, e)
	}
	if fromReader {
		tp := topicPartition{r.Topic, r.Partition}
		v.mu.Lock()
		if r.Offset+1 > v.progress[tp] {
			v.progress[tp] = r.Offset + 1
		}
		v.mu.Unlock()
	}
}

// decodeIndex reads what the index keeps of a DLQ record: the entry's ID
// and its index entry, or ok false for a record that is not an entry.
func (v *dlqView) decodeIndex(r *kgo.Record) (id string, ie dlqindex.Entry, ok bool) {
	ie.Pos = dlqindex.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	if r.Value == nil { // a tombstone: keyed by the entry's ID
		id = string(r.Key)
		if !isEntryID(id) {
			return "", ie, false
		}
		ie.Deleted = true
		return id, ie, true
	}
	e, overlay, deleted, err := decodeEntryRecord(r)
	if err != nil {
		v.q.logger.Warn("eventbus: unreadable dead-letter entry skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return "", ie, false
	}
	if e.Origin == OriginTypeScript && !overlay {
		v.warnIfCompacted(r.Topic)
	}
	ie.Deleted, ie.Overlay, ie.Origin = deleted, overlay, e.Origin
	ie.Status, ie.Permanent = string(e.Status), e.Permanent
	ie.Topic, ie.Group, ie.SchedulerGroup, ie.Tenant = e.OriginalTopic, e.ConsumerGroup, e.SchedulerGroup, e.TenantID
	_, ie.TenantKnown = e.VerifiedTenant()
	ie.ReasonLabel = reasonClass(redact.Text(e.FailureReason))
	ie.RetryCount, ie.MaxRetries = int32(e.RetryCount), int32(e.MaxRetries)
	ie.FailedAt, ie.ChangedAt = e.FailedAt.UnixNano(), e.UpdatedAt.UnixNano()
	if e.NextRetryAt != nil {
		ie.NextRetryAt = e.NextRetryAt.UnixNano()
	}
	return e.ID, ie, true
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

// ref returns where live entry id lies.
func (v *dlqView) ref(id string) (dlqindex.Ref, bool) {
	e, ok := v.index.Get(id)
	return dlqindex.Ref{ID: id, Pos: e.Pos}, ok
}

// get reads entry id from its record.
func (v *dlqView) get(ctx context.Context, id string) (FailedEvent, bool, error) {
	ref, ok := v.ref(id)
	if !ok {
		return FailedEvent{}, false, nil
	}
	got, err := v.read(ctx, []dlqindex.Ref{ref})
	if err != nil {
		return FailedEvent{}, false, err
	}
	if len(got) == 0 {
		return FailedEvent{}, false, nil
	}
	return got[0], true, nil
}

// read reads the entries refs point at, in refs' order. An entry whose
// record is gone (retention removed it since it was indexed) is left out.
func (v *dlqView) read(ctx context.Context, refs []dlqindex.Ref) ([]FailedEvent, error) {
	byTP := map[topicPartition][]int64{}
	for _, r := range refs {
		tp := topicPartition{r.Pos.Topic, r.Pos.Partition}
		byTP[tp] = append(byTP[tp], r.Pos.Offset)
	}
	records := map[topicPartition]map[int64]*kgo.Record{}
	for tp, offsets := range byTP {
		got, err := v.reader.Read(ctx, tp.topic, tp.partition, offsets)
		if err != nil {
			return nil, fmt.Errorf("dead letter queue: read entries: %w", err)
		}
		records[tp] = got
	}
	out := make([]FailedEvent, 0, len(refs))
	for _, r := range refs {
		rec := records[topicPartition{r.Pos.Topic, r.Pos.Partition}][r.Pos.Offset]
		if rec == nil {
			continue
		}
		e, _, deleted, err := decodeEntryRecord(rec)
		if err != nil || deleted || e.ID != r.ID {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// indexFilter is filter in the index's terms.
func indexFilter(f FailedEventFilter) dlqindex.Filter {
	return dlqindex.Filter{Topic: f.Topic, Tenant: f.TenantID, Status: string(f.Status), TenantKnown: f.VerifiedTenant}
}

// query returns where the entries that match filter lie, sorted by
// failure time (newest first unless oldest) then ID.
func (v *dlqView) query(filter FailedEventFilter, oldest bool) []dlqindex.Ref {
	return v.index.Query(indexFilter(filter), oldest)
}

// stats counts the entries that match filter, from the index alone.
func (v *dlqView) stats(filter FailedEventFilter) DLQStats {
	statuses := make([]string, len(allStatuses))
	for i, st := range allStatuses {
		statuses[i] = string(st)
	}
	c := v.index.Count(indexFilter(filter), statuses)
	return DLQStats{Total: c.Total, ByStatus: c.ByStatus, ByTopic: c.ByTopic, ByReason: c.ByReason}
}

// due returns, by partition, the IDs of this bus's live entries that are
// due at now and that keep accepts (given their scheduler group).
func (v *dlqView) due(now time.Time, keep func(tp topicPartition, schedulerGroup string) bool) map[topicPartition][]string {
	waiting := []string{string(StatusPending), string(StatusRetrying)}
	byPos := v.index.Due(now.UnixNano(), waiting, func(topic string, partition int32, schedulerGroup string) bool {
		return keep(topicPartition{topic, partition}, schedulerGroup)
	})
	out := make(map[topicPartition][]string, len(byPos))
	for p, ids := range byPos {
		out[topicPartition{p.Topic, p.Partition}] = ids
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

// decodeEntryRecord reads the entry a DLQ record holds: one of this bus's
// (keyed by its ID), one the TypeScript package wrote (keyed by tenant, see
// dlq_legacy.go), or one of our overlays of the latter. deleted is set for
// an overlay that deletes the TypeScript entry.
func decodeEntryRecord(r *kgo.Record) (e FailedEvent, overlay, deleted bool, err error) {
	// Nearly every record is one of this bus's entries: one parse.
	if json.Unmarshal(r.Value, &e) == nil && e.Status != "" && e.Origin == "" && e.ID == string(r.Key) {
		return e, false, false, nil
	}
	e = FailedEvent{}
	var probe struct {
		Status           *string         `json:"status"`
		FailureTimestamp json.RawMessage `json:"failureTimestamp"`
		Overlay          *legacyOverlay  `json:"typescriptOverlay"`
	}
	if err := json.Unmarshal(r.Value, &probe); err != nil {
		return e, false, false, err
	}
	switch {
	case probe.Overlay != nil:
		o := probe.Overlay
		if string(r.Key) != overlayKey(o.Entry.ID) || o.Entry.Origin != OriginTypeScript {
			return e, false, false, fmt.Errorf("overlay keyed %q does not match its entry %q", r.Key, o.Entry.ID)
		}
		return o.Entry, true, o.Deleted, nil
	case probe.Status == nil && probe.FailureTimestamp != nil:
		e, err := fromTypeScript(r.Value)
		return e, false, false, err
	}
	if err := json.Unmarshal(r.Value, &e); err != nil {
		return e, false, false, err
	}
	if e.ID != string(r.Key) || e.Origin != "" {
		return e, false, false, fmt.Errorf("entry %q keyed %q", e.ID, r.Key)
	}
	return e, false, false, nil
}

// VerifiedTenant returns the tenant of e when it is known: when its record
// is an event (it decodes as one) and the event's tenant is the entry's
// (the record's tenant-id header). A malformed record has no tenant: its
// tenant-id header, if any, is a claim that nothing checks against its
// bytes, which may hold anyone's data. Nor has a record whose header and
// event disagree. Access scoped to a tenant uses it.
func (e FailedEvent) VerifiedTenant() (tenant string, known bool) {
	if e.TenantID == "" {
		return "", false
	}
	env, err := wire.Decode(e.OriginalEvent)
	if err != nil || env.TenantID != e.TenantID {
		return "", false
	}
	return e.TenantID, true
}
