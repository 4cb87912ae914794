package consumer

import (
	"math/rand/v2"
	"testing"
)

func TestWindowCommitsOnlyTheFinishedPrefix(t *testing.T) {
	w := newWindow()
	for _, o := range []int64{10, 11, 13, 14} { // 12 compacted away
		w.add(o, 3)
	}
	if w.finish(11) || w.commit != -1 {
		t.Fatalf("finishing 11 before 10 moved the commit to %d", w.commit)
	}
	if !w.finish(10) || w.commit != 12 || w.epoch != 3 {
		t.Fatalf("after 10 and 11: commit %d epoch %d, want 12 epoch 3", w.commit, w.epoch)
	}
	if w.finish(14) || w.commit != 12 {
		t.Fatalf("14 finished before 13 moved the commit to %d", w.commit)
	}
	if w.size() != 2 {
		t.Fatalf("size %d, want 2 (13 unfinished, 14 behind it)", w.size())
	}
	if !w.finish(13) || w.commit != 15 || w.size() != 0 {
		t.Fatalf("all finished: commit %d size %d, want 15 and 0", w.commit, w.size())
	}
	if w.finish(99) {
		t.Fatal("finishing an offset never added moved the commit")
	}
}

// TestWindowRandomOrder finishes offsets in random order and checks, after
// every step, that the commit is exactly the first unfinished offset.
func TestWindowRandomOrder(t *testing.T) {
	for round := range 50 {
		rng := rand.New(rand.NewPCG(uint64(round), 1))
		w := newWindow()
		n := 1 + rng.IntN(300)
		var offsets []int64
		next := int64(rng.IntN(1000))
		for range n {
			w.add(next, 0)
			offsets = append(offsets, next)
			next += 1 + int64(rng.IntN(3))
		}
		done := map[int64]bool{}
		for _, i := range rng.Perm(n) {
			w.finish(offsets[i])
			done[offsets[i]] = true
			want := int64(-1)
			for j, o := range offsets {
				if !done[o] {
					if j > 0 {
						want = offsets[j-1] + 1
					}
					break
				}
				if j == n-1 {
					want = o + 1
				}
			}
			if w.commit != want {
				t.Fatalf("round %d: commit %d, want %d", round, w.commit, want)
			}
		}
		if w.size() != 0 {
			t.Fatalf("round %d: %d left in the window", round, w.size())
		}
	}
}

// TestWindowKeepsFinishedRecordsAsRuns: behind one stuck record, records
// that finish are merged into runs, so the window's entries stay few
// while its commit point, size and finished spans stay exact.
func TestWindowKeepsFinishedRecordsAsRuns(t *testing.T) {
	w := newWindow()
	w.add(0, 1) // stuck
	for o := int64(1); o <= 10_000; o++ {
		w.add(o, 1)
		if o%1000 != 0 { // every thousandth stays unfinished
			w.finish(o)
		}
	}
	if got := len(w.entries) - w.head; got > 2*minCompact {
		t.Fatalf("%d entries for 11 unfinished records and runs between them; want few", got)
	}
	if w.size() != 10_001 || w.unfinished != 11 {
		t.Fatalf("size %d unfinished %d, want 10001 and 11", w.size(), w.unfinished)
	}
	if o, _ := w.commitPoint(); o != 0 {
		t.Fatalf("commit point %d, want 0 (offset 0 is stuck)", o)
	}
	spans := w.finishedSpans()
	if len(spans) != 10 || spans[0] != (span{1, 999}) || spans[9] != (span{9001, 9999}) {
		t.Fatalf("finished spans %v, want 10 runs from {1 999} to {9001 9999}", spans)
	}
	w.finish(0)
	if o, _ := w.commitPoint(); o != 1000 {
		t.Fatalf("commit point %d after the stuck record finished, want 1000", o)
	}
	for o := int64(1000); o <= 10_000; o += 1000 {
		w.finish(o)
	}
	if o, _ := w.commitPoint(); o != 10_001 || w.size() != 0 || w.unfinished != 0 {
		t.Fatalf("all finished: commit point %d size %d unfinished %d, want 10001, 0, 0", o, w.size(), w.unfinished)
	}
}
