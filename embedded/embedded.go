// Package embedded runs a Kafka-protocol broker inside the process, for
// development and tests. It is a thin layer over franz-go's kfake: a real
// protocol speaker with consumer groups, transactions, SASL, ACLs and TLS,
// and (with Config.DataDir) persistence across restarts.
//
// What it is for: a developer's machine (`eventbus serve` without
// --brokers), tests (each its own broker, in-process, nothing to install)
// and demos. What it is not: a production broker. It has no replication
// across machines (its several "brokers" share one process), and its
// records live in the process: in its memory without DataDir, in DataDir
// with an index in memory otherwise. Run Redpanda or Apache Kafka in
// production; the same code talks to them.
//
// Memory stays bounded the way Kafka bounds a log: each partition keeps
// what its topic's retention.ms and retention.bytes allow (applied every
// Config.CheckInterval), and Config.MaxBytes caps all topics together:
// past it, the oldest records of the largest partitions are deleted first.
// Topics with cleanup.policy=compact are left out of the cap: they keep
// what compaction keeps.
//
//	b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:9092", DataDir: "./data", MaxBytes: 512 << 20})
//	if err != nil { ... }
//	defer b.Close()
//	fmt.Println(b.Addrs()) // [127.0.0.1:9092]
package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ErrAddrInUse is returned by Start when the listen address is taken.
var ErrAddrInUse = errors.New("address already in use")

// User is a SASL user of the embedded broker.
type User struct {
	// Mechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism string
	Name      string
	Password  string
}

// Config describes an embedded broker. The zero value is one in-memory broker
// on a free port of 127.0.0.1.
type Config struct {
	// Addr is where the (first) broker listens, "host:port". Default
	// "127.0.0.1:0", a free port. With several brokers, the others take the
	// following ports (or free ports when the port is 0).
	Addr string
	// AdvertisedHost is the host clients are told to connect to, in the
	// broker's metadata answers and in Addrs. Default: the host of Addr;
	// when Addr listens on every interface (0.0.0.0, :: or no host), the
	// machine's host name, so that clients on other machines can follow it.
	AdvertisedHost string
	// Brokers is the number of brokers. Default 1.
	Brokers int
	// DataDir, when set, persists topics, records and group offsets there,
	// and reloads them on the next Start with the same directory.
	DataDir string
	// SyncWrites fsyncs every produced batch (with DataDir): slower, but
	// nothing acknowledged is lost even if the machine crashes.
	SyncWrites bool
	// Superuser, when set, turns SASL on; this user bypasses ACLs.
	Superuser *User
	// EnableACLs makes the broker enforce ACLs for non-superusers. It needs
	// Superuser.
	EnableACLs bool
	// TLS, when set, makes every listener speak TLS only, with this
	// configuration (its Certificates; ClientAuth and ClientCAs to require
	// client certificates). Default: plaintext.
	TLS *tls.Config
	// Logger, when set, receives the broker's logs at the given level and above.
	Logger *slog.Logger
	// MaxBytes, when positive, caps the bytes of records the broker
	// retains, all topics together, in memory and (with DataDir) on disk:
	// past it, the oldest records of the largest partitions are deleted
	// first, as DeleteRecords would, until the total is back under 90 % of
	// it. Topics with cleanup.policy=compact (without delete) are neither
	// counted nor trimmed: they keep what compaction keeps. The cap is
	// checked every CheckInterval, so the total can pass it by what is
	// produced in between. 0 means no cap: records stay until their
	// topic's retention.ms or retention.bytes removes them.
	MaxBytes int64
	// CheckInterval is how often retention (retention.ms and
	// retention.bytes of each partition, as Kafka applies them) and
	// MaxBytes are enforced. Default DefaultCheckInterval.
	CheckInterval time.Duration
}

// Broker is a running embedded cluster.
type Broker struct {
	cluster *kfake.Cluster
	janitor *janitor
	addrs   []string
	once    sync.Once
}

