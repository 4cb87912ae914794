package eventbus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/topicadmin"
	"github.com/plexica/eventbus/topic"
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

// Client is a connection to a Kafka-protocol cluster (Redpanda, Apache
// Kafka, or the embedded broker). One Client serves any number of Bus values;
// it is safe for concurrent use.
type Client struct {
	cfg    ClientConfig
	logger *slog.Logger

	mu     sync.Mutex
	admin  *kgo.Client
	kadm   *kadm.Client
	topics *topic.Manager
	valid  *validNames // the topic names that passed cfg.TopicRules
	closed bool
}

// NewClient checks cfg and returns a Client that is not yet connected.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, logger: cfg.Logger}
	c.topics = topicadmin.NewManager(c.adminKgo, cfg.TopicRules).(*topic.Manager)
	c.valid = &validNames{rules: cfg.TopicRules}
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

// KafkaOpts returns the franz-go options that say where the cluster is
// and how to reach it: seed brokers, client ID, dial timeout, SASL and TLS.
// A program that runs raw franz-go clients next to the bus (a benchmark, a
// tool) starts from them, so that both reach the cluster the same way;
// options appended after them override them (kgo.ClientID, ...).
func (c *Client) KafkaOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID(c.cfg.ClientID),
		kgo.DialTimeout(c.cfg.ConnectTimeout),
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

// kgoOpts are the options every franz-go client of this Client shares.
func (c *Client) kgoOpts() []kgo.Opt {
	return append(c.KafkaOpts(), kgo.WithLogger(slogAdapter{l: c.logger}))
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
// ClientConfig.ConnectTimeout (or before ctx ends). It fails at once, with
// a *ConnectError, when retrying cannot help: a broker rejected the SASL
// credentials (ErrAuthenticationFailed), the TLS handshake failed
// (ErrTLSHandshake), or the brokers closed every connection at once three
// times in a row, as they do to a client without the TLS or SASL they
// require (ErrBrokerUnavailable). Connecting twice is a no-op.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%w: the client was closed; make a new one with NewClient", ErrNotConnected)
	}
	if c.admin != nil {
		return nil
	}
	// While Connect tries, franz-go's complaints are debug messages: the
	// error Connect returns says what failed, once.
	watch, trying := &connWatch{}, &atomic.Bool{}
	trying.Store(true)
	cl, err := c.newKgo(kgo.WithHooks(watch), kgo.WithLogger(slogAdapter{l: c.logger, quiet: trying}))
	if err != nil {
		return err
	}
	pingCtx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	err = c.ping(pingCtx, cl, watch)
	trying.Store(false)
	if err != nil {
		cl.Close()
		if _, ok := errors.AsType[*ConnectError](err); ok {
			return err
		}
		return fmt.Errorf("%w: tried %s for %s; check that a broker runs there and the address is right: %w",
			ErrBrokerUnavailable, strings.Join(c.cfg.Brokers, ", "), c.cfg.ConnectTimeout, err)
	}
	c.admin = cl
	c.kadm = kadm.NewClient(cl)
	return nil
}

// closedAtOnceLimit is how many pings in a row must fail on connections the
// brokers closed at once before Connect stops retrying: a broker that
// restarts may drop one connection, not every one.
const closedAtOnceLimit = 3

