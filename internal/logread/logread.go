// Package logread reads the records of one Kafka partition at chosen
// offsets, outside any consumer group, by sending Fetch requests straight to
// the partition's leader through the caller's *kgo.Client (and so with its
// SASL and TLS settings). It reads only around the wanted offsets, jumping
// over the gaps between them, so that a few entries can be looked up on
// demand instead of keeping a whole topic in memory. It reads committed
// records only: those of aborted transactions are skipped, and nothing of a
// transaction still open (nor after it) is read yet.
package logread

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus/internal/backoff"
)

const (
	defaultMaxBytes    = 1 << 20  // bytes asked of a partition per fetch
	defaultMaxBytesCap = 64 << 20 // largest batch we grow the ask to
	defaultRetries     = 3        // retries of a fetch after a leadership or connection error
	defaultBackoff     = 50 * time.Millisecond
)

// openTxnWait is how long Read waits before it asks again for records
// that an open transaction holds back.
const openTxnWait = 5 * time.Millisecond

// stableEnd is where what rp's partition can be read ends: its last stable
// offset (records of transactions still open, and everything after them,
// are not read yet), or its high watermark where the broker sent none.
func stableEnd(rp *kmsg.FetchResponseTopicPartition) int64 {
	if rp.LastStableOffset >= 0 && rp.LastStableOffset < rp.HighWatermark {
		return rp.LastStableOffset
	}
	return rp.HighWatermark
}

// Reader reads records of chosen partitions at chosen offsets. Safe for
// concurrent use.
type Reader struct {
	cl *kgo.Client
	dc kgo.Decompressor

	// Knobs, fixed after New (tests set them before the first read).
	maxBytes    int32         // PartitionMaxBytes of a fetch
	maxBytesCap int32         // the ask doubles up to this when a batch does not fit
	retries     int           // retries of a fetch after a retryable error
	backoff     time.Duration // first wait before a retry; doubles

	mu     sync.Mutex
	topics map[string]*topicMeta
}

// topicMeta is what a Metadata response said about a topic. It is never
// modified once cached; a refresh replaces it.
type topicMeta struct {
	id      [16]byte
	leaders map[int32]int32 // partition -> leader broker (-1: none)
}

// New returns a Reader that sends its requests through cl. The client is the
// caller's: the Reader neither configures nor closes it.
func New(cl *kgo.Client) *Reader {
	return &Reader{
		cl:          cl,
		dc:          kgo.DefaultDecompressor(),
		maxBytes:    defaultMaxBytes,
		maxBytesCap: defaultMaxBytesCap,
		retries:     defaultRetries,
		backoff:     defaultBackoff,
		topics:      make(map[string]*topicMeta),
	}
}

