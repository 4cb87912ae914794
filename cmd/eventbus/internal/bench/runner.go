package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/topic"
)

// setupTimeout bounds connecting, creating topics and joining groups: the
// parts of a run that are not measured.
const setupTimeout = 60 * time.Second

// topicPartitions is the partition count of every topic of a run.
const topicPartitions = 3

// runner holds what every phase shares: one client, one bus and one raw
// producer on the same brokers, and the run's topics.
type runner struct {
	cfg    Config
	client *eventbus.Client
	bus    *eventbus.Bus
	raw    *kgo.Client
	topics topics
	events *eventSource
	pg     *pgBench // the outbox and inbox phases' database, once opened
}

// topics are the run's topic names, one per phase and side.
type topics struct {
	prefix string
	rates  []int
	phases []string // the phases run, whose topics are created
}

func (t topics) name(phase, side string) string {
	return t.prefix + "_" + phase + "_" + side + ".recorded"
}

func (t topics) delivery(rate int, side string) string {
	return t.name("e2e"+strconv.Itoa(rate), side)
}

// slow is the slow-handler phase's topic: one backlog that every side
// reads in a group of its own.
func (t topics) slow() string { return t.name("slow", "all") }

// drain is the drain phase's topic: one backlog that both sides read in
// a group of their own.
func (t topics) drain() string { return t.name("drain", "all") }

// fairness is the topic of one run ("unblocked", "blocked") of the
// fairness phase.
func (t topics) fairness(run string) string { return t.name("fair", run) }

// crash is the crash phase's topic.
func (t topics) crash() string { return t.name("crash", "ours") }

// hosts is the hosts phase's topic for one side ("host", "tenant") at
// tenants tenants, or its baseline's ("base", tenants 0).
func (t topics) hosts(tenants int, side string) string {
	if tenants == 0 {
		return t.name("hosts", side)
	}
	return t.name("hosts"+strconv.Itoa(tenants), side)
}

// hostsPlugin lists the hosts phase's topics that a plugin subscribes to.
func (t topics) hostsPlugin() []string {
	var out []string
	for _, n := range HostsTenants {
		out = append(out, t.hosts(n, "host"))
		if n <= PerTenantMaxTenants {
			out = append(out, t.hosts(n, "tenant"))
		}
	}
	return out
}

// cleanup lists the topics to delete at the end: the run's, and the retry
// topics the bus creates for the hosts phase's plugin subscriptions to core
// topics ("plugin.<id>.retry.<topic>": the bench's topic names need no
// rewriting as entities).
func (t topics) cleanup() []string {
	out := t.all()
	if slices.Contains(t.phases, PhaseHosts) {
		for _, topic := range t.hostsPlugin() {
			out = append(out, "plugin."+hostsPluginID+".retry."+topic)
		}
	}
	return out
}

// all lists the topics of the phases run.
func (t topics) all() []string {
	var out []string
	for _, phase := range t.phases {
		switch phase {
		case PhaseThroughput:
			out = append(out, t.name("tput", "ours"), t.name("tput", "raw"))
		case PhasePublish:
			out = append(out, t.name("lat", "ours"), t.name("lat", "raw"))
		case PhaseDelivery:
			for _, rate := range t.rates {
				out = append(out, t.delivery(rate, "ours"), t.delivery(rate, "raw"))
			}
		case PhaseSlow:
			out = append(out, t.slow())
		case PhaseDrain:
			out = append(out, t.drain())
		case PhaseFairness:
			out = append(out, t.fairness("unblocked"), t.fairness("blocked"), t.fairness("blocked_small_cap"))
		case PhaseCrash:
			out = append(out, t.crash())
		case PhaseHosts:
			out = append(out, t.hosts(0, "base"))
			out = append(out, t.hostsPlugin()...)
		case PhaseGateway:
			out = append(out, t.name("gw", "pub"), t.name("gw", "push"))
		case PhaseOutbox:
			out = append(out, t.name("outbox", "ours"), t.name("outbox", "raw"), t.name("outbox", "e2e"))
		case PhaseInbox:
			out = append(out, t.name("inbox", "all"))
		}
	}
	return out
}

