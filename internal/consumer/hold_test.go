package consumer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tests of the hold on uncommitted records (maxUncommitted): once that
// many finished since the last commit was taken, a topic's workers wait
// for the next one. Each test holds the committer (the committing hook)
// until the workers wait, then brings what could keep them waiting for
// good: commits that fail, a revocation, no further records, a stop.

// heldCommitter holds the committer before it takes any commit, until let
// is called.
type heldCommitter struct {
	release chan struct{}
	once    sync.Once
}

func holdCommits() *heldCommitter { return &heldCommitter{release: make(chan struct{})} }

func (h *heldCommitter) hook() { <-h.release }

func (h *heldCommitter) let() { h.once.Do(func() { close(h.release) }) }

// holdGroup starts a group of topic whose committer h (if not nil)
// holds, with the given commit interval, and waits until it is assigned.
// The committer is let go, then the group stopped, when the test ends,
// unless the test stopped it first (stop: Stop once).
func holdGroup(t *testing.T, addrs []string, group string, topic Topic, interval time.Duration, h *heldCommitter, hk hooks) (g *Group, stop func(context.Context) error) {
	t.Helper()
	if h != nil {
		hk.committing = h.hook
	}
	var err error
	g, err = Start(Config{
		Group: group,
		NewClient: func(opts ...kgo.Opt) (*kgo.Client, error) {
			return kgo.NewClient(append(opts, kgo.SeedBrokers(addrs...))...)
		},
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		MaxPollRecords:    100,
		CommitInterval:    interval,
		RevokeTimeout:     5 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		hooks:             hk,
	}, topic)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func(ctx context.Context) error {
		err := errors.New("stopped already")
		once.Do(func() { err = g.Stop(ctx) })
		return err
	}
	t.Cleanup(func() {
		if h != nil {
			h.let()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.WaitAssigned(ctx, topic.Name); err != nil {
		t.Fatal(err)
	}
	return g, stop
}

// addFirst adds offset to the set and reports whether it was not in it.
func (s *offsetSet) addFirst(p int32, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[int32]map[int64]bool{}
	}
	if s.at[p] == nil {
		s.at[p] = map[int64]bool{}
	}
	first := !s.at[p][offset]
	s.at[p][offset] = true
	return first
}

// countOf is how many offsets of partition p are in the set.
func (s *offsetSet) countOf(p int32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at[p])
}

// onceHandler records what it handles in seen, counting in twice the
// records it was handed again.
func onceHandler(seen *offsetSet, twice *atomic.Int32) HandleFunc {
	return func(_, _ context.Context, r *kgo.Record) bool {
		if !seen.addFirst(r.Partition, r.Offset) {
			twice.Add(1)
		}
		return true
	}
}

// heldTopic is testTopic handled by h on 4 workers, in any order, from
// the beginning: commitEvery is 64 and maxUncommitted 128.
func heldTopic(h HandleFunc) Topic {
	return Topic{Name: testTopic, Handle: h, Ordering: Unordered, MaxConcurrency: 4, MaxPending: 1000, FromBeginning: true}
}

// waitHeld waits until the workers of g's topic wait for a commit: none
// runs, and maxUncommitted finished since the last one taken.
func waitHeld(t *testing.T, g *Group, topic Topic) {
	t.Helper()
	d := g.dispatcher(topic.Name)
	waitFor(t, "the workers wait for the next commit", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.active == 0 && d.uncommitted >= maxUncommitted(topic)
	})
}

