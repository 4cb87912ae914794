package consumer

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// dispatcher runs one topic's records: per-key (or per-partition) queues
// handled one record at a time, different queues concurrently on at most
// Topic.MaxConcurrency workers, taken in turn so that a busy key never
// starves the others. It owns each assigned partition's window, from which
// commits are taken, and pauses fetching of the partitions that are behind
// once Topic.MaxPending records are held.
//
// Fetching never waits for it: the poll loop hands records over (enqueue)
// and goes on.
type dispatcher struct {
	g *Group
	t Topic

	// mu guards everything below, and the partitions' and queues' fields.
	mu       sync.Mutex
	parts    map[int32]*partition
	ready    []*keyQueue // queues waiting for a worker, in turn
	readyAt  int         // ready[readyAt:] are waiting
	active   int         // running workers
	held     int         // records in the partitions' windows
	anyPause bool        // some partition is paused
	closed   bool
}

// partition is one assigned partition of a dispatcher's topic.
type partition struct {
	id int32
	// ctx is the handlers' context: cancelled when the partition is
	// released after its revoke bound, or the group stops past its bound.
	ctx    context.Context
	cancel context.CancelFunc
	// stopping is done as soon as the partition is being released:
	// retries and dead-letter writes give up (the record is then not
	// finished, and comes again to whoever owns the partition next).
	stopping context.Context
	stop     context.CancelFunc

	next      int64 // the lowest offset still accepted; -1: any
	win       *window
	committed int64 // the last offset committed (or found committed); -1: none
	// committedSeq is win.finished when the last commit was taken: a
	// commit is due when either moved on.
	committedSeq uint64
	// skip are offsets finished before this member got the partition (read
	// from the commit's metadata): they are not handled again.
	skip     []span
	keys     map[string]*keyQueue
	running  int
	paused   bool
	released bool          // being released: nothing new starts
	gone     bool          // released and forgotten: its window no longer counts
	idle     chan struct{} // closed when running drops to 0, if waited for
}

// keyQueue is the records of one key (one partition, in per-partition
// order; one record, unordered) in offset order. Exactly one worker holds
// it at a time: it is idle (no records, not in ready), in ready, or busy.
type keyQueue struct {
	part  *partition
	key   string
	recs  []*kgo.Record
	busy  bool
	ready bool
}

func newDispatcher(g *Group, t Topic) *dispatcher {
	return &dispatcher{g: g, t: t, parts: map[int32]*partition{}}
}

// assign starts the partitions' state (a partition already assigned keeps
// its own).
func (d *dispatcher) assign(ids []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for _, id := range ids {
		if d.parts[id] != nil {
			continue
		}
		p := &partition{id: id, next: -1, win: newWindow(), committed: -1, keys: map[string]*keyQueue{}}
		p.ctx, p.cancel = context.WithCancel(d.g.handlerCtx)
		p.stopping, p.stop = context.WithCancel(p.ctx)
		d.parts[id] = p
	}
}

// owns reports whether some partition is assigned (and not being
// released).
func (d *dispatcher) owns() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.parts {
		if !p.released {
			return true
		}
	}
	return false
}

// startAt drops, on partition id, records below offset: the group's
// position when the partition was assigned. Records fetched before an
// earlier revocation are so never handled twice by this member.
func (d *dispatcher) startAt(id int32, offset int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.parts[id]; p != nil && p.win.size() == 0 && offset > p.next {
		p.next = offset
	}
}

// resumeFrom tells partition id where the group's commit stands and which
// offsets above it were already finished (from the commit's metadata).
func (d *dispatcher) resumeFrom(id int32, committed int64, finished []span) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.parts[id]; p != nil && p.win.size() == 0 {
		p.committed = max(p.committed, committed)
		p.skip = finished
	}
}

