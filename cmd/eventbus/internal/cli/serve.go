package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/gateway"
	"github.com/plexica/eventbus/groups"
	"github.com/plexica/eventbus/outbox"
)

// Environment variables of serve's HTTP gateway.
const (
	// EnvSubscriptions names the push subscriptions file (--subscriptions).
	EnvSubscriptions = "EVENTBUS_SUBSCRIPTIONS"
	// EnvPushAllow lists the endpoint prefixes push subscriptions may
	// deliver to (--push-allow).
	EnvPushAllow = "EVENTBUS_PUSH_ALLOW"
	// EnvPluginTokens lists the gateway's plugin tokens (--plugin-token).
	EnvPluginTokens = "EVENTBUS_PLUGIN_TOKENS"
)

// Defaults of `eventbus serve`.
const (
	DefaultBrokerAddr = "127.0.0.1:9092"
	DefaultDataDir    = "./data"
	// DefaultConnectTimeout is the library's ClientConfig default.
	DefaultConnectTimeout = eventbus.DefaultConnectTimeout
	DefaultHTTPAddr       = "127.0.0.1:8080"
	// shutdownTimeout bounds a clean stop; after it, what is left is
	// dropped. It is the library's bound of Bus.Shutdown.
	shutdownTimeout = eventbus.DefaultShutdownTimeout
)

// serveConfig is what `eventbus serve` runs, resolved from flags and
// environment.
type serveConfig struct {
	// brokerSettings are the external cluster and how to reach it (SASL,
	// TLS); no Brokers means run the embedded broker.
	brokerSettings
	// BrokerAddr is where the embedded broker listens.
	BrokerAddr string
	// AdvertisedHost is the host the embedded broker tells clients to use.
	AdvertisedHost string
	// DataDir is where the embedded broker persists; empty keeps it in memory.
	DataDir string
	// BrokerMaxBytes caps what the embedded broker retains, all topics
	// together; 0 means no cap (embedded.Config.MaxBytes).
	BrokerMaxBytes int64
	// InstanceID makes this process a static member of its consumer groups
	// (eventbus.ConsumerConfig.InstanceID), so that a restart takes its
	// partitions back at once; empty: dynamic membership.
	InstanceID string
	// HTTPAddr is where the DLQ REST API, /metrics and the health checks listen.
	HTTPAddr string
	// Tokens is the --admin-token list (see dlqhttp.ParseTokens); empty
	// means a random admin token is generated and printed.
	Tokens string
	// Compression is the codec of what this process publishes (retries).
	Compression eventbus.Compression
	// OutboxDSN, when set, is the PostgreSQL database whose outbox this
	// process relays (--outbox-dsn, EVENTBUS_OUTBOX_DSN).
	OutboxDSN string
	// Outbox names the outbox table.
	Outbox outbox.Config
	// SubscriptionsFile is the push subscriptions file (--subscriptions);
	// Subscriptions are what it declares.
	SubscriptionsFile string
	Subscriptions     []gateway.Subscription
	// PushAllow are the URL prefixes push endpoints must be under
	// (gateway.Config.AllowedEndpoints).
	PushAllow []string
	// PluginTokens are the gateway's plugin tokens (--plugin-token).
	PluginTokens map[string]gateway.PluginScope
	// LagSampleInterval is how often the consumer groups' lag is sampled
	// for the console's chart (groups.HistoryConfig.Interval).
	LagSampleInterval time.Duration
}

// embedded reports whether serve runs the embedded broker.
func (c serveConfig) embedded() bool { return len(c.Brokers) == 0 }

