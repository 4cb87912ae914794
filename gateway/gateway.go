package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/plexica/eventbus"
)

// Defaults of Config, each named in its field's documentation.
const (
	// DefaultMaxBodyBytes is Config.MaxBodyBytes's default: a full batch
	// of events of a few kilobytes each, or one event at the bus's
	// largest (eventbus.DefaultMaxEventBytes) with room for its framing.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultPublishTimeout is Config.PublishTimeout's default: the
	// bus's own delivery timeout, plus time to create a new topic.
	DefaultPublishTimeout = eventbus.DefaultDeliveryTimeout + 10*time.Second
	// DefaultIdleConnTimeout is how long the default Config.Client keeps
	// an idle connection to an endpoint: less than the 5 s after which
	// Node's HTTP server closes one.
	DefaultIdleConnTimeout = 4 * time.Second
)

// Config says what a Gateway publishes to and who may use it.
type Config struct {
	// Bus publishes the events and runs the push subscriptions. Required.
	// For traceparent to be carried from a request to its event and from
	// an event to its push request, the bus needs a TracerProvider (a
	// no-op provider, go.opentelemetry.io/otel/trace/noop, carries the
	// caller's trace context without recording; `eventbus serve` sets one
	// when no other is configured).
	Bus *eventbus.Bus
	// AdminTokens are bearer tokens that may publish and subscribe for
	// every tenant (dlqhttp.ParseTokens reads the --admin-token list).
	AdminTokens []string
	// TenantTokens maps a bearer token to the one tenant it may publish
	// and subscribe for.
	TenantTokens map[string]string
	// PluginTokens maps a bearer token to the plugin (and maybe tenant) it
	// may publish for: only plugin.<id>.* events (ParsePluginTokens reads
	// the --plugin-token list).
	PluginTokens map[string]PluginScope
	// AllowUnauthenticated lets requests without a token in as admin (for
	// local development only). A presented token must still be valid.
	AllowUnauthenticated bool
	// AllowedEndpoints are the URL prefixes push subscriptions may
	// deliver to ("https://hooks.internal/", "http://10.0.3.7:8080/"): an
	// endpoint must have the same scheme and host (and port) as one of
	// them and a path under its path. Empty: every http and https URL
	// (declarations then come only from the operator).
	AllowedEndpoints []string
	// MaxBodyBytes caps a request body. Default DefaultMaxBodyBytes
	// (4 MiB).
	MaxBodyBytes int64
	// PublishTimeout bounds a publish request when the request itself has
	// no deadline. Default DefaultPublishTimeout.
	PublishTimeout time.Duration
	// SubscriptionsTopic is the compacted topic that holds the push
	// subscriptions declared over HTTP (see Gateway.Start); gateways that
	// share it run the same subscriptions. Default
	// DefaultSubscriptionsTopic.
	SubscriptionsTopic string
	// Client sends the push requests. Default: an http.Client whose
	// transport keeps enough idle connections per endpoint for
	// DefaultMaxConcurrency requests, each for DefaultIdleConnTimeout; no
	// redirects are followed (an endpoint may not send deliveries
	// elsewhere).
	Client *http.Client
	// Logger receives the gateway's logs. Default slog.Default().
	Logger *slog.Logger
}

// Gateway is the HTTP gateway of one bus: an http.Handler for publishing
// (see the package documentation for its routes) and the push
// subscriptions it runs.
type Gateway struct {
	cfg     Config
	auth    *authenticator
	allow   []allowedPrefix
	client  *http.Client
	prop    propagation.TextMapPropagator
	mux     *http.ServeMux
	metrics *metrics

	mu    sync.Mutex
	subs  map[string]*push // by Subscription.Name
	store *store           // the declarations made over HTTP, once started
}

