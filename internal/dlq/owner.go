package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/internal/tracing"
	"github.com/plexica/eventbus/pluginacl"
	"github.com/plexica/eventbus/wire"
)

// owner is this process's ownership of one dlq.* partition: the only
// writer of its entries while the scheduler group assigns it here.
//
// Taking the partition over (ready) fences the previous owner first: the
// partition has a transactional ID of its own, and initialising a
// producer with it aborts whatever transaction the previous owner had
// open and makes every later write of that owner fail (ProducerFenced).
// Only then is the partition's end offset listed, and the owner waits
// until the view has read up to it: nothing the previous owner committed
// is missed, and nothing it did not commit can land afterwards. From then
// on every change is one transaction (round): the entries' next versions,
// the applied commands' tombstones, the retries sent.
type owner struct {
	q  *Queue
	tp topicPartition

	cl   *kgo.Client // the partition's transactional producer, once taken over
	end  int64       // end offset listed after fencing; -1 until known
	live bool        // caught up: may write

	failures int       // rounds or take-overs failed in a row
	waitTill time.Time // no attempt before this, after a failure

	// checked is set once the scheduler looked for a transaction this
	// group's former owner left open on the partition; fence, while that
	// one found stays open, makes the owner take the partition over
	// without waiting for work (scheduler.findOpenTransactions).
	checked, fence bool

	// cache holds the versions this owner wrote until the view reads them
	// back: a record just committed may not be readable at once.
	cache map[string]cached
}

// cached is an entry version an owner wrote: nil for a tombstone.
type cached struct {
	e      *Entry
	offset int64
}

// ownerPartitioner is the partitioner of an owner's producer: its writes
// to its dlq.* topic go to its own partition (Record.Partition), where the
// commands they answer lie, even after partitions were added to the topic
// (a command's tombstone elsewhere would leave it pending, applied again
// every round); its retries go where Kafka's partitioner puts their keys.
type ownerPartitioner struct {
	tp    topicPartition
	kafka kgo.Partitioner
}

func (p ownerPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.tp.topic {
		return fixedPartition(p.tp.partition)
	}
	return p.kafka.ForTopic(topic)
}

// fixedPartition places every record on one partition.
type fixedPartition int32

func (fixedPartition) RequiresConsistency(*kgo.Record) bool { return true }

func (f fixedPartition) Partition(*kgo.Record, int) int { return int(f) }

// maxRound bounds the changes of one transaction.
const maxRound = 200

func newOwner(q *Queue, tp topicPartition) *owner {
	return &owner{q: q, tp: tp, end: -1, cache: map[string]cached{}}
}

// transactionalID is the partition's, within the scheduler group.
func (o *owner) transactionalID() string {
	return pluginacl.TransactionalIDPrefix + o.q.cfg.SchedulerGroup + "." + o.tp.topic + "." + strconv.Itoa(int(o.tp.partition))
}

