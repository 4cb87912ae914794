package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tests of the group against the embedded broker: where the engine meets
// the client (start positions, commits, rebalances during a hand-over).
// The broker's control functions force the orders under test.

// testTopic is the topic of the test running now: fixed on an embedded
// broker of the test's own, unique on a real cluster (sharedCluster).
// These tests do not run in parallel.
var testTopic = "core.test.happened"

// sharedCluster is testCluster for the tests that need no control
// function: on the cluster EVENTBUS_TEST_BROKERS names, when set, with a
// new topic of its own (testTopic), else on an embedded broker.
func sharedCluster(t *testing.T, partitions int32, perPartition int) []string {
	t.Helper()
	brokers := os.Getenv("EVENTBUS_TEST_BROKERS")
	if brokers == "" {
		_, addrs := testCluster(t, partitions, perPartition)
		return addrs
	}
	addrs := strings.Split(brokers, ",")
	was := testTopic
	testTopic = fmt.Sprintf("core.test_%d.happened", time.Now().UnixNano())
	t.Cleanup(func() { testTopic = was })
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := adm.CreateTopic(ctx, partitions, 1, nil, testTopic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", testTopic, err)
	}
	topic := testTopic
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err == nil {
			_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topic)
			cl.Close()
		}
	})
	var recs []*kgo.Record
	for p := range partitions {
		for i := range perPartition {
			recs = append(recs, &kgo.Record{Topic: testTopic, Partition: p, Key: fmt.Appendf(nil, "k%d", i%3), Value: []byte("old")})
		}
	}
	// A new topic's leaders may take a moment to be known: produce
	// retries until they are, within ctx.
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return addrs
}

// uniqueGroup names a group no earlier run used (a real cluster keeps
// groups' offsets across runs).
func uniqueGroup(name string) string { return fmt.Sprintf("%s-%d", name, time.Now().UnixNano()) }

// testCluster starts an embedded broker with testTopic of partitions
// partitions, each holding perPartition records (offsets 0..perPartition-1).
func testCluster(t *testing.T, partitions int32, perPartition int) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	if perPartition > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for p := range partitions {
			for i := range perPartition {
				recs = append(recs, &kgo.Record{Topic: testTopic, Partition: p, Key: fmt.Appendf(nil, "k%d", i%3), Value: []byte("old")})
			}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return c, addrs
}

// testGroup starts a group on testTopic whose handler counts what it
// handled; startAt is each partition's start without FromBeginning.
func testGroup(t *testing.T, addrs []string, group string, startAt map[int32]int64, h HandleFunc, hk hooks) *Group {
	t.Helper()
	return startTestGroup(t, addrs, group, Topic{Name: testTopic, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: startAt}, hk, io.Discard)
}

// testGroupUnordered is testGroup with every record handled at once.
func testGroupUnordered(t *testing.T, addrs []string, group string, h HandleFunc) *Group {
	t.Helper()
	return startTestGroup(t, addrs, group, Topic{Name: testTopic, Handle: h, Ordering: Unordered, MaxConcurrency: 100, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}, hooks{}, io.Discard)
}

// testGroupLogging is testGroup logging to w.
func testGroupLogging(t *testing.T, addrs []string, group string, w io.Writer) *Group {
	t.Helper()
	h := func(_, _ context.Context, _ *kgo.Record) bool { return true }
	return startTestGroup(t, addrs, group, Topic{Name: testTopic, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}, hooks{}, w)
}

// startTestGroup starts a group reading topic and waits until it is
// assigned; the group is stopped when the test ends.
func startTestGroup(t *testing.T, addrs []string, group string, topic Topic, hk hooks, logTo io.Writer) *Group {
	t.Helper()
	cfg := Config{
		Group: group,
		NewClient: func(opts ...kgo.Opt) (*kgo.Client, error) {
			return kgo.NewClient(append(opts, kgo.SeedBrokers(addrs...))...)
		},
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		MaxPollRecords:    100,
		CommitInterval:    10 * time.Millisecond,
		RevokeTimeout:     5 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(logTo, nil)),
		hooks:             hk,
	}
	g, err := Start(cfg, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.WaitAssigned(ctx, testTopic); err != nil {
		t.Fatal(err)
	}
	return g
}

// counting is a handler that counts the records it handled, by value.
type counting struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counting) handle(_, _ context.Context, r *kgo.Record) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[string(r.Value)]++
	return true
}

func (c *counting) count(value string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[value]
}

