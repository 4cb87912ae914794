package logread

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests run against kfake only: several of them steer the broker
// (leader moves, injected responses and dropped connections), which a real
// cluster named by EVENTBUS_TEST_BROKERS cannot do.

const testTimeout = 30 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// env is a kfake cluster with one topic, filled by produce.
type env struct {
	c        *kfake.Cluster
	addrs    []string
	topic    string
	produced map[int32][]*kgo.Record // by partition, in offset order
}

func newEnv(t *testing.T, brokers int, partitions int32) *env {
	t.Helper()
	topic := fmt.Sprintf("logread-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), rand.Uint32())
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &env{c: c, addrs: c.ListenAddrs(), topic: topic, produced: make(map[int32][]*kgo.Record)}
}

// produce writes n records spread over partitions, in many small batches of
// varying size, each batch compressed with one of four codecs, with keys,
// headers and values of varying size.
func (e *env) produce(t *testing.T, n int, partitions int32) {
	t.Helper()
	ctx := testCtx(t)
	codecs := []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.GzipCompression()}
	var producers []*kgo.Client
	for _, codec := range codecs {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(e.addrs...),
			kgo.ProducerBatchCompression(codec),
			kgo.ProducerLinger(time.Millisecond),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
		)
		if err != nil {
			t.Fatalf("producer: %v", err)
		}
		defer cl.Close()
		producers = append(producers, cl)
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	base := 0
	for _, ps := range e.produced {
		base += len(ps)
	}
	for i, chunk := 0, 0; i < n; chunk++ {
		size := min(1+(chunk*7)%40, n-i)
		var recs []*kgo.Record
		for range size {
			id := base + i
			val := make([]byte, rng.IntN(400))
			for j := range val {
				val[j] = byte('a' + rng.IntN(26))
			}
			recs = append(recs, &kgo.Record{
				Topic:     e.topic,
				Partition: int32(chunk) % partitions,
				Key:       fmt.Appendf(nil, "key-%d", id),
				Value:     append(fmt.Appendf(nil, "value-%d-", id), val...),
				Headers: []kgo.RecordHeader{
					{Key: "id", Value: fmt.Appendf(nil, "%d", id)},
					{Key: "chunk", Value: fmt.Appendf(nil, "%d", chunk)},
				},
			})
			i++
		}
		if err := producers[chunk%len(producers)].ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for _, r := range recs {
			e.produced[r.Partition] = append(e.produced[r.Partition], r)
		}
	}
	for p, recs := range e.produced {
		slices.SortFunc(recs, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
		for i, r := range recs {
			if i > 0 && r.Offset != recs[i-1].Offset+1 {
				t.Fatalf("partition %d: produced offsets not contiguous at %d", p, r.Offset)
			}
		}
	}
}

// at returns the produced record of partition p at offset o.
func (e *env) at(t *testing.T, p int32, o int64) *kgo.Record {
	t.Helper()
	recs := e.produced[p]
	i := int(o - recs[0].Offset)
	if i < 0 || i >= len(recs) || recs[i].Offset != o {
		t.Fatalf("no produced record at %d/%d", p, o)
	}
	return recs[i]
}

// end returns the offset after the last produced record of partition p.
func (e *env) end(p int32) int64 {
	recs := e.produced[p]
	return recs[len(recs)-1].Offset + 1
}

// fetchHook counts the Fetch requests written, by broker.
type fetchHook struct {
	mu    sync.Mutex
	nodes []int32
}

func (h *fetchHook) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 1 || err != nil {
		return
	}
	h.mu.Lock()
	h.nodes = append(h.nodes, meta.NodeID)
	h.mu.Unlock()
}

// take returns the brokers of the fetches since the last take.
func (h *fetchHook) take() []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes
	h.nodes = nil
	return n
}

// reader returns a Reader on a new client seeded with the first broker only,
// and the hook counting its fetches.
func (e *env) reader(t *testing.T) (*Reader, *fetchHook) {
	t.Helper()
	h := new(fetchHook)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs[0]), kgo.WithHooks(h))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	r := New(cl)
	r.backoff = 5 * time.Millisecond
	return r, h
}

