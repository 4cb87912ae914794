package eventbus

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/topic"
)

// This file holds every configuration of the package, its defaults and its
// checks. Each config has one withDefaults, which fills in the zero fields
// (and only those), and one validate, which checks the result; both are
// called from one place (NewClient, NewBus, Subscribe). Every default is a
// named constant below (those of created topics in package topic, those of
// the circuit breaker in package breaker), and every field's documentation
// names its default's constant. A zero field means its default; the few
// settings that can be switched off say so with a named constant
// (deadletter.NoRetries, CommitEveryBatch), never with zero. The dead
// letter queue's config, deadletter.Config, has its own pair, which
// Config's calls.

// The defaults of the configs below, each named in its field's
// documentation, and the named values that switch something off.
const (
	// DefaultClientID is ClientConfig.ClientID's default.
	DefaultClientID = "plexica-eventbus"
	// DefaultConnectTimeout is ClientConfig.ConnectTimeout's default.
	DefaultConnectTimeout = 10 * time.Second

	// DefaultSource is Config.Source's default.
	DefaultSource = "core"
	// DefaultCompression is Config.Compression's default.
	DefaultCompression = CompressionSnappy
	// DefaultMaxBufferedRecords is Config.MaxBufferedRecords's default.
	DefaultMaxBufferedRecords = 10_000
	// DefaultMaxEventBytes is Config.MaxEventBytes's default, the largest
	// event as a broker measures it: 1 MB. The producer's batches then stay
	// within 1,000,012 bytes, under Kafka's (1,048,588) and Redpanda's
	// (1,048,576) default max.message.bytes, whatever events they pack
	// together.
	DefaultMaxEventBytes = 1_000_000
	// DefaultDeliveryTimeout is Config.DeliveryTimeout's default.
	DefaultDeliveryTimeout = 30 * time.Second
	// DefaultShutdownTimeout is the bound of Shutdown when its context has
	// no deadline (Config.ShutdownTimeout's default):
	// Shutdown(context.Background()) returns within it whatever a handler
	// does.
	DefaultShutdownTimeout = 30 * time.Second

	// DefaultSessionTimeout is ConsumerConfig.SessionTimeout's default
	// (franz-go's own).
	DefaultSessionTimeout = 45 * time.Second
	// DefaultHeartbeatInterval is ConsumerConfig.HeartbeatInterval's default.
	DefaultHeartbeatInterval = 3 * time.Second
	// DefaultMaxPollRecords is ConsumerConfig.MaxPollRecords's default.
	DefaultMaxPollRecords = 500
	// DefaultRevokeTimeout is ConsumerConfig.RevokeTimeout's default.
	DefaultRevokeTimeout = 10 * time.Second
	// DefaultCommitInterval is ConsumerConfig.CommitInterval's default.
	DefaultCommitInterval = 100 * time.Millisecond
	// CommitEveryBatch, as ConsumerConfig.CommitInterval, commits the
	// handled offsets after every fetched batch instead of at most once
	// per interval.
	CommitEveryBatch time.Duration = -1
	// DefaultConsumerRetryBackoff is ConsumerConfig.RetryBackoff's default.
	DefaultConsumerRetryBackoff = 100 * time.Millisecond
	// DefaultConsumerMaxRetryBackoff is ConsumerConfig.MaxRetryBackoff's
	// default.
	DefaultConsumerMaxRetryBackoff = 30 * time.Second

	// DefaultMaxConcurrency is Delivery.MaxConcurrency's default: enough
	// for a handler that waits 10 ms on a database to drain thousands of
	// events a second, few enough for a connection pool.
	DefaultMaxConcurrency = 64
	// DefaultMaxPending is Delivery.MaxPending's default.
	DefaultMaxPending = 10_000
)

// Limits of the configs.
const (
	minDeliveryTimeout = time.Second
	maxRevokeTimeout   = 5 * time.Minute
)