// TestHeldWorkersGoOnWhenCommitsAreRefused: the workers wait for a
// commit; from then on the broker refuses every commit (as an
// unauthorized group, or as a group said to be rebalancing when no
// rebalance comes). A refused commit was taken all the same: the workers
// go on, with commits made due by count alone (the interval is an hour),
// and every record is handled, once.
func TestHeldWorkersGoOnWhenCommitsAreRefused(t *testing.T) {
	for _, code := range []int16{kerr.GroupAuthorizationFailed.Code, kerr.RebalanceInProgress.Code} {
		t.Run(kerr.ErrorForCode(code).(*kerr.Error).Message, func(t *testing.T) {
			const n = 600
			c, addrs := testCluster(t, 1, n)
			var refuse atomic.Bool
			var refused atomic.Int32
			c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if !refuse.Load() {
					return nil, nil, false
				}
				refused.Add(1)
				return commitRefused(kreq.(*kmsg.OffsetCommitRequest), code), nil, true
			})
			var seen offsetSet
			var twice atomic.Int32
			topic := heldTopic(onceHandler(&seen, &twice))
			held := holdCommits()
			g, _ := holdGroup(t, addrs, "held-refused", topic, time.Hour, held, hooks{})
			refuse.Store(true)
			waitHeld(t, g, topic)
			if got := seen.len(); got >= n {
				t.Fatalf("all %d records handled before the workers waited", got)
			}
			held.let()
			waitFor(t, "every record handled, every commit refused", func() bool { return seen.len() == n })
			if refused.Load() == 0 {
				t.Fatal("no commit reached the broker")
			}
			if o, ok := committed(g, "held-refused", 0); ok && o.Err == nil && o.At > 0 && o.Metadata != startMarker {
				t.Fatalf("committed %d although every commit was refused", o.At)
			}
			if k := twice.Load(); k > 0 {
				t.Fatalf("%d records handled twice without a rebalance", k)
			}
		})
	}
}

// TestHeldWorkersGoOnAfterARevocation: the workers wait for a commit when
// a member joins and one of the two partitions is revoked. The
// revocation commits what its partition finished (nothing more) and is
// over before the committer takes the next commit; that one lets the
// workers go on, and the partition kept is handled to its end, once.
func TestHeldWorkersGoOnAfterARevocation(t *testing.T) {
	const partitions, n = 2, 300
	const group = "held-revoked"
	_, addrs := testCluster(t, partitions, n)
	var seen offsetSet
	var twice atomic.Int32
	topic := heldTopic(onceHandler(&seen, &twice))
	held := holdCommits()
	g, _ := holdGroup(t, addrs, group, topic, 10*time.Millisecond, held, hooks{})
	waitHeld(t, g, topic)

	assigned := joinOther(t, addrs, group)
	select {
	case <-assigned: // our member revoked the partition before
	case <-time.After(30 * time.Second):
		t.Fatal("the second member was assigned nothing")
	}
	d := g.dispatcher(testTopic)
	d.mu.Lock()
	var kept []int32
	for id, p := range d.parts {
		if !p.released {
			kept = append(kept, id)
		}
	}
	stillHeld := d.uncommitted >= maxUncommitted(topic) && d.active == 0
	d.mu.Unlock()
	if len(kept) != 1 || !stillHeld {
		t.Fatalf("kept partitions %v, workers waiting %t; want one partition kept while the workers wait", kept, stillHeld)
	}
	revoked := 1 - kept[0]
	// What the revocation committed was handled.
	if o, ok := committed(g, group, revoked); ok && o.Err == nil && o.Metadata != startMarker {
		for off := range o.At {
			if !seen.has(revoked, off) {
				t.Fatalf("partition %d committed at %d, but %d was not handled", revoked, o.At, off)
			}
		}
		for _, s := range decodeFinished(o.At, o.Metadata) {
			for off := s.first; off <= s.last; off++ {
				if !seen.has(revoked, off) {
					t.Fatalf("partition %d's commit says %d finished, but it was not handled", revoked, off)
				}
			}
		}
	}

	held.let()
	waitFor(t, "the partition kept is handled to its end", func() bool { return seen.countOf(kept[0]) == n })
	if k := twice.Load(); k > 0 {
		t.Fatalf("%d records handled twice by one member", k)
	}
}

// TestHeldWorkersGoOnWhenNoRecordFollows: the workers wait for a commit
// just as the topic's last record finished, and nothing more arrives for
// a while: the commit taken then lets them go on. Records that arrive
// while they wait are held until it is, then handled and committed.
func TestHeldWorkersGoOnWhenNoRecordFollows(t *testing.T) {
	const more = 10
	var seen offsetSet
	var twice atomic.Int32
	topic := heldTopic(onceHandler(&seen, &twice))
	limit := maxUncommitted(topic)
	_, addrs := testCluster(t, 1, limit)
	const group = "held-idle"
	held := holdCommits()
	g, _ := holdGroup(t, addrs, group, topic, 10*time.Millisecond, held, hooks{})
	waitHeld(t, g, topic)
	d := g.dispatcher(testTopic)
	if got := seen.len(); got != limit {
		t.Fatalf("%d records handled when the workers waited; want all %d", got, limit)
	}

	produceNew(t, addrs, 1, more)
	waitFor(t, "the new records are fetched", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.held == more
	})
	if got := seen.len(); got != limit {
		t.Fatalf("%d records handled before a commit was taken; want %d", got, limit)
	}
	held.let()
	waitFor(t, "every record handled", func() bool { return seen.len() == limit+more })
	waitFor(t, "every record committed", func() bool {
		o, ok := committed(g, group, 0)
		return ok && o.Err == nil && o.At == int64(limit+more)
	})
	if k := twice.Load(); k > 0 {
		t.Fatalf("%d records handled twice without a rebalance", k)
	}
}