// New returns a gateway for cfg.Bus. Bad configuration fails with
// eventbus.ErrInvalidConfig.
func New(cfg Config) (*Gateway, error) {
	if cfg.Bus == nil {
		return nil, fmt.Errorf("%w: gateway Config.Bus is nil; give the *eventbus.Bus to publish to", eventbus.ErrInvalidConfig)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%w: gateway Config.MaxBodyBytes %d is negative (0 means DefaultMaxBodyBytes)", eventbus.ErrInvalidConfig, cfg.MaxBodyBytes)
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.PublishTimeout < 0 {
		return nil, fmt.Errorf("%w: gateway Config.PublishTimeout %s is negative (0 means DefaultPublishTimeout)", eventbus.ErrInvalidConfig, cfg.PublishTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SubscriptionsTopic == "" {
		cfg.SubscriptionsTopic = DefaultSubscriptionsTopic
	}
	auth, err := newAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	allow, err := parseAllowlist(cfg.AllowedEndpoints)
	if err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		// Every request in flight to an endpoint keeps its connection
		// for the next one: idle connections are bounded per endpoint
		// only (not by DefaultTransport's 100 in all).
		transport.MaxIdleConns = 0
		transport.MaxIdleConnsPerHost = 2 * DefaultMaxConcurrency
		// Closed before a Node endpoint closes it (its keepAliveTimeout
		// is 5 s), so that no request is written to a connection the
		// endpoint is closing.
		transport.IdleConnTimeout = DefaultIdleConnTimeout
		// Answers are read for their status; no gzip negotiation.
		transport.DisableCompression = true
		client = &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	g := &Gateway{
		cfg: cfg, auth: auth, allow: allow, client: client,
		prop: propagation.TraceContext{}, subs: map[string]*push{}, metrics: newMetrics(),
	}
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("POST /api/events", func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		g.publish(sw, r, false)
		g.metrics.observePublish("/api/events", sw.status)
	})
	g.mux.HandleFunc("POST /api/events/batch", func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		g.publish(sw, r, true)
		g.metrics.observePublish("/api/events/batch", sw.status)
	})
	g.mux.HandleFunc("GET /api/subscriptions", g.listSubscriptions)
	g.mux.HandleFunc("POST /api/subscriptions", g.declare)
	g.mux.HandleFunc("DELETE /api/subscriptions/{name}", g.remove)
	g.mux.HandleFunc("GET /api/subscriptions/{name}/events", g.pullEvents)
	g.mux.HandleFunc("POST /api/subscriptions/{name}/ack", g.ack)
	return g, nil
}

// ServeHTTP serves the gateway's routes (POST /api/events, POST
// /api/events/batch, GET and POST /api/subscriptions, DELETE
// /api/subscriptions/{name}); mount it at /api/events, /api/events/,
// /api/subscriptions and /api/subscriptions/.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// statusWriter remembers the status of an answer, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// result is one event's outcome in an answer.
type result struct {
	ID       string `json:"id"`
	Error    string `json:"error,omitempty"`
	Sentinel string `json:"sentinel,omitempty"`
}

// publish reads one event or a batch, checks the token's scope, and
// answers once the brokers acknowledged (or refused) every event.
func (g *Gateway) publish(w http.ResponseWriter, r *http.Request, batch bool) {
	who, err := g.auth.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readPooledBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	// The events' data are slices of body until the library has encoded
	// them (Publish and PublishBatch encode every event before they send
	// or return).
	defer releaseBody(body)
	events, err := readEvents(r, body.Bytes(), batch)
	if err != nil {
		writeError(w, err)
		return
	}
	defer releaseEvents(events)
	for i, ev := range events {
		if err := who.mayPublish(ev.EventType, ev.Metadata.TenantID); err != nil {
			writeError(w, fmt.Errorf("event %d (nothing was sent): %w", i, err))
			return
		}
	}
	ctx := g.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.PublishTimeout)
		defer cancel()
	}
	if !batch {
		ev := events[0]
		id, err := g.cfg.Bus.Publish(ctx, ev.EventType, ev.Data, ev.Metadata, ev.Options...)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, result{ID: id})
		return
	}
	results, err := g.cfg.Bus.PublishBatch(ctx, events)
	var batchErr *eventbus.BatchError
	switch {
	case errors.As(err, &batchErr):
		out := make([]result, len(results))
		var first error
		for i, res := range results {
			out[i] = result{ID: res.EventID}
			if res.Err != nil {
				c := classify(res.Err)
				out[i].Error, out[i].Sentinel = res.Err.Error(), c.name
				if first == nil {
					first = res.Err
				}
			}
		}
		c := classify(first)
		writeErrorBody(w, c.status, errorBody{Error: err.Error(), Sentinel: c.name, Fix: c.fix, Results: out})
	case err != nil:
		writeError(w, err)
	default:
		writeResults(w, results)
	}
}

// writeResults answers a batch every event of which was acknowledged:
// {"results":[{"id":"..."},...]}, as encoding/json writes it, in one
// write with its length.
func writeResults(w http.ResponseWriter, results []eventbus.PublishResult) {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer releaseBody(buf)
	buf.WriteString(`{"results":[`)
	for i, res := range results {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":`)
		appendJSONString(buf, res.EventID)
		buf.WriteByte('}')
	}
	buf.WriteString("]}\n")
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// appendJSONString writes s as a JSON string, as encoding/json writes it.
func appendJSONString(buf *bytes.Buffer, s string) {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s)
			buf.Write(quoted)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}
