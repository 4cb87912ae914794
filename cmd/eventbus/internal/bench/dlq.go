package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/topic"
)

// The DLQ phase: the dead letter queue's costs at DLQEntries entries, ours
// alone (raw franz-go has no dead letter queue to compare with).
const (
	// DLQEntries is how many entries the phase fills the queue with
	// (fewer with Config.Quick or a smaller Config.MaxEvents).
	DLQEntries = 100_000
	// QuickDLQEntries is DLQEntries in a quick run.
	QuickDLQEntries = 2_000
	// DLQCalls is how many times each REST call is timed.
	DLQCalls = 60
	// DLQFlowEvents is how many events a subscriber fails, and then handles
	// on their first retry, in each retry-flow run.
	DLQFlowEvents = 2_000
	// DLQRetried is how many entries are retried by hand, concurrently, to
	// count the retries one owner applies per second.
	DLQRetried = 1_000
	// DLQNewTopics is how many new topics the first-retry delay is taken on.
	DLQNewTopics = 5
	// dlqFillers is how many goroutines route failures to the queue.
	dlqFillers = 64
	// dlqWait bounds each wait of the phase.
	dlqWait = 5 * time.Minute
)

// DLQ is the dead letter queue phase's figures.
type DLQ struct {
	// Entries is how many entries the queue held.
	Entries int `json:"entries"`
	// FillSeconds is the time from the first failure routed (RouteToDLQ
	// from a bus that does not run the queue, dlqFillers at once) until the
	// owner had applied them all; AppliedPerSecond is Entries/FillSeconds.
	FillSeconds      float64 `json:"fillSeconds"`
	AppliedPerSecond float64 `json:"appliedPerSecond"`
	// LoadSeconds is how long a new bus's DLQ().Start took to read the
	// queue (a new client, in this process); HeapBytesPerEntry and
	// RSSBytesPerEntry what it kept, after a GC, per entry.
	LoadSeconds       float64 `json:"loadSeconds"`
	HeapBytesPerEntry float64 `json:"heapBytesPerEntry"`
	RSSBytesPerEntry  float64 `json:"rssBytesPerEntry"`
	// List is GET /api/dlq/events (one page of 20, newest first) and Stats
	// GET /api/dlq/stats, through dlqhttp's handler, each DLQCalls times.
	List  Latency `json:"list"`
	Stats Latency `json:"stats"`
	// RetriedPerSecond is how many manual retries one owner applied per
	// second (DLQRetried entries retried by DeadLetterQueue.Retry from
	// dlqFillers goroutines).
	RetriedPerSecond float64 `json:"retriedPerSecond"`
	// Flow is a subscriber failing DLQFlowEvents events and handling their
	// automatic retries, with and without a record key.
	Flow []DLQFlow `json:"flow"`
	// FirstRetry is, over DLQNewTopics topics that had no dlq.* topic
	// before, the delay from the first retry's due time (the failure plus
	// the default backoff) until the subscriber handled it: the owner
	// noticing the topic, the send and the delivery included.
	FirstRetry Latency `json:"firstRetry"`
}

// DLQFlow is one retry-flow run: a subscriber that fails every event once
// and handles its retry.
type DLQFlow struct {
	// Keyed: the events had a record key (their tenant); else none.
	Keyed bool `json:"keyed"`
	// Retries is how many retries the subscriber handled; PerSecond that
	// over the time from the first failure to the last retry handled.
	Retries   int     `json:"retries"`
	PerSecond float64 `json:"perSecond"`
	// HeapIdleMiB is the process's heap in use (after a GC) before the
	// events were sent; HeapPeakMiB the highest sampled while retries
	// flowed (every 50 ms, without GC), HeapAfterMiB after a GC once they
	// were all handled.
	HeapIdleMiB  float64 `json:"heapIdleMiB"`
	HeapPeakMiB  float64 `json:"heapPeakMiB"`
	HeapAfterMiB float64 `json:"heapAfterMiB"`
}

// dlqRun is what the DLQ phase's steps share.
type dlqRun struct {
	r      *runner
	prefix string // topic prefix of the phase
	sched  string // the phase's scheduler group
	group  string // the consumer group its bulk entries name
	owner  *eventbus.Bus
	topics []string // topics to delete at the end
}

