package consumer

import "sort"

// window tracks one partition's records from the first unfinished one to
// the last fetched: which offsets are finished, and so which offset may be
// committed. Records enter in offset order (add) and finish in any order
// (finish); the commit point only moves past a record once it and every
// record before it are finished, so a commit never skips unfinished work.
//
// Finished records behind an unfinished one are kept as runs (one entry
// for a range of finished offsets), so a stuck record costs memory for the
// unfinished records after it, not for every record finished since.
//
// A window is not safe for concurrent use; the dispatcher's lock guards it.
type window struct {
	entries []windowEntry // entries[head:] are in the window, in offset order
	head    int
	// commit is the offset to commit (the next one to read after the
	// finished prefix) and epoch the leader epoch of the record before it;
	// commit is -1 until a record finished.
	commit int64
	epoch  int32
	// finished counts finish calls: a commit taken at one count carries
	// every finished offset up to it.
	finished uint64
	// records counts the records in the window, unfinished the unfinished
	// ones among them.
	records, unfinished int
	// compactAt is the number of entries at which finished runs are
	// merged next.
	compactAt int
}

// windowEntry is one unfinished record, or a run of finished ones.
type windowEntry struct {
	first, last int64 // offsets; equal for an unfinished record
	epoch       int32 // the leader epoch of the record at last
	n           int   // records in the run
	done        bool
}

// minCompact is the fewest entries at which finished runs are merged.
const minCompact = 64

func newWindow() *window { return &window{commit: -1, epoch: -1, compactAt: minCompact} }

// add appends a fetched record; offsets must increase.
func (w *window) add(offset int64, epoch int32) {
	if w.head > 0 && w.head >= len(w.entries)/2 {
		n := copy(w.entries, w.entries[w.head:])
		clear(w.entries[n:])
		w.entries = w.entries[:n]
		w.head = 0
	}
	w.entries = append(w.entries, windowEntry{first: offset, last: offset, epoch: epoch, n: 1})
	w.records++
	w.unfinished++
	if len(w.entries)-w.head >= w.compactAt {
		w.compact()
		w.compactAt = max(minCompact, 2*(len(w.entries)-w.head))
	}
}

// compact merges adjacent finished entries into one run.
func (w *window) compact() {
	live := w.entries[w.head:]
	out := live[:0]
	for _, e := range live {
		if n := len(out); n > 0 && e.done && out[n-1].done {
			out[n-1].last, out[n-1].epoch = e.last, e.epoch
			out[n-1].n += e.n
			continue
		}
		out = append(out, e)
	}
	clear(live[len(out):])
	w.entries = w.entries[:w.head+len(out)]
}

// finish marks offset finished and reports whether the commit point moved.
func (w *window) finish(offset int64) bool {
	live := w.entries[w.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].last >= offset })
	if i == len(live) || live[i].first != offset || live[i].done {
		return false // never added, or finished already
	}
	live[i].done = true
	w.finished++
	w.unfinished--
	moved := false
	for w.head < len(w.entries) && w.entries[w.head].done {
		e := w.entries[w.head]
		w.commit, w.epoch = e.last+1, e.epoch
		w.records -= e.n
		w.entries[w.head] = windowEntry{}
		w.head++
		moved = true
	}
	return moved
}

// size is the number of records in the window: unfinished ones and the
// finished ones behind the first unfinished.
func (w *window) size() int { return w.records }

// commitPoint is the offset to commit: the first unfinished record's, or
// past the last finished one when none is unfinished (-1: nothing known).
func (w *window) commitPoint() (offset int64, epoch int32) {
	if w.head < len(w.entries) {
		return w.entries[w.head].first, w.epoch
	}
	return w.commit, w.epoch
}

// finishedSpans lists the ranges of finished records above the commit
// point (behind an unfinished one), in offset order.
func (w *window) finishedSpans() []span {
	var spans []span
	in := false
	for _, e := range w.entries[w.head:] {
		switch {
		case e.done && in:
			spans[len(spans)-1].last = e.last
		case e.done:
			spans = append(spans, span{first: e.first, last: e.last})
			in = true
		default:
			in = false
		}
	}
	return spans
}
