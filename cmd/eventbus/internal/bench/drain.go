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

// The drain phase: a backlog published before any consumer starts,
// drained by a handler that returns at once. It measures what the
// consumer loop itself costs per event (queues, workers, commits, their
// bounds), which the slow-handler phase hides behind its 10 ms.
const (
	// DrainBacklogFactor is how many times Config.Backlog the drain
	// phase publishes: 100,000 events by default.
	DrainBacklogFactor = 5
	// DrainPollRecords caps the records the raw side takes per poll.
	DrainPollRecords = 10_000
)

// FastDrain compares how fast a handler that returns at once drains a
// backlog: ours with default Delivery options against a raw franz-go
// group consumer handling each record in its poll loop and committing
// its marks (AutoCommitMarks). Each side reads the same records from
// the beginning, in a group of its own.
type FastDrain struct {
	// Workload is the backlog, DrainBacklogFactor × Config.Backlog
	// events; the handler returns at once, and ours runs with the default
	// Delivery options. Each side stops once it handled the backlog (or
	// Config.MaxEvents of it) or the phase's duration passed since its
	// first handler call.
	Workload

	// Ours is Subscribe with default options.
	Ours Drain `json:"ours"`
	// Raw is a kgo group consumer decoding and marking each record in its
	// poll loop, autocommitting the marks.
	Raw Drain `json:"raw"`
	// Ratio is Ours/Raw events per second (higher is better).
	Ratio float64 `json:"ratio"`
}

// drainTarget is how many events each side of the drain phase must
// handle to have drained the backlog.
func (r *runner) drainTarget() int {
	n := DrainBacklogFactor * r.cfg.Backlog
	if r.cfg.MaxEvents > 0 {
		return min(n, r.cfg.MaxEvents)
	}
	return n
}

// fastDrain runs the drain phase.
func (r *runner) fastDrain(ctx context.Context) (*FastDrain, error) {
	f := &FastDrain{Workload: Workload{Keys: SlowKeys, Partitions: topicPartitions, Backlog: DrainBacklogFactor * r.cfg.Backlog}}
	topic := r.topics.drain()
	step := r.step(PhaseDrain)
	r.progress("%s drain: publishing a backlog of %d events over %d tenants (raw producer)", step, f.Backlog, SlowKeys)
	if _, err := r.fillBacklog(ctx, topic, f.Backlog); err != nil {
		return nil, fmt.Errorf("drain: backlog: %w", err)
	}
	sides := []struct {
		name, what string
		drain      *Drain
		start      slowSide
	}{
		{"ours", "Subscribe, default options", &f.Ours, r.oursDrain},
		{"raw", "kgo group consumer, autocommitted marks", &f.Raw, r.rawDrain},
	}
	for _, side := range sides {
		r.progress("%s drain (a handler returning at once), %s: %s, up to %s", step, side.name, side.what, r.cfg.Duration)
		err := r.profiled("drain-"+side.name, func() error {
			c := newDrainCounter(r.drainTarget(), time.Now)
			stop, err := side.start(ctx, topic, c)
			if err != nil {
				return err
			}
			*side.drain, err = c.await(ctx, r.cfg.Duration, setupTimeout)
			stop()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("drain, %s: %w", side.name, err)
		}
		d := side.drain
		how := "phase ended"
		if d.Drained {
			how = "backlog drained"
		}
		r.progress("      %s: %.0f events/s (%d events in %.2fs, %s)", side.name, d.PerSecond, d.Handled, d.Seconds, how)
	}
	if f.Raw.PerSecond > 0 {
		f.Ratio = f.Ours.PerSecond / f.Raw.PerSecond
	}
	return f, nil
}

// fastWork is the drain phase's handler: nothing but the count.
func fastWork(c *drainCounter) {
	if c.begin() {
		c.end()
	}
}

// oursDrain is the drain phase's side of eventbus.Subscribe with default
// options (plus a group of its own reading from the beginning).
func (r *runner) oursDrain(ctx context.Context, topic string, c *drainCounter) (func(), error) {
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	id, err := eventbus.Subscribe(sctx, r.bus, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error {
		fastWork(c)
		return nil
	}, eventbus.InGroup("eventbus-bench-drain-"+randomHex(4)), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
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

// rawDrain is the drain phase's raw side: a kgo group consumer that
// decodes each record's envelope (as the bus does before calling a
// handler), counts it and marks it for the next autocommit, in its poll
// loop.
func (r *runner) rawDrain(ctx context.Context, topic string, c *drainCounter) (func(), error) {
	cl, err := r.rawSlowClient(topic)
	if err != nil {
		return nil, err
	}
	pollCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			fetches := cl.PollRecords(pollCtx, DrainPollRecords)
			if fetches.IsClientClosed() || pollCtx.Err() != nil {
				return
			}
			fetches.EachRecord(func(rec *kgo.Record) {
				if _, err := wire.Decode(rec.Value); err == nil {
					fastWork(c)
				}
				cl.MarkCommitRecords(rec)
			})
		}
	})
	return func() {
		cancel()
		wg.Wait()
		cl.Close()
	}, nil
}
