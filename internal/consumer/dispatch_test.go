package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeFetching records pauses and resumes.
type fakeFetching struct {
	mu      sync.Mutex
	paused  map[int32]bool
	resumed int
	onPause func() // runs before a pause is applied
}

func (f *fakeFetching) PauseFetchPartitions(m map[string][]int32) map[string][]int32 {
	if f.onPause != nil {
		f.onPause()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			f.paused[p] = true
		}
	}
	return nil
}

// pausedSet is the paused partitions, sorted.
func (f *fakeFetching) pausedSet() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int32, 0, len(f.paused))
	for p := range f.paused {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (f *fakeFetching) ResumeFetchPartitions(m map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			delete(f.paused, p)
			f.resumed++
		}
	}
}

// probe is a handler that records, per queue identity, how many run at once.
type probe struct {
	mu        sync.Mutex
	running   map[string]int // by key (or partition) -> running now
	total     int            // running now
	maxTotal  int
	maxSame   int
	order     map[string][]int64
	gate      chan struct{} // when non-nil, handlers wait on it
	finished  chan struct{} // one send per finished record
	sameKeyOf func(r *kgo.Record) string
}

func newProbe(sameKeyOf func(r *kgo.Record) string) *probe {
	return &probe{running: map[string]int{}, order: map[string][]int64{}, finished: make(chan struct{}, 10_000), sameKeyOf: sameKeyOf}
}

func (p *probe) handle(_, _ context.Context, r *kgo.Record) bool {
	k := p.sameKeyOf(r)
	p.mu.Lock()
	p.running[k]++
	p.total++
	p.maxTotal = max(p.maxTotal, p.total)
	p.maxSame = max(p.maxSame, p.running[k])
	id := fmt.Sprint(r.Partition, "/", string(r.Key))
	p.order[id] = append(p.order[id], r.Offset)
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		<-gate
	} else {
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	p.running[k]--
	p.total--
	p.mu.Unlock()
	p.finished <- struct{}{}
	return true
}

func testDispatcher(t *testing.T, ord Ordering, conc, pending int, h HandleFunc) (*dispatcher, *fakeFetching) {
	t.Helper()
	f := &fakeFetching{paused: map[int32]bool{}}
	g := fakeGroup(t, f)
	d := newDispatcher(g, Topic{Name: "t", Handle: h, Ordering: ord, MaxConcurrency: conc, MaxPending: pending})
	g.mu.Lock()
	g.topics["t"] = d
	g.mu.Unlock()
	d.assign([]int32{0, 1})
	return d, f
}

// fakeGroup is a group without a client for dispatchers to run in: it
// takes a commit (commitPoints, nothing sent) of every topic as soon as
// one is due (commitNow), until the test ends.
func fakeGroup(t *testing.T, f *fakeFetching) *Group {
	t.Helper()
	g := &Group{
		commitSig:    make(chan struct{}, 1),
		commitNowSig: make(chan struct{}, 1),
		handlerCtx:   context.Background(),
		fetching:     f,
		topics:       map[string]*dispatcher{},
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-g.commitNowSig:
			case <-done:
				return
			}
			g.mu.RLock()
			for _, d := range g.topics {
				d.commitPoints(nil, 0)
			}
			g.mu.RUnlock()
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
	return g
}

// records makes n records of partition p from offset from, keys cycling
// over keys.
func records(p int32, from int64, n, keys int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range n {
		out[i] = &kgo.Record{Topic: "t", Partition: p, Offset: from + int64(i), Key: fmt.Appendf(nil, "k%d", i%keys)}
	}
	return out
}

func waitFinished(t *testing.T, p *probe, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-p.finished:
		case <-timeout:
			t.Fatalf("not all %d records finished", n)
		}
	}
}