// produceNew appends n records of value "new" to each partition.
func produceNew(t *testing.T, addrs []string, partitions int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for p := range partitions {
		for range n {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: testTopic, Partition: p, Value: []byte("new")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// commitRaw commits offset on partition p for group with metadata, as
// another member (or another client) would.
func commitRaw(t *testing.T, addrs []string, group string, p int32, offset int64, metadata string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: testTopic, Partition: p, At: offset, LeaderEpoch: -1, Metadata: metadata})
	resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// committed reads group's commit on partition p of testTopic.
func committed(g *Group, group string, p int32) (kadm.OffsetResponse, bool) {
	offs, err := g.adm.FetchOffsets(context.Background(), group)
	if err != nil {
		return kadm.OffsetResponse{}, false
	}
	return offs.Lookup(testTopic, p)
}

// offsetFetchFailed answers an offset read with err for every group asked.
func offsetFetchFailed(req *kmsg.OffsetFetchRequest, err *kerr.Error) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Version = req.Version
	resp.ErrorCode = err.Code
	for _, g := range req.Groups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group, rg.ErrorCode = g.Group, err.Code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// joinOther starts a second member of group on testTopic (a plain kgo
// consumer that polls until the test ends) and returns a channel that
// receives once the group assigned it a partition.
func joinOther(t *testing.T, addrs []string, group string) <-chan struct{} {
	t.Helper()
	assigned := make(chan struct{}, 1)
	other, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(testTopic),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[testTopic]) > 0 {
				select {
				case assigned <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			other.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-polled; other.Close() })
	return assigned
}

// waitFor polls cond (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
}

// TestMembersJoiningTogetherStartWhereTheySubscribed: member A of a new
// group made its start-position commit on partition 0 (at the end, as it
// subscribed) before member B read the group's offsets for partition 1.
// B must take A's commit for a start, not for progress: partition 1 starts
// where B subscribed, and the records published before are not delivered.
func TestMembersJoiningTogetherStartWhereTheySubscribed(t *testing.T) {
	addrs := sharedCluster(t, 2, 20)
	group := uniqueGroup("together")
	commitRaw(t, addrs, group, 0, 20, startMarker) // A's start commit
	var c counting
	testGroup(t, addrs, group, map[int32]int64{0: 20, 1: 20}, c.handle, hooks{})
	produceNew(t, addrs, 2, 3)
	waitFor(t, "the 6 new records are handled", func() bool { return c.count("new") == 6 })
	if n := c.count("old"); n != 0 {
		t.Fatalf("%d records published before the group subscribed were delivered: a start-position commit was taken for progress", n)
	}
}

// TestProgressOnATopicStartsANewPartitionAtItsOldest: where the group made
// real progress on a topic, a partition without any commit is new (it was
// created later), and it is read from its oldest record.
func TestProgressOnATopicStartsANewPartitionAtItsOldest(t *testing.T) {
	addrs := sharedCluster(t, 2, 20)
	group := uniqueGroup("grown")
	commitRaw(t, addrs, group, 0, 20, "") // progress, by any client
	var c counting
	testGroup(t, addrs, group, map[int32]int64{0: 20, 1: 20}, c.handle, hooks{})
	waitFor(t, "partition 1's 20 records are handled", func() bool { return c.count("old") == 20 })
}

// TestFailedOffsetReadDoesNotReplayHistory: reading the group's committed
// offsets at assignment fails (once, or on every try): the group must not
// start at the oldest retained record, which it did not ask for.
func TestFailedOffsetReadDoesNotReplayHistory(t *testing.T) {
	for _, failures := range []int{1, startReadAttempts} {
		t.Run(fmt.Sprintf("%d failures", failures), func(t *testing.T) {
			c0, addrs := testCluster(t, 2, 20)
			var failed atomic.Int32
			c0.ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				c0.KeepControl()
				if failed.Load() >= int32(failures) {
					return nil, nil, false
				}
				failed.Add(1)
				req := kreq.(*kmsg.OffsetFetchRequest)
				return offsetFetchFailed(req, kerr.GroupAuthorizationFailed), nil, true
			})
			var c counting
			testGroup(t, addrs, "unread", map[int32]int64{0: 20, 1: 20}, c.handle, hooks{})
			produceNew(t, addrs, 2, 3)
			waitFor(t, "the 6 new records are handled", func() bool { return c.count("new") == 6 })
			if n := c.count("old"); n != 0 {
				t.Fatalf("%d records published before the group subscribed were delivered after %d failed reads of its offsets", n, failures)
			}
		})
	}
}