// ping retries a metadata request until it succeeds or ctx ends; a broker
// that is starting up often refuses the first connection. It stops early,
// with a *ConnectError, on failures that retrying cannot fix.
func (c *Client) ping(ctx context.Context, cl *kgo.Client, watch *connWatch) error {
	delays := backoff.Delays{Base: 50 * time.Millisecond, Max: time.Second}
	closedAtOnce := 0
	for {
		watch.startPing()
		err := cl.Ping(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if cerr := c.permanent(err, watch); cerr != nil {
			return cerr
		}
		if _, ok := errors.AsType[*kgo.ErrFirstReadEOF](err); ok {
			if closedAtOnce++; closedAtOnce >= closedAtOnceLimit {
				return &ConnectError{Broker: watch.broker(c.cfg.Brokers), Reason: ErrBrokerUnavailable, Err: err}
			}
		} else {
			closedAtOnce = 0
		}
		if !backoff.Sleep(ctx, delays.Next()) {
			return err
		}
	}
}

// permanent returns a *ConnectError when err (a failed ping) is one that
// retrying cannot fix: rejected SASL credentials or a failed TLS handshake.
func (c *Client) permanent(err error, watch *connWatch) error {
	broker := watch.broker(c.cfg.Brokers)
	if c.cfg.SASL != nil {
		who := fmt.Sprintf("user %q, mechanism %s", c.cfg.SASL.Username, strings.ToUpper(c.cfg.SASL.Mechanism))
		for _, k := range []*kerr.Error{kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState} {
			if errors.Is(err, k) {
				return &ConnectError{Broker: broker, Reason: ErrAuthenticationFailed, Err: fmt.Errorf("%s: %w", who, err)}
			}
		}
		// Some brokers (kfake among them) close the connection instead of
		// answering SASL_AUTHENTICATION_FAILED. franz-go retries such a
		// connection once within a ping: twice in one ping is not a
		// network blip.
		if n, saslErr := watch.saslClosed(); n >= 2 {
			return &ConnectError{Broker: broker, Reason: ErrAuthenticationFailed,
				Err: fmt.Errorf("%s: the broker closed the connection during authentication: %w", who, saslErr)}
		}
	}
	if isTLSFailure(err) {
		return &ConnectError{Broker: broker, Reason: ErrTLSHandshake, Err: err}
	}
	return nil
}

// isTLSFailure reports whether err is a TLS handshake failure: a
// certificate this side does not trust, an alert from the other side (it
// refused the client's certificate), or a peer that does not speak TLS.
func isTLSFailure(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	// An alert received from the peer is a *net.OpError "remote error".
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		return true
	}
	return false
}

// connWatch is a franz-go hook on the client Connect pings with: it
// remembers the last broker a connection failed to and how many SASL
// exchanges ended on a closed connection, which the errors alone do not say.
type connWatch struct {
	mu      sync.Mutex
	last    string // "host:port" of the last broker a connection failed to
	saslN   int
	saslErr error
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (w *connWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		w.failed(meta, false, err)
	}
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *connWatch) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		w.failed(meta, key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate), err)
	}
}

func (w *connWatch) failed(meta kgo.BrokerMetadata, sasl bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	if sasl {
		w.saslN++
		w.saslErr = err
	}
}

// broker returns the last broker a connection failed to, else the seeds.
func (w *connWatch) broker(seeds []string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last != "" {
		return w.last
	}
	return strings.Join(seeds, ",")
}

// startPing forgets the SASL failures of earlier pings.
func (w *connWatch) startPing() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.saslN, w.saslErr = 0, nil
}

// saslClosed returns how many SASL exchanges failed on their connection
// since startPing, and the last such error.
func (w *connWatch) saslClosed() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.saslN, w.saslErr
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

// Topics returns the client's topic manager: it validates names and
// creates and lists topics on this connection.
func (c *Client) Topics() *topic.Manager { return c.topics }

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

// adminKgo returns the client's own franz-go client (connected by Connect).
func (c *Client) adminKgo() (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin == nil {
		return nil, fmt.Errorf("%w: call Connect first", ErrNotConnected)
	}
	return c.admin, nil
}

// slogAdapter sends franz-go's logs to slog, lowered so that the client's
// chatter (connection retries, rebalances) stays out of an application's
// info logs: franz-go errors become warnings, its warnings and infos debug
// messages. The bus logs what an operator must act on itself. While quiet
// is set, every message is a debug message.
type slogAdapter struct {
	l     *slog.Logger
	quiet *atomic.Bool
}

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
	if a.quiet != nil && a.quiet.Load() {
		l = min(l, slog.LevelDebug)
	}
	a.l.Log(context.Background(), l, "kafka: "+msg, keyvals...)
}