func TestDispatchPerKeyOrderAndBound(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return fmt.Sprint(r.Partition, string(r.Key)) })
	d, _ := testDispatcher(t, PerKey, 4, 1000, p.handle)
	d.enqueue(0, records(0, 0, 200, 10))
	d.enqueue(1, records(1, 0, 200, 10))
	waitFinished(t, p, 400)
	if p.maxSame != 1 {
		t.Fatalf("%d records of one key ran at once", p.maxSame)
	}
	if p.maxTotal > 4 || p.maxTotal < 2 {
		t.Fatalf("at most %d ran at once; want 2..4 (MaxConcurrency 4)", p.maxTotal)
	}
	p.mu.Lock()
	for key, offs := range p.order {
		for i := 1; i < len(offs); i++ {
			if offs[i] != offs[i-1]+10 {
				t.Fatalf("key %s: offsets %v, want each key's in order", key, offs)
			}
		}
		if len(offs) != 20 {
			t.Fatalf("key %s: %d records, want 20", key, len(offs))
		}
	}
	p.mu.Unlock()
	waitUntil(t, "both partitions commit 200", func() bool {
		o := d.commitPoints(nil, maxFinishedBytes)
		return o[0].Offset == 200 && o[1].Offset == 200
	})
}

// heldOf is the dispatcher's held records.
func heldOf(d *dispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held
}

// waitUntil polls cond (bounded).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond) // bounded poll
	}
}

func TestDispatchPerPartitionRunsOneAtATimePerPartition(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return fmt.Sprint(r.Partition) })
	d, _ := testDispatcher(t, PerPartition, 8, 1000, p.handle)
	d.enqueue(0, records(0, 0, 50, 10))
	d.enqueue(1, records(1, 0, 50, 10))
	waitFinished(t, p, 100)
	if p.maxSame != 1 || p.maxTotal != 2 {
		t.Fatalf("per partition: max %d at once in one partition (want 1), %d in all (want 2)", p.maxSame, p.maxTotal)
	}
}

func TestDispatchUnorderedUsesEveryWorker(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return string(r.Key) })
	p.gate = make(chan struct{})
	d, _ := testDispatcher(t, Unordered, 5, 1000, p.handle)
	d.enqueue(0, records(0, 0, 20, 1)) // one key: still concurrent
	waitUntil(t, "5 workers run one key's records, unordered", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.total == 5
	})
	close(p.gate)
	waitFinished(t, p, 20)
	if p.maxTotal != 5 {
		t.Fatalf("max %d at once, want 5", p.maxTotal)
	}
}

// TestDispatchPausesAtTheCapAndResumes checks back-pressure: once the held
// records reach MaxPending the partitions holding some are paused, and they
// are resumed as they drain.
// handOver is the poll loop's hand-over of a partition's records when
// its wait for the workers (waitDrain) gives up at once: the records, then
// the pause of the partitions behind if the cap was reached.
func handOver(d *dispatcher, id int32, recs []*kgo.Record) {
	if d.enqueue(id, recs) {
		d.pauseBehind()
	}
}

func TestDispatchPausesAtTheCapAndResumes(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return string(r.Key) })
	p.gate = make(chan struct{})
	d, f := testDispatcher(t, PerKey, 2, 10, p.handle)
	handOver(d, 0, records(0, 0, 6, 3))
	if got := f.pausedSet(); len(got) != 0 {
		t.Fatalf("paused %v under the cap", got)
	}
	handOver(d, 1, records(1, 0, 6, 3))
	if got := f.pausedSet(); len(got) != 2 {
		t.Fatalf("paused %v at 12 held (cap 10); want both partitions", got)
	}
	close(p.gate)
	waitFinished(t, p, 12)
	waitUntil(t, "every partition is resumed", func() bool { return len(f.pausedSet()) == 0 })
	if got := d.pausedSet(); len(got) != 0 {
		t.Fatalf("the dispatcher still marks %v paused", got)
	}
}