// skipped reports whether offset was finished by an earlier owner, and
// drops the skip ranges below it (records come in offset order).
func (p *partition) skipped(offset int64) bool {
	for len(p.skip) > 0 && p.skip[0].last < offset {
		p.skip = p.skip[1:]
	}
	return len(p.skip) > 0 && p.skip[0].first <= offset
}

// enqueue hands a partition's fetched records to the workers and returns
// the partitions to pause, if the held records reached the cap.
func (d *dispatcher) enqueue(id int32, recs []*kgo.Record) (pause []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parts[id]
	if d.closed || p == nil || p.released {
		return nil // not ours (any more): its owner reads it
	}
	for _, r := range recs {
		if r.Offset < p.next {
			continue // fetched again after a rebalance: already here
		}
		p.next = r.Offset + 1
		p.win.add(r.Offset, r.LeaderEpoch)
		d.held++
		if p.skipped(r.Offset) {
			before := p.win.size()
			p.win.finish(r.Offset)
			d.held -= before - p.win.size()
			d.g.commitSoon()
			continue
		}
		q := d.queueFor(p, r)
		q.recs = append(q.recs, r)
		if !q.busy && !q.ready {
			d.pushReady(q)
		}
	}
	for d.active < d.t.MaxConcurrency {
		q := d.popReady()
		if q == nil {
			break
		}
		d.active++
		go d.work(q)
	}
	if d.held < d.t.MaxPending {
		return nil
	}
	for _, p := range d.parts {
		if !p.paused && !p.released && p.win.size() > 0 {
			p.paused, d.anyPause = true, true
			pause = append(pause, p.id)
		}
	}
	return pause
}

// queueFor returns the queue r joins.
func (d *dispatcher) queueFor(p *partition, r *kgo.Record) *keyQueue {
	var key string
	switch d.t.Ordering {
	case Unordered:
		return &keyQueue{part: p}
	case PerKey:
		key = string(r.Key)
	}
	q := p.keys[key]
	if q == nil {
		q = &keyQueue{part: p, key: key}
		p.keys[key] = q
	}
	return q
}

func (d *dispatcher) pushReady(q *keyQueue) {
	q.ready = true
	if d.readyAt > 0 && d.readyAt >= len(d.ready)/2 {
		n := copy(d.ready, d.ready[d.readyAt:])
		clear(d.ready[n:])
		d.ready, d.readyAt = d.ready[:n], 0
	}
	d.ready = append(d.ready, q)
}

// popReady takes the next queue with work, marking it busy; queues of
// released partitions are dropped on the way.
func (d *dispatcher) popReady() *keyQueue {
	for d.readyAt < len(d.ready) {
		q := d.ready[d.readyAt]
		d.ready[d.readyAt] = nil
		d.readyAt++
		q.ready = false
		if q.part.released || len(q.recs) == 0 {
			continue
		}
		q.busy = true
		return q
	}
	return nil
}

// work handles queues until none is ready: one record of a queue, then the
// queue goes to the back of the line, so keys take turns.
func (d *dispatcher) work(q *keyQueue) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for q != nil {
		p := q.part
		if len(q.recs) == 0 { // dropped by a release since it was taken
			q.busy = false
			q = d.popReady()
			continue
		}
		r := q.recs[0]
		q.recs[0] = nil
		q.recs = q.recs[1:]
		p.running++
		d.mu.Unlock()

		finished := d.t.Handle(p.ctx, p.stopping, r)

		d.mu.Lock()
		p.running--
		if finished {
			before := p.win.size()
			p.win.finish(r.Offset)
			d.g.commitSoon() // the commit point or the finished list moved
			if !p.gone {
				d.held -= before - p.win.size()
			}
		} else {
			// Not finished: the partition is being released. Nothing
			// after it on this key may run before it, so the key's
			// other records are left to the partition's next owner.
			q.recs = nil
		}
		if p.running == 0 && p.idle != nil {
			close(p.idle)
			p.idle = nil
		}
		q.busy = false
		switch {
		case len(q.recs) > 0 && !p.released:
			d.pushReady(q)
		case len(q.recs) == 0 && p.keys[q.key] == q:
			delete(p.keys, q.key)
		}
		if resume := d.resumable(); len(resume) > 0 {
			d.mu.Unlock()
			d.g.fetching.ResumeFetchPartitions(map[string][]int32{d.t.Name: resume})
			d.mu.Lock()
		}
		q = d.popReady()
	}
	d.active--
}