func (a *app) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the event bus service, with an embedded broker unless --brokers is given",
		Long: fmt.Sprintf(`Run the event bus service until SIGINT or SIGTERM.

Without --brokers it starts an embedded Kafka-protocol broker (for development)
on --broker-addr, persisting under --data; --in-memory (or --data "") keeps it in
memory. The embedded broker keeps at most --broker-max-bytes of records (default
`+DefaultBrokerMaxBytes+`): past it the oldest records of the largest partitions go first.
With --brokers it connects to that Redpanda or Kafka cluster instead, with
SASL and TLS as the --sasl-* and --tls-* flags say (the password comes from
EVENTBUS_SASL_PASSWORD or --sasl-password-file).

It serves the HTTP gateway (package gateway): POST /api/events and
/api/events/batch publish over HTTP (the bus's JSON envelope or CloudEvents),
with the --admin-token tokens; --subscriptions names a JSON file of push
subscriptions, each delivering events to an HTTP endpoint (see
docs/gateway.md), and --push-allow limits the endpoints they may name.

With --outbox-dsn (or EVENTBUS_OUTBOX_DSN) it also relays the transactional
outbox of that PostgreSQL database (package outbox): its tables are created if
missing, /metrics shows the backlog and /readyz fails while the database does
not answer.

Once ready it prints how to connect, and one line for scripts:
  EVENTBUS_BROKERS=host:port[,host:port...]

It runs the dead letter queue with the library's defaults: up to %d automatic
retries per failed event, %s after the failure and doubling up to %s, in
scheduler group %s; a stop waits at most %s.`,
			deadletter.DefaultMaxRetries, shortDuration(deadletter.DefaultRetryBackoff), shortDuration(deadletter.DefaultMaxRetryBackoff),
			deadletter.DefaultSchedulerGroup, shortDuration(shutdownTimeout)),
		Example: `  eventbus serve
  eventbus serve --broker-addr 127.0.0.1:0 --in-memory --broker-max-bytes 64MiB
  EVENTBUS_INSTANCE_ID=$POD_NAME eventbus serve --brokers kafka-0:9092
  eventbus serve --brokers redpanda-0:9092,redpanda-1:9092
  EVENTBUS_SASL_PASSWORD=... eventbus serve --brokers kafka-0:9093 --sasl-mechanism SCRAM-SHA-512 --sasl-user eventbus --tls-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.resolveServeConfig(cmd)
			if err != nil {
				return err
			}
			return a.serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.String("brokers", "", "Kafka-protocol brokers to use, host:port,... (env "+EnvBrokers+"); none: run the embedded broker")
	f.String("broker-addr", DefaultBrokerAddr, "where the embedded broker listens, host:port; port 0 picks a free one (env "+EnvBrokerAddr+")")
	f.String("advertised-host", "", "host the embedded broker tells clients to connect to; default the --broker-addr host, or this machine's name when that is 0.0.0.0 (env "+EnvAdvertisedHost+")")
	f.String("data", DefaultDataDir, `directory the embedded broker persists to; "" keeps it in memory (env `+EnvData+")")
	f.Bool("in-memory", false, "keep the embedded broker's data in memory only (same as --data \"\")")
	f.String("broker-max-bytes", DefaultBrokerMaxBytes, "cap on the records the embedded broker retains, all topics together, in memory and on disk: past it the oldest records of the largest partitions are deleted first (compacted topics are left out); e.g. 256MiB, 2GiB; 0: no cap (env "+EnvBrokerMaxBytes+")")
	f.String("instance-id", "", "a stable ID for this process in its consumer groups, unique among the instances (set it to the pod name): a restart then takes its partitions back at once instead of after the session timeout (env "+EnvInstanceID+")")
	f.Duration("connect-timeout", DefaultConnectTimeout, "how long to wait for the brokers to answer")
	f.String("http-addr", DefaultHTTPAddr, "where the DLQ REST API, /metrics, /healthz and /readyz listen, host:port; port 0 picks a free one (env "+EnvHTTPAddr+")")
	f.String("subscriptions", "", "JSON file of push subscriptions the HTTP gateway runs: {\"subscriptions\":[{\"name\":...,\"events\":[...],\"endpoint\":...}]} (env "+EnvSubscriptions+")")
	f.String("push-allow", "", "URL prefixes push endpoints must be under, comma separated (https://hooks.internal/,http://10.0.3.7:3000/); none: any http or https URL (env "+EnvPushAllow+")")
	f.String("plugin-token", "", "bearer tokens of the HTTP gateway that publish only a plugin's own events, comma separated: TOKEN=plugin:ID (any tenant) or TOKEN=plugin:ID:tenant:TENANT (env "+EnvPluginTokens+")")
	f.String("admin-token", "", "bearer tokens for the console, its REST API and the HTTP gateway, comma separated: [NAME:]TOKEN (admin) or [NAME:]TOKEN=tenant:ID (one tenant); the audit trail records each action with the token's NAME; none: a random admin token is generated and printed (env "+EnvTokens+")")
	f.Duration("lag-sample-interval", groups.DefaultSampleInterval, "how often the console samples every consumer group's lag (its chart shows the last "+shortDuration(groups.DefaultHistoryWindow)+")")
	addSecurityFlags(cmd)
	addCompressionFlag(cmd)
	addOutboxFlags(cmd, "relay the transactional outbox of this PostgreSQL database to the brokers (its tables are created if missing)")
	return cmd
}

// resolveServeConfig reads serve's flags and environment and checks them.
func (a *app) resolveServeConfig(cmd *cobra.Command) (serveConfig, error) {
	f := cmd.Flags()
	cfg := serveConfig{
		brokerSettings: brokerSettings{Brokers: splitList(a.stringSetting(cmd, "brokers", EnvBrokers))},
		BrokerAddr:     a.stringSetting(cmd, "broker-addr", EnvBrokerAddr),
		AdvertisedHost: a.stringSetting(cmd, "advertised-host", EnvAdvertisedHost),
		DataDir:        a.stringSetting(cmd, "data", EnvData),
		HTTPAddr:       a.stringSetting(cmd, "http-addr", EnvHTTPAddr),
		Tokens:         a.stringSetting(cmd, "admin-token", EnvTokens),
		InstanceID:     strings.TrimSpace(a.stringSetting(cmd, "instance-id", EnvInstanceID)),
	}
	var err error
	if cfg.BrokerMaxBytes, err = parseByteSize(a.stringSetting(cmd, "broker-max-bytes", EnvBrokerMaxBytes)); err != nil {
		return cfg, usageErrorf("--broker-max-bytes (or %s): %v", EnvBrokerMaxBytes, err)
	}
	if cfg.OutboxDSN, cfg.Outbox, err = a.resolveOutbox(cmd); err != nil {
		return cfg, err
	}
	cfg.SubscriptionsFile = strings.TrimSpace(a.stringSetting(cmd, "subscriptions", EnvSubscriptions))
	cfg.PushAllow = splitList(a.stringSetting(cmd, "push-allow", EnvPushAllow))
	if cfg.PluginTokens, err = gateway.ParsePluginTokens(a.stringSetting(cmd, "plugin-token", EnvPluginTokens)); err != nil {
		return cfg, usageErrorf("--plugin-token (or %s): %v", EnvPluginTokens, err)
	}
	if cfg.SubscriptionsFile != "" {
		if cfg.Subscriptions, err = gateway.LoadSubscriptions(cfg.SubscriptionsFile); err != nil {
			return cfg, usageErrorf("--subscriptions (or %s): %v", EnvSubscriptions, err)
		}
	}
	if cfg.Compression, err = a.resolveCompression(cmd); err != nil {
		return cfg, err
	}
	if _, _, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
		return cfg, usageErrorf("--http-addr %q is not host:port (e.g. %s, or 127.0.0.1:0 for a free port)", cfg.HTTPAddr, DefaultHTTPAddr)
	}
	if _, err := dlqhttp.ParseNamedTokens(cfg.Tokens); err != nil {
		return cfg, usageErrorf("--admin-token: %v", err)
	}
	if cfg.LagSampleInterval, _ = f.GetDuration("lag-sample-interval"); cfg.LagSampleInterval <= 0 || cfg.LagSampleInterval > groups.DefaultHistoryWindow {
		return cfg, usageErrorf("--lag-sample-interval must be positive and at most %s, e.g. 10s", shortDuration(groups.DefaultHistoryWindow))
	}
	inMemory, _ := f.GetBool("in-memory")
	cfg.ConnectTimeout, _ = f.GetDuration("connect-timeout")
	if cfg.ConnectTimeout <= 0 {
		return cfg, usageErrorf("--connect-timeout must be positive, e.g. 10s")
	}
	if !cfg.embedded() {
		for _, name := range []string{"broker-addr", "advertised-host", "data", "in-memory", "broker-max-bytes"} {
			if f.Changed(name) {
				return cfg, usageErrorf("--%s configures the embedded broker, which does not run with --brokers (or %s); drop one of the two", name, EnvBrokers)
			}
		}
		for _, b := range cfg.Brokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return cfg, usageErrorf("broker %q is not host:port (e.g. 127.0.0.1:9092)", b)
			}
		}
		err := a.resolveSecurity(cmd, &cfg.brokerSettings)
		return cfg, err
	}
	if name := securityFlagGiven(cmd); name != "" {
		return cfg, usageErrorf("%s configures the connection to --brokers; the embedded broker runs without SASL and TLS: give --brokers (or %s), or drop %s", name, EnvBrokers, name)
	}
	if h := cfg.AdvertisedHost; strings.ContainsAny(h, ":/ ") && net.ParseIP(h) == nil {
		return cfg, usageErrorf("--advertised-host %q: want a host name or IP address without a port (e.g. eventbus.internal)", h)
	}
	if inMemory {
		if f.Changed("data") && cfg.DataDir != "" {
			return cfg, usageErrorf("--in-memory and --data %q contradict each other; keep one", cfg.DataDir)
		}
		cfg.DataDir = ""
	}
	if _, _, err := net.SplitHostPort(cfg.BrokerAddr); err != nil {
		return cfg, usageErrorf("--broker-addr %q is not host:port (e.g. %s, or 127.0.0.1:0 for a free port)", cfg.BrokerAddr, DefaultBrokerAddr)
	}
	return cfg, nil
}

// serve starts the server, prints how to reach it, runs it until ctx ends,
// and stops it.
func (a *app) serve(ctx context.Context, cfg serveConfig) error {
	s := newServer(cfg, a.log, a.libLog)
	if err := s.Start(ctx); err != nil {
		_ = s.Close(context.Background()) // nothing ran yet: only releases
		if ctx.Err() != nil {
			return nil // stopped by a signal while starting
		}
		return err
	}
	s.PrintBanner(a.stdout)
	runErr := s.Run(ctx)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	closeErr := s.Close(stopCtx)
	a.log.Info("eventbus: stopped")
	return errors.Join(runErr, closeErr)
}

// shortDuration is d as time.Duration.String says it, without the zero
// minutes and seconds of a round duration: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
