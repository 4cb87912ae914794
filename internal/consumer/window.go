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
	live[i].done = true
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