// TestCommitShrinksMetadataTheBrokerRejects: a broker whose
// offset.metadata.max.bytes is below the finished offsets the engine
// writes rejects the commit; the engine commits again with less, instead
// of failing that partition's commits for ever.
func TestCommitShrinksMetadataTheBrokerRejects(t *testing.T) {
	c0, addrs := testCluster(t, 1, 0)
	const brokerLimit = 40
	var rejected, acceptedAfter atomic.Int32
	c0.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c0.KeepControl()
		req := kreq.(*kmsg.OffsetCommitRequest)
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if rp.Metadata != nil && len(*rp.Metadata) <= brokerLimit && rejected.Load() > 0 && len(decodeFinished(rp.Offset, *rp.Metadata)) > 0 {
					acceptedAfter.Add(1)
				}
				if rp.Metadata != nil && len(*rp.Metadata) > brokerLimit {
					rejected.Add(1)
					return commitRefused(req, kerr.OffsetMetadataTooLarge.Code), nil, true
				}
			}
		}
		return nil, nil, false
	})
	// Every even offset is held until the odd ones finished, so the
	// finished offsets above the commit point make long metadata.
	gate := make(chan struct{})
	var odd atomic.Int32
	h := func(_, _ context.Context, r *kgo.Record) bool {
		if r.Offset%2 == 0 {
			<-gate
		} else {
			odd.Add(1)
		}
		return true
	}
	g := testGroupUnordered(t, addrs, "smallmeta", h)
	produceNew(t, addrs, 1, 60)
	waitFor(t, "the odd offsets are handled", func() bool { return odd.Load() == 30 })
	waitFor(t, "a commit is rejected for its metadata", func() bool { return rejected.Load() > 0 })
	waitFor(t, "a commit carrying finished offsets is accepted after the rejection, offset 0 still unfinished", func() bool {
		return acceptedAfter.Load() > 0
	})
	if o, ok := committed(g, "smallmeta", 0); !ok || o.At != 0 || len(decodeFinished(0, o.Metadata)) == 0 {
		t.Fatalf("the group's commit is %+v; want offset 0 with finished offsets above it", o)
	}
	close(gate)
	if l := g.metadataLimit.Load(); l > brokerLimit {
		t.Fatalf("the group still writes up to %d bytes of metadata; the broker takes %d", l, brokerLimit)
	}
}

// TestHandOverHoldsOffRebalances: the poll loop is held after it polled a
// batch, before the batch reached the dispatcher (as a stalled goroutine
// would be), while a second member joins and the group takes a partition
// away. No revocation may run until the hand-over is done: otherwise a
// batch fetched for one assignment of a partition could be handed to the
// next, and the records refetched in between dropped as already there.
func TestHandOverHoldsOffRebalances(t *testing.T) {
	addrs := sharedCluster(t, 2, 0)
	group := uniqueGroup("handover")
	var inHandOver, overlapped atomic.Bool
	revoking := make(chan struct{}, 1)
	holding := make(chan struct{})
	var once sync.Once
	hk := hooks{
		handedOver: func() {
			first := false
			once.Do(func() { first = true })
			if !first {
				return
			}
			inHandOver.Store(true)
			close(holding)
			// Held until a revocation starts, or (when rebalances wait
			// for the hand-over, as they must) a bound passes.
			select {
			case <-revoking:
			case <-time.After(3 * time.Second):
			}
			inHandOver.Store(false)
		},
		rebalancing: func() {
			if inHandOver.Load() {
				overlapped.Store(true)
			}
			select {
			case revoking <- struct{}{}:
			default:
			}
		},
	}
	var c counting
	testGroup(t, addrs, group, map[int32]int64{0: 0, 1: 0}, c.handle, hk)
	produceNew(t, addrs, 2, 5)
	select {
	case <-holding:
	case <-time.After(20 * time.Second):
		t.Fatal("no batch was handed over")
	}
	otherAssigned := joinOther(t, addrs, group)
	select {
	case <-otherAssigned:
	case <-time.After(30 * time.Second):
		t.Fatal("the second member got no partition")
	}
	if overlapped.Load() {
		t.Fatal("partitions were revoked while a polled batch was being handed over")
	}
}