// ClientConfig says where the brokers are and how to reach them.
type ClientConfig struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string
	// ClientID names this client to the brokers. Default DefaultClientID
	// ("plexica-eventbus").
	ClientID string
	// SASL, when set, authenticates every connection.
	SASL *SASLConfig
	// TLS, when set, encrypts every connection.
	TLS *tls.Config
	// Logger receives the client's logs. Default slog.Default().
	Logger *slog.Logger
	// ConnectTimeout bounds Connect when no broker answers. Default
	// DefaultConnectTimeout (10 s); negative is an error.
	ConnectTimeout time.Duration
	// TopicRules are the topic-name rules; set it to allow more actions
	// that are not past tenses (see topic.NewRules). Default
	// topic.DefaultRules().
	TopicRules *topic.Rules
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.TopicRules == nil {
		c.TopicRules = topic.DefaultRules()
	}
	return c
}

func (c ClientConfig) validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: ClientConfig.Brokers is empty; give at least one \"host:port\" (e.g. 127.0.0.1:9092)", ErrInvalidConfig)
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			return fmt.Errorf("%w: ClientConfig.Brokers has an empty address; give \"host:port\" for each", ErrInvalidConfig)
		}
	}
	if c.ConnectTimeout < 0 {
		return invalidDuration("ClientConfig.ConnectTimeout", c.ConnectTimeout, "DefaultConnectTimeout", DefaultConnectTimeout)
	}
	if c.SASL != nil {
		if _, err := c.SASL.mechanism(); err != nil {
			return err
		}
	}
	return nil
}

// Config tunes a Bus. The zero value is ready to use; every field documents
// its default.
type Config struct {
	// Source is the metadata source of published events when the publisher
	// gives none. Default DefaultSource ("core").
	Source string
	// Compression is the default codec. Default DefaultCompression
	// (CompressionSnappy).
	Compression Compression
	// Linger is how long the producer waits to fill a batch. Default 0: send
	// as soon as possible (records published while a request is in flight
	// are still batched). Franz-go's own default, 10 ms, would dominate
	// single-publish latency. Negative is an error.
	Linger time.Duration
	// MaxBufferedRecords caps the records waiting to be sent; Publish blocks
	// (bounded by its context) when it is reached, so memory stays bounded
	// under sustained load. Default DefaultMaxBufferedRecords (10,000).
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
	// DefaultMaxEventBytes (1,000,000).
	MaxEventBytes int
	// DeliveryTimeout bounds how long a publish may wait for the broker
	// before it fails with ErrBrokerUnavailable, and how long the creation
	// of a topic before its first publish may take. Default
	// DefaultDeliveryTimeout (30 s); at least 1 s. A publish that failed
	// this way (or by its context) may still have reached the broker: a
	// caller that retries it can cause a duplicate, which consumers must
	// tolerate under at-least-once delivery anyway.
	DeliveryTimeout time.Duration
	// DisableTopicCreation stops the bus from creating missing topics with
	// the defaults of topic.Manager.Ensure before first use of each.
	DisableTopicCreation bool
	// ShutdownTimeout bounds Shutdown when its context has no deadline
	// (Shutdown(context.Background()) returns within it), and likewise
	// Unsubscribe, PluginClient.Close and PluginHost.Close when they stop
	// a consumer group. A context with a deadline is used as it is.
	// Running handlers get the grace period, the first three quarters of
	// the time to the deadline (22.5 s of the default); see Shutdown.
	// Default DefaultShutdownTimeout (30 s); negative is an error.
	ShutdownTimeout time.Duration
	// Breaker tunes the publish circuit breaker.
	Breaker breaker.Config
	// Consumer tunes subscriptions.
	Consumer ConsumerConfig
	// DLQ tunes the dead letter queue and its retries; each field
	// documents its default (deadletter.Default*).
	DLQ deadletter.Config
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

// withDefaults fills in the zero fields of c and of its parts; logger is
// the client's.
func (c Config) withDefaults(logger *slog.Logger) Config {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = logger
	}
	c.Breaker = breakerWithDefaults(c.Breaker)
	c.Consumer = c.Consumer.withDefaults()
	c.DLQ = c.DLQ.WithDefaults()
	return c
}

