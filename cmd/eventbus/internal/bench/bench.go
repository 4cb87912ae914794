// Package bench measures the event bus against raw franz-go on the same
// broker, in one run: batched publish throughput, single-publish latency,
// end-to-end delivery latency at paced rates, and how fast a slow handler
// (10 ms an event) and one that returns at once drain a backlog. Every
// figure is taken for both sides, one after the other, so that the ratio ours/raw — the figure that matters
// on a noisy machine — compares like with like. Two phases measure ours
// alone: fairness, what one tenant whose handler blocks costs the others'
// delivery latency; and crash, what a consumer killed with SIGKILL halfway
// through a backlog costs: events lost (none, by design) and events handled
// twice. A last phase, hosts, compares a PluginHost (one consumer group for
// all tenants) with a PluginClient per tenant (a group each) as the number
// of tenants grows: delivery latency, groups, events read per event
// published, heap. The dlq phase measures the dead letter queue at 100,000
// entries (ours alone: raw franz-go has no dead letter queue).
//
// Both sides send the same records: ~330-byte JSON events in the wire
// envelope with the bus's headers (package wire), keyed by one of a
// dozen tenants, to topics of 3 partitions created before anything is timed.
// The raw side is franz-go configured as the bus configures its producer
// (snappy, acks=all, idempotent, linger 0, 10,000 buffered records) and does
// the same work per event as the bus: it builds each record with a UUIDv7 ID
// and correlation ID, the payload as JSON, the envelope and headers, and its
// consumer decodes each envelope. So the ratio ours/raw is the cost of the
// bus itself: its checks, breaker, synchronous API, consumer loop. A third
// throughput figure, raw with records built before the clock starts, is the
// client's floor, for reference.
//
// Run is what `eventbus bench` calls; it is not a timed test.
package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/plexica/eventbus"
)

// Defaults of Config.
const (
	DefaultDuration   = 5 * time.Second
	DefaultPublishers = 16
	// QuickDuration is the per-phase duration of a quick run (Config.Quick).
	QuickDuration = 300 * time.Millisecond
)

// The phases of a run, in the order they run (Config.Phases).
const (
	// PhaseThroughput is batched publish throughput.
	PhaseThroughput = "throughput"
	// PhasePublish is single publish latency.
	PhasePublish = "publish"
	// PhaseDelivery is delivery latency at the paced Config.Rates.
	PhaseDelivery = "delivery"
	// PhaseSlow is the slow handler draining a backlog (SlowHandler).
	PhaseSlow = "slow"
	// PhaseDrain is a handler that returns at once draining a backlog
	// (FastDrain): what the consumer loop costs per event.
	PhaseDrain = "drain"
	// PhaseFairness is delivery latency with one tenant blocked (Fairness).
	PhaseFairness = "fairness"
	// PhaseCrash is a consumer killed with SIGKILL mid-backlog: events
	// lost and handled twice (Crash).
	PhaseCrash = "crash"
	// PhaseHosts is one plugin subscription serving 1 to 1,000 tenants,
	// through a PluginHost and a PluginClient per tenant (Hosts).
	PhaseHosts = "hosts"
	// PhaseGateway is the HTTP gateway against the library: batched
	// publish and push delivery (Gateway).
	PhaseGateway = "gateway"
	// PhaseOutbox is the transactional outbox on PostgreSQL: transaction
	// cost, relay throughput, commit to handler (Outbox).
	PhaseOutbox = "outbox"
	// PhaseInbox is the idempotent inbox on PostgreSQL: a 10 ms handler
	// with and without it (Inbox).
	PhaseInbox = "inbox"
	// PhaseDLQ is the dead letter queue at DLQEntries entries: load time
	// and memory, REST latency, retries per second, a subscriber's heap
	// while retries flow, a new topic's first retry (DLQ).
	PhaseDLQ = "dlq"
)

// AllPhases are the phases in the order they run.
var AllPhases = []string{PhaseThroughput, PhasePublish, PhaseDelivery, PhaseSlow, PhaseDrain, PhaseFairness, PhaseCrash, PhaseHosts, PhaseGateway, PhaseDLQ, PhaseOutbox, PhaseInbox}

