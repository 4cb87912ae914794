package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
)

// Throughput compares batched publish throughput.
type Throughput struct {
	// Ours is Bus.PublishBatch.
	Ours Rate `json:"ours"`
	// Raw is kgo Produce (async) of records built per event as the bus
	// builds them (UUIDs, JSON, envelope, headers): the same work.
	Raw Rate `json:"raw"`
	// OursAsync is Bus.PublishAsync from the same goroutines, each event
	// handed over without waiting, as the raw side does.
	OursAsync Rate `json:"oursAsync"`
	// RawPrebuilt is kgo Produce of records built before the clock started:
	// the client's floor, for reference.
	RawPrebuilt Rate `json:"rawPrebuilt"`
	// Ratio is Ours/Raw events per second (higher is better).
	Ratio float64 `json:"ratio"`
	// RatioAsync is OursAsync/Raw.
	RatioAsync float64 `json:"ratioAsync"`
	// RatioPrebuilt is Ours/RawPrebuilt.
	RatioPrebuilt float64 `json:"ratioPrebuilt"`
}

// Rate is how many events were acknowledged in how long.
type Rate struct {
	Events    int64   `json:"events"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"eventsPerSecond"`
}

func newRate(events int64, d time.Duration) Rate {
	return Rate{Events: events, Seconds: d.Seconds(), PerSecond: float64(events) / d.Seconds()}
}

// PublishLatency compares the latency of one publish awaited at a time.
type PublishLatency struct {
	Ours Latency `json:"ours"`
	Raw  Latency `json:"raw"`
	// RatioP95 is Ours.P95/Raw.P95 (lower is better).
	RatioP95 float64 `json:"ratioP95"`
}

// limit caps the events of one phase and side; a zero max means no cap.
type limit struct {
	max   int64
	taken atomic.Int64
}

// take claims n events and reports whether they are within the cap.
func (l *limit) take(n int) bool {
	return l.max <= 0 || l.taken.Add(int64(n)) <= l.max
}

func (r *runner) newLimit() *limit { return &limit{max: int64(r.cfg.MaxEvents)} }

// throughputRounds is how many rounds the throughput phase splits each
// side's duration into. The sides take turns, round by round, so that a
// host that speeds up or slows down during the phase weighs on every side
// alike (run one after the other, the same build's ratio swings by ±0.1 on
// a small machine).
const throughputRounds = 5

// throughput measures batched publishing: ours with Bus.PublishBatch, raw
// with asynchronous kgo Produce, both from Config.Publishers goroutines.
// Each side runs Config.Duration in all, in throughputRounds turns (one
// turn each with Config.CPUProfileDir, so that each side gets one profile).
func (r *runner) throughput(ctx context.Context) (Throughput, error) {
	var t Throughput
	ours, raw := r.topics.name("tput", "ours"), r.topics.name("tput", "raw")
	if err := r.warmUpOurs(ctx, ours); err != nil {
		return t, fmt.Errorf("batched publish: %w", err)
	}
	if err := r.warmUpRaw(ctx, raw); err != nil {
		return t, fmt.Errorf("batched publish: %w", err)
	}
	rawPool := r.events.rawPool(raw)
	steps := []struct {
		name, what string
		rate       *Rate
		run        func(d time.Duration, lim *limit) (Rate, error)
	}{
		{"ours", "PublishBatch with 100 events", &t.Ours, func(d time.Duration, lim *limit) (Rate, error) {
			return r.oursThroughput(ctx, ours, d, lim)
		}},
		{"ours-async", "PublishAsync (no wait per event)", &t.OursAsync, func(d time.Duration, lim *limit) (Rate, error) {
			return r.oursAsyncThroughput(ctx, ours, d, lim)
		}},
		{"raw", "kgo Produce (async), records built per event", &t.Raw, func(d time.Duration, lim *limit) (Rate, error) {
			return r.rawThroughput(ctx, raw, d, lim, func(i int) *kgo.Record { return r.events.rawRecord(raw, i, 0) })
		}},
		{"raw-prebuilt", "kgo Produce (async), records built before timing", &t.RawPrebuilt, func(d time.Duration, lim *limit) (Rate, error) {
			return r.rawThroughput(ctx, raw, d, lim, func(i int) *kgo.Record { return fresh(rawPool[i%poolSize]) })
		}},
	}
	rounds := throughputRounds
	if r.cfg.CPUProfileDir != "" {
		rounds = 1
	}
	turn := r.cfg.Duration / time.Duration(rounds)
	limits := make([]*limit, len(steps))
	for i := range steps {
		limits[i] = r.newLimit()
		r.progress("%s batched publish, %s: %d goroutines, %s, %s in %d turns", r.step(PhaseThroughput), steps[i].name, r.cfg.Publishers, steps[i].what, r.cfg.Duration, rounds)
	}
	events := make([]int64, len(steps))
	took := make([]time.Duration, len(steps))
	for range rounds {
		for i, s := range steps {
			err := r.profiled("throughput-"+s.name, func() error {
				rate, err := s.run(turn, limits[i])
				events[i] += rate.Events
				took[i] += time.Duration(rate.Seconds * float64(time.Second))
				return err
			})
			if err != nil {
				return t, fmt.Errorf("batched publish, %s: %w", s.name, err)
			}
		}
	}
	for i, s := range steps {
		*s.rate = newRate(events[i], took[i])
		r.progress("      %s: %.0f events/s", s.name, s.rate.PerSecond)
	}
	t.Ratio = t.Ours.PerSecond / t.Raw.PerSecond
	t.RatioAsync = t.OursAsync.PerSecond / t.Raw.PerSecond
	t.RatioPrebuilt = t.Ours.PerSecond / t.RawPrebuilt.PerSecond
	return t, nil
}