// validate checks c, defaults applied.
func (c Config) validate() error {
	if _, err := c.Compression.codec(); err != nil {
		return err
	}
	if c.Linger < 0 {
		return fmt.Errorf("%w: Config.Linger %s is negative; give 0 (send at once, the default) or a positive wait", ErrInvalidConfig, c.Linger)
	}
	if c.MaxBufferedRecords < 0 {
		return fmt.Errorf("%w: Config.MaxBufferedRecords %d is negative; give a positive cap, or 0 for DefaultMaxBufferedRecords (%d)",
			ErrInvalidConfig, c.MaxBufferedRecords, DefaultMaxBufferedRecords)
	}
	if c.MaxEventBytes < 0 {
		return fmt.Errorf("%w: Config.MaxEventBytes %d is negative; give a positive size, or 0 for DefaultMaxEventBytes (%d)",
			ErrInvalidConfig, c.MaxEventBytes, DefaultMaxEventBytes)
	}
	if c.DeliveryTimeout < minDeliveryTimeout {
		return fmt.Errorf("%w: Config.DeliveryTimeout %s is under the %s minimum; give at least %s, or 0 for DefaultDeliveryTimeout (%s)",
			ErrInvalidConfig, c.DeliveryTimeout, minDeliveryTimeout, minDeliveryTimeout, DefaultDeliveryTimeout)
	}
	if c.ShutdownTimeout < 0 {
		return invalidDuration("Config.ShutdownTimeout", c.ShutdownTimeout, "DefaultShutdownTimeout", DefaultShutdownTimeout)
	}
	if err := validateBreaker(c.Breaker); err != nil {
		return err
	}
	if err := c.Consumer.validate(); err != nil {
		return err
	}
	if err := c.DLQ.Validate(); err != nil {
		return fmt.Errorf("%w: Config.DLQ: %w", ErrInvalidConfig, err)
	}
	return nil
}

// ConsumerConfig tunes the consumer groups that subscriptions run in.
// Negative durations and counts are errors, except CommitEveryBatch.
type ConsumerConfig struct {
	// SessionTimeout is how long the broker waits for a silent member before
	// it reassigns its partitions. Default DefaultSessionTimeout (45 s,
	// franz-go's default).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often members heartbeat; it must be shorter
	// than SessionTimeout. Default DefaultHeartbeatInterval (3 s).
	HeartbeatInterval time.Duration
	// MaxPollRecords caps the records the fetch loop takes from the client
	// at once. Default DefaultMaxPollRecords (500).
	MaxPollRecords int
	// RevokeTimeout bounds how long a partition taken away in a rebalance
	// (or a subscription being removed) waits for its running handlers;
	// then their context is cancelled and the partition goes to its next
	// owner, while other partitions never wait. What did not finish is not
	// committed and comes again. Default DefaultRevokeTimeout (10 s); at
	// most 5 minutes.
	RevokeTimeout time.Duration
	// InstanceID, when set, makes this process a static member of its
	// consumer groups (Kafka's group.instance.id, KIP-345): a restart with
	// the same InstanceID takes its partitions back at once instead of
	// after SessionTimeout, without a rebalance. That holds for the
	// subscriptions' groups and for the dead letter queue's scheduler
	// group (DeadLetterQueue.Start, deadletter.Config.SchedulerGroup): a
	// restarted process owns its dlq.* partitions again at once, applies
	// Retry and Delete and sends automatic retries, fencing what a crashed
	// owner left open. It must be unique among the processes of a group
	// (every process that runs the queue in one scheduler group included)
	// and stable across restarts (a pod or host name). The price: a
	// static member that stops does not leave its groups, so its
	// partitions wait SessionTimeout before other members take them over.
	// Default empty: dynamic membership.
	InstanceID string
	// CommitInterval is the least time between two commits of a group's
	// handled offsets: a batch handled sooner is committed with the next
	// commit, at most CommitInterval later, unless a subscription finished
	// its MaxConcurrency events (at least 64) since the group's last
	// commit, which commits at once. Every commit is a write on the
	// brokers' __consumer_offsets log, so at low rates, where each fetch
	// brings one event, this spares them a commit per event (and the
	// latency that load adds); at high rates the count bounds what a crash
	// delivers again. Commits never overlap, and once twice that count
	// finished since the group's last commit was sent, the subscription
	// starts no event until the next one is: a crash so delivers again at
	// most about 2 × MaxConcurrency events per subscription (at least 128)
	// plus what was running, however long the brokers take to answer a
	// commit. The price: a subscription handles at most about that many
	// events per commit round trip, which only handlers that take next to
	// no time reach (a larger MaxConcurrency raises it; docs/benchmarks.md,
	// drain). Default DefaultCommitInterval (100 ms); CommitEveryBatch
	// commits after every batch instead.
	CommitInterval time.Duration
	// RetryBackoff is the first delay of the retries a subscription makes
	// in place: calling the handler again under RetryInPlace, and writing a
	// dead-letter entry again when the broker refused it. It doubles up to
	// MaxRetryBackoff. The event is not committed meanwhile. Default
	// DefaultConsumerRetryBackoff (100 ms).
	RetryBackoff time.Duration
	// MaxRetryBackoff caps RetryBackoff's doubling; it must be at least
	// RetryBackoff. Default DefaultConsumerMaxRetryBackoff (30 s).
	MaxRetryBackoff time.Duration
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = DefaultMaxPollRecords
	}
	if c.RevokeTimeout == 0 {
		c.RevokeTimeout = DefaultRevokeTimeout
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultConsumerRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultConsumerMaxRetryBackoff
	}
	return c
}