// TestFailingFetchesBackOff: every fetch of the topic fails with an
// authorization error (a plugin whose grants were revoked). The poll loop
// backs off between polls and logs the failure once, instead of polling
// again at once and logging every failed fetch.
func TestFailingFetchesBackOff(t *testing.T) {
	c0, addrs := testCluster(t, 1, 0)
	var failedFetches atomic.Int32
	var logs lockedBuffer
	g := testGroupLogging(t, addrs, "revoked", &logs)
	c0.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c0.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		failedFetches.Add(1)
		return resp, nil, true
	})
	waitFor(t, "six fetches failed", func() bool { return failedFetches.Load() >= 6 })
	if n := strings.Count(logs.String(), "fetch failed"); n != 1 {
		t.Fatalf("%d fetch failures were logged for %d failed fetches; want 1 (then at most one per %v)", n, failedFetches.Load(), fetchFailureLogEvery)
	}
	if err := g.FetchErrors()[testTopic]; !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("FetchErrors()[%s] = %v while every fetch fails, want TOPIC_AUTHORIZATION_FAILED", testTopic, err)
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReaddedTopicWaitsForTheRemovedOnesHandlers: a topic is removed while
// a handler of key k0 still runs (it ignores its context; RemoveTopic's
// wait ends with its ctx), and the same topic is added back to the group
// (a plugin unsubscribed and subscribed again). The record comes again to
// the new subscription: it must not start while the removed one's handler
// of the same key still runs, as it would not after a lost partition
// (startAfter), or one key runs twice at once in this process.
func TestReaddedTopicWaitsForTheRemovedOnesHandlers(t *testing.T) {
	const other = "core.other.happened"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic, other))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	gate := make(chan struct{})
	var gateOnce sync.Once
	release := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(release)
	var mu sync.Mutex
	running, runs, overlap := 0, 0, false
	started := make(chan struct{}, 10)
	h := func(_, _ context.Context, r *kgo.Record) bool {
		mu.Lock()
		running++
		runs++
		first := runs == 1
		overlap = overlap || running > 1
		mu.Unlock()
		started <- struct{}{}
		if first {
			<-gate // the removed subscription's handler: ignores its context
		}
		mu.Lock()
		running--
		mu.Unlock()
		return true
	}
	topic := Topic{Name: testTopic, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}
	g := startTestGroup(t, addrs, "readd", topic, hooks{}, io.Discard)
	if err := g.AddTopic(Topic{Name: other, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: testTopic, Key: []byte("k0"), Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the record was not handled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	g.RemoveTopic(ctx, testTopic) // returns with the handler still running
	cancel()
	if err := g.AddTopic(topic); err != nil {
		t.Fatal(err)
	}
	// The record is fetched again (nothing was committed) and handed to
	// the new subscription: wait until it holds it, or already runs it.
	waitFor(t, "the re-added topic's record is handed over", func() bool {
		mu.Lock()
		again := runs > 1
		mu.Unlock()
		return again || g.Pending(testTopic) > 0
	})
	// Give a second handler of the key the chance to start (bounded).
	select {
	case <-started:
	case <-time.After(500 * time.Millisecond):
	}
	mu.Lock()
	twice := overlap
	mu.Unlock()
	if twice {
		t.Fatal("the re-added topic's record ran while the removed subscription's handler of the same key still ran")
	}
	release()
	waitFor(t, "the record is handled again once the first handler returned", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return runs == 2 && running == 0
	})
}

