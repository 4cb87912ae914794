package dlqhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/httpjson"
)

// Paging limits of GET /api/dlq/events.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Options configures the API.
type Options struct {
	// AdminTokens are bearer tokens with access to every tenant's entries.
	AdminTokens []string
	// TenantTokens maps a bearer token to the one tenant ID it is scoped to:
	// lists, stats and topic retries are narrowed to that tenant's entries,
	// and an entry outside them is not found (404), as if it did not exist.
	// An entry belongs to a tenant only when its record is an event of that
	// tenant: a malformed record (whose tenant-id header, if any, is an
	// unchecked claim) is for admin tokens only.
	TenantTokens map[string]string
	// Tokens are named tokens (see ParseNamedTokens), in addition to
	// AdminTokens and TenantTokens, which are named by their fingerprint.
	Tokens []Token
	// Authenticator, when set, checks the requests' tokens instead of one
	// built from AdminTokens, TenantTokens, Tokens and AllowUnauthenticated
	// (which must then be empty): share one between this API and others.
	Authenticator *Authenticator
	// Audit, when set, records every retry and delete (with the name of the
	// token that asked) before the answer is sent; see package audit.
	Audit Auditor
	// AllowUnauthenticated lets requests without an Authorization header in
	// with admin access. For local development only. New fails when no
	// token is configured and this is false. When tokens are configured too,
	// a request that presents one must still present a valid one.
	AllowUnauthenticated bool
	// Logger receives internal errors (with their detail, which responses
	// never show) and an audit line per retry or delete. Default slog.Default().
	Logger *slog.Logger
}