// dlq runs the DLQ phase.
func (r *runner) dlq(ctx context.Context) (*DLQ, error) {
	entries := DLQEntries
	if r.cfg.Quick {
		entries = QuickDLQEntries
	}
	if r.cfg.MaxEvents > 0 {
		entries = min(entries, r.cfg.MaxEvents)
	}
	id := randomHex(4)
	d := &dlqRun{r: r, prefix: r.topics.prefix + "_dlq", sched: "eventbus-bench-dlq-" + id, group: "eventbus-bench-dlq-" + id}
	defer d.cleanup()
	out := &DLQ{Entries: entries}
	step := r.step(PhaseDLQ)
	var err error
	if d.owner, err = d.newBus(r.client, false); err != nil {
		return nil, err
	}
	defer d.shutdown(d.owner)
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	err = d.owner.DLQ().Start(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("dlq: start the owner's queue: %w", err)
	}

	r.progress("%s dlq: routing %s failures (%d at once) to one owner", step, grouped(entries), dlqFillers)
	if err := r.profiled("dlq-fill", func() error { return d.fill(ctx, out) }); err != nil {
		return nil, err
	}
	r.progress("      applied in %.1f s: %.0f failures/s", out.FillSeconds, out.AppliedPerSecond)

	r.progress("%s dlq: a new bus's DLQ().Start over %s entries", step, grouped(entries))
	if err := r.profiled("dlq-load", func() error { return d.load(ctx, out) }); err != nil {
		return nil, err
	}
	r.progress("      ready in %.2f s; %.0f B heap, %.0f B RSS per entry", out.LoadSeconds, out.HeapBytesPerEntry, out.RSSBytesPerEntry)

	r.progress("%s dlq: REST list and stats, %d calls each", step, DLQCalls)
	if err := r.profiled("dlq-rest", func() error { return d.rest(ctx, out) }); err != nil {
		return nil, err
	}
	r.progress("      list p50 %.1f ms, p95 %.1f ms; stats p50 %.1f ms, p95 %.1f ms", out.List.P50, out.List.P95, out.Stats.P50, out.Stats.P95)

	retried := min(DLQRetried, entries)
	r.progress("%s dlq: %s manual retries (%d at once)", step, grouped(retried), dlqFillers)
	if err := r.profiled("dlq-retry", func() error { return d.retries(ctx, out, retried) }); err != nil {
		return nil, err
	}
	r.progress("      %.0f retries/s", out.RetriedPerSecond)

	for _, keyed := range []bool{true, false} {
		r.progress("%s dlq: a subscriber fails %s events and handles their retries (record key: %t)", step, grouped(DLQFlowEvents), keyed)
		var f DLQFlow
		if err := r.profiled(fmt.Sprintf("dlq-flow-keyed-%t", keyed), func() (err error) { f, err = d.flow(ctx, keyed); return err }); err != nil {
			return nil, err
		}
		r.progress("      %d retries at %.0f/s; heap in use %.1f MiB idle, %.1f MiB peak, %.1f MiB after", f.Retries, f.PerSecond, f.HeapIdleMiB, f.HeapPeakMiB, f.HeapAfterMiB)
		out.Flow = append(out.Flow, f)
	}

	r.progress("%s dlq: first retry on %d new topics, due %s after the failure", step, DLQNewTopics, deadletter.DefaultRetryBackoff)
	if err := d.firstRetries(ctx, out); err != nil {
		return nil, err
	}
	r.progress("      due to handled: p50 %.0f ms, max %.0f ms", out.FirstRetry.P50, out.FirstRetry.Max)
	return out, nil
}

// newBus returns a bus in the phase's scheduler group; disable turns its
// scheduler off.
func (d *dlqRun) newBus(client *eventbus.Client, disable bool) (*eventbus.Bus, error) {
	return eventbus.NewBus(client, eventbus.Config{
		Logger:      d.r.cfg.Logger,
		Compression: d.r.cfg.Compression,
		DLQ:         deadletter.Config{SchedulerGroup: d.sched, DisableScheduler: disable},
	})
}

func (d *dlqRun) shutdown(b *eventbus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		d.r.cfg.Logger.Warn("bench: dlq: bus shutdown", "err", err)
	}
}

// topic names a topic of the phase and remembers it, its dlq.* topic and
// group's retry topic for cleanup.
func (d *dlqRun) topic(name, group string) string {
	t := d.prefix + "_" + name + ".recorded"
	d.topics = append(d.topics, t, "dlq."+t)
	if retry, err := topic.RetryFor(group, t); err == nil { // a valid name: always
		d.topics = append(d.topics, retry)
	}
	return t
}