func sameRecord(t *testing.T, got, want *kgo.Record) {
	t.Helper()
	if got == nil {
		t.Fatalf("record %d/%d missing", want.Partition, want.Offset)
	}
	if got.Topic != want.Topic || got.Partition != want.Partition || got.Offset != want.Offset {
		t.Fatalf("got record %s/%d/%d, want %s/%d/%d", got.Topic, got.Partition, got.Offset, want.Topic, want.Partition, want.Offset)
	}
	if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) {
		t.Fatalf("record %d/%d: got key %q value %.40q, want key %q value %.40q", want.Partition, want.Offset, got.Key, got.Value, want.Key, want.Value)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("record %d/%d: got %d headers, want %d", want.Partition, want.Offset, len(got.Headers), len(want.Headers))
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			t.Fatalf("record %d/%d: header %d is %q=%q, want %q=%q", want.Partition, want.Offset, i,
				got.Headers[i].Key, got.Headers[i].Value, want.Headers[i].Key, want.Headers[i].Value)
		}
	}
	if got.Timestamp.UnixMilli() != want.Timestamp.UnixMilli() {
		t.Fatalf("record %d/%d: timestamp %v, want %v", want.Partition, want.Offset, got.Timestamp, want.Timestamp)
	}
}

// checkRead checks that got holds exactly the produced records of partition p
// at present.
func (e *env) checkRead(t *testing.T, p int32, got map[int64]*kgo.Record, present ...int64) {
	t.Helper()
	want := make(map[int64]bool)
	for _, o := range present {
		want[o] = true
		sameRecord(t, got[o], e.at(t, p, o))
	}
	for o := range got {
		if !want[o] {
			t.Fatalf("partition %d: unexpected record at %d", p, o)
		}
	}
}

// TestReadFarApartOffsets reads a few far-apart offsets of each partition of
// a three-broker cluster whose leaders are not the seed broker, and checks
// the records and that every fetch went to the partition's leader.
func TestReadFarApartOffsets(t *testing.T) {
	e := newEnv(t, 3, 3)
	e.produce(t, 2000, 3)
	for p := range int32(3) {
		if err := e.c.MoveTopicPartition(e.topic, p, (p+1)%3); err != nil {
			t.Fatal(err)
		}
	}
	r, h := e.reader(t)
	ctx := testCtx(t)
	for p := range int32(3) {
		last := e.end(p) - 1
		mid := last / 2
		offsets := []int64{last, 0, mid, 1, mid, last - 1, 137, 0}
		got, err := r.Read(ctx, e.topic, p, offsets)
		if err != nil {
			t.Fatalf("read partition %d: %v", p, err)
		}
		e.checkRead(t, p, got, 0, 1, 137, mid, last-1, last)
		leader := e.c.LeaderFor(e.topic, p)
		nodes := h.take()
		if len(nodes) == 0 {
			t.Fatalf("partition %d: no fetches counted", p)
		}
		for _, n := range nodes {
			if n != leader {
				t.Fatalf("partition %d: fetched from broker %d, leader is %d", p, n, leader)
			}
		}
	}
}

// TestReadAbsentOffsets reads offsets at and past the end and negative ones
// next to a present one: only the present one comes back, without error. An
// empty read sends nothing.
func TestReadAbsentOffsets(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 300, 1)
	r, h := e.reader(t)
	ctx := testCtx(t)
	end := e.end(0)

	got, err := r.Read(ctx, e.topic, 0, []int64{end, end + 1000, -1, -7, 3})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, 3)

	for _, offsets := range [][]int64{{end}, {end + 1}, {end + 1000, end}, {-1}} {
		got, err := r.Read(ctx, e.topic, 0, offsets)
		if err != nil {
			t.Fatalf("read %v: %v", offsets, err)
		}
		if len(got) != 0 {
			t.Fatalf("read %v: got %d records, want none", offsets, len(got))
		}
	}

	h.take()
	got, err = r.Read(ctx, e.topic, 0, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty read: %d records, %v", len(got), err)
	}
	if n := len(h.take()); n != 0 {
		t.Fatalf("empty read sent %d fetches", n)
	}
}