// Read returns the records of topic/partition at the given offsets, by
// offset. Offsets need not be sorted; duplicates are fine.
//
// An offset with no record (removed by compaction or retention, a control
// record, at or past the end, negative) is absent from the map; that is not
// an error.
//
// It fetches forward from the lowest wanted offset and jumps over gaps: when
// the next wanted offset lies beyond what a fetch returned, the next fetch
// starts at it. Only the record batches holding a wanted offset are decoded.
// On error, the map holds the records read before it.
func (r *Reader) Read(ctx context.Context, topic string, partition int32, offsets []int64) (map[int64]*kgo.Record, error) {
	want := slices.Clone(offsets)
	slices.Sort(want)
	want = slices.Compact(want)
	want = want[sort.Search(len(want), func(i int) bool { return want[i] >= 0 }):]

	out := make(map[int64]*kgo.Record, len(want))
	size := r.maxBytes
	stalls := 0
	for len(want) > 0 {
		start := want[0]
		rp, err := r.fetch(ctx, topic, partition, start, size)
		if err != nil {
			return out, wrap(topic, partition, start, err)
		}

		if rp.ErrorCode == kerr.OffsetOutOfRange.Code {
			logStart, end, err := r.listOffsets(ctx, topic, partition)
			if err != nil {
				return out, wrap(topic, partition, start, err)
			}
			before := len(want)
			want = want[sort.Search(len(want), func(i int) bool { return want[i] >= logStart }):]
			want = want[:sort.Search(len(want), func(i int) bool { return want[i] >= end })]
			if len(want) == before { // start lies in [logStart, end) after all: the log moved under us
				if stalls++; stalls > r.retries {
					return out, wrap(topic, partition, start, fmt.Errorf("offset out of range though within [%d, %d)", logStart, end))
				}
			}
			continue
		}

		// Decode only the batches that hold a wanted offset.
		var through int64
		rp.RecordBatches, through = trimBatches(rp.RecordBatches, start, want)
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset:         start,
			Topic:          topic,
			Partition:      partition,
			IsolationLevel: kgo.ReadCommitted(),
		}, rp, r.dc, nil)
		if fp.Err != nil {
			return out, wrap(topic, partition, start, fp.Err)
		}
		for _, rec := range fp.Records {
			if _, ok := slices.BinarySearch(want, rec.Offset); ok {
				out[rec.Offset] = rec
			}
		}
		next = max(next, through)

		// Everything below next has been seen; nothing at or past the
		// high watermark can be read.
		want = want[sort.Search(len(want), func(i int) bool { return want[i] >= next }):]
		if rp.HighWatermark >= 0 {
			want = want[:sort.Search(len(want), func(i int) bool { return want[i] >= rp.HighWatermark })]
		}
		if next > start {
			stalls = 0
			continue
		}
		if len(want) > 0 && want[0] >= stableEnd(rp) {
			// Below the high watermark but past the last stable offset: a
			// transaction still open holds it back (a dead letter queue
			// owner's round takes milliseconds). Wait for it, bounded by
			// ctx and by the brokers' transaction timeout.
			if !backoff.Sleep(ctx, openTxnWait) {
				return out, wrap(topic, partition, start, ctx.Err())
			}
			continue
		}
		if len(want) == 0 || want[0] != start {
			continue // start was dropped: at or past the high watermark
		}
		// No progress below the high watermark: a batch larger than
		// size, cut short by the broker. Ask for more.
		if size, err = r.grow(size, len(rp.RecordBatches)); err != nil {
			return out, wrap(topic, partition, start, err)
		}
	}
	return out, nil
}

// Scan calls fn for each record of topic/partition from offset from up to the
// partition's high watermark as of the first fetch, in offset order, until fn
// returns false or maxBytes of record batches were fetched (maxBytes <= 0: no
// limit). A negative from reads from the start of the log; records removed by
// retention are skipped.
//
// complete reports whether it reached that high watermark (false when fn
// stopped it or the byte budget ran out).
func (r *Reader) Scan(ctx context.Context, topic string, partition int32, from int64, maxBytes int, fn func(*kgo.Record) bool) (complete bool, err error) {
	off := max(from, 0)
	end := int64(-1) // the high watermark as of the first fetch, once known
	fetched := 0
	size := r.maxBytes
	grown := false // size was raised to fit a batch: do not cut it to the budget
	stalls := 0
	for {
		if end >= 0 && off >= end {
			return true, nil
		}
		if maxBytes > 0 && fetched >= maxBytes {
			return false, nil
		}
		ask := size
		if rem := maxBytes - fetched; maxBytes > 0 && !grown && int64(rem) < int64(ask) {
			ask = int32(rem) // the broker still returns at least one whole batch
		}
		rp, err := r.fetch(ctx, topic, partition, off, ask)
		if err != nil {
			return false, wrap(topic, partition, off, err)
		}

		if rp.ErrorCode == kerr.OffsetOutOfRange.Code {
			logStart, hwm, err := r.listOffsets(ctx, topic, partition)
			if err != nil {
				return false, wrap(topic, partition, off, err)
			}
			if end < 0 {
				end = hwm
			}
			switch {
			case off < logStart:
				off = logStart
			case off >= hwm:
				return true, nil
			default: // in range after all: the log moved under us
				if stalls++; stalls > r.retries {
					return false, wrap(topic, partition, off, fmt.Errorf("offset out of range though within [%d, %d)", logStart, hwm))
				}
			}
			continue
		}

		if end < 0 {
			end = stableEnd(rp)
		}
		fetched += len(rp.RecordBatches)
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset:         off,
			Topic:          topic,
			Partition:      partition,
			IsolationLevel: kgo.ReadCommitted(),
		}, rp, r.dc, nil)
		if fp.Err != nil {
			return false, wrap(topic, partition, off, fp.Err)
		}
		for _, rec := range fp.Records {
			if rec.Offset >= end {
				return true, nil
			}
			if !fn(rec) {
				return false, nil
			}
		}
		if next > off {
			off = next
			stalls = 0
			continue
		}
		if stableEnd(rp) <= off {
			// Nothing more to read: the log ends here now, below the
			// first high watermark (truncated by a leader change).
			return true, nil
		}
		bigger, err := r.grow(ask, len(rp.RecordBatches))
		if err != nil {
			return false, wrap(topic, partition, off, err)
		}
		size, grown = max(size, bigger), true
	}
}