// TestDispatchPauseCannotOutrunTheDrain forces the order that left a
// partition paused for ever: the records that reach the cap are handed
// over, the workers drain them and resume before the hand-over's pause is
// issued. The pause is decided and issued under the dispatcher's lock
// (pauseBehind), so whatever the workers do afterwards finds it, and the
// client's paused set ends equal to the dispatcher's (empty).
func TestDispatchPauseCannotOutrunTheDrain(t *testing.T) {
	f := &fakeFetching{paused: map[int32]bool{}}
	var d *dispatcher
	drained := make(chan struct{})
	f.onPause = func() {
		// Give the workers every chance to finish the held records before
		// the pause lands. Issued from the poll loop after the hand-over
		// (as it was), they did, and their resume came first; issued inside
		// the hand-over, under the dispatcher's lock, the workers cannot
		// finish until it landed, and this hold ends at its bound.
		select {
		case <-drained:
		case <-time.After(time.Second):
		}
	}
	var handled atomic.Int32
	h := func(_, _ context.Context, _ *kgo.Record) bool {
		if handled.Add(1) == 4 {
			close(drained)
		}
		return true
	}
	g := fakeGroup(t, f)
	d = newDispatcher(g, Topic{Name: "t", Handle: h, Ordering: PerKey, MaxConcurrency: 8, MaxPending: 2})
	g.mu.Lock()
	g.topics["t"] = d
	g.mu.Unlock()
	d.assign([]int32{0})
	handOver(d, 0, records(0, 0, 4, 4))
	waitUntil(t, "the four records are finished and nothing is held", func() bool { return heldOf(d) == 0 })
	waitUntil(t, "the client's paused set equals the dispatcher's", func() bool {
		return fmt.Sprint(f.pausedSet()) == fmt.Sprint(d.pausedSet())
	})
	if got := f.pausedSet(); len(got) != 0 {
		t.Fatalf("partitions %v stay paused in the client with nothing held", got)
	}
}

// TestDispatchLatePauseDoesNotOutliveRevoke: a partition paused when it is
// revoked is resumed in the client as it is forgotten, so the same
// partition assigned back is fetched again.
func TestDispatchLatePauseDoesNotOutliveRevoke(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return string(r.Key) })
	p.gate = make(chan struct{})
	d, f := testDispatcher(t, PerKey, 1, 2, p.handle)
	handOver(d, 0, records(0, 0, 3, 1))
	if got := f.pausedSet(); len(got) != 1 {
		t.Fatalf("paused %v at the cap; want partition 0", got)
	}
	idle, parts := d.release([]int32{0})
	close(p.gate)
	for _, ch := range idle {
		<-ch
	}
	d.forget(parts, false)
	d.assign([]int32{0})
	if got := f.pausedSet(); len(got) != 0 {
		t.Fatalf("partition %v assigned back is still paused in the client", got)
	}
}

// TestDispatchReassignedPartitionWaitsForEarlierHandlers: after a
// partition is lost while a handler of key k runs, and is assigned back,
// key k's next record does not start until that handler returned.
func TestDispatchReassignedPartitionWaitsForEarlierHandlers(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return string(r.Key) })
	p.gate = make(chan struct{})
	d, _ := testDispatcher(t, PerKey, 4, 100, p.handle)
	d.g.cfg.RevokeTimeout = time.Minute
	d.enqueue(0, records(0, 0, 1, 1)) // key k0 at offset 0 runs and blocks
	waitUntil(t, "offset 0 runs", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.total == 1
	})
	_, parts := d.release([]int32{0}) // lost: nothing waited for
	d.forget(parts, true)
	d.assign([]int32{0})
	d.enqueue(0, records(0, 0, 1, 1)) // the same record, fetched again
	// Give a second handler of the key the chance to start (bounded).
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		two := p.total == 2
		p.mu.Unlock()
		if two {
			break
		}
	}
	close(p.gate)
	waitFinished(t, p, 2)
	if p.maxSame != 1 {
		t.Fatalf("%d handlers of one key ran at once after the partition came back", p.maxSame)
	}
}

// TestDispatchReleaseDropsQueuedAndCommitsOnlyFinished checks revocation:
// queued records are dropped, the running one is waited for, and the
// commit stops at the first record that did not finish.
func TestDispatchReleaseDropsQueuedAndCommitsOnlyFinished(t *testing.T) {
	p := newProbe(func(r *kgo.Record) string { return string(r.Key) })
	p.gate = make(chan struct{})
	d, _ := testDispatcher(t, PerKey, 1, 100, p.handle)
	d.enqueue(0, records(0, 0, 5, 1)) // one key: offset 0 runs, 1..4 wait
	waitUntil(t, "offset 0 runs", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.total == 1
	})
	idle, parts := d.release([]int32{0})
	if len(idle) != 1 {
		t.Fatalf("release returned %d idle channels, want 1 (one handler running)", len(idle))
	}
	close(p.gate)
	<-idle[0]
	offsets := d.commitPoints(parts, maxFinishedBytes)
	if o := offsets[0]; o.Offset != 1 {
		t.Fatalf("commit after release %+v, want offset 1 (only offset 0 finished)", o)
	}
	d.forget(parts, false)
	if d.held != 0 {
		t.Fatalf("%d held after forget", d.held)
	}
	// Records of a released partition are not taken any more.
	d.enqueue(0, records(0, 5, 3, 1))
	if d.held != 0 {
		t.Fatalf("a released partition took %d records", d.held)
	}
}