// ready takes the partition over if that is not done yet, and reports
// whether the owner may write.
func (o *owner) ready(ctx context.Context, now time.Time) bool {
	if o.live {
		return !now.Before(o.waitTill)
	}
	if now.Before(o.waitTill) {
		return false
	}
	if o.cl == nil {
		cl, err := o.q.host.NewClient(
			kgo.TransactionalID(o.transactionalID()),
			kgo.RecordPartitioner(ownerPartitioner{o.tp, kgo.StickyKeyPartitioner(nil)}),
			kgo.TransactionTimeout(o.q.cfg.transactionTimeout()),
		)
		if err != nil {
			o.failed(now, fmt.Errorf("take over %s/%d: %w", o.tp.topic, o.tp.partition, err))
			return false
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err = cl.ProducerID(fctx) // fences the previous owner
		cancel()
		if err != nil {
			cl.Close()
			o.failed(now, fmt.Errorf("take over %s/%d (fence the previous owner): %w", o.tp.topic, o.tp.partition, err))
			return false
		}
		o.cl, o.end = cl, -1
	}
	if o.end < 0 {
		adm, err := o.q.host.Admin()
		if err != nil {
			return false
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		end, err := listEnd(lctx, adm, o.tp)
		cancel()
		if err != nil {
			o.failed(now, fmt.Errorf("take over %s/%d (list its end): %w", o.tp.topic, o.tp.partition, err))
			return false
		}
		o.end = end
	}
	if !o.q.view.caughtUp(o.tp, o.end) {
		return false
	}
	o.live, o.failures = true, 0
	return true
}

// failed backs the owner off after err.
func (o *owner) failed(now time.Time, err error) {
	o.waitTill = now.Add(backoff.Exponential(50*time.Millisecond, 5*time.Second, o.failures))
	o.failures++
	if o.failures == 1 || o.failures%20 == 0 {
		o.q.cfg.Logger.Warn("eventbus: dead letter queue owner", "topic", o.tp.topic, "partition", o.tp.partition, "failures", o.failures, "err", err)
	}
}

// lose drops the partition's producer after a fence: another process took
// it over. The next take-over, if the group still assigns it here, fences
// that one in turn and reads what it wrote first.
func (o *owner) lose() {
	if o.cl != nil {
		o.cl.Close()
	}
	o.cl, o.end, o.live = nil, -1, false
	clear(o.cache)
}

func (o *owner) close() { o.lose() }

// current returns entry id as it stands (nil: there is none).
func (o *owner) current(ctx context.Context, id string) (*Entry, error) {
	ref, indexed := o.q.view.ref(id)
	if c, ok := o.cache[id]; ok && (!indexed || ref.Pos.Offset <= c.offset) {
		if c.e == nil {
			return nil, nil
		}
		e := *c.e
		return &e, nil
	}
	if !indexed {
		return nil, nil
	}
	got, err := o.q.view.read(ctx, []dlqindex.Ref{ref})
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, nil // its record is gone: retention removed it
	}
	return &got[0], nil
}

// trimCache forgets the versions the view has read back.
func (o *owner) trimCache() {
	progress := o.q.view.progressOf(o.tp)
	for id, c := range o.cache {
		if c.offset < progress {
			delete(o.cache, id)
		}
	}
}

// round applies the pending commands cmds (in offset order) and sends the
// retries of the due entries due, in one transaction.
func (o *owner) round(ctx context.Context, cmds []pendingCommand, due []string, now time.Time) error {
	o.trimCache()
	now = now.UTC()
	if len(cmds) > maxRound {
		cmds = cmds[:maxRound]
		defer o.q.poke()
	}
	offsets := make([]int64, len(cmds))
	for i, c := range cmds {
		offsets[i] = c.offset
	}
	reader, err := o.q.recordReader()
	if err != nil {
		return err
	}
	var records map[int64]*kgo.Record
	if len(offsets) > 0 {
		if records, err = reader.Read(ctx, o.tp.topic, o.tp.partition, offsets); err != nil {
			return err
		}
	}
	staged := map[string]*Entry{} // entries as this round leaves them (nil: removed)
	lookup := func(id string) (*Entry, error) {
		if e, ok := staged[id]; ok {
			return e, nil
		}
		return o.current(ctx, id)
	}
	var changes []change
	stage := func(ch change) {
		// The retry's topic is made before the change is staged: a later
		// change of the same entry in this round builds on what this one
		// really writes (a retry not sent spends no attempt).
		o.ensureRetryTopic(ctx, &ch, now)
		o.fit(&ch)
		changes = append(changes, ch)
		switch {
		case ch.remove:
			staged[ch.id] = nil
		case ch.next != nil:
			staged[ch.id] = ch.next
		}
	}
	for _, pc := range cmds {
		rec := records[pc.offset]
		if rec == nil {
			o.q.view.dropCommand(o.tp, pc.key) // gone: retention removed it
			continue
		}
		c, err := decodeCommand(rec)
		if err != nil {
			stage(change{cmdKey: rec.Key, result: "invalid: " + err.Error()})
			continue
		}
		cur, err := lookup(c.ID)
		if err != nil {
			return err
		}
		ch := o.q.decide(cur, &c, now)
		ch.cmdKey, ch.prior = rec.Key, cur
		stage(ch)
	}
	for _, id := range due {
		if _, touched := staged[id]; touched || len(changes) >= maxRound {
			continue
		}
		cur, err := lookup(id)
		if err != nil {
			return err
		}
		if cur == nil || cur.Origin != "" || !isDue(cur, now) {
			continue
		}
		ch := o.q.decideDue(*cur, now)
		ch.prior = cur
		stage(ch)
	}
	return o.commit(ctx, changes, now)
}

// commit writes changes in one transaction, and once committed applies
// them to the view.
func (o *owner) commit(ctx context.Context, changes []change, now time.Time) error {
	if len(changes) == 0 {
		return nil
	}
	var (
		recs  []*kgo.Record
		spans []trace.Span
	)
	for i := range changes {
		ch := &changes[i]
		if ch.retry {
			rec, span := o.q.retryRecord(ctx, ch.next, ch.manual)
			recs, spans = append(recs, rec), append(spans, span)
		}
		switch {
		case ch.remove:
			recs = append(recs, &kgo.Record{Topic: o.tp.topic, Partition: o.tp.partition, Key: []byte(ch.id)})
		case ch.next != nil:
			v, err := json.Marshal(ch.next)
			if err != nil {
				return err
			}
			recs = append(recs, &kgo.Record{Topic: o.tp.topic, Partition: o.tp.partition, Key: []byte(ch.id), Value: v,
				Headers: []kgo.RecordHeader{indexHeader(ch.next)}})
		}
		if ch.cmdKey != nil {
			recs = append(recs, &kgo.Record{Topic: o.tp.topic, Partition: o.tp.partition, Key: ch.cmdKey,
				Headers: []kgo.RecordHeader{{Key: HeaderCommandResult, Value: []byte(ch.result)}}})
		}
	}
	if h := o.q.hookBeforeCommit.Load(); h != nil {
		(*h)(o.tp.topic, o.tp.partition)
	}
	err := o.cl.BeginTransaction()
	if err == nil {
		err = o.cl.ProduceSync(ctx, recs...).FirstErr()
		end := kgo.TryCommit
		if err != nil {
			end = kgo.TryAbort
		}
		if endErr := o.cl.EndTransaction(ctx, end); err == nil {
			err = endErr
		}
	}
	for _, span := range spans {
		tracing.End(span, err)
	}
	if err != nil {
		// Whatever failed (a fence, a produce, the commit), nothing of the
		// transaction is visible. The producer is dropped: the next round
		// takes the partition over again, as a new owner would.
		o.lose()
		o.failed(now, err)
		return err
	}
	o.failures = 0
	for _, r := range recs {
		if r.Topic != o.tp.topic {
			continue
		}
		o.q.view.apply(r, false)
	}
	for _, r := range recs {
		if r.Topic == o.tp.topic && !isCommandKey(r.Key) {
			id := string(r.Key)
			var e *Entry
			if r.Value != nil {
				e = new(Entry)
				_ = json.Unmarshal(r.Value, e)
			}
			o.cache[id] = cached{e: e, offset: r.Offset}
		}
	}
	for _, ch := range changes {
		if ch.retry {
			o.q.host.RetrySent(ch.next.OriginalTopic, ch.manual)
		}
	}
	return nil
}

// fit makes the entry version ch writes fit in one record the owner's
// producer sends: a version too large (a large event and a long failure,
// repeated in its history) would fail every round, and with it every
// other change of the partition. The texts that repeat the failure are cut
// first; a version that still does not fit is not written, and its
// command is answered "too-large".
func (o *owner) fit(ch *change) {
	if ch.next == nil {
		return
	}
	room := o.entryRoom()
	if v, err := json.Marshal(ch.next); err != nil || len(v) <= room {
		return
	}
	e := *ch.next
	e.Attempts = slices.Clone(e.Attempts)
	for i := range e.Attempts {
		e.Attempts[i].Error = cut(e.Attempts[i].Error, 1<<10)
	}
	e.FailureReason, e.StackTrace = cut(e.FailureReason, 16<<10), cut(e.StackTrace, 16<<10)
	if v, err := json.Marshal(&e); err == nil && len(v) <= room {
		ch.next = &e
		return
	}
	ch.next, ch.retry, ch.manual = nil, false, false
	if ch.cmdKey != nil {
		ch.result = fmt.Sprintf("too-large: entry %s takes more than %d bytes", ch.id, room)
	}
}

// entryRoom is how many bytes an entry version may take: the largest
// record batch the owner's producer sends, less room for the record's key,
// headers and framing.
func (o *owner) entryRoom() int {
	limit, ok := o.cl.OptValue(kgo.ProducerBatchMaxBytes).(int32)
	if !ok {
		limit = 1_000_012 // franz-go's default
	}
	return int(limit) - 4<<10
}

// cut shortens s to at most n bytes, saying so.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "… (cut)"
}