func (c ConsumerConfig) validate() error {
	for _, d := range []struct {
		field, def string
		v, defV    time.Duration
	}{
		{"Consumer.SessionTimeout", "DefaultSessionTimeout", c.SessionTimeout, DefaultSessionTimeout},
		{"Consumer.HeartbeatInterval", "DefaultHeartbeatInterval", c.HeartbeatInterval, DefaultHeartbeatInterval},
		{"Consumer.RevokeTimeout", "DefaultRevokeTimeout", c.RevokeTimeout, DefaultRevokeTimeout},
		{"Consumer.RetryBackoff", "DefaultConsumerRetryBackoff", c.RetryBackoff, DefaultConsumerRetryBackoff},
		{"Consumer.MaxRetryBackoff", "DefaultConsumerMaxRetryBackoff", c.MaxRetryBackoff, DefaultConsumerMaxRetryBackoff},
	} {
		if d.v < 0 {
			return invalidDuration(d.field, d.v, d.def, d.defV)
		}
	}
	if c.MaxPollRecords < 0 {
		return fmt.Errorf("%w: Consumer.MaxPollRecords %d is negative; give a positive count, or 0 for DefaultMaxPollRecords (%d)",
			ErrInvalidConfig, c.MaxPollRecords, DefaultMaxPollRecords)
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return fmt.Errorf("%w: Consumer.HeartbeatInterval (%s) must be shorter than Consumer.SessionTimeout (%s); lower the one or raise the other",
			ErrInvalidConfig, c.HeartbeatInterval, c.SessionTimeout)
	}
	if c.RevokeTimeout > maxRevokeTimeout {
		return fmt.Errorf("%w: Consumer.RevokeTimeout %s is over the %s limit (a rebalance waits for it); give at most %s",
			ErrInvalidConfig, c.RevokeTimeout, maxRevokeTimeout, maxRevokeTimeout)
	}
	if c.CommitInterval < 0 && c.CommitInterval != CommitEveryBatch {
		return fmt.Errorf("%w: Consumer.CommitInterval %s is negative; give a positive interval, 0 for DefaultCommitInterval (%s), or CommitEveryBatch to commit after every batch",
			ErrInvalidConfig, c.CommitInterval, DefaultCommitInterval)
	}
	if c.RetryBackoff > c.MaxRetryBackoff {
		return fmt.Errorf("%w: Consumer.RetryBackoff (%s) is over Consumer.MaxRetryBackoff (%s), which caps it; raise MaxRetryBackoff or lower RetryBackoff",
			ErrInvalidConfig, c.RetryBackoff, c.MaxRetryBackoff)
	}
	return nil
}

