package consumer

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// dispatcher runs one topic's records: per-key (or per-partition) queues
// handled one record at a time, different queues concurrently on at most
// Topic.MaxConcurrency workers, taken in turn so that a busy key never
// starves the others. It owns each assigned partition's window, from which
// commits are taken, and pauses fetching of the partitions that are behind
// once Topic.MaxPending unfinished records (waiting or running) are held.
// Records finished behind an unfinished one do not count: a stuck key
// holds up the other keys of its partition only once its own records
// reach the cap.
//
// Fetching waits for it only at the cap: the poll loop hands records over
// (enqueue) and goes on, unless they brought the topic to its cap; then it
// waits a moment for the workers (waitDrain) before pausing the partitions
// still behind (pauseBehind).
//
// Pausing and resuming fetching is decided and issued in one place: inside
// the dispatcher's lock, together with the decision. The client's paused
// set of the topic so always equals the partitions marked paused here, in
// whichever order the poll loop, the workers and the rebalance callbacks
// run.
type dispatcher struct {
	g *Group
	t Topic

	// mu guards everything below, and the partitions' and queues' fields.
	mu       sync.Mutex
	parts    map[int32]*partition
	ready    []*keyQueue // queues waiting for a worker, in turn
	readyAt  int         // ready[readyAt:] are waiting
	active   int         // running workers
	held     int         // unfinished records (waiting or running) of the partitions
	anyPause bool        // some partition is paused
	// uncommitted counts the records finished since the last commit of
	// every partition was taken (commitPoints): at commitEvery, a commit
	// is due; at maxUncommitted, workers take no new record until the next
	// commit is taken (behind).
	uncommitted int
	// finishes counts the records finished; drainSig, when set, is
	// closed once the held records are under half the cap (waitDrain).
	finishes uint64
	drainSig chan struct{}
	closed   bool
	// lingering are released partitions whose handlers still ran when
	// they were forgotten (lost, or past their revoke bound): a partition
	// assigned back starts its keys only once they returned.
	lingering map[int32][]*partition
	// inherited are, per partition, the idle channels of the handlers
	// still running in an earlier dispatcher of the same topic (removed
	// from the group, then added back): they are waited for like
	// lingering ones.
	inherited map[int32][]<-chan struct{}
	// lost are the partitions lost (the session ended: nothing of theirs
	// could be committed) since the topic's last assignment: assigned back
	// at the next one, a partition skips what they finished (resumeFrom).
	lost map[int32]*partition
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
	from      int64 // the first offset accepted; -1: none yet
	win       *window
	committed int64 // the last offset committed (or found committed); -1: none
	// committedSeq is win.finished when the last commit was taken: a
	// commit is due when either moved on.
	committedSeq uint64
	// skip are offsets finished before this member got the partition (read
	// from the commit's metadata, or finished by its lost assignment
	// before, prior): they are not handled again.
	skip []span
	// prior is this partition's assignment before, if it was lost: what
	// it finished is skipped too (resumeFrom).
	prior    *partition
	keys     map[string]*keyQueue
	running  int
	paused   bool
	released bool          // being released: nothing new starts
	gone     bool          // released and forgotten: its window no longer counts
	idle     chan struct{} // closed when running drops to 0, if waited for
	// waiting: an earlier assignment's handlers of this partition still
	// run; the queues that would be ready wait in deferred until they
	// returned (or their bound passed), so one key never runs twice at
	// once in this process.
	waiting  bool
	deferred []*keyQueue
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
	return &dispatcher{g: g, t: t, parts: map[int32]*partition{}, lingering: map[int32][]*partition{}, inherited: map[int32][]<-chan struct{}{}, lost: map[int32]*partition{}}
}

// assign starts the partitions' state (a partition already assigned keeps
// its own). A partition whose earlier assignment's handlers still run
// starts its keys once they returned, or RevokeTimeout passed. A partition
// lost since the last assignment and assigned back keeps what it finished
// (prior); the lost ones not assigned back are forgotten.
func (d *dispatcher) assign(ids []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	defer clear(d.lost)
	for _, id := range ids {
		if d.parts[id] != nil {
			continue
		}
		p := &partition{id: id, next: -1, from: -1, win: newWindow(), committed: -1, keys: map[string]*keyQueue{}, prior: d.lost[id]}
		p.ctx, p.cancel = context.WithCancel(d.g.handlerCtx)
		p.stopping, p.stop = context.WithCancel(p.ctx)
		d.parts[id] = p
		var before []<-chan struct{}
		for _, old := range d.lingering[id] {
			before = append(before, old.idle)
		}
		before = append(before, d.inheritedRunning(id)...)
		if len(before) > 0 {
			p.waiting = true
			go d.startAfter(p, before)
		}
	}
}