// TestDispatchStuckKeyDoesNotPauseItsPartition: one key's record never
// finishes; the other keys' records behind it finish. They must not count
// toward MaxPending: the partition stays unpaused, so the other keys of
// the partition keep being fetched.
func TestDispatchStuckKeyDoesNotPauseItsPartition(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	var handled atomic.Int32
	h := func(_, _ context.Context, r *kgo.Record) bool {
		if string(r.Key) == "stuck" {
			<-stuck
			return true
		}
		handled.Add(1)
		return true
	}
	d, f := testDispatcher(t, PerKey, 4, 8, h)
	d.enqueue(0, []*kgo.Record{{Topic: "t", Partition: 0, Offset: 0, Key: []byte("stuck")}})
	for i := range 20 {
		d.enqueue(0, []*kgo.Record{{Topic: "t", Partition: 0, Offset: int64(1 + i), Key: fmt.Appendf(nil, "k%d", i%3)}})
		waitUntil(t, "the record behind the stuck key is handled", func() bool { return handled.Load() == int32(i+1) })
	}
	if got := f.pausedSet(); len(got) != 0 {
		t.Fatalf("partitions %v paused with one unfinished record (MaxPending 8)", got)
	}
	if n := heldOf(d); n != 1 {
		t.Fatalf("%d records held, want 1 (the stuck one)", n)
	}
}

// TestDispatchWaitsForTheNextCommitOnceMaxUncommittedFinished: with no
// commit taken (a committer stuck on a broker that does not answer), the
// workers stop taking records once maxUncommitted finished (those running
// then still finish); the next commit taken lets them go on.
func TestDispatchWaitsForTheNextCommitOnceMaxUncommittedFinished(t *testing.T) {
	const conc, n = 4, 400
	var finished atomic.Int32
	h := func(_, _ context.Context, _ *kgo.Record) bool {
		finished.Add(1)
		return true
	}
	f := &fakeFetching{paused: map[int32]bool{}}
	g := &Group{commitSig: make(chan struct{}, 1), commitNowSig: make(chan struct{}, 1), handlerCtx: context.Background(), fetching: f}
	d := newDispatcher(g, Topic{Name: "t", Handle: h, Ordering: Unordered, MaxConcurrency: conc, MaxPending: 1000})
	d.assign([]int32{0})
	d.enqueue(0, records(0, 0, n, 1))
	limit := maxUncommitted(d.t)
	idle := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.active == 0
	}
	waitUntil(t, "the workers stop", idle)
	if got := int(finished.Load()); got < limit || got > limit+conc-1 {
		t.Fatalf("%d records finished with no commit taken; want %d to %d (maxUncommitted, and those running then)", got, limit, limit+conc-1)
	}
	d.commitPoints(nil, 0)
	waitUntil(t, "the workers stop again", func() bool { return idle() && int(finished.Load()) >= 2*limit })
	if got := int(finished.Load()); got > 2*limit+2*(conc-1) {
		t.Fatalf("%d records finished after one commit taken; want at most %d", got, 2*limit+2*(conc-1))
	}
	for range n {
		if int(finished.Load()) == n {
			break
		}
		d.commitPoints(nil, 0)
		waitUntil(t, "the workers stop", idle)
	}
	if got := int(finished.Load()); got != n {
		t.Fatalf("%d of %d records finished with commits taken", got, n)
	}
}

