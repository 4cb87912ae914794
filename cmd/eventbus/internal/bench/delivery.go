package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/wire"
)

const (
	// drainTimeout bounds the wait, after the last event was sent, for the
	// rest to arrive; what has not arrived by then counts as missing.
	drainTimeout = 30 * time.Second
	// warmUpWait is how long a warm-up event may take before another is sent.
	warmUpWait = 2 * time.Second
)

// Delivery compares end-to-end latency, from handing an event to the
// publisher to its handler receiving it, at one paced rate.
type Delivery struct {
	// Rate is the paced publishing rate, events/s.
	Rate int          `json:"rate"`
	Ours DeliverySide `json:"ours"`
	Raw  DeliverySide `json:"raw"`
	// RatioP95 is Ours.P95/Raw.P95 (lower is better).
	RatioP95 float64 `json:"ratioP95"`
}

// DeliverySide is one side's delivery figures. Latency.Count is how many
// events arrived (duplicates included); Sent how many were published.
type DeliverySide struct {
	Sent int `json:"sent"`
	Latency
}

// Missing is how many sent events did not arrive in time.
func (d DeliverySide) Missing() int { return max(d.Sent-d.Count, 0) }

// delivery measures end-to-end latency at rate: ours with Bus.Publish and
// Subscribe, raw with kgo Produce and a kgo group consumer.
func (r *runner) delivery(ctx context.Context, rate int) (Delivery, error) {
	d := Delivery{Rate: rate}
	r.progress("%s delivery at %d events/s, ours: PublishAsync → Subscribe handler, %s", r.step(PhaseDelivery), rate, r.cfg.Duration)
	err := r.profiled(fmt.Sprintf("delivery%d-ours", rate), func() (err error) {
		d.Ours, err = r.oursDelivery(ctx, rate)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("delivery at %d/s, ours: %w", rate, err)
	}
	r.reportDelivery("ours", d.Ours)
	r.progress("%s delivery at %d events/s, raw: Produce → PollFetches, %s", r.step(PhaseDelivery), rate, r.cfg.Duration)
	err = r.profiled(fmt.Sprintf("delivery%d-raw", rate), func() (err error) {
		d.Raw, err = r.rawDelivery(ctx, rate)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("delivery at %d/s, raw: %w", rate, err)
	}
	r.reportDelivery("raw", d.Raw)
	d.RatioP95 = d.Ours.P95 / d.Raw.P95
	return d, nil
}

func (r *runner) reportDelivery(side string, d DeliverySide) {
	r.progress("      %s: p50 %.3f ms, p95 %.3f ms, p99 %.3f ms (%d of %d events arrived)",
		side, d.P50, d.P95, d.P99, d.Count, d.Sent)
}

func (r *runner) oursDelivery(ctx context.Context, rate int) (DeliverySide, error) {
	return r.oursPaced(ctx, pacedRun{
		topic:   r.topics.delivery(rate, "ours"),
		rate:    rate,
		tenants: r.events.tenants[:],
	})
}

// pacedRun is one paced delivery measurement of ours: the delivery phase's,
// or one of the fairness phase's.
type pacedRun struct {
	topic string
	rate  int
	// tenants are the events' tenants (and record keys): event i is
	// tenants[i%len(tenants)]'s.
	tenants []string
	// blocked, when set, is one of tenants whose handler blocks, from the
	// first timed event until every event was sent and acknowledged. Its
	// events are neither counted as sent nor recorded: the figures are the
	// other tenants'.
	blocked string
	// subscribe, when set, subscribes handler to topic in place of one
	// Subscribe with default options in a group of its own, and
	// returns what unsubscribes it (the hosts phase: a PluginHost, or a
	// PluginClient per tenant).
	subscribe func(ctx context.Context, topic string, handler eventbus.Handler) (stop func(context.Context), err error)
	// warmUpEachTenant warms up with one event per tenant rather than one
	// in all: needed when every tenant has a consumer group of its own.
	warmUpEachTenant bool
	// measure, when set, is called once the events were drained, before
	// the subscription stops.
	measure func(ctx context.Context) error
}

// subscribeDefault is pacedRun.subscribe's default: one Subscribe with
// default options, in a new group.
func (r *runner) subscribeDefault(ctx context.Context, topic string, handler eventbus.Handler) (func(context.Context), error) {
	return r.subscribeWith(eventbus.Delivery{})(ctx, topic, handler)
}

// subscribeWith is subscribeDefault with delivery's options.
func (r *runner) subscribeWith(delivery eventbus.Delivery) func(context.Context, string, eventbus.Handler) (func(context.Context), error) {
	return func(ctx context.Context, topic string, handler eventbus.Handler) (func(context.Context), error) {
		id, err := eventbus.Subscribe(ctx, r.bus, eventbus.Name[json.RawMessage](topic), handler, eventbus.InGroup("eventbus-bench-"+randomHex(4)), eventbus.WithDelivery(delivery))
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { _ = r.bus.Unsubscribe(ctx, id) }, nil
	}
}

// oursPaced publishes run's events with Bus.PublishAsync at run.rate to a
// subscription (with default options unless run.subscribe says otherwise),
// and records their delivery latency.
func (r *runner) oursPaced(ctx context.Context, run pacedRun) (DeliverySide, error) {
	rec := newRecorder(r.expected(run.rate))
	// The blocked tenant's handler blocks only once armed (after the
	// warm-up), until release is closed; release is closed on every way out,
	// so that Unsubscribe never waits for a blocked handler.
	var armed atomic.Bool
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	subscribe := run.subscribe
	if subscribe == nil {
		subscribe = r.subscribeDefault
	}
	stop, err := subscribe(sctx, run.topic, func(hctx context.Context, ev eventbus.RawEvent) error {
		if run.blocked != "" && ev.TenantID == run.blocked && armed.Load() {
			select {
			case <-release:
			case <-hctx.Done():
			}
			return nil
		}
		if at, ok := sentAtOf(ev.Data); ok {
			rec.add(time.Duration(r.events.now() - at))
		}
		return nil
	})
	if err != nil {
		return DeliverySide{}, err
	}
	defer stop(context.WithoutCancel(ctx))
	defer unblock()

	meta := func(i int) eventbus.PublishMetadata {
		return eventbus.PublishMetadata{TenantID: run.tenants[i%len(run.tenants)]}
	}
	publish := func(i int, at int64) error {
		_, err := r.bus.Publish(ctx, run.topic, r.events.data(i, at), meta(i))
		return err
	}
	if run.warmUpEachTenant {
		for k := range run.tenants {
			each := func(_ int, at int64) error { return publish(k, at) }
			if err := r.warmUpDelivery(ctx, rec, each); err != nil {
				return DeliverySide{}, fmt.Errorf("tenant %s: %w", run.tenants[k], err)
			}
		}
	} else if err := r.warmUpDelivery(ctx, rec, publish); err != nil {
		return DeliverySide{}, err
	}
	armed.Store(true)
	blockedIdx := slices.Index(run.tenants, run.blocked)
	// Paced like the raw side: each event handed to the producer without
	// waiting, its acknowledgement reported asynchronously.
	var failure firstError
	var wg sync.WaitGroup
	acked := func(_ string, err error) {
		defer wg.Done()
		if err != nil {
			failure.set(err)
		}
	}
	blockedSent := 0
	sent := r.pace(ctx, run.rate, func(i int) {
		if run.blocked != "" && i%len(run.tenants) == blockedIdx {
			blockedSent++
		}
		at := r.events.now()
		wg.Add(1)
		if err := r.bus.PublishAsync(ctx, run.topic, r.events.data(i, at), meta(i), acked); err != nil {
			wg.Done()
			failure.set(err)
		}
	})
	wg.Wait()
	unblock()
	if err := failure.get(); err != nil {
		return DeliverySide{}, err
	}
	d := r.drain(ctx, rec, sent-blockedSent)
	if run.measure != nil {
		if err := run.measure(ctx); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (r *runner) rawDelivery(ctx context.Context, rate int) (DeliverySide, error) {
	topic := r.topics.delivery(rate, "raw")
	rec := newRecorder(r.expected(rate))
	consumer, err := r.startRawConsumer(ctx, topic, rec)
	if err != nil {
		return DeliverySide{}, err
	}
	defer consumer.stop()

	var failure firstError
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failure.set(err)
		}
	}
	warm := func(i int, at int64) error {
		return r.raw.ProduceSync(ctx, r.events.rawRecord(topic, i, at)).FirstErr()
	}
	if err := r.warmUpDelivery(ctx, rec, warm); err != nil {
		return DeliverySide{}, err
	}
	sent := r.pace(ctx, rate, func(i int) {
		at := r.events.now()
		r.raw.Produce(ctx, r.events.rawRecord(topic, i, at), promise)
	})
	if err := r.raw.Flush(ctx); err != nil {
		return DeliverySide{}, err
	}
	if err := failure.get(); err != nil {
		return DeliverySide{}, err
	}
	return r.drain(ctx, rec, sent), nil
}

// rawConsumer is a plain franz-go group consumer feeding a recorder.
type rawConsumer struct {
	cl   *kgo.Client
	stop func()
}

// startRawConsumer joins a new group on topic and returns once it has its
// partitions. It decodes every record into the event envelope, as the bus
// does before it calls a handler, and records the event's latency.
func (r *runner) startRawConsumer(ctx context.Context, topic string, rec *recorder) (*rawConsumer, error) {
	assigned := make(chan struct{})
	var once sync.Once
	cl, err := kgo.NewClient(r.rawOpts(
		kgo.ConsumerGroup("eventbus-bench-raw-"+randomHex(4)),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // the topic is the run's own
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { close(assigned) })
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("raw consumer: %w", err)
	}
	pollCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			fetches := cl.PollFetches(pollCtx)
			if fetches.IsClientClosed() || pollCtx.Err() != nil {
				return
			}
			fetches.EachRecord(func(rr *kgo.Record) {
				// Decode the event, as the bus does before calling a
				// handler: the same work.
				env, err := wire.Decode(rr.Value)
				if err != nil {
					return
				}
				if at, ok := sentAtOf(env.Data); ok {
					rec.add(time.Duration(r.events.now() - at))
				}
			})
		}
	})
	c := &rawConsumer{cl: cl, stop: func() {
		cancel()
		wg.Wait()
		cl.Close()
	}}
	timer := time.NewTimer(setupTimeout)
	defer timer.Stop()
	select {
	case <-assigned:
		return c, nil
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-timer.C:
		c.stop()
		return nil, fmt.Errorf("raw consumer: no partitions assigned within %s", setupTimeout)
	}
}