// inherit takes over, from the dispatcher that read the same topic before
// it was removed, the handlers it left running, so that its partitions
// assigned here wait for them as for this dispatcher's lingering ones.
func (d *dispatcher) inherit(old *dispatcher) {
	if old == nil {
		return
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, ps := range old.lingering {
		for _, p := range ps {
			d.inherited[id] = append(d.inherited[id], p.idle)
		}
	}
	for id := range old.inherited {
		d.inherited[id] = append(d.inherited[id], old.inheritedRunning(id)...)
	}
}

// inheritedRunning returns partition id's inherited channels not yet
// closed, dropping the closed ones.
func (d *dispatcher) inheritedRunning(id int32) []<-chan struct{} {
	var open []<-chan struct{}
	for _, ch := range d.inherited[id] {
		select {
		case <-ch:
		default:
			open = append(open, ch)
		}
	}
	if len(open) == 0 {
		delete(d.inherited, id)
	} else {
		d.inherited[id] = open
	}
	return open
}

// leftRunning reports whether handlers of this dispatcher, or of those
// before it, still run after every partition was forgotten.
func (d *dispatcher) leftRunning() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lingering) > 0 {
		return true
	}
	for id := range d.inherited {
		if len(d.inheritedRunning(id)) > 0 {
			return true
		}
	}
	return false
}

