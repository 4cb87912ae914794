package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/wire"
)

// The slow-handler phase: a backlog published before any consumer starts,
// drained by handlers that each take SlowHandlerTime, as a database write
// would.
const (
	// SlowHandlerTime is what the slow handler spends on each event.
	SlowHandlerTime = 10 * time.Millisecond
	// SlowKeys is how many tenants (record keys) the backlog is spread over.
	SlowKeys = 1_000
	// SlowPartitions is the partition count of the backlog's topic (every
	// topic of a run has it).
	SlowPartitions = topicPartitions
	// DefaultBacklog is Config.Backlog's default: events waiting before the
	// consumers start.
	DefaultBacklog = 20_000
	// QuickBacklog is Config.Backlog's default with Config.Quick.
	QuickBacklog = 1_000
	// SlowPoolWorkers is the worker count of the raw side's key-ordered pool.
	SlowPoolWorkers = 256
	// slowPoolQueue is how many jobs each of the pool's workers may have
	// waiting before the poll loop waits for it.
	slowPoolQueue = 64
	// TunedMaxConcurrency and TunedMaxPending are the tuned side's
	// Delivery options.
	TunedMaxConcurrency = 1_024
	TunedMaxPending     = 20_000
)

// SlowHandler compares how fast a handler of SlowHandlerTime per event
// drains a backlog of Backlog events over Keys tenants: ours with default
// Delivery options and tuned, raw franz-go with a goroutine per partition
// and with a key-ordered pool. Each side reads the same records from the
// beginning, in a group of its own.
type SlowHandler struct {
	// Workload is the backlog, what the handler spends on each event, and
	// the tuned side's Delivery options. Each side stops once it handled
	// the backlog (or Config.MaxEvents of it) or the phase's duration
	// passed since its first handler call.
	Workload
	// PoolWorkers is the raw pool's worker count.
	PoolWorkers int `json:"poolWorkers"`

	// Ours is Subscribe with default options.
	Ours Drain `json:"ours"`
	// OursTuned is Subscribe with MaxConcurrency and MaxPending.
	OursTuned Drain `json:"oursTuned"`
	// RawPerPartition is a kgo group consumer handing each partition's
	// records to a goroutine of its own (franz-go's
	// goroutine_per_partition_consuming example): at most Partitions×
	// 1/HandlerMs events/s.
	RawPerPartition Drain `json:"rawPerPartition"`
	// RawPool is a kgo group consumer handing records to PoolWorkers
	// workers, each key always to the same worker (by hash), committing
	// each partition up to its oldest unfinished record. Its drain rate is
	// bounded by its busiest worker: 1,000 keys hash unevenly onto 256
	// workers (the busiest gets 9), so a round-robin backlog drains at most
	// at about 11,000 events/s rather than 25,600.
	RawPool Drain `json:"rawPool"`

	// Ratio is Ours/RawPool events per second (higher is better);
	// RatioTuned OursTuned/RawPool.
	Ratio      float64 `json:"ratio"`
	RatioTuned float64 `json:"ratioTuned"`
}

// Workload is what a backlog phase consumes and how: Backlog events
// published before the consumers started, spread round robin over Keys
// tenants (record keys) on a topic of Partitions partitions; handlers that
// spend HandlerMs on each event (0: they return at once); and the Delivery
// options, MaxConcurrency and MaxPending, the phase names (0: defaults).
type Workload struct {
	HandlerMs      float64 `json:"handlerMs,omitempty"`
	Keys           int     `json:"keys"`
	Partitions     int     `json:"partitions"`
	Backlog        int     `json:"backlog"`
	MaxConcurrency int     `json:"maxConcurrency,omitempty"`
	MaxPending     int     `json:"maxPending,omitempty"`
}

// Drain is how fast one side handled a backlog: Handled events in Seconds,
// from its first handler call to its last (when it handled the whole
// backlog: Drained) or to the end of the phase.
type Drain struct {
	Handled   int64   `json:"handled"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"eventsPerSecond"`
	Drained   bool    `json:"drained"`
}

// slowSide starts one side of the slow-handler phase consuming topic from
// the beginning, calling slowWork(c) for each event, and returns how to stop
// it once the counter is frozen.
type slowSide func(ctx context.Context, topic string, c *drainCounter) (stop func(), err error)