// TestDispatchWaitDrainPausesOnlyWhatStaysBehind: at the cap, the poll
// loop's wait ends once the workers drained half of it, and then nothing
// is paused; with a handler stuck, it ends once nothing finished for a
// tick, and the partitions behind are paused as before.
func TestDispatchWaitDrainPausesOnlyWhatStaysBehind(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		t.Run(fmt.Sprintf("stuck=%t", stuck), func(t *testing.T) {
			p := newProbe(func(r *kgo.Record) string { return string(r.Key) })
			p.gate = make(chan struct{})
			d, f := testDispatcher(t, PerKey, 2, 10, p.handle)
			// Only the workers' drain ends the wait of the free handlers;
			// the stuck one's ends at its first tick without progress.
			d.g.cfg.hooks = hooks{drainTick: time.Hour, maxDrainWait: time.Hour}
			if stuck {
				d.g.cfg.hooks = hooks{drainTick: time.Millisecond, maxDrainWait: time.Hour}
			}
			if !d.enqueue(0, records(0, 0, 12, 3)) {
				t.Fatal("12 records held under a cap of 10 must be at the cap")
			}
			if !stuck {
				close(p.gate)
			}
			d.waitDrain(context.Background(), time.Now().Add(time.Hour))
			d.pauseBehind()
			got := f.pausedSet()
			if stuck {
				if len(got) != 1 {
					t.Fatalf("paused %v with a handler stuck at the cap; want partition 0", got)
				}
				close(p.gate)
				waitFinished(t, p, 12)
				waitUntil(t, "partition 0 resumed", func() bool { return len(f.pausedSet()) == 0 })
				return
			}
			if len(got) != 0 {
				t.Fatalf("paused %v although the workers drained the cap", got)
			}
			waitFinished(t, p, 12)
		})
	}
}

// TestWaitAtCapBoundsTheWholeWaitOverTopics: two topics reach their cap in
// one hand-over. The poll loop's wait for their workers is bounded by
// maxDrainWait in all, not per topic: otherwise every topic at its cap
// added another maxDrainWait to how long the group's other topics wait
// for the poll loop. Here the first topic's handler is stuck and uses up
// the whole wait; the second topic, reached after it, must not wait again
// (its handler would be let go only if it did), and is paused.
func TestWaitAtCapBoundsTheWholeWaitOverTopics(t *testing.T) {
	f := &fakeFetching{paused: map[int32]bool{}}
	g := fakeGroup(t, f)
	g.pollCtx = context.Background()
	g.cfg.hooks = hooks{drainTick: time.Hour, maxDrainWait: 300 * time.Millisecond}
	gateA, gateB := make(chan struct{}), make(chan struct{})
	var finishedB atomic.Int32
	hA := func(_, _ context.Context, _ *kgo.Record) bool { <-gateA; return true }
	hB := func(_, _ context.Context, _ *kgo.Record) bool { <-gateB; finishedB.Add(1); return true }
	a := newDispatcher(g, Topic{Name: "a", Handle: hA, Ordering: PerKey, MaxConcurrency: 1, MaxPending: 2})
	b := newDispatcher(g, Topic{Name: "b", Handle: hB, Ordering: PerKey, MaxConcurrency: 1, MaxPending: 2})
	a.assign([]int32{0}) // the fake's paused set is by partition: a's is 0, b's 1
	b.assign([]int32{1})
	closedB := false
	defer func() {
		close(gateA)
		if !closedB {
			close(gateB)
		}
	}()
	if !a.enqueue(0, records(0, 0, 3, 1)) || !b.enqueue(1, records(1, 0, 3, 1)) {
		t.Fatal("3 records held under a cap of 2 must be at the cap")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.waitAtCap([]*dispatcher{a, b})
	}()
	waitUntil(t, "the wait at the cap ends", func() bool {
		select {
		case <-done:
			return true
		default:
		}
		b.mu.Lock()
		waiting := b.drainSig != nil
		b.mu.Unlock()
		if waiting && !closedB {
			close(gateB) // the second topic waits: its handlers drain it
			closedB = true
		}
		return false
	})
	if closedB {
		t.Fatal("the second topic at its cap was waited for after the first used up maxDrainWait")
	}
	if got := f.pausedSet(); len(got) != 2 {
		t.Fatalf("paused %v; want both topics' partitions (0 and 1), the wait being over", got)
	}
}