// TestTinyMaxBytes reads and scans with a 200-byte ask, smaller than most
// batches: the broker still returns one whole batch per fetch.
func TestTinyMaxBytes(t *testing.T) {
	e := newEnv(t, 1, 3)
	e.produce(t, 900, 3)
	r, _ := e.reader(t)
	r.maxBytes = 200
	ctx := testCtx(t)
	for p := range int32(3) {
		var offsets []int64
		for o := int64(0); o < e.end(p); o += 29 {
			offsets = append(offsets, o)
		}
		got, err := r.Read(ctx, e.topic, p, offsets)
		if err != nil {
			t.Fatal(err)
		}
		e.checkRead(t, p, got, offsets...)

		scanned := scanAll(t, r, e.topic, p, 0, 0)
		if len(scanned) != len(e.produced[p]) {
			t.Fatalf("partition %d: scanned %d records, want %d", p, len(scanned), len(e.produced[p]))
		}
	}
}

// scanAll scans topic/p from from and checks it completes, returning the
// records in the order seen.
func scanAll(t *testing.T, r *Reader, topic string, p int32, from int64, maxBytes int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	complete, err := r.Scan(testCtx(t), topic, p, from, maxBytes, func(rec *kgo.Record) bool {
		got = append(got, rec)
		return true
	})
	if err != nil {
		t.Fatalf("scan %d from %d: %v", p, from, err)
	}
	if !complete {
		t.Fatalf("scan %d from %d: not complete", p, from)
	}
	return got
}

// TestScanToEnd scans from the middle and from before the start: every
// record is seen once, in order, and the scan is complete.
func TestScanToEnd(t *testing.T) {
	e := newEnv(t, 3, 3)
	e.produce(t, 2000, 3)
	r, _ := e.reader(t)
	for p := range int32(3) {
		for _, from := range []int64{e.end(p) / 3, -5, e.end(p) - 1, e.end(p)} {
			got := scanAll(t, r, e.topic, p, from, 0)
			start := max(from, 0)
			if want := int(e.end(p) - start); len(got) != want {
				t.Fatalf("partition %d from %d: scanned %d records, want %d", p, from, len(got), want)
			}
			for i, rec := range got {
				sameRecord(t, rec, e.at(t, p, start+int64(i)))
			}
		}
	}
}

// TestScanStoppedByFn stops the scan after ten records: not complete, and fn
// is not called again.
func TestScanStoppedByFn(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 500, 1)
	r, _ := e.reader(t)
	calls := 0
	complete, err := r.Scan(testCtx(t), e.topic, 0, 100, 0, func(rec *kgo.Record) bool {
		sameRecord(t, rec, e.at(t, 0, 100+int64(calls)))
		calls++
		return calls < 10
	})
	if err != nil {
		t.Fatal(err)
	}
	if complete || calls != 10 {
		t.Fatalf("complete %v after %d calls, want false after 10", complete, calls)
	}
}

// TestScanByteBudget scans with a budget far below the partition's size: it
// stops early, not complete, having seen a prefix in order.
func TestScanByteBudget(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 2000, 1)
	r, h := e.reader(t)
	for _, budget := range []int{1, 3000} {
		h.take()
		var got []*kgo.Record
		complete, err := r.Scan(testCtx(t), e.topic, 0, 0, budget, func(rec *kgo.Record) bool {
			got = append(got, rec)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if complete {
			t.Fatalf("budget %d: complete", budget)
		}
		if len(got) == 0 || len(got) >= len(e.produced[0]) {
			t.Fatalf("budget %d: scanned %d records", budget, len(got))
		}
		for i, rec := range got {
			sameRecord(t, rec, e.at(t, 0, int64(i)))
		}
		if n := len(h.take()); n > 3 {
			t.Fatalf("budget %d: %d fetches", budget, n)
		}
	}
}

// TestScanStopsAtFirstHighWatermark produces more records while a scan runs:
// the scan ends at the high watermark of its first fetch, complete.
func TestScanStopsAtFirstHighWatermark(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 200, 1)
	r, _ := e.reader(t)
	r.maxBytes = 200 // many fetches
	end := e.end(0)
	calls := 0
	complete, err := r.Scan(testCtx(t), e.topic, 0, 0, 0, func(rec *kgo.Record) bool {
		if calls == 0 {
			e.produce(t, 100, 1)
		}
		calls++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !complete || int64(calls) != end {
		t.Fatalf("complete %v after %d records, want true after %d", complete, calls, end)
	}
	if e.end(0) != end+100 {
		t.Fatalf("partition ends at %d, want %d", e.end(0), end+100)
	}
}

// TestAfterDeleteRecords moves the log start into the middle of a batch:
// offsets below it are absent, those above present, and a scan from 0 starts
// at it.
func TestAfterDeleteRecords(t *testing.T) {
	e := newEnv(t, 3, 1)
	e.produce(t, 2000, 1)
	r, _ := e.reader(t)
	ctx := testCtx(t)
	const logStart = 1001
	var dels kadm.Offsets
	dels.Add(kadm.Offset{Topic: e.topic, Partition: 0, At: logStart})
	resps, err := kadm.NewClient(r.cl).DeleteRecords(ctx, dels)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	last := e.end(0) - 1

	got, err := r.Read(ctx, e.topic, 0, []int64{0, 500, logStart - 1, logStart, logStart + 1, last})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, logStart, logStart+1, last)

	got, err = r.Read(ctx, e.topic, 0, []int64{logStart - 1})
	if err != nil || len(got) != 0 {
		t.Fatalf("read below log start: %d records, %v", len(got), err)
	}

	scanned := scanAll(t, r, e.topic, 0, 0, 0)
	if len(scanned) != int(e.end(0)-logStart) || scanned[0].Offset != logStart {
		t.Fatalf("scan after delete: %d records from %d", len(scanned), scanned[0].Offset)
	}
}

// TestFetchCount reads two far-apart offsets of a 2,000-record partition
// with a small ask: two fetches, where a scan needs dozens.
func TestFetchCount(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 2000, 1)
	r, h := e.reader(t)
	r.maxBytes = 2048
	ctx := testCtx(t)

	got, err := r.Read(ctx, e.topic, 0, []int64{1990, 10})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, 10, 1990)
	if n := len(h.take()); n != 2 {
		t.Fatalf("read of two offsets sent %d fetches, want 2", n)
	}

	scanAll(t, r, e.topic, 0, 0, 0)
	if n := len(h.take()); n < 20 {
		t.Fatalf("a full scan sent only %d fetches: the read test proves nothing", n)
	}
}

