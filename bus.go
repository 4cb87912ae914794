package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/internal/tracing"
)

// Compression is the codec a published batch is compressed with.
type Compression string

// The codecs. The zero value means CompressionSnappy.
const (
	CompressionSnappy Compression = "snappy"
	CompressionNone   Compression = "none"
	CompressionLZ4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
	CompressionGzip   Compression = "gzip"
)

func (c Compression) codec() (kgo.CompressionCodec, error) {
	switch c {
	case "", CompressionSnappy:
		return kgo.SnappyCompression(), nil
	case CompressionNone:
		return kgo.NoCompression(), nil
	case CompressionLZ4:
		return kgo.Lz4Compression(), nil
	case CompressionZstd:
		return kgo.ZstdCompression(), nil
	case CompressionGzip:
		return kgo.GzipCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%w: compression %q is unknown; use snappy, none, lz4, zstd or gzip", ErrInvalidConfig, string(c))
}

// Limits the bus enforces before sending anything.
const (
	// MaxBatchSize is the most events one PublishBatch takes.
	MaxBatchSize = 100
	// DefaultMaxEventBytes is the default largest event, as a broker
	// measures it (see Config.MaxEventBytes): 1 MB. The producer's batches
	// then stay within 1,000,012 bytes, under Kafka's (1,048,588) and
	// Redpanda's (1,048,576) default max.message.bytes, whatever events
	// they pack together.
	DefaultMaxEventBytes = 1_000_000
)

// DefaultShutdownTimeout is the bound of Shutdown when its context has no
// deadline (Config.ShutdownTimeout's default): Shutdown(context.Background())
// returns within it whatever a handler does.
const DefaultShutdownTimeout = 30 * time.Second

// Config tunes a Bus. The zero value is ready to use; every field documents
// its default.
type Config struct {
	// Source is the metadata source of published events when the publisher
	// gives none. Default "core".
	Source string
	// Compression is the default codec. Default CompressionSnappy.
	Compression Compression
	// Linger is how long the producer waits to fill a batch. Default 0: send
	// as soon as possible (records published while a request is in flight
	// are still batched). Franz-go's own default, 10 ms, would dominate
	// single-publish latency.
	Linger time.Duration
	// MaxBufferedRecords caps the records waiting to be sent; Publish blocks
	// (bounded by its context) when it is reached, so memory stays bounded
	// under sustained load. Default 10,000.
	MaxBufferedRecords int
	// MaxEventBytes is the largest event, counted as a broker counts it
	// against max.message.bytes: the record batch that would carry the
	// event alone, uncompressed — 61 bytes of batch header, the record's
	// framing, its key, value and headers (the traceparent header that
	// tracing adds included). Larger events fail with ErrEventTooLarge
	// before anything is sent. The producer packs events into batches of
	// at most max(MaxEventBytes, DefaultMaxEventBytes)+12 bytes, so a value
	// above the default needs the brokers' message.max.bytes and the
	// topics' max.message.bytes raised to that. Default
	// DefaultMaxEventBytes.
	MaxEventBytes int
	// DeliveryTimeout bounds how long a publish may wait for the broker
	// before it fails with ErrBrokerUnavailable, and how long the creation
	// of a topic before its first publish may take. Default 30 s; at least
	// 1 s. A publish that failed this way (or by its context) may still
	// have reached the broker: a caller that retries it can cause a
	// duplicate, which consumers must tolerate under at-least-once
	// delivery anyway.
	DeliveryTimeout time.Duration
	// DisableTopicCreation stops the bus from creating missing topics with
	// the TopicManager's defaults before first use of each.
	DisableTopicCreation bool
	// ShutdownTimeout bounds Shutdown when its context has no deadline
	// (Shutdown(context.Background()) returns within it), and likewise
	// Unsubscribe, PluginClient.Close and PluginHost.Close when they stop
	// a consumer group. A context with a deadline is used as it is.
	// Running handlers get the grace period, the first three quarters of
	// the time to the deadline (22.5 s of the default); see Shutdown.
	// Default DefaultShutdownTimeout; negative is an error.
	ShutdownTimeout time.Duration
	// Breaker tunes the publish circuit breaker.
	Breaker BreakerConfig
	// Consumer tunes subscriptions.
	Consumer ConsumerConfig
	// DLQ tunes the dead letter queue and its retries.
	DLQ DLQConfig
	// Metrics, when set, records Prometheus series (see NewMetrics).
	Metrics *Metrics
	// TracerProvider, when set, turns OpenTelemetry tracing on: a span per
	// publish, per handled event, per dead-letter write and retry, with the
	// W3C trace context carried in record headers (traceparent) so that one
	// trace spans publish → handle → dead letter → retry. Correlation and
	// causation IDs are span attributes. Off by default.
	TracerProvider trace.TracerProvider
	// Logger receives the bus's logs. Default: the client's logger.
	Logger *slog.Logger
}

// ConsumerConfig tunes the consumer groups that subscriptions run in.
type ConsumerConfig struct {
	// SessionTimeout is how long the broker waits for a silent member before
	// it reassigns its partitions. Default 45 s (franz-go's default).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often members heartbeat. Default 3 s.
	HeartbeatInterval time.Duration
	// MaxPollRecords caps the records the fetch loop takes from the client
	// at once. Default 500.
	MaxPollRecords int
	// RevokeTimeout bounds how long a partition taken away in a rebalance
	// (or a subscription being removed) waits for its running handlers;
	// then their context is cancelled and the partition goes to its next
	// owner, while other partitions never wait. What did not finish is not
	// committed and comes again. Default 10 s; at most 5 minutes.
	RevokeTimeout time.Duration
	// InstanceID, when set, makes this process a static member of its
	// consumer groups (Kafka's group.instance.id, KIP-345): a restart with
	// the same InstanceID takes its partitions back at once instead of
	// after SessionTimeout, without a rebalance. It must be unique among
	// the processes of a group and stable across restarts (a pod or host
	// name). The price: a static member that stops does not leave its
	// groups, so its partitions wait SessionTimeout before other members
	// take them over. Default empty: dynamic membership.
	InstanceID string
	// CommitInterval is the least time between two commits of a group's
	// handled offsets: a batch handled sooner is committed with the next
	// commit, at most CommitInterval later. Every commit is a write on the
	// brokers' __consumer_offsets log, so at low rates, where each fetch
	// brings one event, this spares them a commit per event (and the
	// latency that load adds) at the price of at most CommitInterval of
	// handled events being delivered again after a crash. Default 100 ms;
	// negative: commit after every batch.
	CommitInterval time.Duration
	// RetryBackoff is the first delay of the retries a subscription makes
	// in place: calling the handler again under RetryInPlace, and writing a
	// dead-letter entry again when the broker refused it. It doubles up to
	// RetryBackoffMax. The event is not committed meanwhile. Default
	// 100 ms.
	RetryBackoff time.Duration
	// RetryBackoffMax caps RetryBackoff. Default 30 s.
	RetryBackoffMax time.Duration
}

func (c *Config) setDefaults(client *Client) error {
	if c.Source == "" {
		c.Source = "core"
	}
	if _, err := c.Compression.codec(); err != nil {
		return err
	}
	if c.Linger < 0 {
		return fmt.Errorf("%w: Config.Linger %s is negative", ErrInvalidConfig, c.Linger)
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = 10_000
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.MaxBufferedRecords < 0 || c.MaxEventBytes < 0 {
		return fmt.Errorf("%w: Config.MaxBufferedRecords and Config.MaxEventBytes must be positive", ErrInvalidConfig)
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 30 * time.Second
	}
	if c.DeliveryTimeout < time.Second {
		return fmt.Errorf("%w: Config.DeliveryTimeout %s is under the 1 s minimum", ErrInvalidConfig, c.DeliveryTimeout)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("%w: Config.ShutdownTimeout %s is negative (0 means DefaultShutdownTimeout)", ErrInvalidConfig, c.ShutdownTimeout)
	}
	c.Breaker.setDefaults()
	cc := &c.Consumer
	if cc.SessionTimeout <= 0 {
		cc.SessionTimeout = 45 * time.Second
	}
	if cc.HeartbeatInterval <= 0 {
		cc.HeartbeatInterval = 3 * time.Second
	}
	if cc.HeartbeatInterval >= cc.SessionTimeout {
		return fmt.Errorf("%w: Consumer.HeartbeatInterval (%s) must be shorter than Consumer.SessionTimeout (%s)",
			ErrInvalidConfig, cc.HeartbeatInterval, cc.SessionTimeout)
	}
	if cc.MaxPollRecords <= 0 {
		cc.MaxPollRecords = 500
	}
	if cc.RevokeTimeout <= 0 {
		cc.RevokeTimeout = 10 * time.Second
	}
	if cc.RevokeTimeout > 5*time.Minute {
		return fmt.Errorf("%w: Consumer.RevokeTimeout %s is over the 5 minute limit (a rebalance waits for it)", ErrInvalidConfig, cc.RevokeTimeout)
	}
	if cc.CommitInterval == 0 {
		cc.CommitInterval = 100 * time.Millisecond
	}
	if cc.RetryBackoff <= 0 {
		cc.RetryBackoff = 100 * time.Millisecond
	}
	if cc.RetryBackoffMax <= 0 {
		cc.RetryBackoffMax = 30 * time.Second
	}
	if err := c.DLQ.setDefaults(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = client.logger
	}
	return nil
}

// Bus publishes and subscribes to events on one Client. It is safe for
// concurrent use. Build it with NewBus and stop it with Shutdown.
type Bus struct {
	client  *Client
	cfg     Config
	logger  *slog.Logger
	breaker *breaker

	// gate says who may publish (gateOpen, gateDraining, gateClosed);
	// inflight counts the publishes in progress, and the last to leave
	// after the gate closed signals idle. Shutdown waits on idle, bounded
	// by its context.
	gate      atomic.Int32
	inflight  atomic.Int64
	idle      chan struct{}
	closing   atomic.Bool // Shutdown began: no new subscriptions
	producers sync.Map    // Compression -> *kgo.Client
	prodMu    sync.Mutex

	subs   subscriptions
	dlq    *DeadLetterQueue
	tracer *tracing.Tracer

	// stopped ends when Shutdown starts: what runs beside the
	// subscriptions (a PluginHost's lifecycle consumer) stops with it.
	stopped context.Context
	stop    context.CancelFunc
}

// stoppedCtx returns a context that ends when Shutdown starts.
func (b *Bus) stoppedCtx() context.Context {
	if b.stopped == nil {
		return context.Background()
	}
	return b.stopped
}

// NewBus returns a bus on client, which must be connected.
func NewBus(client *Client, cfg Config) (*Bus, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: NewBus needs a client", ErrInvalidConfig)
	}
	if _, err := client.Admin(); err != nil {
		return nil, err
	}
	if err := cfg.setDefaults(client); err != nil {
		return nil, err
	}
	b := &Bus{client: client, cfg: cfg, logger: cfg.Logger, breaker: newBreaker(cfg.Breaker), tracer: tracing.New(cfg.TracerProvider),
		idle: make(chan struct{}, 1)}
	b.subs.init()
	b.stopped, b.stop = context.WithCancel(context.Background())
	b.dlq = newDLQ(b)
	cfg.Metrics.attach(b)
	// Start the default producer now so configuration errors show here.
	if _, err := b.producer(cfg.Compression); err != nil {
		return nil, err
	}
	return b, nil
}

// Client returns the client the bus runs on.
func (b *Bus) Client() *Client { return b.client }

// BreakerState returns the publish circuit breaker's state.
func (b *Bus) BreakerState() BreakerState { return b.breaker.state() }

// producer returns the producing client for a codec, starting it on first use.
func (b *Bus) producer(c Compression) (*kgo.Client, error) {
	if c == "" {
		c = b.cfg.Compression
	}
	if c == "" {
		c = CompressionSnappy
	}
	if p, ok := b.producers.Load(c); ok {
		return p.(*kgo.Client), nil
	}
	b.prodMu.Lock()
	defer b.prodMu.Unlock()
	if p, ok := b.producers.Load(c); ok {
		return p.(*kgo.Client), nil
	}
	codec, err := c.codec()
	if err != nil {
		return nil, err
	}
	p, err := b.client.newKgo(
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(b.cfg.Linger),
		kgo.MaxBufferedRecords(b.cfg.MaxBufferedRecords),
		kgo.ProducerBatchMaxBytes(int32(producerBatchMaxBytes(b.cfg.MaxEventBytes))),
		kgo.RecordDeliveryTimeout(b.cfg.DeliveryTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Publish must fail in bounded time (the breaker depends on it), even
		// for a record that may have reached the broker: such a failed
		// publish may still land, which at-least-once delivery allows.
		kgo.AllowIdempotentProduceCancellation(),
	)
	if err != nil {
		return nil, err
	}
	b.producers.Store(c, p)
	return p, nil
}

// producerBatchMaxBytes is the producer's batch limit for an event limit
// (as eventWireSize counts). franz-go counts a batch 4 bytes larger than a
// broker does (the length prefix of its bytes in the request), so an event
// at the limit always fits one batch; and with the default event limit no
// batch, whatever events it packs, exceeds 1,000,012 bytes, under Kafka's
// (1,048,588) and Redpanda's (1,048,576) default max.message.bytes.
func producerBatchMaxBytes(maxEventBytes int) int {
	return max(maxEventBytes, DefaultMaxEventBytes) + 12
}

// Shutdown stops the bus. Publishes from outside the bus fail with
// ErrShuttingDown from the moment it is called; every subscription stops
// fetching and waits for its running handlers, which may still publish
// meanwhile (their follow-up events are sent), then commits what they
// handled and leaves its group (a static member, with
// ConsumerConfig.InstanceID, does not leave). Then Shutdown waits for the
// publishes in progress and flushes the producers (events of PublishAsync
// included) until the brokers acknowledged them or the deadline passes,
// and closes the producers.
//
// Shutdown returns by ctx's deadline, or within Config.ShutdownTimeout
// (DefaultShutdownTimeout, 30 s) when ctx has none, whatever a handler
// does. Running handlers have a grace period: the first three quarters of
// the time from the call to that deadline (22.5 s of the default 30 s;
// 7.5 s of a ctx that ends in 10 s). When it ends, every running handler's
// context is cancelled and Shutdown waits for handlers no longer: what
// they were handling is not committed and is delivered again, and
// Shutdown's error says so. The last quarter is kept for the final
// commits, leaving the groups and flushing the producers. A handler that
// watches its context thus learns of the shutdown when the grace period
// ends, not before; cancelling ctx ends the grace period at once.
//
// Events not acknowledged by the deadline fail (their Publish returns,
// their PublishAsync callback is called) with an error wrapping
// ErrShuttingDown that says they may or may not have been written, and
// Shutdown's error counts them. The client stays open. Calling Shutdown
// twice is a no-op.
func (b *Bus) Shutdown(ctx context.Context) error {
	if !b.gate.CompareAndSwap(gateOpen, gateDraining) {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.ShutdownTimeout)
		defer cancel()
	}
	b.closing.Store(true)
	var errs []error
	if err := b.subs.closeAll(ctx); err != nil {
		errs = append(errs, err)
	}
	if b.stop != nil {
		b.stop() // after the subscriptions: their handlers may wait for a lifecycle consumer
	}
	b.dlq.stop(ctx)
	b.gate.Store(gateClosed) // handlers are done (or abandoned): no one may publish now
	if n := b.waitPublishes(ctx); n > 0 {
		errs = append(errs, fmt.Errorf("%w: ctx ended with %d publishes waiting for the brokers; they fail with ErrShuttingDown (%w)",
			ErrShuttingDown, n, context.Cause(ctx)))
	}
	b.producers.Range(func(_, v any) bool {
		p := v.(*kgo.Client)
		if err := p.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush producer: events not acknowledged by then fail with ErrShuttingDown: %w", err))
		}
		p.Close()
		return true
	})
	return errors.Join(errs...)
}