// warmUpDelivery sends one event and waits for it, so that connections,
// fetch sessions and offsets are in place before the clock starts. An event
// that does not arrive within warmUpWait is sent again: a group that has
// just joined may resolve its start offset after an event published at once
// (see the report on eventbus.Subscribe), and that event is then never
// delivered to it.
func (r *runner) warmUpDelivery(ctx context.Context, rec *recorder, publish func(i int, at int64) error) error {
	deadline := time.Now().Add(setupTimeout)
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		if err := publish(attempt, r.events.now()); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, warmUpWait)
		got := rec.waitFor(wctx, 1)
		cancel()
		if got > 0 {
			rec.take()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Logger.Warn("bench: warm-up event not delivered; sending another",
			"attempt", attempt, "waited", warmUpWait)
	}
	return fmt.Errorf("warm-up: no event arrived within %s", setupTimeout)
}

// drain waits (bounded) for the sent events to arrive and summarises them.
func (r *runner) drain(ctx context.Context, rec *recorder, sent int) DeliverySide {
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	rec.waitFor(dctx, sent)
	return DeliverySide{Sent: sent, Latency: summarize(rec.take())}
}

// expected is how many events a delivery phase at rate sends.
func (r *runner) expected(rate int) int {
	n := int(float64(rate)*r.cfg.Duration.Seconds()) + 1
	if r.cfg.MaxEvents > 0 {
		n = min(n, r.cfg.MaxEvents)
	}
	return n
}

// pace calls send(0), send(1), ... at rate per second, open loop: every
// millisecond it sends all events that have fallen due, however late the
// previous ones were acknowledged. It stops after the phase's duration or
// event cap, or when ctx ends, and returns how many it sent.
func (r *runner) pace(ctx context.Context, rate int, send func(i int)) int {
	total := r.expected(rate)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for sent < total {
		elapsed := time.Since(start)
		due := min(int(elapsed.Seconds()*float64(rate))+1, total)
		for ; sent < due; sent++ {
			send(sent)
		}
		select {
		case <-ctx.Done():
			return sent
		case <-tick.C:
		}
	}
	return sent
}