// TestConcurrentReads reads and scans from many goroutines on one Reader
// while the partitions' leaders move (run with -race).
func TestConcurrentReads(t *testing.T) {
	e := newEnv(t, 3, 3)
	e.produce(t, 1500, 3)
	r, _ := e.reader(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 15 {
				p := rng.Int32N(3)
				if i == 7 {
					n := 0
					complete, err := r.Scan(ctx, e.topic, p, 0, 0, func(*kgo.Record) bool { n++; return true })
					if err != nil || !complete || n != len(e.produced[p]) {
						t.Errorf("scan %d: %d records, complete %v, %v", p, n, complete, err)
					}
					continue
				}
				var offsets []int64
				for range 4 {
					offsets = append(offsets, rng.Int64N(e.end(p)))
				}
				got, err := r.Read(ctx, e.topic, p, offsets)
				if err != nil {
					t.Errorf("read %d %v: %v", p, offsets, err)
					continue
				}
				for _, o := range offsets {
					if rec := got[o]; rec == nil || !bytes.Equal(rec.Value, e.produced[p][o].Value) { // offsets start at 0
						t.Errorf("read %d/%d: wrong record", p, o)
					}
				}
			}
		})
	}
	for i := range int32(6) {
		if err := e.c.MoveTopicPartition(e.topic, i%3, (i+1)%3); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestLeaderMove moves a partition after a read cached its leader: the next
// read is answered NOT_LEADER, refreshes its metadata and reads from the new
// leader.
func TestLeaderMove(t *testing.T) {
	e := newEnv(t, 3, 1)
	e.produce(t, 100, 1)
	r, h := e.reader(t)
	ctx := testCtx(t)
	if _, err := r.Read(ctx, e.topic, 0, []int64{5}); err != nil {
		t.Fatal(err)
	}
	old := e.c.LeaderFor(e.topic, 0)
	if err := e.c.MoveTopicPartition(e.topic, 0, (old+1)%3); err != nil {
		t.Fatal(err)
	}
	h.take()
	got, err := r.Read(ctx, e.topic, 0, []int64{50})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, 50)
	if nodes := h.take(); !slices.Equal(nodes, []int32{old, (old + 1) % 3}) {
		t.Fatalf("fetched from %v, want [%d %d]", nodes, old, (old+1)%3)
	}
}

// TestConnectionErrorRetried has the broker drop the connection of the first
// fetch: the read retries and succeeds.
func TestConnectionErrorRetried(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 100, 1)
	r, h := e.reader(t)
	e.c.ControlKey(1, func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, errors.New("drop the connection"), true
	})
	got, err := r.Read(testCtx(t), e.topic, 0, []int64{42})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, 42)
	if n := len(h.take()); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// TestRetriesBounded answers every fetch NOT_LEADER_FOR_PARTITION: the read