// DefaultPhases are the phases run when Config.Phases is empty: all but
// the dead letter queue's (it fills 100,000 entries) and those that need
// PostgreSQL (outbox, inbox), which run when named.
var DefaultPhases = AllPhases[:9]

// DefaultRates are the delivery rates measured when Config.Rates is empty,
// in events per second.
var DefaultRates = []int{1_000, 10_000}

// Config says what to measure and against which brokers.
type Config struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string
	// Compression is both sides' codec. Default eventbus.CompressionSnappy.
	Compression eventbus.Compression
	// SASL and TLS, when set, authenticate and encrypt every connection of
	// both sides (see eventbus.ClientConfig).
	SASL *eventbus.SASLConfig
	TLS  *tls.Config
	// ConsumerEnv is added to the environment of the crash phase's child
	// consumer: the EVENTBUS_* settings that make it connect as SASL and
	// TLS say (a password passes there, not in its arguments, so that it
	// stays out of process lists).
	ConsumerEnv []string
	// Duration bounds each phase of each side (in the slow-handler phase,
	// counted from the side's first handler call). Default 5 s
	// (QuickDuration with Quick). It does not bound the crash phase, which
	// runs until its backlog is handled (each of its waits is bounded by a
	// minute).
	Duration time.Duration
	// MaxEvents, when positive, also ends each phase of each side after that
	// many events (in the slow-handler phase, handled events); not the
	// crash phase.
	MaxEvents int
	// Rates are the paced delivery rates, events/s. Default DefaultRates.
	Rates []int
	// Publishers is the number of goroutines calling Bus.PublishBatch in the
	// throughput phase, so that enough batches are in flight to keep the
	// pipe full. Default 16. The raw side needs only one goroutine: its
	// Produce is asynchronous.
	Publishers int
	// Phases are the phases to run, of AllPhases; they run in the order of
	// AllPhases whatever the order given. Default DefaultPhases.
	Phases []string
	// Backlog is how many events the slow-handler and crash phases publish
	// before their consumers start. Default DefaultBacklog (QuickBacklog
	// with Quick).
	Backlog int
	// Quick makes every phase very short (for tests): Duration defaults to
	// QuickDuration, Backlog to QuickBacklog.
	Quick bool
	// Progress receives one line per step while the run goes. Default: none.
	Progress io.Writer
	// Logger receives the client's and bus's logs. Default: warnings and
	// errors to standard error.
	Logger *slog.Logger
	// Executable is the eventbus binary whose hidden CrashConsumerCommand
	// the crash phase runs its consumer with, in a child process. Default
	// os.Executable(): this binary, which must then have that command
	// (cmd/eventbus, or a test binary whose TestMain hands it to cli.Main).
	Executable string
	// OutboxDSN is the PostgreSQL database of the outbox and inbox phases
	// (a user allowed to create a schema; the run's tables go in a schema
	// of their own, dropped at the end). Default: a throwaway cluster
	// started with the machine's initdb and postgres (as the tests do).
	OutboxDSN string
	// CPUProfileDir, when set, gets one CPU profile per measured phase and
	// side ("throughput-ours.pprof", ...), for `go tool pprof`.
	CPUProfileDir string
}

func (c *Config) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("bench: no brokers given")
	}
	if err := quickDefault(&c.Duration, "duration", DefaultDuration, QuickDuration, c.Quick); err != nil {
		return err
	}
	if c.MaxEvents < 0 {
		return fmt.Errorf("bench: events %d is negative; give 0 for no limit", c.MaxEvents)
	}
	if len(c.Rates) == 0 {
		c.Rates = DefaultRates
	}
	for _, r := range c.Rates {
		if r <= 0 {
			return fmt.Errorf("bench: rate %d must be positive (events per second)", r)
		}
	}
	if c.Publishers < 0 {
		return fmt.Errorf("bench: publishers %d is negative", c.Publishers)
	}
	if c.Publishers == 0 {
		c.Publishers = DefaultPublishers
	}
	phases, err := ParsePhases(c.Phases)
	if err != nil {
		return err
	}
	c.Phases = phases
	if err := quickDefault(&c.Backlog, "backlog", DefaultBacklog, QuickBacklog, c.Quick); err != nil {
		return err
	}
	if c.Executable == "" && slices.Contains(c.Phases, PhaseCrash) {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: crash phase: find the eventbus binary to run its consumer: %w", err)
		}
		c.Executable = exe
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return nil
}

