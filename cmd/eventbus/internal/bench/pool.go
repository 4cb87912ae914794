package bench

import (
	"hash/fnv"
	"sync"
)

// keyPool runs jobs on a fixed set of workers, every job of one key on the
// same worker, so that a key's jobs run one at a time in the order they were
// submitted while different keys run in parallel (as far as they hash to
// different workers). It is the hand-written concurrency a raw franz-go
// application would add to consume with a slow handler.
type keyPool struct {
	queues []chan func()
	wg     sync.WaitGroup
}

// newKeyPool starts workers goroutines, each with a queue of queue jobs
// waiting.
func newKeyPool(workers, queue int) *keyPool {
	p := &keyPool{queues: make([]chan func(), workers)}
	for i := range p.queues {
		q := make(chan func(), queue)
		p.queues[i] = q
		p.wg.Go(func() {
			for job := range q {
				job()
			}
		})
	}
	return p
}

// worker is the index of the worker that runs key's jobs.
func (p *keyPool) worker(key []byte) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(len(p.queues)))
}

// submit queues job on key's worker, waiting while that worker's queue is
// full. It must not be called after close.
func (p *keyPool) submit(key []byte, job func()) {
	p.queues[p.worker(key)] <- job
}

// close lets the workers finish the jobs queued and waits for them.
func (p *keyPool) close() {
	for _, q := range p.queues {
		close(q)
	}
	p.wg.Wait()
}

// commitTracker follows the records of one partition handed to workers in
// offset order and finished in any order, and says up to where they may be
// committed: the last record of the unbroken run of finished records from
// the oldest one not yet committable.
type commitTracker[T any] struct {
	mu    sync.Mutex
	base  uint64 // ticket of items[0]
	items []T
	done  []bool
}

// add appends v (the next record, in offset order) and returns its ticket
// for finish.
func (t *commitTracker[T]) add(v T) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.items = append(t.items, v)
	t.done = append(t.done, false)
	return t.base + uint64(len(t.items)-1)
}

// finish marks the item of ticket done. When that makes items committable
// it forgets them and returns the last one and true; otherwise (an older
// item is still running) false.
func (t *commitTracker[T]) finish(ticket uint64) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var zero T
	i := ticket - t.base
	if ticket < t.base || i >= uint64(len(t.items)) {
		return zero, false // unknown or already committable: nothing new
	}
	t.done[i] = true
	n := 0
	for n < len(t.done) && t.done[n] {
		n++
	}
	if n == 0 {
		return zero, false
	}
	last := t.items[n-1]
	clear(t.items[:n]) // let the records go
	t.items, t.done = t.items[n:], t.done[n:]
	t.base += uint64(n)
	return last, true
}

// pending is how many items were added and are not committable yet.
func (t *commitTracker[T]) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.items)
}
