package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKeyPoolOrderPerKey submits interleaved jobs of many keys and checks
// that each key's jobs ran in the order submitted.
func TestKeyPoolOrderPerKey(t *testing.T) {
	p := newKeyPool(8, 4)
	var mu sync.Mutex
	got := map[string][]int{}
	for i := range 2000 {
		key := fmt.Sprintf("tenant-%d", i%37)
		p.submit([]byte(key), func() {
			mu.Lock()
			got[key] = append(got[key], i)
			mu.Unlock()
		})
	}
	p.close()
	total := 0
	for key, seq := range got {
		if !slices.IsSorted(seq) {
			t.Fatalf("%s's jobs ran out of order: %v", key, seq)
		}
		total += len(seq)
	}
	if total != 2000 {
		t.Fatalf("%d jobs ran, want 2000", total)
	}
}

// TestKeyPoolParallelAcrossKeys checks that keys of different workers run at
// the same time: each job waits until all of them started.
func TestKeyPoolParallelAcrossKeys(t *testing.T) {
	p := newKeyPool(4, 1)
	keys := map[int][]byte{} // worker -> a key it runs
	for i := 0; len(keys) < 4; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if _, ok := keys[p.worker(k)]; !ok {
			keys[p.worker(k)] = k
		}
	}
	var started sync.WaitGroup
	started.Add(len(keys))
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	for _, k := range keys {
		p.submit(k, func() {
			started.Done()
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				t.Error("jobs of different workers did not run at the same time")
			}
		})
	}
	p.close()
}

func TestKeyPoolWorkerIsStable(t *testing.T) {
	p := newKeyPool(256, 1)
	defer p.close()
	for i := range 100 {
		k := []byte(fmt.Sprintf("tenant-%04d", i))
		if w := p.worker(k); w != p.worker(k) || w < 0 || w >= 256 {
			t.Fatalf("worker(%s) = %d, not stable or out of range", k, w)
		}
	}
}

func TestCommitTracker(t *testing.T) {
	var tr commitTracker[int64]
	tickets := make([]uint64, 5)
	for i := range tickets {
		tickets[i] = tr.add(int64(100 + i)) // offsets 100..104
	}
	step := func(i int, want int64, wantOK bool) {
		t.Helper()
		got, ok := tr.finish(tickets[i])
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("finish(offset %d) = %d, %t; want %d, %t", 100+i, got, ok, want, wantOK)
		}
	}
	step(2, 0, false)  // 100 and 101 still running
	step(1, 0, false)  // 100 still running
	step(0, 102, true) // 100..102 done
	step(0, 0, false)  // finishing twice changes nothing
	step(4, 0, false)  // 103 still running
	step(3, 104, true) // all done
	if n := tr.pending(); n != 0 {
		t.Fatalf("%d pending after all finished", n)
	}
	next := tr.add(105)
	if got, ok := tr.finish(next); !ok || got != 105 {
		t.Fatalf("finish(105) = %d, %t", got, ok)
	}
}

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestDrainCounterDrained(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newDrainCounter(4, clock.now)
	for range 4 {
		if !c.begin() {
			t.Fatal("begin refused before the counter froze")
		}
		clock.advance(500 * time.Millisecond)
		c.end()
	}
	c.end() // beyond the target: not counted
	d, err := c.await(context.Background(), time.Hour, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Drain{Handled: 4, Seconds: 2, PerSecond: 2, Drained: true}
	if d != want {
		t.Fatalf("await = %+v, want %+v", d, want)
	}
	if c.begin() {
		t.Fatal("begin allowed after the counter froze")
	}
}

func TestDrainCounterPhaseEnds(t *testing.T) {
	c := newDrainCounter(1_000_000, time.Now)
	c.begin()
	c.end()
	c.begin()
	c.end()
	d, err := c.await(context.Background(), 50*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d.Handled != 2 || d.Drained || d.Seconds < 0.05 || d.Seconds > 0.06 {
		t.Fatalf("await = %+v, want 2 events over the 50 ms phase, not drained", d)
	}
	c.end()
	if d2 := c.freeze(time.Now()); d2.Handled != 2 {
		t.Fatalf("counted %d after freezing, want 2", d2.Handled)
	}
}

func TestDrainCounterNothingHandled(t *testing.T) {
	c := newDrainCounter(10, time.Now)
	if _, err := c.await(context.Background(), time.Second, 10*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "no event handled") {
		t.Fatalf("await with no handler call = %v", err)
	}
}

func TestParsePhases(t *testing.T) {
	got, err := ParsePhases([]string{"Fairness", " slow ", "throughput", "slow"})
	if err != nil || !slices.Equal(got, []string{PhaseThroughput, PhaseSlow, PhaseFairness}) {
		t.Fatalf("ParsePhases = %v, %v; want them in run order, once each", got, err)
	}
	if all, err := ParsePhases(nil); err != nil || !slices.Equal(all, DefaultPhases) || slices.Contains(all, PhaseOutbox) || slices.Contains(all, PhaseInbox) {
		t.Fatalf("ParsePhases(nil) = %v, %v; want all but those needing PostgreSQL", all, err)
	}
	if pg, err := ParsePhases([]string{"inbox", "outbox", "slow"}); err != nil || !slices.Equal(pg, []string{PhaseSlow, PhaseOutbox, PhaseInbox}) {
		t.Fatalf("ParsePhases(inbox, outbox, slow) = %v, %v", pg, err)
	}
	if _, err := ParsePhases([]string{"slow", "nope"}); err == nil || !strings.Contains(err.Error(), `no phase "nope"`) {
		t.Fatalf("ParsePhases(nope) = %v", err)
	}
}

func TestTopicsOfPhases(t *testing.T) {
	tp := topics{prefix: "core.bench_x", rates: []int{1000, 10000}, phases: []string{PhaseSlow, PhaseFairness}}
	want := []string{"core.bench_x_slow_all.recorded", "core.bench_x_fair_unblocked.recorded", "core.bench_x_fair_blocked.recorded", "core.bench_x_fair_blocked_small_cap.recorded"}
	if got := tp.all(); !slices.Equal(got, want) {
		t.Fatalf("topics = %v, want %v", got, want)
	}
	tp.phases = AllPhases
	if n := len(tp.all()); n != 2+2+4+1+1+3+1+8+2+3+1 {
		t.Fatalf("%d topics for every phase, want 28", n)
	}
	tp.phases = []string{PhaseGateway}
	if got, want := tp.all(), []string{"core.bench_x_gw_pub.recorded", "core.bench_x_gw_push.recorded"}; !slices.Equal(got, want) {
		t.Fatalf("gateway topics = %v, want %v", got, want)
	}
}