// fails after the initial fetch and three retries, each after a metadata
// refresh.
func TestRetriesBounded(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 10, 1)
	r, h := e.reader(t)
	e.c.ControlKey(1, func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.c.KeepControl()
		resp, _, _ := cutBatch(req)
		p := &resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		p.ErrorCode, p.RecordBatches = kerr.NotLeaderForPartition.Code, nil
		return resp, nil, true
	})
	_, err := r.Read(testCtx(t), e.topic, 0, []int64{3})
	if !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("read: %v", err)
	}
	if n := len(h.take()); n != 4 {
		t.Fatalf("%d fetches, want 4", n)
	}
}

// TestFetchWithoutTopicID reads a topic whose metadata gave no topic ID: the
// fetch is capped at v12, which names the topic.
func TestFetchWithoutTopicID(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 50, 1)
	r, _ := e.reader(t)
	ctx := testCtx(t)
	if _, err := r.Read(ctx, e.topic, 0, []int64{1}); err != nil {
		t.Fatal(err)
	}
	r.topics[e.topic] = &topicMeta{leaders: r.topics[e.topic].leaders}
	var mu sync.Mutex
	var versions []int16
	e.c.ControlKey(1, func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.c.KeepControl()
		mu.Lock()
		versions = append(versions, req.GetVersion())
		mu.Unlock()
		return nil, nil, false
	})
	got, err := r.Read(ctx, e.topic, 0, []int64{7, 40})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, 7, 40)
	mu.Lock()
	defer mu.Unlock()
	if len(versions) == 0 || slices.Max(versions) > 12 {
		t.Fatalf("fetch versions %v, want at most 12", versions)
	}
}

// cutBatch answers a fetch with the start of a batch too large for the ask,
// the way brokers before KIP-74 cut one short.
func cutBatch(req kmsg.Request) (kmsg.Response, error, bool) {
	freq := req.(*kmsg.FetchRequest)
	resp := freq.ResponseKind().(*kmsg.FetchResponse)
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.TopicID = freq.Topics[0].Topic, freq.Topics[0].TopicID
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition = freq.Topics[0].Partitions[0].Partition
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 1<<40, 1<<40, 0
	cut := make([]byte, 40)
	binary.BigEndian.PutUint64(cut, uint64(freq.Topics[0].Partitions[0].FetchOffset))
	binary.BigEndian.PutUint32(cut[8:], 5000)
	cut[16] = 2
	rp.RecordBatches = cut
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	return resp, nil, true
}

// asks records the PartitionMaxBytes of every fetch, without handling it.
func asks(c *kfake.Cluster) func() []int32 {
	var mu sync.Mutex
	var got []int32
	c.ControlKey(1, func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		got = append(got, req.(*kmsg.FetchRequest).Topics[0].Partitions[0].PartitionMaxBytes)
		mu.Unlock()
		return nil, nil, false
	})
	return func() []int32 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestCutBatchGrowsAsk answers the first fetch with a cut batch: the read
// asks again for twice as much and succeeds.
func TestCutBatchGrowsAsk(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 100, 1)
	r, _ := e.reader(t)
	r.maxBytes = 300
	seen := asks(e.c)
	e.c.ControlKey(1, cutBatch)
	got, err := r.Read(testCtx(t), e.topic, 0, []int64{60})
	if err != nil {
		t.Fatal(err)
	}
	e.checkRead(t, 0, got, 60)
	if s := seen(); !slices.Equal(s, []int32{300, 600}) {
		t.Fatalf("asked %v, want [300 600]", s)
	}
}

// TestCutBatchForever answers every fetch with a cut batch: read and scan
// give up once the ask reaches its cap instead of looping.
func TestCutBatchForever(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 10, 1)
	r, _ := e.reader(t)
	r.maxBytes, r.maxBytesCap = 100, 400
	seen := asks(e.c)
	e.c.ControlKey(1, func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.c.KeepControl()
		return cutBatch(req)
	})
	if _, err := r.Read(testCtx(t), e.topic, 0, []int64{3}); err == nil || !strings.Contains(err.Error(), "larger than 400 bytes") {
		t.Fatalf("read: %v", err)
	}
	if _, err := r.Scan(testCtx(t), e.topic, 0, 0, 0, func(*kgo.Record) bool { return true }); err == nil {
		t.Fatal("scan: no error")
	}
	if s := seen(); !slices.Equal(s, []int32{100, 200, 400, 100, 200, 400}) {
		t.Fatalf("asked %v", s)
	}
}