// Start starts the broker(s) and returns once they accept connections.
func Start(cfg Config) (*Broker, error) {
	if cfg.Brokers <= 0 {
		cfg.Brokers = 1
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: want host:port (e.g. 127.0.0.1:9092): %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded broker address %q: port must be a number from 0 to 65535", cfg.Addr)
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("embedded broker MaxBytes %d: want 0 (no cap) or a positive number of bytes", cfg.MaxBytes)
	}
	if cfg.CheckInterval < 0 {
		return nil, fmt.Errorf("embedded broker CheckInterval %s: want a positive duration (or 0 for the default)", cfg.CheckInterval)
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.EnableACLs && cfg.Superuser == nil {
		return nil, errors.New("embedded broker: EnableACLs needs a Superuser (or no one could create ACLs)")
	}
	advertised, err := advertisedHost(host, cfg.AdvertisedHost)
	if err != nil {
		return nil, err
	}
	ports := make([]int, cfg.Brokers)
	for i := range ports {
		if port != 0 {
			ports[i] = port + i
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(cfg.Brokers),
		kfake.Ports(ports...),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(address)
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			return advertisingListener{ln, advertised}, nil
		}),
		kfake.DefaultNumPartitions(3),
		kfake.AllowAutoTopicCreation(),
	}
	if cfg.MaxBytes > 0 {
		// Records leave the disk a whole segment at a time: segments of
		// kfake's default 100 MiB would keep far more on disk than a
		// small cap allows.
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.FormatInt(segmentBytes(cfg.MaxBytes), 10)}))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	if su := cfg.Superuser; su != nil {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(su.Mechanism, su.Name, su.Password))
	}
	if cfg.EnableACLs {
		opts = append(opts, kfake.EnableACLs())
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS.Clone()))
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogLogger{cfg.Logger}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if isAddrInUse(err) {
			return nil, fmt.Errorf("%w: embedded broker cannot listen on %s; stop what runs there or pick another address: %v", ErrAddrInUse, cfg.Addr, err)
		}
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	var lister *kgo.Client
	if cfg.MaxBytes > 0 {
		lister = selfClient(c.ListenAddrs(), cfg)
	}
	return &Broker{cluster: c, addrs: c.ListenAddrs(), janitor: newJanitor(c, cfg.MaxBytes, cfg.CheckInterval, cfg.DataDir, lister)}, nil
}

// selfClient is an admin client of the broker itself, for the janitor to
// list its topics (kfake has no listing of its own), logged in as the
// superuser when SASL is on. Nil under TLS (the janitor cannot be sure to
// pass the listener's client authentication) or when the client cannot be
// made: the janitor then learns the topics from produce requests.
func selfClient(addrs []string, cfg Config) *kgo.Client {
	if cfg.TLS != nil {
		return nil
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ClientID("embedded-janitor")}
	if su := cfg.Superuser; su != nil {
		switch su.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: su.Name, Pass: su.Password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: su.Name, Pass: su.Password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: su.Name, Pass: su.Password}.AsSha512Mechanism()))
		default:
			return nil
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil
	}
	return cl
}

// segmentBytes is the segment size under a cap of maxBytes: a 64th of it,
// from 1 MiB to kfake's default of 100 MiB.
func segmentBytes(maxBytes int64) int64 {
	return min(max(maxBytes/64, 1<<20), 100<<20)
}

// advertisedHost is the host a broker listening on listenHost tells
// clients to connect to.
func advertisedHost(listenHost, configured string) (string, error) {
	if configured != "" {
		if strings.ContainsAny(configured, ":/ ") && net.ParseIP(configured) == nil {
			return "", fmt.Errorf("embedded broker advertised host %q: want a host name or IP address without a port (e.g. eventbus.internal)", configured)
		}
		return configured, nil
	}
	if ip := net.ParseIP(listenHost); listenHost != "" && (ip == nil || !ip.IsUnspecified()) {
		return listenHost, nil
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "", fmt.Errorf("embedded broker listens on every interface but the host name is unknown (%v); set AdvertisedHost", err)
	}
	return name, nil
}

// advertisingListener reports the advertised host with the listening port
// as its address: the broker puts that address in its metadata answers.
type advertisingListener struct {
	net.Listener
	host string
}

func (l advertisingListener) Addr() net.Addr {
	_, port, _ := net.SplitHostPort(l.Listener.Addr().String())
	return advertisedAddr(net.JoinHostPort(l.host, port))
}

// advertisedAddr is a TCP address given as "host:port".
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

func isAddrInUse(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "listen"
}

// Addrs returns the brokers' addresses, "host:port".
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Close stops the broker. With a DataDir, its state is flushed there first.
// Closing twice is a no-op.
func (b *Broker) Close() {
	b.once.Do(func() {
		b.janitor.close()
		b.cluster.Close()
	})
}

// Cluster returns the underlying kfake cluster, for fault injection in tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	case kfake.LogLevelInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	if s.l.Enabled(context.Background(), l) {
		s.l.Log(context.Background(), l, "embedded broker: "+fmt.Sprintf(msg, args...))
	}
}