// New returns the DLQ REST API for q: an http.Handler serving the routes
// listed in the package documentation, all under /api/dlq/. Mount it on
// "/api/dlq/" of a larger mux, or serve it as it is.
//
// New starts nothing: call q.Start (as eventbus serve does) so that the
// API answers from the queue's index and the process schedules automatic
// retries. Without it every request reads the dlq.* topics from their
// start (see eventbus.DeadLetterQueue).
//
// New fails, with an error wrapping eventbus.ErrInvalidConfig, when q is
// nil, a token is malformed (see ParseTokens), a token is both an admin and
// a tenant token, or no token is configured and AllowUnauthenticated is false.
func New(q *eventbus.DeadLetterQueue, opts Options) (http.Handler, error) {
	if q == nil {
		return nil, fmt.Errorf("%w: dlqhttp.New needs a dead letter queue (bus.DLQ())", eventbus.ErrInvalidConfig)
	}
	auth := opts.Authenticator
	if auth == nil {
		var err error
		if auth, err = NewAuthenticator(opts); err != nil {
			return nil, err
		}
	} else if len(opts.AdminTokens)+len(opts.TenantTokens)+len(opts.Tokens) > 0 || opts.AllowUnauthenticated {
		return nil, fmt.Errorf("%w: dlqhttp.Options: give the tokens either to the Authenticator or as AdminTokens, TenantTokens, Tokens and AllowUnauthenticated, not both", eventbus.ErrInvalidConfig)
	}
	a := &api{q: q, auth: auth, log: opts.Logger, audit: opts.Audit}
	if a.log == nil {
		a.log = slog.Default()
	}
	if opts.AllowUnauthenticated {
		a.log.Warn("dlqhttp: requests without credentials get admin access to the DLQ API (AllowUnauthenticated); use only for local development")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/dlq/stats", a.route(a.stats))
	mux.Handle("GET /api/dlq/events", a.route(a.list))
	mux.Handle("GET /api/dlq/events/{id}", a.route(a.get))
	mux.Handle("POST /api/dlq/events/{id}/retry", a.route(a.retry))
	mux.Handle("DELETE /api/dlq/events/{id}", a.route(a.delete))
	mux.Handle("POST /api/dlq/retry/topic/{topic}", a.route(a.retryTopic))
	return mux, nil
}

// Auditor records the actions taken through the API (audit.Log is one).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

type api struct {
	q     *eventbus.DeadLetterQueue
	audit Auditor
	auth  *Authenticator
	log   *slog.Logger
}

// endpoint serves one route for an authenticated principal; a returned
// error becomes the JSON error response (see writeError).
type endpoint func(w http.ResponseWriter, r *http.Request, who Principal) error

// route authenticates the request, runs e, and turns its error or panic
// into a JSON error response.
func (a *api) route(e endpoint) http.Handler {
	return httpjson.Guard(a.log, "dlqhttp", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		who, fail := a.auth.Authenticate(r)
		switch {
		case errors.Is(fail, ErrMissingToken):
			h.Set("WWW-Authenticate", `Bearer realm="eventbus-dlq"`)
			httpjson.WriteError(w, http.StatusUnauthorized, httpjson.CodeUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
			return
		case fail != nil:
			a.log.Info("dlqhttp: rejected credentials", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			h.Set("WWW-Authenticate", `Bearer realm="eventbus-dlq", error="invalid_token"`)
			httpjson.WriteError(w, http.StatusUnauthorized, httpjson.CodeUnauthorized, "invalid bearer token")
			return
		}
		if err := e(w, r, who); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// GET /api/dlq/stats[?topic=&status=&tenantId=]
//
// A tenant token counts only the entries it may see. The reasons that
// label ByReason are scrubbed of secrets (DeadLetterQueue.Stats).
func (a *api) stats(w http.ResponseWriter, r *http.Request, who Principal) error {
	query := r.URL.Query()
	filter, err := a.filter(who, query.Get("topic"), query)
	if err != nil {
		return err
	}
	s, err := a.q.Stats(r.Context(), filter)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, s)
}

// GET /api/dlq/events?topic=&status=&tenantId=&page=&pageSize=&sort=
// answers a Page.
func (a *api) list(w http.ResponseWriter, r *http.Request, who Principal) error {
	query := r.URL.Query()
	pageNo, err := intParam(query.Get("page"), "page", 1, 1, 0)
	if err != nil {
		return err
	}
	size, err := intParam(query.Get("pageSize"), "pageSize", DefaultPageSize, 1, MaxPageSize)
	if err != nil {
		return err
	}
	ascending := false
	switch query.Get("sort") {
	case "", "-failedAt":
	case "failedAt":
		ascending = true
	default:
		return httpjson.BadRequest("sort %q is not failedAt (oldest failure first) or -failedAt (newest first, the default)", query.Get("sort"))
	}
	filter, err := a.filter(who, query.Get("topic"), query)
	if err != nil {
		return err
	}
	offset := math.MaxInt // a page past any end: nothing is read, nothing overflows
	if pageNo-1 <= math.MaxInt/size {
		offset = (pageNo - 1) * size
	}
	filter.Oldest, filter.Offset, filter.Limit = ascending, offset, size
	entries, total, err := a.q.List(r.Context(), filter)
	if err != nil {
		return err
	}
	out := Page{Items: make([]deadletter.Entry, 0, len(entries)), Total: total, Page: pageNo, PageSize: size, TotalPages: (total + size - 1) / size}
	for _, e := range entries {
		out.Items = append(out.Items, redactEntry(e))
	}
	return httpjson.Write(w, http.StatusOK, out)
}

// GET /api/dlq/events/{id}
func (a *api) get(w http.ResponseWriter, r *http.Request, who Principal) error {
	e, err := a.entry(r, who)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, redactEntry(e))
}

// POST /api/dlq/events/{id}/retry[?manual=false]
func (a *api) retry(w http.ResponseWriter, r *http.Request, who Principal) error {
	manual := true
	if v := r.URL.Query().Get("manual"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return httpjson.BadRequest("manual %q is not true or false", v)
		}
		manual = b
	}
	id := r.PathValue("id")
	e, err := a.entry(r, who)
	if err != nil {
		return err
	}
	var opts []deadletter.RetryOption
	if !manual {
		opts = append(opts, deadletter.RetryIfAllowed())
	}
	ctx, cancel := context.WithTimeout(r.Context(), ownerWait)
	defer cancel()
	err = a.q.Retry(ctx, id, opts...)
	a.record(r, who, audit.ActionDLQRetry, id, e, map[string]string{"manual": strconv.FormatBool(manual)}, err)
	if errors.Is(err, deadletter.ErrNotApplied) {
		a.log.Info("dlqhttp: retry of dead-letter entry stored for its owner", "dlq_id", id, "manual", manual, "by", who.String())
		return httpjson.Write(w, http.StatusAccepted, map[string]string{"id": id, "status": "accepted"})
	}
	if err != nil {
		return err
	}
	a.log.Info("dlqhttp: retried dead-letter entry", "dlq_id", id, "manual", manual, "by", who.String())
	return httpjson.Write(w, http.StatusAccepted, map[string]string{"id": id, "status": string(deadletter.StatusRetrying)})
}

// ownerWait bounds how long a retry or a delete waits for the entry's
// owner to apply it; past it the answer is 202 Accepted with status
// "accepted": the command is stored and the owner applies it later.
const ownerWait = 5 * time.Second

// DELETE /api/dlq/events/{id}
func (a *api) delete(w http.ResponseWriter, r *http.Request, who Principal) error {
	id := r.PathValue("id")
	e, err := a.entry(r, who)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), ownerWait)
	defer cancel()
	err = a.q.Delete(ctx, id)
	a.record(r, who, audit.ActionDLQDelete, id, e, nil, err)
	if errors.Is(err, deadletter.ErrNotApplied) {
		a.log.Info("dlqhttp: delete of dead-letter entry stored for its owner", "dlq_id", id, "by", who.String())
		return httpjson.Write(w, http.StatusAccepted, map[string]string{"id": id, "status": "accepted"})
	}
	if err != nil {
		return err
	}
	a.log.Info("dlqhttp: deleted dead-letter entry", "dlq_id", id, "by", who.String())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /api/dlq/retry/topic/{topic}[?status=&tenantId=] answers RetryCounts.
func (a *api) retryTopic(w http.ResponseWriter, r *http.Request, who Principal) error {
	topic := r.PathValue("topic")
	if topic == "" { // the filter would take it for "any topic"
		return fmt.Errorf("%w: the topic to retry is empty; give an original topic, e.g. core.user.created", eventbus.ErrInvalidTopic)
	}
	// A tenant token retries its own entries only.
	filter, err := a.filter(who, topic, r.URL.Query())
	if err != nil {
		return err
	}
	var out RetryCounts
	out.Succeeded, out.Failed, err = a.q.RetryAll(r.Context(), filter)
	detail := map[string]string{"succeeded": strconv.Itoa(out.Succeeded), "failed": strconv.Itoa(out.Failed)}
	if filter.Status != "" {
		detail["status"] = string(filter.Status)
	}
	a.recordEntry(r, audit.Entry{Actor: who.Name, ActorTenant: who.Tenant, Action: audit.ActionDLQRetryTopic, Target: topic, TenantID: filter.TenantID, Detail: detail}, err)
	if err != nil {
		return err
	}
	a.log.Info("dlqhttp: retried dead-letter entries of a topic", "topic", topic, "succeeded", out.Succeeded, "failed", out.Failed, "by", who.String())
	return httpjson.Write(w, http.StatusOK, out)
}

// record adds the action taken on entry e (with error err, nil when it
// succeeded) to the audit trail, when there is one.
func (a *api) record(r *http.Request, who Principal, action, id string, e deadletter.Entry, detail map[string]string, err error) {
	if detail == nil {
		detail = map[string]string{}
	}
	detail["topic"], detail["group"] = e.OriginalTopic, e.ConsumerGroup
	tenant, _ := e.VerifiedTenant()
	a.recordEntry(r, audit.Entry{Actor: who.Name, ActorTenant: who.Tenant, Action: action, Target: id, TenantID: tenant, Detail: detail}, err)
}

// recordEntry appends ent, with the outcome of err, to the audit trail.
// The action has been taken: a trail that cannot take the entry is logged
// as an error, and the answer still says what happened.
func (a *api) recordEntry(r *http.Request, ent audit.Entry, err error) {
	if a.audit == nil {
		return
	}
	ent.Outcome = audit.OutcomeOK
	if err != nil {
		ent.Outcome, ent.Error = audit.OutcomeFailed, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if rerr := a.audit.Record(ctx, ent); rerr != nil {
		a.log.Error("dlqhttp: the audit trail did not take an action", "action", ent.Action, "target", ent.Target, "by", ent.Actor, "err", rerr)
	}
}

// auditTimeout bounds the write of one audit entry.
const auditTimeout = 10 * time.Second

// entry returns the entry named by the request's {id}, if who may see it.
// An entry a tenant token may not see is not found, with the answer an
// unknown ID gets, so that the token learns nothing of it, not even that
// it exists.
func (a *api) entry(r *http.Request, who Principal) (deadletter.Entry, error) {
	e, err := a.q.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return e, err
	}
	if !who.mayAccess(e) {
		return deadletter.Entry{}, fmt.Errorf("entry outside the token's tenant: %w", deadletter.ErrNotFound)
	}
	return e, nil
}

// filter is the selection of a request: topic and the query's status and
// tenantId, narrowed by scope to what who may see. The queue validates
// the topic, by the rules of its bus's client (a 400 that names the rule).
func (a *api) filter(who Principal, topic string, query url.Values) (deadletter.Query, error) {
	filter := deadletter.Query{Status: deadletter.Status(query.Get("status")), TenantID: query.Get("tenantId")}
	if filter.Status != "" && !filter.Status.Valid() {
		return filter, httpjson.BadRequest("status %q is not one of pending, retrying, resolved, max-retries-exceeded", filter.Status)
	}
	filter.Topic = topic
	return a.scope(who, filter)
}

// scope narrows filter to what who may see. The filter's TenantID is the
// request's tenantId: any tenant for an admin; for a tenant token, empty or
// its own tenant, and another is refused (403). A tenant token sees only
// the entries whose tenant is verified (deadletter.Entry.VerifiedTenant).
func (a *api) scope(who Principal, filter deadletter.Query) (deadletter.Query, error) {
	if who.Admin() {
		return filter, nil
	}
	if filter.TenantID != "" && filter.TenantID != who.Tenant {
		return filter, &httpjson.Error{Status: http.StatusForbidden, Code: httpjson.CodeForbidden, Message: "this token may not access dead-letter entries of other tenants"}
	}
	filter.TenantID, filter.VerifiedTenant = who.Tenant, true
	return filter, nil
}

// intParam parses an integer query parameter, def when empty, that must
// be at least lo and, when hi > 0, at most hi.
func intParam(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return 0, httpjson.BadRequest("%s %q is not an integer", name, v)
	case n < lo:
		return 0, httpjson.BadRequest("%s %d is under %d", name, n, lo)
	case hi > 0 && n > hi:
		return 0, httpjson.BadRequest("%s %d is over %d", name, n, hi)
	}
	return n, nil
}