// grow returns the ask to use after a fetch of size bytes below the high
// watermark made no progress, having returned n bytes of (cut) batches.
func (r *Reader) grow(size int32, n int) (int32, error) {
	if size >= r.maxBytesCap {
		if n == 0 {
			return 0, errors.New("fetch returned no records below the high watermark")
		}
		return 0, fmt.Errorf("record batch larger than %d bytes", r.maxBytesCap)
	}
	return int32(min(int64(size)*2, int64(r.maxBytesCap))), nil
}

// trimBatches keeps, in place, the record batches of raw that hold an offset
// of want (sorted) at or after from, and returns them with the offset after
// the last complete batch it looked at (from if none). It stops looking at a
// cut batch or a message set older than v2, which it keeps with all that
// follows for the decoder.
func trimBatches(raw []byte, from int64, want []int64) ([]byte, int64) {
	const header = 27 // baseOffset, length, leader epoch, magic, crc, attributes, lastOffsetDelta
	through := from
	out := raw[:0]
	in := raw
	for len(in) >= header {
		first := int64(binary.BigEndian.Uint64(in))
		length := int64(int32(binary.BigEndian.Uint32(in[8:]))) + 12
		if in[16] != 2 || length < header || length > int64(len(in)) {
			break
		}
		last := first + int64(int32(binary.BigEndian.Uint32(in[23:])))
		lo := max(first, from)
		i := sort.Search(len(want), func(i int) bool { return want[i] >= lo })
		if i < len(want) && want[i] <= last {
			out = append(out, in[:length]...) // never overtakes in: out ends where in starts or before
		}
		through = max(through, last+1)
		in = in[length:]
	}
	return append(out, in...), through
}

// fetch fetches topic/partition at offset from its leader, retrying after
// leadership and connection errors. It returns the response's partition,
// with no error or OffsetOutOfRange.
func (r *Reader) fetch(ctx context.Context, topic string, partition int32, offset int64, size int32) (*kmsg.FetchResponseTopicPartition, error) {
	var lastErr error
	for attempt := 0; attempt <= r.retries; attempt++ {
		if attempt > 0 {
			r.forget(topic)
			if !backoff.Sleep(ctx, backoff.Jitter(backoff.Exponential(r.backoff, time.Second, attempt-1))) {
				return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), lastErr)
			}
		}
		rp, err := r.fetchOnce(ctx, topic, partition, offset, size)
		if err == nil {
			return rp, nil
		}
		if !retryable(ctx, err) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("after %d attempts: %w", r.retries+1, lastErr)
}

func (r *Reader) fetchOnce(ctx context.Context, topic string, partition int32, offset int64, size int32) (*kmsg.FetchResponseTopicPartition, error) {
	tm, leader, err := r.leader(ctx, topic, partition)
	if err != nil {
		return nil, err
	}

	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0 // never wait for data
	req.MinBytes = 1
	req.MaxBytes = size
	req.IsolationLevel = 1 // read committed
	req.SessionID = 0      // no fetch session
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic   // v12 and below
	rt.TopicID = tm.id // v13 and up
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = partition
	p.FetchOffset = offset
	p.CurrentLeaderEpoch = -1
	p.LogStartOffset = -1
	p.PartitionMaxBytes = size
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)

	// The client sends the highest version both sides know; a version
	// that addresses topics by ID needs the ID.
	var kreq kmsg.Request = req
	if tm.id == ([16]byte{}) {
		kreq = fetchByName{req}
	}
	kresp, err := r.cl.Broker(int(leader)).Request(ctx, kreq)
	if err != nil {
		return nil, fmt.Errorf("fetch from broker %d: %w", leader, err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch from broker %d: %w", leader, err)
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != topic && (t.TopicID != tm.id || tm.id == ([16]byte{})) {
			continue
		}
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			if rp.Partition != partition {
				continue
			}
			if rp.ErrorCode != 0 && rp.ErrorCode != kerr.OffsetOutOfRange.Code {
				return nil, fmt.Errorf("fetch from broker %d: %w", leader, kerr.ErrorForCode(rp.ErrorCode))
			}
			return rp, nil
		}
	}
	return nil, fmt.Errorf("fetch from broker %d: %w", leader, errMissingPartition)
}