// TestTopicAddedBackDuringRemovalIsRead: a topic is added back to the
// group (a plugin subscribing again) while its removal is finishing. The
// new subscription must be read: the removal's purge must not take the
// topic away from the client after the new subscription added it. An add
// refused as a duplicate while the removal runs is made again once it
// returned, as a caller would.
func TestTopicAddedBackDuringRemovalIsRead(t *testing.T) {
	const other = "core.other.happened"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic, other))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	var cnt counting
	topic := Topic{Name: testTopic, Handle: cnt.handle, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}
	var g *Group
	added := make(chan error, 1)
	hk := hooks{removing: func() {
		go func() { added <- g.AddTopic(topic) }()
		// Let the add land here if it can (bounded: a removal that holds
		// it off makes it wait).
		select {
		case err := <-added:
			added <- err
		case <-time.After(time.Second):
		}
	}}
	g = startTestGroup(t, addrs, "readded", topic, hk, io.Discard)
	if err := g.AddTopic(Topic{Name: other, Handle: cnt.handle, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if g.RemoveTopic(ctx, testTopic) {
		t.Fatal("RemoveTopic reported the last topic removed")
	}
	var addErr error
	select {
	case addErr = <-added:
	case <-time.After(10 * time.Second):
		t.Fatal("AddTopic did not return")
	}
	if errors.Is(addErr, ErrDuplicateTopic) {
		addErr = g.AddTopic(topic)
	}
	if addErr != nil {
		t.Fatal(addErr)
	}
	produceNew(t, addrs, 1, 3)
	deadline := time.Now().Add(15 * time.Second)
	for cnt.count("new") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 records published after the topic was added back were handled: the client no longer reads it", cnt.count("new"))
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
}

// TestStopKeepsItsDeadlineDuringAnAssignment: Stop is called while the
// group is in an assignment callback reading the group's offsets from a
// coordinator that keeps failing (the start positions' retries). The poll
// loop cannot return while a callback runs (BlockRebalanceOnPoll), and
// Stop waits for it: the callback's work must end with Stop, or Stop
// overruns its deadline by the retries.
func TestStopKeepsItsDeadlineDuringAnAssignment(t *testing.T) {
	const other = "core.other.happened"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic, other))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	var armed atomic.Bool
	reading := make(chan struct{}, 1)
	c.ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.OffsetFetchRequest)
		all := req.Topics == nil && (len(req.Groups) == 0 || req.Groups[0].Topics == nil)
		if !armed.Load() || !all { // only the engine's read of every offset (fixStarts)
			return nil, nil, false
		}
		select {
		case reading <- struct{}{}:
		default:
		}
		return offsetFetchFailed(req, kerr.CoordinatorLoadInProgress), nil, true
	})
	h := func(_, _ context.Context, _ *kgo.Record) bool { return true }
	g := startTestGroup(t, addrs, "stopping", Topic{Name: testTopic, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}, hooks{}, io.Discard)
	armed.Store(true)
	if err := g.AddTopic(Topic{Name: other, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, StartAt: map[int32]int64{0: 0}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reading: // the assignment of other reads the group's offsets, and fails
	case <-time.After(20 * time.Second):
		t.Fatal("the assignment did not read the group's offsets")
	}
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	_ = g.Stop(ctx)
	if took := time.Since(begin); took > deadline+time.Second {
		t.Fatalf("Stop took %v with a %v deadline", took.Round(10*time.Millisecond), deadline)
	}
}

// TestStopKeepsItsDeadlineDuringARevocation: a rebalance takes a partition
// away while its handler runs and ignores its context; the revocation
// waits for it (up to RevokeTimeout), and Stop is called meanwhile. Stop
// waits for the poll loop, which cannot return while the revocation runs
// (BlockRebalanceOnPoll): the revocation's wait must end by Stop's
// deadline, as Stop's own wait for its handlers does.
func TestStopKeepsItsDeadlineDuringARevocation(t *testing.T) {
	addrs := sharedCluster(t, 2, 1)
	group := uniqueGroup("revoking")
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	var running atomic.Int32
	h := func(_, _ context.Context, _ *kgo.Record) bool {
		running.Add(1)
		<-gate // ignores its context
		return true
	}
	g := testGroup(t, addrs, group, map[int32]int64{0: 0, 1: 0}, h, hooks{})
	waitFor(t, "both partitions' records run", func() bool { return running.Load() == 2 })
	joinOther(t, addrs, group)
	d := g.dispatcher(testTopic)
	waitFor(t, "a partition is being revoked, its handler still running", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, p := range d.parts {
			if p.released && p.running > 0 {
				return true
			}
		}
		return false
	})
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	_ = g.Stop(ctx)
	if took := time.Since(begin); took > deadline+time.Second {
		t.Fatalf("Stop took %v with a %v deadline (RevokeTimeout %v)", took.Round(10*time.Millisecond), deadline, g.cfg.RevokeTimeout)
	}
}