// slowHandler runs the slow-handler phase.
func (r *runner) slowHandler(ctx context.Context) (*SlowHandler, error) {
	s := &SlowHandler{Workload: Workload{
		HandlerMs:      ms(SlowHandlerTime),
		Keys:           SlowKeys,
		Partitions:     SlowPartitions,
		Backlog:        r.cfg.Backlog,
		MaxConcurrency: TunedMaxConcurrency,
		MaxPending:     TunedMaxPending,
	}, PoolWorkers: SlowPoolWorkers}
	topic := r.topics.slow()
	step := r.step(PhaseSlow)
	r.progress("%s slow handler: publishing a backlog of %d events over %d tenants (raw producer)", step, s.Backlog, SlowKeys)
	if _, err := r.fillBacklog(ctx, topic, s.Backlog); err != nil {
		return nil, fmt.Errorf("slow handler: backlog: %w", err)
	}
	tuned := eventbus.Delivery{
		MaxConcurrency: TunedMaxConcurrency,
		MaxPending:     TunedMaxPending,
	}
	sides := []struct {
		name, what string
		drain      *Drain
		start      slowSide
	}{
		{"ours", "Subscribe, default options", &s.Ours, r.oursSlow(eventbus.Delivery{})},
		{"ours-tuned", fmt.Sprintf("Subscribe, MaxConcurrency %d, MaxPending %d", TunedMaxConcurrency, TunedMaxPending),
			&s.OursTuned, r.oursSlow(tuned)},
		{"raw-partition", "kgo, a goroutine per partition", &s.RawPerPartition, r.rawPerPartitionSlow},
		{"raw-pool", fmt.Sprintf("kgo, a key-ordered pool of %d workers", SlowPoolWorkers), &s.RawPool, r.rawPoolSlow},
	}
	for _, side := range sides {
		r.progress("%s slow handler (%s per event), %s: %s, up to %s", step, SlowHandlerTime, side.name, side.what, r.cfg.Duration)
		err := r.profiled("slow-"+side.name, func() (err error) {
			*side.drain, err = r.runSlowSide(ctx, topic, side.start)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("slow handler, %s: %w", side.name, err)
		}
		d := side.drain
		how := "phase ended"
		if d.Drained {
			how = "backlog drained"
		}
		r.progress("      %s: %.0f events/s (%d events in %.2fs, %s)", side.name, d.PerSecond, d.Handled, d.Seconds, how)
	}
	s.Ratio = s.Ours.PerSecond / s.RawPool.PerSecond
	s.RatioTuned = s.OursTuned.PerSecond / s.RawPool.PerSecond
	return s, nil
}

// slowTarget is how many events each side of the slow-handler phase must
// handle to have drained the backlog.
func (r *runner) slowTarget() int {
	if r.cfg.MaxEvents > 0 {
		return min(r.cfg.Backlog, r.cfg.MaxEvents)
	}
	return r.cfg.Backlog
}

// fillBacklog produces n events over SlowKeys tenants to topic with the raw
// producer, waits until the broker acknowledged them all and returns their
// event IDs.
func (r *runner) fillBacklog(ctx context.Context, topic string, n int) ([]string, error) {
	tenants := tenantNames(SlowKeys)
	var failure firstError
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failure.set(err)
		}
	}
	ids := make([]string, 0, n)
	for i := range n {
		rec := r.events.rawRecordOf(topic, i, 0, tenants[i%SlowKeys])
		id, _ := wire.HeaderValue(rec.Headers, wire.HeaderEventID)
		ids = append(ids, string(id))
		r.raw.Produce(ctx, rec, promise)
	}
	fctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := r.raw.Flush(fctx); err != nil {
		return nil, err
	}
	return ids, failure.get()
}

// runSlowSide starts one side, waits for it to drain the backlog or for the
// phase to end, and stops it.
func (r *runner) runSlowSide(ctx context.Context, topic string, start slowSide) (Drain, error) {
	c := newDrainCounter(r.slowTarget(), time.Now)
	stop, err := start(ctx, topic, c)
	if err != nil {
		return Drain{}, err
	}
	d, err := c.await(ctx, r.cfg.Duration, setupTimeout)
	stop()
	return d, err
}

// slowWork is the slow handler: SlowHandlerTime per event, counted; nothing
// once the counter is frozen (the side is stopping).
func slowWork(c *drainCounter) {
	if !c.begin() {
		return
	}
	time.Sleep(SlowHandlerTime) // a database write
	c.end()
}