// errMissingPartition: a Fetch or ListOffsets response left out the partition
// asked for. Retryable, as kgo treats it.
var errMissingPartition = errors.New("response is missing the partition")

// fetchByName caps a Fetch request at v12, the last that addresses topics by
// name, for a topic whose Metadata gave no ID.
type fetchByName struct{ *kmsg.FetchRequest }

func (fetchByName) MaxVersion() int16 { return 12 }

// leader returns the cached metadata of topic and the leader of partition,
// asking the cluster when the topic is not cached.
func (r *Reader) leader(ctx context.Context, topic string, partition int32) (*topicMeta, int32, error) {
	r.mu.Lock()
	tm := r.topics[topic]
	r.mu.Unlock()
	if tm == nil {
		var err error
		if tm, err = r.metadata(ctx, topic); err != nil {
			return nil, 0, err
		}
		r.mu.Lock()
		r.topics[topic] = tm
		r.mu.Unlock()
	}
	leader, ok := tm.leaders[partition]
	switch {
	case !ok:
		return nil, 0, fmt.Errorf("metadata: %w", kerr.UnknownTopicOrPartition)
	case leader < 0:
		return nil, 0, fmt.Errorf("metadata: %w", kerr.LeaderNotAvailable)
	}
	return tm, leader, nil
}

func (r *Reader) metadata(ctx context.Context, topic string) (*topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		tm := &topicMeta{id: t.TopicID, leaders: make(map[int32]int32, len(t.Partitions))}
		for _, p := range t.Partitions {
			tm.leaders[p.Partition] = p.Leader
		}
		return tm, nil
	}
	return nil, fmt.Errorf("metadata: %w", kerr.UnknownTopicOrPartition)
}

// forget drops the cached metadata of topic, so that the next lookup asks
// the cluster again.
func (r *Reader) forget(topic string) {
	r.mu.Lock()
	delete(r.topics, topic)
	r.mu.Unlock()
}

// listOffsets returns the log start offset and the high watermark of
// topic/partition. The client routes ListOffsets to the leader and retries
// it itself.
func (r *Reader) listOffsets(ctx context.Context, topic string, partition int32) (logStart, hwm int64, err error) {
	var got [2]int64
	for i, ts := range []int64{-2, -1} { // earliest, latest
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.IsolationLevel = 1 // read committed: "latest" is the last stable offset
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition = partition
		p.CurrentLeaderEpoch = -1
		p.Timestamp = ts
		rt.Partitions = append(rt.Partitions, p)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, r.cl)
		if err != nil {
			return 0, 0, fmt.Errorf("list offsets: %w", err)
		}
		found := false
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				if t.Topic != topic || rp.Partition != partition {
					continue
				}
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return 0, 0, fmt.Errorf("list offsets: %w", err)
				}
				got[i], found = rp.Offset, true
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("list offsets: %w", errMissingPartition)
		}
	}
	return got[0], got[1], nil
}

// retryable reports whether a fetch that failed with err may succeed after
// a metadata refresh: a leadership or topic-ID error, or a broker connection
// error. It never is once ctx is done or the client is closed.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kgo.ErrClientClosed) {
		return false
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		switch ke {
		case kerr.NotLeaderForPartition, kerr.UnknownTopicOrPartition, kerr.UnknownTopicID,
			kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch, kerr.LeaderNotAvailable,
			kerr.InconsistentTopicID, kerr.ReplicaNotAvailable:
			return true
		}
		return ke.Retriable
	}
	return true // a connection error, an unknown broker, a missing partition
}

func wrap(topic string, partition int32, offset int64, err error) error {
	return fmt.Errorf("logread: read %s/%d at offset %d: %w", topic, partition, offset, err)
}