// TestPartitionErrorInOffsetReadKeepsTheCommit: the group has handled a
// partition up to offset 5 when a member joins; the read of the group's
// offsets at assignment answers that partition with an error (a transient
// UNSTABLE_OFFSET_COMMIT). Its commit is unknown, not absent: no start
// position may be committed over it, or the records from 5 up to where
// the subscription started are skipped unhandled.
func TestPartitionErrorInOffsetReadKeepsTheCommit(t *testing.T) {
	c0, addrs := testCluster(t, 1, 20)
	commitRaw(t, addrs, "unstable", 0, 5, "") // records 0..4 were handled
	topicID := topicIDOf(t, addrs, testTopic)
	var failed atomic.Bool
	c0.ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c0.KeepControl()
		req := kreq.(*kmsg.OffsetFetchRequest)
		all := req.Topics == nil && (len(req.Groups) == 0 || req.Groups[0].Topics == nil)
		if !all || failed.Swap(true) { // the engine's first read of every offset
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.Version = req.Version
		code := kerr.UnstableOffsetCommit.Code
		if req.Version >= 8 {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = req.Groups[0].Group
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic, rt.TopicID = testTopic, topicID
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = 0, -1, -1, code
			rt.Partitions = append(rt.Partitions, rp)
			rg.Topics = append(rg.Topics, rt)
			resp.Groups = append(resp.Groups, rg)
		} else {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = testTopic
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = 0, -1, -1, code
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	var c counting
	testGroup(t, addrs, "unstable", map[int32]int64{0: 20}, c.handle, hooks{})
	if !failed.Load() {
		t.Fatal("the engine's read of the group's offsets was not answered with the partition error")
	}
	produceNew(t, addrs, 1, 3)
	waitFor(t, "the 3 new records are handled", func() bool { return c.count("new") == 3 })
	if n := c.count("old"); n != 15 {
		t.Fatalf("%d of the 15 records above the group's commit (5) were handled; a start position was committed over the commit the read could not tell", n)
	}
}

// topicIDOf is topic's ID.
func topicIDOf(t *testing.T, addrs []string, topic string) [16]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return topics[topic].ID
}

// TestRebalanceAssigningNothingNewDoesNotStallDelivery: a second member
// joins and this member keeps one of its partitions, assigned nothing new,
// while the group coordinator answers reads of the group's offsets slowly
// (COORDINATOR_LOAD_IN_PROGRESS, as while it moves). The assignment
// callback holds the poll loop (BlockRebalanceOnPoll): with nothing to
// start it has no offsets to read, and the kept partition's records are
// delivered at once, not after the read's 15 s bound.
func TestRebalanceAssigningNothingNewDoesNotStallDelivery(t *testing.T) {
	c0, addrs := testCluster(t, 2, 0)
	var armed atomic.Bool
	c0.ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c0.KeepControl()
		req := kreq.(*kmsg.OffsetFetchRequest)
		all := req.Topics == nil && (len(req.Groups) == 0 || req.Groups[0].Topics == nil)
		if !armed.Load() || !all { // only the engine's read of every offset (fixStarts)
			return nil, nil, false
		}
		return offsetFetchFailed(req, kerr.CoordinatorLoadInProgress), nil, true
	})
	var cnt counting
	g := testGroup(t, addrs, "keeping", map[int32]int64{0: 0, 1: 0}, cnt.handle, hooks{})
	armed.Store(true)
	otherAssigned := joinOther(t, addrs, "keeping")
	select {
	case <-otherAssigned:
	case <-time.After(30 * time.Second):
		t.Fatal("the second member got no partition")
	}
	d := g.dispatcher(testTopic)
	waitFor(t, "this member holds one partition", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.parts) == 1
	})
	produceNew(t, addrs, 2, 1) // one record on each partition
	begin := time.Now()
	for cnt.count("new") < 1 {
		if time.Since(begin) > 5*time.Second {
			t.Fatal("the kept partition's record was not delivered within 5 s of the rebalance")
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
}

// TestStopWithoutDeadlineIsBounded: Stop(context.Background()) with a
// handler that ignores its context returns within ShutdownTimeout; the
// handler's context is cancelled when the grace period (GracePeriod of
// the bound) ends.
func TestStopWithoutDeadlineIsBounded(t *testing.T) {
	addrs := sharedCluster(t, 1, 1)
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	var running atomic.Int32
	cancelled := make(chan time.Time, 1)
	h := func(ctx, _ context.Context, _ *kgo.Record) bool {
		running.Add(1)
		context.AfterFunc(ctx, func() { cancelled <- time.Now() })
		<-gate // ignores its context
		return true
	}
	g := testGroup(t, addrs, uniqueGroup("unbounded"), map[int32]int64{0: 0}, h, hooks{})
	waitFor(t, "the record's handler runs", func() bool { return running.Load() == 1 })
	const bound = time.Second
	g.cfg.ShutdownTimeout = bound
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- g.Stop(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Stop abandoned a running handler without saying so")
		}
	case <-time.After(3 * bound):
		t.Fatalf("Stop(context.Background()) still blocked after %v with ShutdownTimeout %v", 3*bound, bound)
	}
	select {
	case at := <-cancelled:
		if got, grace := at.Sub(begin), GracePeriod(bound); got < grace-50*time.Millisecond || got > bound {
			t.Errorf("the handler's context was cancelled %v into Stop; want about %v", got, grace)
		}
	default:
		t.Error("Stop returned without cancelling the running handler's context")
	}
}