// startAfter lets partition p's queues run once the handlers of its earlier
// assignments returned (each closes its channel), or RevokeTimeout passed:
// the same bound a revocation waits.
func (d *dispatcher) startAfter(p *partition, before []<-chan struct{}) {
	bound := time.NewTimer(d.g.cfg.RevokeTimeout)
	defer bound.Stop()
wait:
	for _, ch := range before {
		select {
		case <-ch:
		case <-bound.C:
			d.g.cfg.Logger.Warn("eventbus: handlers of a partition's earlier assignment still running when it was assigned back; starting it anyway",
				"group", d.g.cfg.Group, "topic", d.t.Name, "partition", p.id, "revoke_timeout", d.g.cfg.RevokeTimeout)
			break wait
		case <-p.stopping.Done():
			return // released meanwhile: its queues are dropped
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p.waiting = false
	for _, q := range p.deferred {
		q.ready = false
		if !p.released && len(q.recs) > 0 {
			d.pushReady(q)
		}
	}
	p.deferred = nil
	d.startWorkers()
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
// offsets above it were already finished: from the commit's metadata, and
// by this process before the partition was lost (prior), which it could
// not commit.
func (d *dispatcher) resumeFrom(id int32, committed int64, finished []span) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.parts[id]; p != nil && p.win.size() == 0 {
		p.committed = max(p.committed, committed)
		p.skip = mergeSpans(finished, p.prior.finishedFrom(committed))
		p.prior = nil
	}
}

// finishedFrom returns the offsets from the group's commit c on that a
// lost assignment p finished (nil p: none). A commit below the one p
// knew means the group's offsets were set back: nothing is skipped then.
func (p *partition) finishedFrom(c int64) []span {
	if p == nil || p.from < 0 || c < p.committed {
		return nil
	}
	var out []span
	if x, _ := p.win.commitPoint(); x > max(c, p.from) {
		out = append(out, span{first: max(c, p.from), last: x - 1})
	}
	for _, s := range p.win.finishedSpans() {
		if s.last >= c {
			out = append(out, span{first: max(s.first, c), last: s.last})
		}
	}
	return out
}

// mergeSpans returns the union of a and b, sorted and disjoint.
func mergeSpans(a, b []span) []span {
	if len(b) == 0 {
		return a
	}
	all := slices.Concat(a, b)
	slices.SortFunc(all, func(x, y span) int { return cmp.Compare(x.first, y.first) })
	out := all[:1]
	for _, s := range all[1:] {
		if last := &out[len(out)-1]; s.first <= last.last+1 {
			last.last = max(last.last, s.last)
			continue
		}
		out = append(out, s)
	}
	return out
}

// skipped reports whether offset was finished by an earlier owner, and
// drops the skip ranges below it (records come in offset order).
func (p *partition) skipped(offset int64) bool {
	for len(p.skip) > 0 && p.skip[0].last < offset {
		p.skip = p.skip[1:]
	}
	return len(p.skip) > 0 && p.skip[0].first <= offset
}

// enqueue hands a partition's fetched records to the workers, and reports
// whether the held records reached the cap with partitions that would be
// paused (pausable): the poll loop then waits a little for the workers
// (waitDrain) and pauses those still behind (pauseBehind).
func (d *dispatcher) enqueue(id int32, recs []*kgo.Record) (atCap bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parts[id]
	if d.closed || p == nil || p.released {
		return false // not ours (any more): its owner reads it
	}
	for _, r := range recs {
		if r.Offset < p.next {
			continue // below where this assignment started
		}
		p.next = r.Offset + 1
		if p.from < 0 {
			p.from = r.Offset
			// resumeFrom runs before anything is handed over, or not at
			// all (the group's offsets could not be read): the lost
			// assignment is of no use any more.
			p.prior = nil
		}
		p.win.add(r.Offset, r.LeaderEpoch)
		d.held++
		if p.skipped(r.Offset) {
			p.win.finish(r.Offset)
			d.held--
			d.g.commitSoon()
			continue
		}
		q := d.queueFor(p, r)
		q.recs = append(q.recs, r)
		switch {
		case q.busy || q.ready:
		case p.waiting:
			q.ready = true // taken out of turn by startAfter
			p.deferred = append(p.deferred, q)
		default:
			d.pushReady(q)
		}
	}
	d.startWorkers()
	return d.pausable()
}

// pausable reports whether the held records reached the cap while some
// partition holding unfinished records is still fetched.
func (d *dispatcher) pausable() bool {
	if d.closed || d.held < d.t.MaxPending {
		return false
	}
	for _, p := range d.parts {
		if !p.paused && !p.released && p.win.unfinished > 0 {
			return true
		}
	}
	return false
}

// pauseBehind pauses fetching of the partitions that are behind (holding
// unfinished records) if the held records are at the cap.
func (d *dispatcher) pauseBehind() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.pausable() {
		return
	}
	var pause []int32
	for _, p := range d.parts {
		if !p.paused && !p.released && p.win.unfinished > 0 {
			p.paused, d.anyPause = true, true
			pause = append(pause, p.id)
		}
	}
	d.g.fetching.PauseFetchPartitions(map[string][]int32{d.t.Name: pause})
}

// drainTick is how long the poll loop waits for a topic at its cap
// (waitDrain) without a record of it finishing before it pauses the
// topic's partitions instead; maxDrainWait bounds the whole wait, for
// every topic a hand-over brought to its cap together (waitAtCap), and so
// how long the group's other topics wait for the poll loop.
const (
	drainTick    = 20 * time.Millisecond
	maxDrainWait = 250 * time.Millisecond
)

// waitDrain waits, before the poll loop fetches again, while the workers
// bring the held records of a topic at its cap under half of it (where
// paused partitions would be resumed): until they did, nothing of the
// topic finished for drainTick, deadline passed (maxDrainWait after the
// hand-over, for all the topics it brought to their cap: waitAtCap) or
// ctx ended.
//
// Pausing at once would cost more when handlers keep up: the client's
// next fetch, sent while the topic's partitions are paused, holds only
// the partitions that have nothing to read (a retry topic, drained
// partitions) and waits at the broker up to FetchMaxWait; partitions
// resumed meanwhile are fetched only once it returned. A backlog handled
// in bursts of MaxPending records then stalled for a FetchMaxWait after
// each burst. Not polling for a while instead keeps the fetched records
// buffered in the client, bounded as they were (one fetch per broker), and
// the next fetch holds every partition.
func (d *dispatcher) waitDrain(ctx context.Context, deadline time.Time) {
	tick := drainTick
	if h := d.g.cfg.hooks; h.drainTick > 0 {
		tick = h.drainTick
	}
	for {
		wait := min(tick, time.Until(deadline))
		if wait <= 0 {
			return
		}
		d.mu.Lock()
		if !d.pausable() || d.drainedHalf() {
			d.mu.Unlock()
			return
		}
		seen := d.finishes
		sig := make(chan struct{})
		d.drainSig = sig
		d.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-sig:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		d.mu.Lock()
		progressed := d.finishes != seen
		if d.drainSig == sig {
			d.drainSig = nil
		}
		d.mu.Unlock()
		if !progressed {
			return
		}
	}
}

// drainedHalf reports whether the held records are under half the cap
// (at most half, for a cap of one).
func (d *dispatcher) drainedHalf() bool {
	return d.held < max(d.t.MaxPending/2, 1)
}

// signalDrained wakes a waitDrain once the held records are under half
// the cap.
func (d *dispatcher) signalDrained() {
	if d.drainSig != nil && d.drainedHalf() {
		close(d.drainSig)
		d.drainSig = nil
	}
}

// startWorkers starts workers for the ready queues, up to MaxConcurrency,
// unless the commits are behind.
func (d *dispatcher) startWorkers() {
	for d.active < d.t.MaxConcurrency && !d.behind() {
		q := d.popReady()
		if q == nil {
			break
		}
		d.active++
		go d.work(q)
	}
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
			before := p.win.unfinished
			p.win.finish(r.Offset)
			// The commit point or the finished list moved: commit soon,
			// or now once enough finished since the last commit.
			if d.uncommitted++; d.uncommitted == commitEvery(d.t) {
				d.g.commitNow()
			} else {
				d.g.commitSoon()
			}
			d.finishes++
			if !p.gone {
				d.held -= before - p.win.unfinished
				d.signalDrained()
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
			if p.gone {
				d.unlinger(p)
			}
		}
		q.busy = false
		switch {
		case len(q.recs) > 0 && !p.released:
			d.pushReady(q)
		case len(q.recs) == 0 && p.keys[q.key] == q:
			delete(p.keys, q.key)
		}
		if resume := d.resumable(); len(resume) > 0 {
			d.g.fetching.ResumeFetchPartitions(map[string][]int32{d.t.Name: resume})
		}
		if d.behind() {
			break // the next commit taken starts workers again
		}
		q = d.popReady()
	}
	d.active--
}