// TestDispatchLostPartitionAssignedBack: partition 0 is lost while the
// record at offset gap is unfinished (its handler gives up as the
// partition is released) and every other fetched record is finished;
// then it is assigned back, at the group's commit at. What the lost
// assignment finished from there on is skipped, and only that: not when
// the group's commit was set back below the one the lost assignment knew,
// not below where the lost assignment started reading, and not once an
// assignment without the partition came in between.
func TestDispatchLostPartitionAssignedBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		// known is the commit the lost assignment found (-1: none read),
		// from..to the records it fetched, gap the one left unfinished.
		known, from, to, gap int64
		at                   int64 // the group's commit when assigned back
		between              bool  // an assignment without partition 0 came first
		betweenNone          bool  // an assignment without the topic came first (onAssigned's assign(nil))
		want                 []int64
	}{
		{name: "at the commit it knew", known: 0, from: 0, to: 9, gap: 3, at: 0, want: []int64{3}},
		{name: "a commit that moved on", known: 0, from: 0, to: 9, gap: 3, at: 5, want: nil},
		{name: "its commit set back", known: 5, from: 5, to: 14, gap: 8, at: 2, want: span64(2, 14)},
		{name: "below where it started", known: -1, from: 5, to: 14, gap: 8, at: 2, want: []int64{2, 3, 4, 8}},
		{name: "an assignment in between", known: 0, from: 0, to: 9, gap: 3, at: 0, between: true, want: span64(0, 9)},
		{name: "an assignment without the topic in between", known: 0, from: 0, to: 9, gap: 3, at: 0, betweenNone: true, want: span64(0, 9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				second   bool
				again    []int64
				gapTaken atomic.Bool
			)
			gapRuns := make(chan struct{})
			h := func(_, stopping context.Context, r *kgo.Record) bool {
				if r.Offset == tc.gap && gapTaken.CompareAndSwap(false, true) {
					close(gapRuns)
					<-stopping.Done()
					return false // given up: the partition is being released
				}
				mu.Lock()
				defer mu.Unlock()
				if second {
					again = append(again, r.Offset)
				}
				return true
			}
			d, _ := testDispatcher(t, Unordered, 4, 100, h)
			if tc.known >= 0 {
				d.resumeFrom(0, tc.known, nil)
			}
			d.enqueue(0, recordsFrom(tc.from, tc.to))
			<-gapRuns
			waitUntil(t, "every record but the gap is finished", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return d.parts[0].win.unfinished == 1
			})
			idle, parts := d.release([]int32{0})
			for _, ch := range idle {
				<-ch
			}
			d.forget(parts, true)
			if tc.between {
				d.assign([]int32{1})
			}
			if tc.betweenNone {
				d.assign(nil)
			}
			mu.Lock()
			second = true
			mu.Unlock()
			d.assign([]int32{0})
			d.resumeFrom(0, tc.at, nil)
			d.enqueue(0, recordsFrom(tc.at, tc.to))
			waitUntil(t, "the partition assigned back has nothing unfinished", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return d.parts[0].win.unfinished == 0
			})
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(again)
			if !slices.Equal(again, tc.want) {
				t.Fatalf("assigned back at %d, handled again %v; want %v", tc.at, again, tc.want)
			}
		})
	}
}

// recordsFrom is partition 0's records at offsets from..to, one key each.
func recordsFrom(from, to int64) []*kgo.Record {
	return records(0, from, int(to-from+1), int(to-from+1))
}

// span64 is the offsets first..last.
func span64(first, last int64) []int64 {
	var out []int64
	for o := first; o <= last; o++ {
		out = append(out, o)
	}
	return out
}