// TestStopWhileHeldCommitsWhatFinished: Stop begins while the workers
// wait for a commit and the committer has not taken it; the committer is
// let go only once Stop released every partition. Stop returns, and its
// final commit covers every record finished, and nothing else.
func TestStopWhileHeldCommitsWhatFinished(t *testing.T) {
	const n = 600
	const group = "held-stopped"
	_, addrs := testCluster(t, 1, n)
	var seen offsetSet
	var twice atomic.Int32
	topic := heldTopic(onceHandler(&seen, &twice))
	held := holdCommits()
	g, stop := holdGroup(t, addrs, group, topic, time.Hour, held, hooks{})
	waitHeld(t, g, topic)

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- stop(ctx)
	}()
	d := g.dispatcher(testTopic)
	waitFor(t, "Stop released the partitions", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.closed
	})
	held.let()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stop did not return")
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(testTopic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("no commit read: %v", o.Err)
	}
	if handled := seen.len(); o.At != int64(handled) {
		t.Fatalf("committed %d with %d records handled (all from the first on)", o.At, handled)
	}
	for off := range o.At {
		if !seen.has(0, off) {
			t.Fatalf("committed %d, but %d was not handled", o.At, off)
		}
	}
	if k := twice.Load(); k > 0 {
		t.Fatalf("%d records handled twice without a rebalance", k)
	}
}

// TestStopReturnsWhileARevocationsCommitIsUnanswered: a partition is
// revoked, and the broker holds the commit its revocation makes without
// answering (a loaded or failing broker); Stop is called meanwhile. Stop
// waits for the poll loop, which cannot return while the revocation runs
// (BlockRebalanceOnPoll): the revocation's commit must end with Stop's
// time for handlers, as its wait for them does, or Stop waits for the
// commit's own bound. The broker answers only once Stop returned.
func TestStopReturnsWhileARevocationsCommitIsUnanswered(t *testing.T) {
	const perPartition = 10
	c, addrs := testCluster(t, 2, perPartition)
	var revoking atomic.Bool
	holding, release := make(chan struct{}), make(chan struct{})
	var holdOnce sync.Once
	c.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if revoking.Load() {
			holdOnce.Do(func() { close(holding) })
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(let)
	// Each partition's last record finishes only once a revocation began:
	// the revocation has it to commit.
	revoked := make(chan struct{})
	var revokedOnce sync.Once
	h := func(_, _ context.Context, r *kgo.Record) bool {
		if r.Offset == perPartition-1 {
			<-revoked
		}
		return true
	}
	const group = "revoke-unanswered"
	// Once the revocation began, the committer commits nothing more
	// until the group stops: the commit held is the revocation's.
	var startedGroup atomic.Pointer[Group]
	g, stop := holdGroup(t, addrs, group, Topic{Name: testTopic, Handle: h, Ordering: PerKey, MaxConcurrency: 4, MaxPending: 1000, FromBeginning: true}, 10*time.Millisecond, nil,
		hooks{
			rebalancing: func() {
				revoking.Store(true)
				revokedOnce.Do(func() { close(revoked) })
			},
			committing: func() {
				if g := startedGroup.Load(); g != nil && revoking.Load() {
					<-g.pollCtx.Done()
				}
			},
		})
	startedGroup.Store(g)
	t.Cleanup(func() { revokedOnce.Do(func() { close(revoked) }) })
	joinOther(t, addrs, group)
	select {
	case <-holding:
	case <-time.After(30 * time.Second):
		t.Fatal("no commit was made during the revocation")
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stopped <- stop(ctx)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("Stop did not return while the revocation's commit went unanswered")
	}
}