// behind reports whether maxUncommitted records finished since the last
// commit was taken: no record is started until the next one is
// (commitPoints), so that a broker slow to answer a commit does not let
// the work a crash would hand again grow with the time it takes.
func (d *dispatcher) behind() bool {
	return d.uncommitted >= maxUncommitted(d.t)
}

// resumable unpauses the paused partitions that have drained: all of them
// once the unfinished records fell under half the cap, else those holding
// none.
func (d *dispatcher) resumable() (resume []int32) {
	if !d.anyPause {
		return nil
	}
	d.anyPause = false
	for _, p := range d.parts {
		if !p.paused {
			continue
		}
		if d.held < d.t.MaxPending/2 || p.win.unfinished == 0 {
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
// runs, and lifts their pauses (pauses outlive assignments in the client).
// A partition whose handlers still run lingers until they return, so that
// the partition assigned back waits for them (startAfter). Lost partitions
// are kept until the next assignment (lost).
func (d *dispatcher) forget(parts []*partition, lost bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var paused []int32
	for _, p := range parts {
		p.cancel()
		p.gone = true
		p.prior = nil
		if lost {
			d.lost[p.id] = p
		}
		d.held -= p.win.unfinished
		d.signalDrained()
		if p.paused {
			p.paused = false
			paused = append(paused, p.id)
		}
		if d.parts[p.id] == p {
			delete(d.parts, p.id)
		}
		if p.running > 0 {
			if p.idle == nil {
				p.idle = make(chan struct{})
			}
			d.lingering[p.id] = append(d.lingering[p.id], p)
		}
	}
	if len(paused) > 0 {
		d.g.fetching.ResumeFetchPartitions(map[string][]int32{d.t.Name: paused})
	}
}

// unlinger drops a forgotten partition whose handlers all returned.
func (d *dispatcher) unlinger(p *partition) {
	rest := d.lingering[p.id][:0]
	for _, old := range d.lingering[p.id] {
		if old != p {
			rest = append(rest, old)
		}
	}
	if len(rest) == 0 {
		delete(d.lingering, p.id)
	} else {
		d.lingering[p.id] = rest
	}
}

// pausedSet is the partitions this dispatcher has paused in the client.
func (d *dispatcher) pausedSet() []int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int32
	for _, p := range d.parts {
		if p.paused {
			out = append(out, p.id)
		}
	}
	return out
}

// commitPoint is what a partition's commit carries.
type commitPoint struct {
	kgo.EpochOffset
	metadata string // the finished offsets above it (finished.go)
	seq      uint64 // the window's finish count when taken
}

// commitPoints returns, for each partition whose commit point or finished
// offsets moved since its last commit, what to commit, with at most
// metadataLimit bytes of finished offsets; parts nil means every partition
// not being released.
func (d *dispatcher) commitPoints(parts []*partition, metadataLimit int) map[int32]commitPoint {
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
			metadata:    encodeFinished(offset, p.win.finishedSpans(), metadataLimit),
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
	d.uncommitted = 0 // every partition's finished records are in this commit
	d.startWorkers()  // any held back by behind
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

// close releases every partition (see release), and forgets the lost
// ones.
func (d *dispatcher) close() (idle []<-chan struct{}, parts []*partition) {
	d.mu.Lock()
	d.closed = true
	clear(d.lost) // no assignment takes them up any more
	ids := make([]int32, 0, len(d.parts))
	for id := range d.parts {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	return d.release(ids)
}
