package eventbus

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLConfig authenticates the client to the brokers.
type SASLConfig struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	// Username and Password are the credentials; both are required.
	Username string
	Password string
}

// ClientConfig says where the brokers are and how to reach them.
type ClientConfig struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string
	// ClientID names this client to the brokers. Default "plexica-eventbus".
	ClientID string
	// SASL, when set, authenticates every connection.
	SASL *SASLConfig
	// TLS, when set, encrypts every connection.
	TLS *tls.Config
	// Logger receives the client's logs. Default slog.Default().
	Logger *slog.Logger
	// ConnectTimeout bounds Connect when no broker answers. Default 10 s.
	ConnectTimeout time.Duration
	// TopicRules are the topic-name rules; set it to allow more non-"-ed"
	// actions (see NewTopicRules). Default DefaultTopicRules().
	TopicRules *TopicRules
}

// Client is a connection to a Kafka-protocol cluster (Redpanda, Apache
// Kafka, or the embedded broker). One Client serves any number of Bus values;
// it is safe for concurrent use.
type Client struct {
	cfg    ClientConfig
	logger *slog.Logger

	mu     sync.Mutex
	admin  *kgo.Client
	kadm   *kadm.Client
	topics *TopicManager
	closed bool
}

// NewClient checks cfg and returns a Client that is not yet connected.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("%w: ClientConfig.Brokers is empty; give at least one \"host:port\" (e.g. 127.0.0.1:9092)", ErrInvalidConfig)
	}
	for _, b := range cfg.Brokers {
		if strings.TrimSpace(b) == "" {
			return nil, fmt.Errorf("%w: ClientConfig.Brokers has an empty address", ErrInvalidConfig)
		}
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "plexica-eventbus"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.TopicRules == nil {
		cfg.TopicRules = DefaultTopicRules()
	}
	if cfg.SASL != nil {
		if _, err := cfg.SASL.mechanism(); err != nil {
			return nil, err
		}
	}
	c := &Client{cfg: cfg, logger: cfg.Logger}
	c.topics = newTopicManager(c)
	return c, nil
}

func (s *SASLConfig) mechanism() (sasl.Mechanism, error) {
	if s.Username == "" || s.Password == "" {
		return nil, fmt.Errorf("%w: SASL needs both Username and Password", ErrInvalidConfig)
	}
	switch strings.ToUpper(s.Mechanism) {
	case SASLPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	default:
		return nil, fmt.Errorf("%w: SASL mechanism %q is not supported; use %s, %s or %s",
			ErrInvalidConfig, s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
}

// kgoOpts are the options every franz-go client of this Client shares.
func (c *Client) kgoOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID(c.cfg.ClientID),
		kgo.DialTimeout(c.cfg.ConnectTimeout),
		kgo.WithLogger(slogAdapter{c.logger}),
	}
	if c.cfg.SASL != nil {
		m, _ := c.cfg.SASL.mechanism() // checked in NewClient
		opts = append(opts, kgo.SASL(m))
	}
	if c.cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.cfg.TLS.Clone()))
	}
	return opts
}

// newKgo builds a franz-go client with the shared options plus extra.
func (c *Client) newKgo(extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(c.kgoOpts(), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return cl, nil
}

// Connect reaches the cluster and fails, wrapping ErrBrokerUnavailable and
// naming the brokers it tried, when none answers within
// ClientConfig.ConnectTimeout (or before ctx ends). Connecting twice is a no-op.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%w: the client was closed; make a new one with NewClient", ErrNotConnected)
	}
	if c.admin != nil {
		return nil
	}
	cl, err := c.newKgo()
	if err != nil {
		return err
	}
	pingCtx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	if err := c.ping(pingCtx, cl); err != nil {
		cl.Close()
		return fmt.Errorf("%w: tried %s for %s; check that a broker runs there and the address is right: %w",
			ErrBrokerUnavailable, strings.Join(c.cfg.Brokers, ", "), c.cfg.ConnectTimeout, err)
	}
	c.admin = cl
	c.kadm = kadm.NewClient(cl)
	return nil
}

// ping retries a metadata request until it succeeds or ctx ends; a broker
// that is starting up often refuses the first connection.
func (c *Client) ping(ctx context.Context, cl *kgo.Client) error {
	backoff := 50 * time.Millisecond
	for {
		err := cl.Ping(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

// Close releases the client's connections. Buses built on it must be shut
// down first.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.admin != nil {
		c.admin.Close()
		c.admin, c.kadm = nil, nil
	}
}

// Brokers returns the seed brokers.
func (c *Client) Brokers() []string { return append([]string(nil), c.cfg.Brokers...) }

// ClientID returns the client ID sent to the brokers.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// Topics returns the client's TopicManager.
func (c *Client) Topics() *TopicManager { return c.topics }

// Admin returns a franz-go admin client on this connection, for operations the
// bus does not wrap (describe groups, lag, ACLs). It fails with
// ErrNotConnected before Connect.
func (c *Client) Admin() (*kadm.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kadm == nil {
		return nil, fmt.Errorf("%w: call Connect first", ErrNotConnected)
	}
	return c.kadm, nil
}

// slogAdapter sends franz-go's logs to slog, lowered so that the client's
// chatter (connection retries, rebalances) stays out of an application's
// info logs: franz-go errors become warnings, its warnings and infos debug
// messages. The bus logs what an operator must act on itself.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel {
	switch {
	case a.l.Enabled(context.Background(), slog.LevelDebug-4):
		return kgo.LogLevelDebug
	case a.l.Enabled(context.Background(), slog.LevelDebug):
		return kgo.LogLevelInfo
	case a.l.Enabled(context.Background(), slog.LevelWarn):
		return kgo.LogLevelError
	default:
		return kgo.LogLevelNone
	}
}

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelDebug - 4
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelWarn
	case kgo.LogLevelWarn, kgo.LogLevelInfo:
		l = slog.LevelDebug
	}
	a.l.Log(context.Background(), l, "kafka: "+msg, keyvals...)
}