// TestControlRecordsAbsent reads the offsets of transaction markers: absent;
// a scan skips them.
func TestControlRecordsAbsent(t *testing.T) {
	e := newEnv(t, 1, 1)
	ctx := testCtx(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID("logread-test"),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var offsets []int64
	for txn := range 2 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			rec := &kgo.Record{Topic: e.topic, Value: fmt.Appendf(nil, "txn-%d-%d", txn, i)}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
			offsets = append(offsets, rec.Offset)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	marker := offsets[4] + 1
	if offsets[5] != marker+1 {
		t.Fatalf("offsets %v: no room for a marker", offsets)
	}
	r, _ := e.reader(t)
	got, err := r.Read(ctx, e.topic, 0, []int64{offsets[4], marker, offsets[5], offsets[9] + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[offsets[4]] == nil || got[offsets[5]] == nil {
		t.Fatalf("got %d records: %v", len(got), got)
	}
	if string(got[offsets[5]].Value) != "txn-1-0" {
		t.Fatalf("record at %d: %q", offsets[5], got[offsets[5]].Value)
	}
	var scanned []int64
	if complete, err := r.Scan(ctx, e.topic, 0, 0, 0, func(rec *kgo.Record) bool {
		scanned = append(scanned, rec.Offset)
		return true
	}); err != nil || !complete {
		t.Fatalf("scan: complete %v, %v", complete, err)
	}
	if !slices.Equal(scanned, offsets) {
		t.Fatalf("scanned %v, want %v", scanned, offsets)
	}
}

// TestUnknownTopic reads a topic that does not exist: an error naming it,
// after a bounded number of retries.
func TestUnknownTopic(t *testing.T) {
	e := newEnv(t, 1, 1)
	r, _ := e.reader(t)
	_, err := r.Read(testCtx(t), "no-such-topic", 0, []int64{1})
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.Contains(err.Error(), "no-such-topic/0 at offset 1") {
		t.Fatalf("read: %v", err)
	}
	_, err = r.Read(testCtx(t), e.topic, 9, []int64{1})
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("read of a missing partition: %v", err)
	}
}

// TestContextCanceled reads with a cancelled context: the context's error.
func TestContextCanceled(t *testing.T) {
	e := newEnv(t, 1, 1)
	e.produce(t, 10, 1)
	r, _ := e.reader(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Read(ctx, e.topic, 0, []int64{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("read: %v", err)
	}
	if _, err := r.Scan(ctx, e.topic, 0, 0, 0, func(*kgo.Record) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Fatalf("scan: %v", err)
	}
}

// TestTrimBatches checks the batch filter on hand-made batch headers.
func TestTrimBatches(t *testing.T) {
	batch := func(first int64, n int32, size int) []byte {
		b := make([]byte, size)
		binary.BigEndian.PutUint64(b, uint64(first))
		binary.BigEndian.PutUint32(b[8:], uint32(size-12))
		b[16] = 2
		binary.BigEndian.PutUint32(b[23:], uint32(n-1))
		return b
	}
	a, b, c := batch(0, 10, 61), batch(10, 5, 70), batch(20, 5, 80) // 15-19 compacted away
	raw := slices.Concat(a, b, c, c[:30])                           // and a cut batch
	kept, through := trimBatches(slices.Clone(raw), 3, []int64{12, 17})
	if !bytes.Equal(kept, slices.Concat(b, c[:30])) || through != 25 {
		t.Fatalf("kept %d bytes, through %d", len(kept), through)
	}
	kept, through = trimBatches(slices.Clone(raw), 3, []int64{5, 100})
	if !bytes.Equal(kept, slices.Concat(a, c[:30])) || through != 25 {
		t.Fatalf("kept %d bytes, through %d", len(kept), through)
	}
	kept, through = trimBatches(slices.Clone(raw), 3, []int64{2})
	if !bytes.Equal(kept, c[:30]) || through != 25 {
		t.Fatalf("kept %d bytes, through %d", len(kept), through)
	}
}