func (d *dlqRun) cleanup() {
	if len(d.topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := d.r.client.Admin()
	if err == nil {
		_, err = adm.DeleteTopics(ctx, d.topics...)
	}
	if err != nil {
		d.r.cfg.Logger.Warn("bench: dlq: delete topics; remove them by hand", "prefix", d.prefix, "err", err)
	}
}

// fill routes out.Entries permanent failures (no automatic retry) of d.group
// from a bus that does not run the queue, and waits until the owner
// applied them all.
func (d *dlqRun) fill(ctx context.Context, out *DLQ) error {
	topic := d.topic("bulk", d.group)
	filler, err := d.newBus(d.r.client, true)
	if err != nil {
		return err
	}
	defer d.shutdown(filler)
	data := json.RawMessage(`{"orderId":"ord-00000001","amount":4200,"currency":"EUR"}`)
	cause := eventbus.Permanent(errors.New("bench: handler failed"))
	start := time.Now()
	var next atomic.Int64
	errs := make([]error, dlqFillers)
	var wg sync.WaitGroup
	for w := range dlqFillers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= out.Entries || ctx.Err() != nil {
					return
				}
				ev := eventbus.RawEvent{
					ID:       fmt.Sprintf("bench-%08d", i),
					Type:     topic,
					TenantID: fmt.Sprintf("tenant-%04d", i%1000),
					Data:     data,
				}
				if _, err := filler.DLQ().RouteToDLQ(ctx, topic, ev, d.group, cause); err != nil {
					errs[w] = fmt.Errorf("dlq: route failure %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := d.waitTotal(ctx, deadletter.Query{Topic: topic}, out.Entries); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	out.FillSeconds, out.AppliedPerSecond = secs, float64(out.Entries)/secs
	return nil
}

// waitTotal waits until the owner's queue counts want entries that match q.
func (d *dlqRun) waitTotal(ctx context.Context, q deadletter.Query, want int) error {
	deadline := time.Now().Add(dlqWait)
	for {
		st, err := d.owner.DLQ().Stats(ctx, q)
		if err != nil {
			return err
		}
		if st.Total >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dlq: the owner applied %d of %d entries within %s", st.Total, want, dlqWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// load starts the queue of a new bus on a new client (no scheduler: the
// owner stays) and measures its load time and what it keeps.
func (d *dlqRun) load(ctx context.Context, out *DLQ) error {
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers: d.r.cfg.Brokers, ClientID: "eventbus-bench-dlq-load", Logger: d.r.cfg.Logger, SASL: d.r.cfg.SASL, TLS: d.r.cfg.TLS,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := client.Connect(cctx); err != nil {
		return err
	}
	bus, err := d.newBus(client, true)
	if err != nil {
		return err
	}
	defer d.shutdown(bus)
	heap0, rss0 := settledMemory()
	start := time.Now()
	lctx, lcancel := context.WithTimeout(ctx, dlqWait)
	defer lcancel()
	if err := bus.DLQ().Start(lctx); err != nil {
		return fmt.Errorf("dlq: load: %w", err)
	}
	out.LoadSeconds = time.Since(start).Seconds()
	heap1, rss1 := settledMemory()
	out.HeapBytesPerEntry = float64(int64(heap1)-int64(heap0)) / float64(out.Entries)
	out.RSSBytesPerEntry = float64(int64(rss1)-int64(rss0)) / float64(out.Entries)
	runtime.KeepAlive(bus)
	return nil
}

// settledMemory returns the heap in use after a GC and the process's
// resident set (0 where /proc is not there).
func settledMemory() (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, residentBytes()
}

// residentBytes reads VmRSS from /proc/self/status (0 when it cannot).
func residentBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rest times GET /api/dlq/events and GET /api/dlq/stats on the owner's
// queue through dlqhttp's handler.
func (d *dlqRun) rest(ctx context.Context, out *DLQ) error {
	h, err := dlqhttp.New(d.owner.DLQ(), dlqhttp.Options{AllowUnauthenticated: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(path string) ([]time.Duration, error) {
		samples := make([]time.Duration, 0, DLQCalls)
		for range DLQCalls {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
			if err != nil {
				return nil, err
			}
			start := time.Now()
			resp, err := srv.Client().Do(req)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			samples = append(samples, time.Since(start))
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("dlq: GET %s: %s", path, resp.Status)
			}
		}
		return samples, nil
	}
	list, err := call("/api/dlq/events?pageSize=20")
	if err != nil {
		return err
	}
	stats, err := call("/api/dlq/stats")
	if err != nil {
		return err
	}
	out.List, out.Stats = summarize(list), summarize(stats)
	return nil
}

// retries retries n bulk entries by hand, dlqFillers at a time, and counts
// the retries per second the owner applied.
func (d *dlqRun) retries(ctx context.Context, out *DLQ, n int) error {
	page, _, err := d.owner.DLQ().List(ctx, deadletter.Query{Limit: n, Oldest: true})
	if err != nil {
		return err
	}
	start := time.Now()
	var next atomic.Int64
	errs := make([]error, dlqFillers)
	var wg sync.WaitGroup
	for w := range dlqFillers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(page) || ctx.Err() != nil {
					return
				}
				if err := d.owner.DLQ().Retry(ctx, page[i].ID); err != nil {
					errs[w] = fmt.Errorf("dlq: retry %s: %w", page[i].ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	out.RetriedPerSecond = float64(len(page)) / time.Since(start).Seconds()
	return nil
}

// flow subscribes a handler that fails each event on its first delivery
// and handles its retry, publishes DLQFlowEvents events (with their tenant
// as record key when keyed, else none), and samples the heap until every
// retry was handled.
func (d *dlqRun) flow(ctx context.Context, keyed bool) (DLQFlow, error) {
	f := DLQFlow{Keyed: keyed}
	group := "eventbus-bench-dlq-flow-" + randomHex(4)
	name := d.topic("flow_"+randomHex(2), group)
	if err := d.r.client.Topics().Ensure(ctx, name, topic.WithPartitions(topicPartitions)); err != nil {
		return f, err
	}
	sub, err := d.newBus(d.r.client, true)
	if err != nil {
		return f, err
	}
	defer d.shutdown(sub)
	var (
		seen    sync.Map
		handled atomic.Int64
		done    = make(chan struct{})
	)
	_, err = eventbus.Subscribe(ctx, sub, eventbus.Name[json.RawMessage](name), func(_ context.Context, ev eventbus.RawEvent) error {
		if _, again := seen.LoadOrStore(ev.ID, true); !again {
			return errors.New("bench: first delivery fails")
		}
		if handled.Add(1) == DLQFlowEvents {
			close(done)
		}
		return nil
	}, eventbus.InGroup(group))
	if err != nil {
		return f, err
	}
	heap, _ := settledMemory()
	f.HeapIdleMiB = mib(heap)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var pubErr atomic.Pointer[error]
	published := func(_ string, err error) {
		if err != nil {
			pubErr.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	for i := range DLQFlowEvents {
		var opts []eventbus.PublishOption
		if !keyed {
			opts = append(opts, eventbus.WithPartitionKey(""))
		}
		meta := eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%04d", i%1000)}
		if err := sub.PublishAsync(ctx, name, d.r.events.data(i, 0), meta, published, opts...); err != nil {
			close(stop)
			<-sampled
			return f, err
		}
	}
	select {
	case <-done:
	case <-time.After(dlqWait):
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if err := pubErr.Load(); err != nil {
		return f, fmt.Errorf("dlq: flow: publish: %w", *err)
	}
	f.Retries = int(handled.Load())
	f.PerSecond = float64(f.Retries) / elapsed.Seconds()
	f.HeapPeakMiB = mib(peak.Load())
	heap, _ = settledMemory()
	f.HeapAfterMiB = mib(heap)
	if f.Retries < DLQFlowEvents {
		return f, fmt.Errorf("dlq: flow: %d of %d retries handled within %s", f.Retries, DLQFlowEvents, dlqWait)
	}
	return f, ctx.Err()
}

// firstRetries fails one event on each of DLQNewTopics new topics (their
// dlq.* topic does not exist yet) in a bus of its own (its queue is not
// the owner's: nothing tells the owner of the new topic but the brokers),
// and measures from the retry's due time, the failure plus the default
// backoff, until the retry is handled.
func (d *dlqRun) firstRetries(ctx context.Context, out *DLQ) error {
	sub, err := d.newBus(d.r.client, true)
	if err != nil {
		return err
	}
	defer d.shutdown(sub)
	var samples []time.Duration
	for n := range DLQNewTopics {
		group := "eventbus-bench-dlq-first-" + randomHex(4)
		name := d.topic("first"+strconv.Itoa(n), group)
		if err := d.r.client.Topics().Ensure(ctx, name, topic.WithPartitions(topicPartitions)); err != nil {
			return err
		}
		var failedAt time.Time
		retried := make(chan time.Time, 1)
		var calls atomic.Int64
		id, err := eventbus.Subscribe(ctx, sub, eventbus.Name[json.RawMessage](name), func(context.Context, eventbus.RawEvent) error {
			if calls.Add(1) == 1 {
				failedAt = time.Now()
				return errors.New("bench: first delivery fails")
			}
			select {
			case retried <- time.Now():
			default:
			}
			return nil
		}, eventbus.InGroup(group))
		if err != nil {
			return err
		}
		if _, err := sub.Publish(ctx, name, d.r.events.data(n, 0), eventbus.PublishMetadata{TenantID: "tenant-0000"}); err != nil {
			return err
		}
		select {
		case at := <-retried:
			samples = append(samples, at.Sub(failedAt.Add(deadletter.DefaultRetryBackoff)))
		case <-time.After(dlqWait):
			return fmt.Errorf("dlq: first retry on %s not handled within %s", name, dlqWait)
		case <-ctx.Done():
			return ctx.Err()
		}
		_ = sub.Unsubscribe(ctx, id)
	}
	out.FirstRetry = summarize(slices.Clone(samples))
	return nil
}