// quickDefault checks setting name, which may not be negative, and sets it
// when zero: to def, or to quick for a Quick run.
func quickDefault[T int | time.Duration](v *T, name string, def, quick T, isQuick bool) error {
	if *v < 0 {
		return fmt.Errorf("bench: %s %v is negative", name, *v)
	}
	if *v == 0 {
		*v = def
		if isQuick {
			*v = quick
		}
	}
	return nil
}

// Run measures the figures of cfg.Phases (default all) on cfg.Brokers. It
// creates its own topics (core.bench_<random>_<phase>_<side>.recorded) and
// deletes them at the end.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r, err := newRunner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.close()
	rep := &Report{
		Phases:       cfg.Phases,
		Brokers:      cfg.Brokers,
		GoVersion:    runtime.Version(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		PhaseSeconds: cfg.Duration.Seconds(),
		ValueBytes:   r.events.valueBytes,
		HeaderBytes:  r.events.headerBytes,
		Publishers:   cfg.Publishers,
		BatchSize:    eventbus.MaxBatchSize,
	}
	for _, phase := range cfg.Phases {
		switch phase {
		case PhaseThroughput:
			t, err := r.throughput(ctx)
			if err != nil {
				return nil, err
			}
			rep.Throughput = &t
		case PhasePublish:
			p, err := r.publishLatency(ctx)
			if err != nil {
				return nil, err
			}
			rep.Publish = &p
		case PhaseDelivery:
			for _, rate := range cfg.Rates {
				d, err := r.delivery(ctx, rate)
				if err != nil {
					return nil, err
				}
				rep.Delivery = append(rep.Delivery, d)
			}
		case PhaseSlow:
			if rep.SlowHandler, err = r.slowHandler(ctx); err != nil {
				return nil, err
			}
		case PhaseDrain:
			if rep.FastDrain, err = r.fastDrain(ctx); err != nil {
				return nil, err
			}
		case PhaseFairness:
			if rep.Fairness, err = r.fairness(ctx); err != nil {
				return nil, err
			}
		case PhaseCrash:
			if rep.Crash, err = r.crash(ctx); err != nil {
				return nil, err
			}
		case PhaseHosts:
			if rep.Hosts, err = r.hosts(ctx); err != nil {
				return nil, err
			}
		case PhaseGateway:
			if rep.Gateway, err = r.gatewayPhase(ctx); err != nil {
				return nil, err
			}
		case PhaseOutbox:
			if rep.Outbox, err = r.outboxPhase(ctx); err != nil {
				return nil, err
			}
		case PhaseInbox:
			if rep.Inbox, err = r.inboxPhase(ctx); err != nil {
				return nil, err
			}
		case PhaseDLQ:
			if rep.DLQ, err = r.dlq(ctx); err != nil {
				return nil, err
			}
		}
	}
	rep.evaluate()
	return rep, nil
}

// ParsePhases checks phase names against AllPhases and returns them in the
// order they run, without repeats; none means DefaultPhases. Names are matched
// without regard to case and surrounding space.
func ParsePhases(names []string) ([]string, error) {
	if len(names) == 0 {
		return slices.Clone(DefaultPhases), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if !slices.Contains(AllPhases, n) {
			return nil, fmt.Errorf("bench: no phase %q; the phases are %s", n, strings.Join(AllPhases, ", "))
		}
		want[n] = true
	}
	var out []string
	for _, p := range AllPhases {
		if want[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

// step is the "[k/n]" of a phase's progress lines: its place among the
// phases run.
func (r *runner) step(phase string) string {
	return fmt.Sprintf("[%d/%d]", slices.Index(r.cfg.Phases, phase)+1, len(r.cfg.Phases))
}

// progress writes one progress line.
func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
}

// profiled runs fn, under a CPU profile named name when profiles were asked for.
func (r *runner) profiled(name string, fn func() error) error {
	if r.cfg.CPUProfileDir == "" {
		return fn()
	}
	path := filepath.Join(r.cfg.CPUProfileDir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: cpu profile: %w", err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("bench: cpu profile: %w", err)
	}
	err = fn()
	pprof.StopCPUProfile()
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
