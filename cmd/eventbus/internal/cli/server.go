package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/console"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/gateway"
	"github.com/plexica/eventbus/groups"
	"github.com/plexica/eventbus/outbox"
)

// server is what `eventbus serve` runs: the brokers (an embedded one, or a
// connection to a cluster), a client and a bus on them.
//
// It is built in three steps so that the service side can grow here: Start
// brings up everything that must work before the process reports ready
// (later: the DLQ view rebuilt from the dlq.* topics), Run serves until the
// context ends (later: the HTTP listener with the DLQ REST API and /metrics,
// and the DLQ retry worker, each a goroutine whose error ends Run), and Close
// stops them in reverse order.
type server struct {
	cfg    serveConfig
	log    *slog.Logger // the server's own messages
	libLog *slog.Logger // the broker's, client's and bus's

	broker *embedded.Broker // nil with an external cluster
	client *eventbus.Client
	bus    *eventbus.Bus

	gateway *gateway.Gateway // the HTTP gateway: publish and push subscriptions

	pool      *pgxpool.Pool // the outbox's database, nil without --outbox-dsn
	relay     *outbox.Relay
	stopRelay context.CancelFunc
	relayDone chan struct{}

	audit       *audit.Log      // the operators' audit trail
	history     *groups.History // consumer groups' lag, sampled
	stopHistory context.CancelFunc
	stopStreams chan struct{} // closed by Close: the live tails end

	http           *http.Server
	listener       net.Listener
	generatedToken string // the admin token made up when none was configured
}

func newServer(cfg serveConfig, log, libLog *slog.Logger) *server {
	return &server{cfg: cfg, log: log, libLog: libLog}
}