// oursSlow is the side of eventbus.Subscribe with delivery d (plus a group
// of its own reading from the beginning).
func (r *runner) oursSlow(d eventbus.Delivery) slowSide {
	return func(ctx context.Context, topic string, c *drainCounter) (func(), error) {
		d.FromBeginning = true
		sctx, cancel := context.WithTimeout(ctx, setupTimeout)
		defer cancel()
		id, err := eventbus.Subscribe(sctx, r.bus, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error {
			slowWork(c)
			return nil
		}, eventbus.InGroup("eventbus-bench-slow-"+randomHex(4)), eventbus.WithDelivery(d))
		if err != nil {
			return nil, err
		}
		return func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
			defer cancel()
			if err := r.bus.Unsubscribe(uctx, id); err != nil {
				r.cfg.Logger.Warn("bench: unsubscribe", "err", err)
			}
		}, nil
	}
}

// rawSlowClient is a kgo group consumer of topic from the beginning, in a
// group of its own, committing what is marked.
func (r *runner) rawSlowClient(topic string, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(r.rawOpts(append([]kgo.Opt{
		kgo.ConsumerGroup("eventbus-bench-raw-slow-" + randomHex(4)),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
	}, opts...)...)...)
	if err != nil {
		return nil, fmt.Errorf("raw consumer: %w", err)
	}
	return cl, nil
}

// rawSlowHandle decodes a record's event, as the bus does before calling a
// handler, and runs the slow handler.
func rawSlowHandle(c *drainCounter, rec *kgo.Record) {
	if _, err := wire.Decode(rec.Value); err != nil {
		return
	}
	slowWork(c)
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// partitionWorker handles one partition's records in order, in a goroutine
// of its own.
type partitionWorker struct {
	quit chan struct{}
	done chan struct{}
	recs chan kgo.FetchTopicPartition
}

// perPartition is franz-go's goroutine_per_partition_consuming example
// (autocommit_marks): the poll loop hands each partition's records to that
// partition's goroutine, which handles them one by one and marks them for
// the next autocommit.
type perPartition struct {
	c       *drainCounter
	mu      sync.Mutex
	workers map[topicPartition]*partitionWorker
}

func (pp *perPartition) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for topic, partitions := range assigned {
		for _, p := range partitions {
			w := &partitionWorker{
				quit: make(chan struct{}),
				done: make(chan struct{}),
				recs: make(chan kgo.FetchTopicPartition, 5),
			}
			pp.workers[topicPartition{topic, p}] = w
			go pp.consume(cl, w)
		}
	}
}

func (pp *perPartition) consume(cl *kgo.Client, w *partitionWorker) {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case p := <-w.recs:
			for _, rec := range p.Records {
				rawSlowHandle(pp.c, rec)
				cl.MarkCommitRecords(rec)
			}
		}
	}
}

func (pp *perPartition) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	pp.kill(revoked)
	// As the example does; the group is the run's own, so a failed commit
	// costs nothing.
	_ = cl.CommitMarkedOffsets(ctx)
}

func (pp *perPartition) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	pp.kill(lost)
}

// kill stops the partitions' goroutines and waits for them.
func (pp *perPartition) kill(parts map[string][]int32) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for topic, partitions := range parts {
		for _, p := range partitions {
			tp := topicPartition{topic, p}
			if w := pp.workers[tp]; w != nil {
				delete(pp.workers, tp)
				close(w.quit)
				<-w.done
			}
		}
	}
}

func (pp *perPartition) worker(tp topicPartition) *partitionWorker {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.workers[tp]
}

// rawPerPartitionSlow is the side of a kgo consumer with a goroutine per
// partition.
func (r *runner) rawPerPartitionSlow(ctx context.Context, topic string, c *drainCounter) (func(), error) {
	pp := &perPartition{c: c, workers: map[topicPartition]*partitionWorker{}}
	cl, err := r.rawSlowClient(topic,
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(pp.assigned),
		kgo.OnPartitionsRevoked(pp.revoked),
		kgo.OnPartitionsLost(pp.lost),
	)
	if err != nil {
		return nil, err
	}
	pollCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			fetches := cl.PollRecords(pollCtx, 10_000)
			if fetches.IsClientClosed() || pollCtx.Err() != nil {
				cl.AllowRebalance()
				return
			}
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				w := pp.worker(topicPartition{p.Topic, p.Partition})
				if w == nil || len(p.Records) == 0 {
					return
				}
				select {
				case w.recs <- p:
				case <-pollCtx.Done():
				}
			})
			cl.AllowRebalance()
		}
	})
	return func() {
		cancel()
		wg.Wait()
		cl.Close()
		pp.mu.Lock()
		left := map[string][]int32{}
		for tp := range pp.workers {
			left[tp.topic] = append(left[tp.topic], tp.partition)
		}
		pp.mu.Unlock()
		pp.kill(left)
	}, nil
}