// resumable unpauses the paused partitions that have drained: all of them
// once the held records fell under half the cap, else those holding none.
func (d *dispatcher) resumable() (resume []int32) {
	if !d.anyPause {
		return nil
	}
	d.anyPause = false
	for _, p := range d.parts {
		if !p.paused {
			continue
		}
		if d.held < d.t.MaxPending/2 || p.win.size() == 0 {
			p.paused = false
			resume = append(resume, p.id)
			continue
		}
		d.anyPause = true
	}
	return resume
}

// release stops the partitions' dispatching: queued records are dropped
// (their next owner reads them), retries give up, and the returned
// channel is closed once no handler of theirs runs any more.
func (d *dispatcher) release(ids []int32) (idle []<-chan struct{}, parts []*partition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		p := d.parts[id]
		if p == nil || p.released {
			continue
		}
		p.released = true
		p.stop()
		for k, q := range p.keys {
			q.recs = nil // a busy queue's running record is not among them
			delete(p.keys, k)
		}
		if p.running > 0 {
			p.idle = make(chan struct{})
			idle = append(idle, p.idle)
		}
		parts = append(parts, p)
	}
	return idle, parts
}

// forget removes released partitions, cancelling whatever of theirs still
// runs, and returns those that were paused (pauses outlive assignments in
// the client, so they must be lifted).
func (d *dispatcher) forget(parts []*partition) (paused []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range parts {
		p.cancel()
		p.gone = true
		d.held -= p.win.size()
		if p.paused {
			paused = append(paused, p.id)
		}
		if d.parts[p.id] == p {
			delete(d.parts, p.id)
		}
	}
	return paused
}

// commitPoint is what a partition's commit carries.
type commitPoint struct {
	kgo.EpochOffset
	metadata string // the finished offsets above it (finished.go)
	seq      uint64 // the window's finish count when taken
}

// commitPoints returns, for each partition whose commit point or finished
// offsets moved since its last commit, what to commit; parts nil means
// every partition not being released.
func (d *dispatcher) commitPoints(parts []*partition) map[int32]commitPoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[int32]commitPoint{}
	add := func(p *partition) {
		offset, epoch := p.win.commitPoint()
		if offset < 0 || (offset <= p.committed && p.win.finished == p.committedSeq) {
			return
		}
		out[p.id] = commitPoint{
			EpochOffset: kgo.EpochOffset{Epoch: epoch, Offset: offset},
			metadata:    encodeFinished(offset, p.win.finishedSpans()),
			seq:         p.win.finished,
		}
	}
	if parts != nil {
		for _, p := range parts {
			add(p)
		}
		return out
	}
	for _, p := range d.parts {
		if !p.released {
			add(p)
		}
	}
	return out
}

// committedAt records a successful commit.
func (d *dispatcher) committedAt(points map[int32]commitPoint, parts []*partition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	set := func(p *partition) {
		if c, ok := points[p.id]; ok {
			p.committed = max(p.committed, c.Offset)
			p.committedSeq = max(p.committedSeq, c.seq)
		}
	}
	if parts != nil {
		for _, p := range parts {
			set(p)
		}
		return
	}
	for _, p := range d.parts {
		set(p)
	}
}

// close releases every partition (see release).
func (d *dispatcher) close() (idle []<-chan struct{}, parts []*partition) {
	d.mu.Lock()
	d.closed = true
	ids := make([]int32, 0, len(d.parts))
	for id := range d.parts {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	return d.release(ids)
}