// oursThroughput publishes full batches with PublishBatch from
// Config.Publishers goroutines for d (or until lim).
func (r *runner) oursThroughput(ctx context.Context, topic string, d time.Duration, lim *limit) (Rate, error) {
	var acked atomic.Int64
	errs := make([]error, r.cfg.Publishers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range r.cfg.Publishers {
		wg.Go(func() {
			errs[w] = r.publishBatches(ctx, topic, w*1_000_000, deadline, lim, &acked)
		})
	}
	wg.Wait()
	return newRate(acked.Load(), time.Since(start)), errors.Join(errs...)
}

// oursAsyncThroughput publishes with PublishAsync in the loop shape of
// rawThroughput for d (or until lim), then waits for every acknowledgement.
func (r *runner) oursAsyncThroughput(ctx context.Context, topic string, d time.Duration, lim *limit) (Rate, error) {
	var acked atomic.Int64
	var failure firstError
	var pending sync.WaitGroup
	done := func(_ string, err error) {
		defer pending.Done()
		if err != nil {
			failure.set(err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	r.sendEach(d, lim, func(i int) {
		pending.Add(1)
		if err := r.bus.PublishAsync(ctx, topic, r.events.data(i, 0), r.events.meta(i), done); err != nil {
			pending.Done()
			failure.set(err)
		}
	})
	pending.Wait()
	return newRate(acked.Load(), time.Since(start)), failure.get()
}

// sendEach calls send(i) for i = 0, 1, ... from Config.Publishers
// goroutines for d or until lim. Like ours does once per batch, it looks at
// the clock and the limit once per 100 events.
func (r *runner) sendEach(d time.Duration, lim *limit, send func(i int)) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range r.cfg.Publishers {
		wg.Go(func() {
			for i := w * 1_000_000; time.Now().Before(deadline) && lim.take(eventbus.MaxBatchSize); {
				for range eventbus.MaxBatchSize {
					send(i)
					i++
				}
			}
		})
	}
	wg.Wait()
}

// publishBatches publishes full batches until the deadline or the limit.
func (r *runner) publishBatches(ctx context.Context, topic string, first int, deadline time.Time, lim *limit, acked *atomic.Int64) error {
	batch := make([]eventbus.BatchEvent, eventbus.MaxBatchSize)
	for i := first; time.Now().Before(deadline) && lim.take(len(batch)); {
		for j := range batch {
			batch[j] = eventbus.BatchEvent{EventType: topic, Data: r.events.data(i, 0), Metadata: r.events.meta(i)}
			i++
		}
		if _, err := r.bus.PublishBatch(ctx, batch); err != nil {
			return err
		}
		acked.Add(int64(len(batch)))
	}
	return nil
}

// rawThroughput produces build(0), build(1), ... asynchronously from
// Config.Publishers goroutines for d (or until lim), then flushes.
func (r *runner) rawThroughput(ctx context.Context, topic string, d time.Duration, lim *limit, build func(i int) *kgo.Record) (Rate, error) {
	var acked atomic.Int64
	var failure firstError
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failure.set(err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	r.sendEach(d, lim, func(i int) { r.raw.Produce(ctx, build(i), promise) })
	if err := r.raw.Flush(ctx); err != nil {
		return Rate{}, err
	}
	return newRate(acked.Load(), time.Since(start)), failure.get()
}

// publishLatency measures one publish at a time: ours with Bus.Publish,
// raw with kgo ProduceSync.
func (r *runner) publishLatency(ctx context.Context) (PublishLatency, error) {
	var l PublishLatency
	r.progress("%s single publish latency, ours: sequential Publish, %s", r.step(PhasePublish), r.cfg.Duration)
	err := r.profiled("publish-ours", func() (err error) {
		l.Ours, err = r.oursPublishLatency(ctx, r.topics.name("lat", "ours"))
		return err
	})
	if err != nil {
		return l, fmt.Errorf("single publish, ours: %w", err)
	}
	r.progress("      ours: p50 %.3f ms, p95 %.3f ms, p99 %.3f ms (%d publishes)", l.Ours.P50, l.Ours.P95, l.Ours.P99, l.Ours.Count)
	r.progress("%s single publish latency, raw: sequential ProduceSync, records built per event, %s", r.step(PhasePublish), r.cfg.Duration)
	err = r.profiled("publish-raw", func() (err error) {
		l.Raw, err = r.rawPublishLatency(ctx, r.topics.name("lat", "raw"))
		return err
	})
	if err != nil {
		return l, fmt.Errorf("single publish, raw: %w", err)
	}
	r.progress("      raw: p50 %.3f ms, p95 %.3f ms, p99 %.3f ms (%d publishes)", l.Raw.P50, l.Raw.P95, l.Raw.P99, l.Raw.Count)
	l.RatioP95 = l.Ours.P95 / l.Raw.P95
	return l, nil
}

func (r *runner) oursPublishLatency(ctx context.Context, topic string) (Latency, error) {
	if err := r.warmUpOurs(ctx, topic); err != nil {
		return Latency{}, err
	}
	return r.sequential(func(i int) error {
		_, err := r.bus.Publish(ctx, topic, r.events.data(i, 0), r.events.meta(i))
		return err
	})
}

func (r *runner) rawPublishLatency(ctx context.Context, topic string) (Latency, error) {
	if err := r.warmUpRaw(ctx, topic); err != nil {
		return Latency{}, err
	}
	return r.sequential(func(i int) error {
		return r.raw.ProduceSync(ctx, r.events.rawRecord(topic, i, 0)).FirstErr()
	})
}

// sequential times publish(0), publish(1), ... until the phase ends.
func (r *runner) sequential(publish func(i int) error) (Latency, error) {
	lim := r.newLimit()
	samples := make([]time.Duration, 0, 1<<14)
	deadline := time.Now().Add(r.cfg.Duration)
	for i := 0; time.Now().Before(deadline) && lim.take(1); i++ {
		t0 := time.Now()
		if err := publish(i); err != nil {
			return Latency{}, err
		}
		samples = append(samples, time.Since(t0))
	}
	return summarize(samples), nil
}

// warmUpOurs publishes one untimed batch, so that connections, the
// producer ID and the topic's metadata are in place before the clock starts.
func (r *runner) warmUpOurs(ctx context.Context, topic string) error {
	batch := make([]eventbus.BatchEvent, eventbus.MaxBatchSize)
	for i := range batch {
		batch[i] = eventbus.BatchEvent{EventType: topic, Data: r.events.data(i, 0), Metadata: r.events.meta(i)}
	}
	wctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if _, err := r.bus.PublishBatch(wctx, batch); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// warmUpRaw is warmUpOurs for the raw producer.
func (r *runner) warmUpRaw(ctx context.Context, topic string) error {
	recs := make([]*kgo.Record, eventbus.MaxBatchSize)
	for i := range recs {
		recs[i] = r.events.rawRecord(topic, i, 0)
	}
	wctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := r.raw.ProduceSync(wctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// firstError keeps the first error reported by concurrent callbacks.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