func TestGracePeriodIsThreeQuarters(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		30 * time.Second: 22500 * time.Millisecond, 10 * time.Second: 7500 * time.Millisecond, 0: 0,
	} {
		if got := GracePeriod(in); got != want {
			t.Errorf("GracePeriod(%v) = %v, want %v", in, got, want)
		}
	}
}

// TestTopicAtItsCapIsNotPausedWhileItsHandlersKeepUp: a hand-over that
// brings a topic to its cap while its handlers keep up makes the poll loop
// wait for them instead of pausing the topic's partitions. A paused
// partition leaves the client's fetch session (the next fetch "forgets"
// it) and that fetch, holding only partitions with nothing to read (here
// an empty second topic, as a subscription's retry topic), waits at the
// broker up to FetchMaxWait; the partition, resumed as soon as its
// records were handled, was fetched again only once that fetch returned,
// and a backlog stalled for that long after every MaxPending records.
// The broker counts the fetches that forget a partition of the topic:
// none, while every record is handled. (With the wait's bounds at zero,
// as before the wait, every hand-over paused.)
func TestTopicAtItsCapIsNotPausedWhileItsHandlersKeepUp(t *testing.T) {
	const partitions, perPartition = 3, 1_000
	c, addrs := testCluster(t, partitions, perPartition)
	idle := testTopic + ".idle"
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, idle); err != nil {
		t.Fatal(err)
	}
	var forgot atomic.Int32
	topicID := topicIDOf(t, addrs, testTopic)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, ft := range req.(*kmsg.FetchRequest).ForgottenTopics {
			if ft.TopicID == topicID || ft.Topic == testTopic {
				forgot.Add(1)
			}
		}
		return nil, nil, false
	})
	var handled atomic.Int32
	h := func(_, _ context.Context, _ *kgo.Record) bool { handled.Add(1); return true }
	// MaxPending 40 under the 100 records of a poll: every hand-over
	// reaches the cap. The wait's bounds are long, so that only the
	// workers' drain ends it, however slow the machine.
	g := startTestGroup(t, addrs, uniqueGroup("drain"), Topic{
		Name: testTopic, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 40,
		StartAt: map[int32]int64{0: 0, 1: 0, 2: 0},
	}, hooks{drainTick: time.Minute, maxDrainWait: time.Minute}, io.Discard)
	if err := g.AddTopic(Topic{Name: idle, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 40, FromBeginning: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every record handled", func() bool { return handled.Load() >= partitions*perPartition })
	if n := forgot.Load(); n > 0 {
		t.Fatalf("%d fetches forgot (paused) a partition of the topic while its handlers kept up", n)
	}
}

// TestPartitionLostAndAssignedBackSkipsWhatItFinished: the group's
// coordinator takes no commit (as while it is down) while the member
// finishes every record of its partition; then the member's heartbeat
// fails, the client ends its session (onLost) and the member joins again
// and gets the same partition back, at the group's last commit. The
// records were never committed, but this process finished them: they are
// not handled again, and the first commit the coordinator takes carries
// them.
func TestPartitionLostAndAssignedBackSkipsWhatItFinished(t *testing.T) {
	const records = 12
	c0, addrs := testCluster(t, 1, records)
	coord := coordinatorDown(c0)
	var (
		mu      sync.Mutex
		handled = map[int64]int{}
	)
	h := func(_, _ context.Context, r *kgo.Record) bool {
		mu.Lock()
		defer mu.Unlock()
		handled[r.Offset]++
		return true
	}
	g := testGroup(t, addrs, "lostback", map[int32]int64{0: 0}, h, hooks{})
	waitFor(t, "every record is handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == records
	})
	g.assignMu.Lock()
	before := g.assignCount
	g.assignMu.Unlock()
	coord.lose.Store(true)
	waitFor(t, "the partition is assigned again after the lost session", func() bool {
		g.assignMu.Lock()
		defer g.assignMu.Unlock()
		return coord.lost.Load() && g.assignCount > before
	})
	if o, ok := committed(g, "lostback", 0); !ok || o.At != 0 {
		t.Fatalf("the group's commit is %+v before the coordinator takes commits again; want the start (0)", o)
	}
	coord.down.Store(false)
	waitFor(t, "the group commits past every record", func() bool {
		o, ok := committed(g, "lostback", 0)
		return ok && o.At == records
	})
	mu.Lock()
	defer mu.Unlock()
	for off, n := range handled {
		if n != 1 {
			t.Errorf("offset %d handled %d times; this process finished it before the partition was lost and assigned back", off, n)
		}
	}
}

