package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/internal/tracing"
)

// Compression is the codec a published batch is compressed with.
type Compression string

// The codecs. The zero value means DefaultCompression (CompressionSnappy).
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

// MaxBatchSize is the most events one PublishBatch takes.
const MaxBatchSize = 100

// Bus publishes and subscribes to events on one Client. It is safe for
// concurrent use. Build it with NewBus and stop it with Shutdown.
type Bus struct {
	client  *Client
	cfg     Config
	logger  *slog.Logger
	breaker *circuit

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
	cfg = cfg.withDefaults(client.logger)
	if err := cfg.validate(); err != nil {
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
func (b *Bus) BreakerState() breaker.State { return b.breaker.state() }

// producer returns the producing client for a codec, starting it on first use.
func (b *Bus) producer(c Compression) (*kgo.Client, error) {
	if c == "" {
		c = b.cfg.Compression
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