// writeError maps err to a status and code and writes it. Unexpected errors
// are logged with their detail and shown only as "internal error".
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *httpjson.Error
	switch {
	case errors.As(err, &ae):
		httpjson.WriteError(w, ae.Status, ae.Code, ae.Message)
	case errors.Is(err, deadletter.ErrNotFound):
		httpjson.WriteError(w, http.StatusNotFound, httpjson.CodeNotFound, fmt.Sprintf("no dead-letter entry %q", r.PathValue("id")))
	case errors.Is(err, deadletter.ErrRetryNotAllowed):
		httpjson.WriteError(w, http.StatusConflict, httpjson.CodeConflict, err.Error()+" (POST without manual=false)")
	case errors.Is(err, eventbus.ErrInvalidTopic), errors.Is(err, eventbus.ErrInvalidConfig):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.CodeBadRequest, err.Error())
	case errors.Is(err, eventbus.ErrShuttingDown), errors.Is(err, eventbus.ErrBrokerUnavailable),
		errors.Is(err, eventbus.ErrCircuitOpen), errors.Is(err, eventbus.ErrNotConnected):
		a.log.Warn("dlqhttp: dead letter queue unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		httpjson.WriteError(w, http.StatusServiceUnavailable, httpjson.CodeUnavailable, "the dead letter queue is unavailable; try again later")
	default:
		if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
			// The client went away; there is nobody to answer.
			a.log.Debug("dlqhttp: request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			a.log.Error("dlqhttp: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		httpjson.WriteError(w, http.StatusInternalServerError, httpjson.CodeInternal, "internal error; see the server log")
	}
}
