package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
)

// benchConfig is what `eventbus bench` runs, resolved from flags and
// environment.
type benchConfig struct {
	bench.Config
	JSON bool
	// conn is --brokers with the connection flags, for messages.
	conn brokerSettings
}

func (a *app) benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the bus against raw franz-go on the same broker",
		Long: `Measure, in one run on the same broker, the bus against raw franz-go doing the
same work:

  throughput  batched publish throughput (Bus.PublishBatch vs async kgo
              Produce), events/s;
  publish     single publish latency p50/p95/p99 (Bus.Publish vs kgo
              ProduceSync);
  delivery    delivery latency p50/p95/p99 from publish to handler at paced
              rates (Subscribe vs a kgo group consumer);
  slow        a handler of 10 ms per event draining a backlog (--backlog
              events over 1,000 tenants, published before the consumers
              start), events/s: Subscribe with default options and tuned
              (MaxConcurrency 1024, MaxPending 20000) vs kgo with a goroutine
              per partition and with a key-ordered pool of 256 workers;
  drain       a handler returning at once draining a backlog (5 × --backlog
              events over 1,000 tenants), events/s: Subscribe with default
              options vs a kgo group consumer decoding and marking each
              record in its poll loop (autocommitted marks);
  fairness    delivery latency p95 at 1,000 events/s over 100 tenants, ours
              with default options, with no handler blocked and while one
              tenant's handler blocks: what a stuck tenant costs the others;
  crash       a consumer with default options (handler 1 ms) in a child
              process killed with SIGKILL halfway through a backlog (--backlog
              events over 1,000 tenants), the same group then resuming here:
              events lost (target 0) and events handled twice;
  hosts       one plugin subscription to a core topic serving 1, 10, 100 and
              1,000 tenants at 1,000 events/s: one PluginHost (one consumer
              group) vs a PluginClient per tenant (a group each; 1 to 100
              tenants only): delivery p50/p95, consumer groups, events read
              per event published (from the brokers' committed offsets), heap
              in use; and one unfiltered Subscribe as the p95 baseline.
  gateway     the HTTP gateway (package gateway) on the same bus: batched
              publish, POST /api/events/batch of 100 envelopes vs
              PublishBatch, events/s; and a push subscription with default
              settings draining --backlog events over 1,000 tenants to an
              endpoint taking 10 ms vs Subscribe with a 10 ms handler;
  dlq         the dead letter queue at 100,000 entries (only when named; no
              raw baseline, franz-go has no DLQ): load time and memory per
              entry, REST list and stats p50/p95, commands and retries one
              owner applies per second, a new topic's first retry delay;
  outbox      the transactional outbox on PostgreSQL (only when named):
              p50/p95 of a transaction writing one row and one event
              (outbox.Writer vs a pgx INSERT of the record), a relay
              draining 100,000 committed rows (outbox.Relay vs a pgx
              SELECT/DELETE loop around kgo ProduceSync), events/s; and
              commit to handler p50/p95 at 1,000 transactions/s;
  inbox       the idempotent inbox (only when named): a 10 ms handler
              inserting one row, 16 at a time, events/s through
              outbox.Inbox vs a hand-written pgx INSERT ... ON CONFLICT
              DO NOTHING, and with no deduplication.

--phases picks some of them (default all but dlq, and outbox and inbox, which
need PostgreSQL: --outbox-dsn, or a throwaway cluster started with the
machine's initdb and postgres; they run in the order above).
Both sides send the same ~330-byte events with the bus's headers. The ratio
ours/raw is the figure to read on a noisy machine. Without --brokers the
embedded broker runs in a separate process (this binary's "serve"), stopped at
the end. Progress goes to stderr; the table (or --json) to stdout.`,
		Example: `  eventbus bench
  eventbus bench --duration 10s --json > bench.json
  eventbus bench --brokers kafka-0:9092 --rates 1000,10000,50000
  EVENTBUS_SASL_PASSWORD=... eventbus bench --brokers kafka-0:9093 --sasl-mechanism SCRAM-SHA-256 --sasl-user bench --tls
  eventbus bench --phases slow,fairness --duration 10s
  eventbus bench --phases crash --backlog 50000
  eventbus bench --phases hosts
  eventbus bench --phases outbox,inbox
  eventbus bench --phases outbox --outbox-dsn postgres://bench@db:5432/bench
  eventbus bench --phases dlq
  eventbus bench --cpuprofile ./profiles && go tool pprof -top ./profiles/throughput-ours.pprof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.resolveBenchConfig(cmd)
			if err != nil {
				return err
			}
			return a.bench(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.String("brokers", "", "Kafka-protocol brokers to measure on, host:port,... (env "+EnvBrokers+"); none: an embedded broker in a separate process")
	f.Duration("duration", 0, fmt.Sprintf("length of each phase and side (default %s; %s with --quick)", bench.DefaultDuration, bench.QuickDuration))
	f.Int("events", 0, "also end each phase and side after this many events (0: no limit)")
	f.IntSlice("rates", bench.DefaultRates, "paced delivery rates to measure, events/s")
	f.Int("publishers", bench.DefaultPublishers, "goroutines calling PublishBatch in the throughput phase")
	f.StringSlice("phases", bench.DefaultPhases, "phases to run, of "+strings.Join(bench.AllPhases, ","))
	f.Int("backlog", 0, fmt.Sprintf("events published before the slow-handler and crash phases' consumers start (default %d; %d with --quick)", bench.DefaultBacklog, bench.QuickBacklog))
	f.Bool("quick", false, "very short phases and a small backlog, to check that everything runs (figures are not meaningful)")
	f.Bool("json", false, "write the report as JSON instead of a table")
	f.String("outbox-dsn", "", "PostgreSQL of the outbox and inbox phases (env "+EnvOutboxDSN+"; the run's tables go in a schema of their own, dropped at the end); none: a throwaway cluster")
	f.String("cpuprofile", "", "directory to write one CPU profile per phase and side to")
	addSecurityFlags(cmd)
	addCompressionFlag(cmd)
	return cmd
}

// resolveBenchConfig reads bench's flags and environment and checks them.
func (a *app) resolveBenchConfig(cmd *cobra.Command) (benchConfig, error) {
	f := cmd.Flags()
	var cfg benchConfig
	cfg.Brokers = splitList(a.stringSetting(cmd, "brokers", EnvBrokers))
	cfg.Duration, _ = f.GetDuration("duration")
	cfg.MaxEvents, _ = f.GetInt("events")
	cfg.Rates, _ = f.GetIntSlice("rates")
	cfg.Publishers, _ = f.GetInt("publishers")
	cfg.Quick, _ = f.GetBool("quick")
	phases, _ := f.GetStringSlice("phases")
	cfg.Backlog, _ = f.GetInt("backlog")
	cfg.JSON, _ = f.GetBool("json")
	cfg.CPUProfileDir, _ = f.GetString("cpuprofile")
	cfg.OutboxDSN = a.stringSetting(cmd, "outbox-dsn", EnvOutboxDSN)
	compression, err := a.resolveCompression(cmd)
	if err != nil {
		return cfg, err
	}
	cfg.Compression = compression
	switch {
	case cfg.Duration < 0:
		return cfg, usageErrorf("--duration %s is negative; give e.g. 5s", cfg.Duration)
	case cfg.MaxEvents < 0:
		return cfg, usageErrorf("--events %d is negative; give 0 for no limit", cfg.MaxEvents)
	case cfg.Publishers <= 0:
		return cfg, usageErrorf("--publishers must be at least 1")
	case len(cfg.Rates) == 0:
		return cfg, usageErrorf("--rates needs at least one rate, e.g. 1000,10000")
	case cfg.Backlog < 0:
		return cfg, usageErrorf("--backlog %d is negative; give 0 for the default", cfg.Backlog)
	case len(phases) == 0:
		return cfg, usageErrorf("--phases needs at least one of %s", strings.Join(bench.AllPhases, ","))
	}
	if cfg.Phases, err = bench.ParsePhases(phases); err != nil {
		return cfg, usageErrorf("--phases: %s", strings.TrimPrefix(err.Error(), "bench: "))
	}
	for _, r := range cfg.Rates {
		if r <= 0 {
			return cfg, usageErrorf("--rates: %d is not a positive rate (events per second)", r)
		}
	}
	if len(cfg.Brokers) == 0 {
		if name := securityFlagGiven(cmd); name != "" {
			return cfg, usageErrorf("%s configures the connection to --brokers; the embedded broker runs without SASL and TLS: give --brokers (or %s), or drop %s", name, EnvBrokers, name)
		}
	} else {
		cfg.conn = brokerSettings{Brokers: cfg.Brokers}
		if err := a.resolveSecurity(cmd, &cfg.conn); err != nil {
			return cfg, err
		}
		cfg.SASL, cfg.TLS, cfg.ConsumerEnv = cfg.conn.SASL, cfg.conn.TLS, cfg.conn.childEnv()
	}
	if cfg.CPUProfileDir != "" {
		if err := os.MkdirAll(cfg.CPUProfileDir, 0o755); err != nil {
			return cfg, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	return cfg, nil
}

// bench runs the benchmark on the given brokers, or on a child broker it
// starts and stops, and writes the report.
func (a *app) bench(ctx context.Context, cfg benchConfig) error {
	kind := "brokers"
	if len(cfg.Brokers) == 0 {
		child, err := a.startChildBroker(ctx)
		if err != nil {
			return err
		}
		defer func() {
			if err := child.Stop(); err != nil {
				a.log.Warn("bench: " + err.Error())
			}
		}()
		cfg.Brokers = child.Brokers()
		kind = "embedded broker (separate process)"
	}
	cfg.Progress = a.stderr
	cfg.Logger = a.libLog
	if exe, err := a.executable(); err == nil {
		cfg.Executable = exe // the crash phase runs its consumer with it
	}
	report, err := bench.Run(ctx, cfg.Config)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("bench interrupted")
		}
		if e := cfg.conn.connectFailure(err); e != nil {
			return e
		}
		return err
	}
	report.Broker = kind
	if cfg.JSON {
		return report.WriteJSON(a.stdout)
	}
	return report.WriteTable(a.stdout)
}

func (a *app) startChildBroker(ctx context.Context) (*childBroker, error) {
	exe, err := a.executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start the embedded broker: %w; give --brokers instead", err)
	}
	fmt.Fprintf(a.stderr, "bench: starting the embedded broker: %s serve --broker-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --in-memory\n", exe)
	child, err := startChildBroker(ctx, exe, a.stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.stderr, "bench: embedded broker at %s\n", strings.Join(child.Brokers(), ","))
	return child, nil
}