func newRunner(ctx context.Context, cfg Config) (*runner, error) {
	r := &runner{
		cfg:    cfg,
		topics: topics{prefix: "core.bench_" + randomHex(4), rates: cfg.Rates, phases: cfg.Phases},
		events: newEventSource(time.Now()),
	}
	if err := r.connect(ctx); err != nil {
		r.close()
		return nil, err
	}
	if err := r.ensureTopics(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *runner) connect(ctx context.Context) error {
	r.progress("connecting to %v", r.cfg.Brokers)
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers:  r.cfg.Brokers,
		ClientID: "eventbus-bench",
		Logger:   r.cfg.Logger,
		SASL:     r.cfg.SASL,
		TLS:      r.cfg.TLS,
	})
	if err != nil {
		return err
	}
	r.client = client
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := client.Connect(cctx); err != nil {
		return err
	}
	if r.bus, err = eventbus.NewBus(client, eventbus.Config{Logger: r.cfg.Logger, Compression: r.cfg.Compression}); err != nil {
		return err
	}
	r.raw, err = kgo.NewClient(r.rawProducerOpts()...)
	if err != nil {
		return fmt.Errorf("bench: raw producer: %w", err)
	}
	return nil
}

// rawOpts are the options of every raw franz-go client: the bus client's
// connection (brokers, SASL, TLS) under the raw side's client ID.
func (r *runner) rawOpts(extra ...kgo.Opt) []kgo.Opt {
	return append(append(r.client.KafkaOpts(), kgo.ClientID("eventbus-bench-raw")), extra...)
}

// rawProducerOpts configure franz-go as the bus configures its producer
// (see eventbus.Config defaults), so that only the work around the client
// differs.
func (r *runner) rawProducerOpts() []kgo.Opt {
	return r.rawOpts(
		kgo.ProducerBatchCompression(rawCodec(r.cfg.Compression)),
		kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(10_000),
		kgo.ProducerBatchMaxBytes(eventbus.DefaultMaxEventBytes+64<<10),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
}

// ensureTopics creates every topic of the run up front, through the bus's
// own topic manager, so that no phase measures topic creation and the bus
// knows them as ensured.
func (r *runner) ensureTopics(ctx context.Context) error {
	names := r.topics.all()
	r.progress("creating %d topics %s_*.recorded (%d partitions)", len(names), r.topics.prefix, topicPartitions)
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			errs[i] = r.client.Topics().Ensure(cctx, name, topic.WithPartitions(topicPartitions))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: create topics: %w", err)
	}
	return nil
}

// close releases everything the run opened and deletes its topics.
func (r *runner) close() {
	if r.pg != nil {
		r.pg.close(r.cfg.Logger.Warn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r.bus != nil {
		if err := r.bus.Shutdown(ctx); err != nil {
			r.cfg.Logger.Warn("bench: bus shutdown", "err", err)
		}
	}
	if r.raw != nil {
		r.raw.Close()
	}
	if r.client == nil {
		return
	}
	if adm, err := r.client.Admin(); err == nil {
		if _, err := adm.DeleteTopics(ctx, r.topics.cleanup()...); err != nil {
			r.cfg.Logger.Warn("bench: delete topics; remove them by hand", "prefix", r.topics.prefix, "err", err)
		}
	}
	r.client.Close()
}

// rawCodec is the franz-go codec of a bus compression setting, for the raw
// side.
func rawCodec(c eventbus.Compression) kgo.CompressionCodec {
	switch c {
	case eventbus.CompressionNone:
		return kgo.NoCompression()
	case eventbus.CompressionLZ4:
		return kgo.Lz4Compression()
	case eventbus.CompressionZstd:
		return kgo.ZstdCompression()
	case eventbus.CompressionGzip:
		return kgo.GzipCompression()
	}
	return kgo.SnappyCompression()
}
