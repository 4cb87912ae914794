package consumer

import "sort"

// window tracks one partition's records from the first unfinished one to
// the last fetched: which offsets are finished, and so which offset may be
// committed. Records enter in offset order (add) and finish in any order
// (finish); the commit point only moves past a record once it and every
// record before it are finished, so a commit never skips unfinished work.
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
}

type windowEntry struct {
	offset int64
	epoch  int32
	done   bool
}

func newWindow() *window { return &window{commit: -1, epoch: -1} }

// add appends a fetched record; offsets must increase.
func (w *window) add(offset int64, epoch int32) {
	if w.head > 0 && w.head >= len(w.entries)/2 {
		n := copy(w.entries, w.entries[w.head:])
		w.entries = w.entries[:n]
		w.head = 0
	}
	w.entries = append(w.entries, windowEntry{offset: offset, epoch: epoch})
}

// finish marks offset finished and reports whether the commit point moved.
func (w *window) finish(offset int64) bool {
	live := w.entries[w.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i == len(live) || live[i].offset != offset {
		return false
	}
	if live[i].done {
		return false
	}
	live[i].done = true
	w.finished++
	moved := false
	for w.head < len(w.entries) && w.entries[w.head].done {
		e := w.entries[w.head]
		w.commit, w.epoch = e.offset+1, e.epoch
		w.entries[w.head] = windowEntry{}
		w.head++
		moved = true
	}
	return moved
}

// size is the number of records in the window: unfinished ones and the
// finished ones behind the first unfinished.
func (w *window) size() int { return len(w.entries) - w.head }

// commitPoint is the offset to commit: the first unfinished record's, or
// past the last finished one when none is unfinished (-1: nothing known).
func (w *window) commitPoint() (offset int64, epoch int32) {
	if w.size() > 0 {
		return w.entries[w.head].offset, w.epoch
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
			spans[len(spans)-1].last = e.offset
		case e.done:
			spans = append(spans, span{first: e.offset, last: e.offset})
			in = true
		default:
			in = false
		}
	}
	return spans
}