// TestDispatchLostPartitionsLingeringHandler: partition 0 is lost while
// the handler of the record at offset 3 still runs (it ignores its
// cancelled context), every other fetched record finished; the partition
// is assigned back at the group's commit (0). The lingering handler
// returns (given up, or finished) either before the partition assigned
// back reads what the lost assignment finished (resumeFrom) or only once
// the partition was resumed and its records fetched again. Offset 3 is
// skipped only when it finished before resumeFrom; otherwise it is
// handled again, and not before the lingering handler returned.
func TestDispatchLostPartitionsLingeringHandler(t *testing.T) {
	const gap = 3
	for _, tc := range []struct {
		name          string
		finished      bool // what the lingering handler returns
		beforeResume  bool // it returns between assign and resumeFrom
		wantHandledAt []int64
	}{
		{name: "given up after the partition was resumed", finished: false, wantHandledAt: []int64{gap}},
		{name: "finished after the partition was resumed", finished: true, wantHandledAt: []int64{gap}},
		{name: "given up before resumeFrom", finished: false, beforeResume: true, wantHandledAt: []int64{gap}},
		{name: "finished before resumeFrom", finished: true, beforeResume: true, wantHandledAt: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu        sync.Mutex
				second    bool
				again     []int64
				lingering bool // the lost assignment's handler of gap runs
				overlap   bool // the gap was handled again while it ran
				gapTaken  atomic.Bool
			)
			gapRuns, gapReturn := make(chan struct{}), make(chan struct{})
			h := func(_, _ context.Context, r *kgo.Record) bool {
				if r.Offset == gap && gapTaken.CompareAndSwap(false, true) {
					mu.Lock()
					lingering = true
					mu.Unlock()
					close(gapRuns)
					<-gapReturn // ignores its context: still runs once the partition is lost
					mu.Lock()
					lingering = false
					mu.Unlock()
					return tc.finished
				}
				mu.Lock()
				defer mu.Unlock()
				if second {
					again = append(again, r.Offset)
					overlap = overlap || (r.Offset == gap && lingering)
				}
				return true
			}
			d, _ := testDispatcher(t, Unordered, 4, 100, h)
			d.g.cfg.RevokeTimeout = time.Minute
			d.g.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			d.resumeFrom(0, 0, nil)
			d.enqueue(0, recordsFrom(0, 9))
			<-gapRuns
			waitUntil(t, "every record but the gap is finished", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return d.parts[0].win.unfinished == 1
			})
			_, parts := d.release([]int32{0}) // lost: nothing waited for
			d.forget(parts, true)
			mu.Lock()
			second = true
			mu.Unlock()
			d.assign([]int32{0})
			lingered := func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return len(d.lingering[0]) > 0
			}
			if !lingered() {
				t.Fatal("the lost assignment's handler of the gap does not linger")
			}
			if tc.beforeResume {
				close(gapReturn)
				waitUntil(t, "the lingering handler returned", func() bool { return !lingered() })
			}
			d.resumeFrom(0, 0, nil)
			d.enqueue(0, recordsFrom(0, 9))
			if !tc.beforeResume {
				d.mu.Lock()
				p := d.parts[0]
				waiting, unfinished := p.waiting, p.win.unfinished
				d.mu.Unlock()
				if !waiting || unfinished != 1 {
					t.Fatalf("assigned back with the gap's handler still running: waiting %v, %d unfinished; want waiting, 1 (the gap)", waiting, unfinished)
				}
				close(gapReturn)
			}
			waitUntil(t, "the partition assigned back has nothing unfinished", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return d.parts[0].win.unfinished == 0
			})
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(again)
			if !slices.Equal(again, tc.wantHandledAt) {
				t.Fatalf("handled again %v after the partition came back; want %v", again, tc.wantHandledAt)
			}
			if overlap {
				t.Fatal("the gap was handled again while the lost assignment's handler of it still ran")
			}
		})
	}
}

// TestDispatchLostPartitionIsNotKeptPastItsUse: what a lost assignment
// finished is dropped once nothing can take it up any more: by the
// partition assigned back once its first records are handed over without
// the group's commit having been read (resumeFrom did not run), and by a
// dispatcher that is closed (a topic removed, the group stopped) while it
// holds lost partitions.
func TestDispatchLostPartitionIsNotKeptPastItsUse(t *testing.T) {
	h := func(_, _ context.Context, _ *kgo.Record) bool { return true }
	d, _ := testDispatcher(t, Unordered, 4, 100, h)
	lose := func(id int32) {
		d.enqueue(id, records(id, 0, 3, 3))
		waitUntil(t, "the records are finished", func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.parts[id].win.unfinished == 0
		})
		idle, parts := d.release([]int32{id})
		for _, ch := range idle {
			<-ch
		}
		d.forget(parts, true)
	}
	lose(0)
	d.assign([]int32{0})
	d.enqueue(0, records(0, 0, 3, 3)) // no resumeFrom: the group's offsets were not read
	d.mu.Lock()
	prior := d.parts[0].prior
	d.mu.Unlock()
	if prior != nil {
		t.Fatal("the partition assigned back still holds its lost assignment after its first records were handed over")
	}
	d.assign([]int32{1})
	lose(1)
	d.close()
	d.mu.Lock()
	kept := len(d.lost)
	d.mu.Unlock()
	if kept != 0 {
		t.Fatalf("a closed dispatcher keeps %d lost partitions", kept)
	}
}