// commitInterval is CommitInterval as the consumer engine takes it: 0 is
// every batch.
func (c ConsumerConfig) commitInterval() time.Duration {
	if c.CommitInterval == CommitEveryBatch {
		return 0
	}
	return c.CommitInterval
}

// breakerWithDefaults fills in the zero fields of c.
func breakerWithDefaults(c breaker.Config) breaker.Config {
	if c.FailureThreshold == 0 {
		c.FailureThreshold = breaker.DefaultFailureThreshold
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = breaker.DefaultOpenTimeout
	}
	if c.HalfOpenSuccesses == 0 {
		c.HalfOpenSuccesses = breaker.DefaultHalfOpenSuccesses
	}
	return c
}

// validateBreaker checks c (after breakerWithDefaults).
func validateBreaker(c breaker.Config) error {
	if c.OpenTimeout < 0 {
		return invalidDuration("Breaker.OpenTimeout", c.OpenTimeout, "breaker.DefaultOpenTimeout", breaker.DefaultOpenTimeout)
	}
	return nil
}

// Delivery says how a subscription's events are handled: where a new group
// starts, in which order, how many at once, and what a failure leads to.
// WithDelivery gives it to Subscribe and On, on every target. The zero value is the
// default of each field.
type Delivery struct {
	// FromBeginning makes a group that has no committed offsets on this
	// topic start at the oldest retained event; otherwise it starts
	// exactly after the events published before Subscribe was called.
	// Where committed offsets fell out of retention, consuming resumes at
	// the oldest retained event.
	FromBeginning bool
	// OnFailure decides what happens to an event whose handler failed (or
	// a record that is not an event). Default DeadLetter.
	OnFailure FailurePolicy
	// Ordering says which events are handled one at a time. Default
	// OrderPerKey: the events of one key (the record key: the partition
	// key given to Publish, else the tenant ID) in order, different keys
	// concurrently.
	Ordering Ordering
	// MaxConcurrency is how many of the subscription's handlers may run at
	// once in this process, across its partitions and keys. Default
	// DefaultMaxConcurrency (64). With OrderPerPartition at most one runs
	// per partition anyway.
	MaxConcurrency int
	// MaxPending caps the unfinished events the subscription holds in this
	// process: waiting for their key or a free handler, or running. When
	// it is reached, fetching pauses for the partitions that hold some, and
	// resumes as they drain, so memory stays bounded. Events finished
	// behind an unfinished one do not count (they are kept as ranges of
	// offsets, and ride in the commit's metadata, within its size limit,
	// so that a crash redelivers few of them): a stuck key holds up the
	// other keys of its partition only once its own waiting events reach
	// the cap. Default DefaultMaxPending (10,000).
	MaxPending int
}

func (d Delivery) withDefaults() Delivery {
	if d.MaxConcurrency == 0 {
		d.MaxConcurrency = DefaultMaxConcurrency
	}
	if d.MaxPending == 0 {
		d.MaxPending = DefaultMaxPending
	}
	return d
}

func (d Delivery) validate() error {
	if d.OnFailure < DeadLetter || d.OnFailure > Skip {
		return fmt.Errorf("%w: Delivery.OnFailure %d is not DeadLetter, RetryInPlace or Skip", ErrInvalidConfig, d.OnFailure)
	}
	if d.Ordering < OrderPerKey || d.Ordering > OrderNone {
		return fmt.Errorf("%w: Delivery.Ordering %d is not OrderPerKey, OrderPerPartition or OrderNone", ErrInvalidConfig, d.Ordering)
	}
	if d.MaxConcurrency < 0 || d.MaxPending < 0 {
		return fmt.Errorf("%w: Delivery.MaxConcurrency (%d) and MaxPending (%d) must not be negative (0 means the default)",
			ErrInvalidConfig, d.MaxConcurrency, d.MaxPending)
	}
	return nil
}

// invalidDuration is the error of a negative duration whose zero means def.
func invalidDuration(field string, v time.Duration, def string, defV time.Duration) error {
	return fmt.Errorf("%w: %s %s is negative; give a positive duration, or 0 for %s (%s)", ErrInvalidConfig, field, v, def, defV)
}