// TestLostPartitionsLingeringHandlerGivesUpAfterItCameBack: as in
// TestPartitionLostAndAssignedBackSkipsWhatItFinished, the coordinator
// takes no commit and the member's session ends, but one handler (offset
// 4, key k1) still runs when the partition is lost, ignoring its
// cancelled context, and gives up (not finished) only once the partition
// was assigned back to the member and its records fetched again. What the
// lost assignment finished is skipped; offset 4, and key k1's records
// queued behind it, are handled (once each, offset 4 not before the
// lingering handler returned), and the group's commit reaches the end.
func TestLostPartitionsLingeringHandlerGivesUpAfterItCameBack(t *testing.T) {
	const records, gap = 12, 4
	c0, addrs := testCluster(t, 1, records)
	coord := coordinatorDown(c0)
	var (
		mu        sync.Mutex
		finished  = map[int64]int{}
		lingering bool
		overlap   bool
		gapTaken  atomic.Bool
	)
	gapRuns, gapCancelled, gapReturn := make(chan struct{}), make(chan struct{}), make(chan struct{})
	h := func(ctx, _ context.Context, r *kgo.Record) bool {
		if r.Offset == gap && gapTaken.CompareAndSwap(false, true) {
			mu.Lock()
			lingering = true
			mu.Unlock()
			close(gapRuns)
			<-ctx.Done() // cancelled as the partition is lost
			close(gapCancelled)
			<-gapReturn // and still running until told
			mu.Lock()
			lingering = false
			mu.Unlock()
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		finished[r.Offset]++
		overlap = overlap || (r.Offset == gap && lingering)
		return true
	}
	g := testGroup(t, addrs, "lostlinger", map[int32]int64{0: 0}, h, hooks{})
	<-gapRuns
	waitFor(t, "every record of the keys other than k1, and k1's before the gap, is finished", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(finished) == 9
	})
	g.assignMu.Lock()
	before := g.assignCount
	g.assignMu.Unlock()
	coord.lose.Store(true)
	waitFor(t, "the partition is assigned again after the lost session", func() bool {
		g.assignMu.Lock()
		defer g.assignMu.Unlock()
		return coord.lost.Load() && g.assignCount > before
	})
	<-gapCancelled
	d := g.dispatcher(testTopic)
	waitFor(t, "the partition assigned back fetched every record, the gap waiting for the lingering handler", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		p := d.parts[0]
		return p != nil && p.next == records && p.waiting
	})
	close(gapReturn)
	coord.down.Store(false)
	waitFor(t, "the group commits past every record", func() bool {
		o, ok := committed(g, "lostlinger", 0)
		return ok && o.At == records
	})
	mu.Lock()
	defer mu.Unlock()
	for off := range int64(records) {
		if n := finished[off]; n != 1 {
			t.Errorf("offset %d finished %d times; want once", off, n)
		}
	}
	if overlap {
		t.Error("the gap was handled again while the lost assignment's handler of it still ran")
	}
}

// coordinatorSession drives a group's coordinator in a kfake cluster as
// one that is down: while down is set it refuses every progress commit
// (start-position commits pass); once lose is set it answers the next
// heartbeat ILLEGAL_GENERATION, so that the client ends the member's
// session (onLost) and joins again; lost records that it did.
type coordinatorSession struct {
	down, lose, lost atomic.Bool
}

// coordinatorDown installs a coordinatorSession on c, down from the start.
func coordinatorDown(c *kfake.Cluster) *coordinatorSession {
	cs := &coordinatorSession{}
	cs.down.Store(true)
	c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.OffsetCommitRequest)
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if cs.down.Load() && (rp.Metadata == nil || *rp.Metadata != startMarker) {
					return commitRefused(req, kerr.RequestTimedOut.Code), nil, true
				}
			}
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Heartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !cs.lose.Load() || cs.lost.Swap(true) {
			return nil, nil, false
		}
		req := kreq.(*kmsg.HeartbeatRequest)
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.Version, resp.ErrorCode = req.Version, kerr.IllegalGeneration.Code
		return resp, nil, true
	})
	return cs
}