// ensureRetryTopic creates the retry topic ch sends to, if it sends one,
// as Publish ensures its topics (a retry to a topic that is gone would
// wait out the delivery timeout). A retry whose topic cannot be made is
// not sent: its entry records that instead (an attempt is spent only when
// its retry is sent).
func (o *owner) ensureRetryTopic(ctx context.Context, ch *change, now time.Time) {
	if !ch.retry {
		return
	}
	target := RetryTopicFor(ch.next.ConsumerGroup, ch.next.OriginalTopic)
	if err := o.q.host.EnsureRetryTopic(ctx, target); err != nil {
		cause := fmt.Errorf("send retry of %s to %s: %w", ch.id, target, err)
		ch.retry, ch.next = false, o.q.notSent(*ch.prior, cause, now)
		if ch.cmdKey != nil {
			ch.result = "not-sent: " + cause.Error()
		}
	}
}

// retryRecord is the retry of e (attempt e.RetryCount) to its group's
// retry topic: the original record with the retry headers, in the
// original event's trace.
func (q *Queue) retryRecord(ctx context.Context, e *Entry, manual bool) (*kgo.Record, trace.Span) {
	rec := &kgo.Record{
		Topic:   RetryTopicFor(e.ConsumerGroup, e.OriginalTopic),
		Key:     e.OriginalKey,
		Value:   retryValue(e),
		Headers: make([]kgo.RecordHeader, 0, len(e.OriginalHeaders)+4),
	}
	for _, h := range e.OriginalHeaders {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	ctx, span := q.cfg.Tracer.StartInternal(q.cfg.Tracer.Extract(ctx, rec), "dlq retry "+e.OriginalTopic,
		attribute.String("plexica.dlq_id", e.ID), attribute.String("messaging.consumer.group.name", e.ConsumerGroup),
		attribute.Bool("plexica.manual", manual), attribute.Int("plexica.retry_attempt", e.RetryCount))
	q.cfg.Tracer.Inject(ctx, rec)
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: wire.HeaderDLQID, Value: []byte(e.ID)},
		kgo.RecordHeader{Key: wire.HeaderRetryGroup, Value: []byte(e.ConsumerGroup)},
		kgo.RecordHeader{Key: wire.HeaderRetryAttempt, Value: []byte(strconv.Itoa(e.RetryCount))},
		kgo.RecordHeader{Key: headerRetryScheduler, Value: []byte(q.cfg.SchedulerGroup)},
	)
	return rec, span
}