// Start starts the embedded broker (unless brokers were given), connects a
// client and builds the bus. On error, call Close to release what started.
func (s *server) Start(ctx context.Context) error {
	conn := s.cfg.brokerSettings
	if s.cfg.embedded() {
		if err := s.startEmbedded(); err != nil {
			return err
		}
		conn = brokerSettings{Brokers: s.broker.Addrs(), ConnectTimeout: s.cfg.ConnectTimeout}
	}
	client, err := eventbus.NewClient(conn.clientConfig("eventbus-serve", s.libLog))
	if err != nil {
		return err
	}
	s.client = client
	if err := client.Connect(ctx); err != nil {
		return s.connectError(ctx, err)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := eventbus.NewMetrics(registry)
	if err != nil {
		return err
	}
	// A no-op tracer provider records nothing but carries trace context:
	// the traceparent of an HTTP publish reaches the event's headers, and
	// an event's reaches its push requests.
	s.bus, err = eventbus.NewBus(client, eventbus.Config{Logger: s.libLog, Metrics: metrics, Compression: s.cfg.Compression,
		Consumer:       eventbus.ConsumerConfig{InstanceID: s.cfg.InstanceID},
		TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		return err
	}
	if s.cfg.OutboxDSN != "" {
		if err := s.startOutbox(ctx, registry); err != nil {
			return err
		}
	}
	// The DLQ view is rebuilt from the dlq.* topics in the background (a
	// large DLQ takes a while): /readyz says so meanwhile, and API calls
	// wait for it. This instance also joins the retry schedulers.
	go func() {
		if err := s.bus.DLQ().Start(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("eventbus: could not start the dead letter queue", "err", err)
		}
	}()
	if s.audit, err = audit.Open(ctx, client, audit.Config{}); err != nil {
		return fmt.Errorf("the audit trail (topic %s) cannot be opened: %w", audit.Topic, err)
	}
	adm, err := client.Admin()
	if err != nil {
		return err
	}
	if s.history, err = groups.NewHistory(adm, groups.HistoryConfig{Interval: s.cfg.LagSampleInterval}); err != nil {
		return err
	}
	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopHistory = stop
	go s.history.Run(hctx)
	if err := s.startHTTP(registry, adm); err != nil {
		return err
	}
	for _, sub := range s.cfg.Subscriptions {
		if err := s.gateway.Subscribe(ctx, sub); err != nil {
			return fmt.Errorf("--subscriptions %s: %w", s.cfg.SubscriptionsFile, err)
		}
	}
	// Then the subscriptions declared over HTTP, kept in the brokers.
	return s.gateway.Start(ctx)
}

// startOutbox connects to the outbox's database, creates its tables if
// missing and starts the relay. A database that does not answer fails the
// start; once started, the relay reconnects by itself.
func (s *server) startOutbox(ctx context.Context, registry *prometheus.Registry) error {
	pool, err := pgxpool.New(ctx, s.cfg.OutboxDSN)
	if err != nil {
		return fmt.Errorf("--outbox-dsn: %w", err)
	}
	s.pool = pool
	mctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	if err := outbox.Migrate(mctx, pool, s.cfg.Outbox); err != nil {
		return fmt.Errorf("the outbox database (--outbox-dsn) did not take the tables: %w", err)
	}
	s.relay, err = outbox.NewRelay(pool, s.bus, outbox.RelayConfig{Config: s.cfg.Outbox, Logger: s.libLog})
	if err != nil {
		return err
	}
	registry.MustRegister(s.relay.Collector())
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopRelay, s.relayDone = stop, make(chan struct{})
	go func() {
		defer close(s.relayDone)
		_ = s.relay.Run(rctx) // returns nil when stopped
	}()
	return nil
}

// startHTTP binds the HTTP listener (so a port in use fails before the
// banner) and builds its routes: the DLQ REST API, /metrics, /healthz and
// /readyz.
func (s *server) startHTTP(registry *prometheus.Registry, adm *kadm.Client) error {
	tokens, err := dlqhttp.ParseNamedTokens(s.cfg.Tokens)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		s.generatedToken = randomToken()
		tokens = []dlqhttp.Token{{Name: generatedTokenName, Secret: s.generatedToken}}
	}
	auth, err := dlqhttp.NewAuthenticator(dlqhttp.Options{Tokens: tokens})
	if err != nil {
		return err
	}
	api, err := dlqhttp.New(s.bus.DLQ(), dlqhttp.Options{Authenticator: auth, Audit: s.audit, Logger: s.log})
	if err != nil {
		return err
	}
	s.stopStreams = make(chan struct{})
	ops, err := consoleapi.New(consoleapi.Options{Auth: auth, Admin: adm, Audit: s.audit, History: s.history, Logger: s.log,
		KafkaOpts: s.client.KafkaOpts(), DLQ: s.bus.DLQ(), Stop: s.stopStreams})
	if err != nil {
		return err
	}
	// The gateway takes the same tokens: admin ones, and tenant ones.
	var admin []string
	tenants := map[string]string{}
	for _, t := range tokens {
		if t.Tenant == "" {
			admin = append(admin, t.Secret)
		} else {
			tenants[t.Secret] = t.Tenant
		}
	}
	s.gateway, err = gateway.New(gateway.Config{Bus: s.bus, AdminTokens: admin, TenantTokens: tenants, PluginTokens: s.cfg.PluginTokens,
		AllowedEndpoints: s.cfg.PushAllow, Logger: s.log})
	if err != nil {
		return err
	}
	registry.MustRegister(s.gateway.Collector())
	mux := http.NewServeMux()
	mux.Handle("/api/dlq/", api)
	mux.Handle("/api/events", s.gateway)
	mux.Handle("/api/events/", s.gateway)
	mux.Handle("/api/subscriptions", s.gateway)
	mux.Handle("/api/subscriptions/", s.gateway)
	for _, p := range []string{"/api/audit", "/api/groups", "/api/groups/", "/api/topics", "/api/tail"} {
		mux.Handle(p, ops)
	}
	// The DLQ console: its page at / and its assets under /console/
	// ("GET /" itself would conflict with "/api/dlq/").
	mux.Handle("GET /{$}", console.Handler())
	mux.Handle("GET "+console.AssetPrefix, console.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for HTTP: %v; stop what runs there or pick another address with --http-addr (port 0 picks a free one)", s.cfg.HTTPAddr, err)
	}
	s.listener = ln
	// Idle keep-alive connections are closed after a while, so that a
	// crowd of clients cannot hold file descriptors forever.
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return nil
}

// ready answers 200 "ready" when a broker answers a metadata request, the
// dead letter queue's view has read the dlq.* topics and no consumer's
// fetches keep failing; else 503 with one line per reason.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var reasons []string
	// A metadata request of its own (not the client's cached metadata).
	if _, err := s.client.Topics().List(ctx); err != nil {
		reasons = append(reasons, "the brokers do not answer: "+err.Error())
	}
	if err := s.bus.DLQ().Ready(); err != nil {
		reasons = append(reasons, err.Error())
	}
	if s.relay != nil {
		if _, err := s.relay.Backlog(ctx); err != nil {
			reasons = append(reasons, "the outbox is unreachable: "+err.Error())
		}
	}
	if err := s.bus.ConsumerErrors(); err != nil {
		reasons = append(reasons, "fetches keep failing: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if len(reasons) > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready:\n- "+strings.Join(reasons, "\n- ")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// generatedTokenName is the name of the admin token serve makes up when
// none is configured: the audit trail records it.
const generatedTokenName = "generated-admin"

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *server) startEmbedded() error {
	b, err := embedded.Start(embedded.Config{Addr: s.cfg.BrokerAddr, AdvertisedHost: s.cfg.AdvertisedHost, DataDir: s.cfg.DataDir, MaxBytes: s.cfg.BrokerMaxBytes, Logger: s.libLog})
	if errors.Is(err, embedded.ErrAddrInUse) {
		return fmt.Errorf("cannot listen on %s: the address is in use (another eventbus or Kafka broker?); stop it, pick another address with --broker-addr (port 0 picks a free one), or use it with --brokers %s",
			s.cfg.BrokerAddr, s.cfg.BrokerAddr)
	}
	if err != nil {
		return err
	}
	s.broker = b
	return nil
}

// connectError turns a failed Connect into one line saying what to do.
func (s *server) connectError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if e := s.cfg.connectFailure(err); e != nil && !s.cfg.embedded() {
		return e
	}
	if !errors.Is(err, eventbus.ErrBrokerUnavailable) {
		return err
	}
	if s.cfg.embedded() {
		return fmt.Errorf("the embedded broker on %s did not answer within %s; try again, or run with --log-level debug to see why",
			strings.Join(s.broker.Addrs(), ","), s.cfg.ConnectTimeout)
	}
	return fmt.Errorf("no broker answered at %s within %s: check the addresses and that the brokers run (or raise --connect-timeout), or drop --brokers to start an embedded broker%s",
		strings.Join(s.cfg.Brokers, ","), s.cfg.ConnectTimeout, s.cfg.tlsPortHint())
}

// Brokers returns the addresses clients connect to.
func (s *server) Brokers() []string {
	if s.broker != nil {
		return s.broker.Addrs()
	}
	return s.cfg.Brokers
}

// PrintBanner writes how to connect, ending with the line scripts parse.
func (s *server) PrintBanner(w io.Writer) {
	brokers := strings.Join(s.Brokers(), ",")
	switch {
	case s.broker == nil && s.cfg.describe() != "":
		fmt.Fprintf(w, "eventbus: connected to brokers %s (%s)\n", brokers, s.cfg.describe())
	case s.broker == nil:
		fmt.Fprintf(w, "eventbus: connected to brokers %s\n", brokers)
	case s.cfg.DataDir == "":
		fmt.Fprintf(w, "eventbus: embedded broker listening on %s (in memory: data is lost at exit)\n", brokers)
	default:
		fmt.Fprintf(w, "eventbus: embedded broker listening on %s (data in %s)\n", brokers, s.cfg.DataDir)
	}
	fmt.Fprintf(w, "connect with: brokers=%s\n", brokers)
	if s.listener != nil {
		addr := s.listener.Addr().String()
		fmt.Fprintf(w, "eventbus: HTTP on http://%s: console /, REST API /api/dlq/..., /api/groups, /api/topics, /api/tail, /api/audit, gateway /api/events, /metrics, /healthz, /readyz\n", addr)
		if s.generatedToken != "" {
			fmt.Fprintf(w, "eventbus: DLQ API and gateway admin token (generated; set --admin-token to choose): %s\n", s.generatedToken)
		}
		fmt.Fprintf(w, "%s%s\n", HTTPLinePrefix, addr)
	}
	fmt.Fprintf(w, "%s%s\n", BrokersLinePrefix, brokers)
}

// Run serves HTTP until ctx ends. It returns nil on a normal stop.
func (s *server) Run(ctx context.Context) error {
	s.log.Info("eventbus: ready; stop with Ctrl-C or SIGTERM")
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("HTTP server: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// Close stops the bus (bounded by ctx), then closes the client and the
// embedded broker. It is safe after a failed Start, and twice.
func (s *server) Close(ctx context.Context) error {
	var err error
	if s.stopStreams != nil {
		close(s.stopStreams)
		s.stopStreams = nil // a second Close (a test's cleanup) closes it once
	}
	if s.http != nil {
		if e := s.http.Shutdown(ctx); e != nil {
			err = fmt.Errorf("stop HTTP: %w", e)
		}
	} else if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.gateway != nil {
		if e := s.gateway.Close(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("stop the push subscriptions: %w", e))
		}
	}
	if s.stopHistory != nil {
		s.stopHistory()
	}
	if s.audit != nil {
		s.audit.Close()
	}
	if s.stopRelay != nil {
		s.stopRelay()
		select {
		case <-s.relayDone:
		case <-ctx.Done():
		}
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.bus != nil {
		if e := s.bus.Shutdown(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("shut down the bus: %w", e))
		}
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	return err
}