// rawPoolSlow is the side of a kgo consumer handing records to a
// key-ordered pool of SlowPoolWorkers workers.
func (r *runner) rawPoolSlow(ctx context.Context, topic string, c *drainCounter) (func(), error) {
	cl, err := r.rawSlowClient(topic)
	if err != nil {
		return nil, err
	}
	pool := newKeyPool(SlowPoolWorkers, slowPoolQueue)
	pollCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		trackers := map[topicPartition]*commitTracker[*kgo.Record]{}
		for {
			fetches := cl.PollRecords(pollCtx, 10_000)
			if fetches.IsClientClosed() || pollCtx.Err() != nil {
				return
			}
			for it := fetches.RecordIter(); !it.Done() && pollCtx.Err() == nil; {
				rec := it.Next()
				tp := topicPartition{rec.Topic, rec.Partition}
				tr := trackers[tp]
				if tr == nil {
					tr = &commitTracker[*kgo.Record]{}
					trackers[tp] = tr
				}
				ticket := tr.add(rec)
				pool.submit(rec.Key, func() {
					rawSlowHandle(c, rec)
					if last, ok := tr.finish(ticket); ok {
						cl.MarkCommitRecords(last)
					}
				})
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		pool.close()
		cl.Close()
	}, nil
}

// drainCounter counts the events a side of the slow-handler phase handled
// and when, and freezes once the phase ends for that side.
type drainCounter struct {
	target int64
	now    func() time.Time

	mu      sync.Mutex
	first   time.Time // when the first handler call began
	last    time.Time // when the last counted one ended
	handled int64
	frozen  bool
	started chan struct{} // closed at the first begin
	full    chan struct{} // closed when handled reaches target
}

func newDrainCounter(target int, now func() time.Time) *drainCounter {
	return &drainCounter{
		target:  int64(max(target, 1)),
		now:     now,
		started: make(chan struct{}),
		full:    make(chan struct{}),
	}
}

// begin is called when a handler call starts; false means the counter is
// frozen and the handler should return at once.
func (c *drainCounter) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return false
	}
	if c.first.IsZero() {
		c.first = c.now()
		close(c.started)
	}
	return true
}

// end counts one handled event, unless the counter froze meanwhile.
func (c *drainCounter) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen || c.handled >= c.target {
		return
	}
	c.handled++
	c.last = c.now()
	if c.handled == c.target {
		close(c.full)
	}
}

// freeze stops counting at the given end of the phase and returns the
// figure: the whole target handled in first..last, or what was handled in
// first..phaseEnd.
func (c *drainCounter) freeze(phaseEnd time.Time) Drain {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = true
	if c.first.IsZero() {
		return Drain{}
	}
	d := Drain{Handled: c.handled, Drained: c.handled >= c.target}
	end := phaseEnd
	if d.Drained {
		end = c.last
	}
	d.Seconds = end.Sub(c.first).Seconds()
	if d.Seconds > 0 {
		d.PerSecond = float64(d.Handled) / d.Seconds
	}
	return d
}

// await waits for the first handler call (up to startWithin), then until
// the target was handled or phase has passed since that first call, and
// freezes the counter.
func (c *drainCounter) await(ctx context.Context, phase, startWithin time.Duration) (Drain, error) {
	startTimer := time.NewTimer(startWithin)
	defer startTimer.Stop()
	select {
	case <-c.started:
	case <-ctx.Done():
		c.freeze(c.now())
		return Drain{}, ctx.Err()
	case <-startTimer.C:
		c.freeze(c.now())
		return Drain{}, fmt.Errorf("no event handled within %s", startWithin)
	}
	c.mu.Lock()
	phaseEnd := c.first.Add(phase)
	c.mu.Unlock()
	phaseTimer := time.NewTimer(max(phaseEnd.Sub(c.now()), 0))
	defer phaseTimer.Stop()
	select {
	case <-c.full:
	case <-phaseTimer.C:
	case <-ctx.Done():
		c.freeze(c.now())
		return Drain{}, ctx.Err()
	}
	return c.freeze(phaseEnd), nil
}
