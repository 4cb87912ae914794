// Package consoleapi is the REST API behind the console's pages other than
// the dead letter queue's: the audit trail, consumer groups (lag, lag
// history, offset resets) and topics. It answers with the DLQ API's tokens
// (one dlqhttp.Authenticator serves both) and in its JSON error shape,
// {"error":{"code","message"}}.
//
// Routes (see docs/console.md):
//
//	GET  /api/audit[?actor=&action=&tenantId=&before=&limit=]  the audit trail, newest first
//	GET  /api/groups                       every consumer group with its state and lag (admin)
//	GET  /api/groups/{group}               members, per-partition offsets and lag, lag history (admin)
//	POST /api/groups/{group}/reset         preview or apply an offset reset (admin)
//	POST /api/groups/{group}/replay        deliver one event again to one running group (admin)
//	GET  /api/topics                       topics with partitions, replication, retention, end offsets (admin)
//	GET  /api/tail?type=&tenantId=&key=&header=&text=  live events as server-sent events
//
// A tenant token sees the audit entries and live events of its own tenant
// only; the other routes are for admin tokens (403 for a tenant token).
package consoleapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/groups"
	"github.com/plexica/eventbus/internal/httpjson"
)

// Options configures the API. Auth, Admin and Audit are required.
type Options struct {
	// Auth checks the requests' bearer tokens.
	Auth *dlqhttp.Authenticator
	// Admin is the cluster's admin client (eventbus.Client.Admin).
	Admin *kadm.Client
	// Audit is the trail that GET /api/audit reads and resets are recorded to.
	Audit *audit.Log
	// History, when set, is the lag history GET /api/groups/{group} answers.
	History *groups.History
	// Logger receives internal errors. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of reset targets given as "ago:"; default time.Now.
	Now func() time.Time
	// KafkaOpts reach the cluster for live tails (eventbus.Client.KafkaOpts);
	// without them GET /api/tail answers 503.
	KafkaOpts []kgo.Opt
	// MaxTailStreams is how many live tails may run at once. Default
	// DefaultMaxTailStreams.
	MaxTailStreams int
	// TailRate is how many events a second one live tail sends at most.
	// Default DefaultTailRate.
	TailRate int
	// DLQ, when set, is the dead letter queue that POST
	// /api/groups/{group}/replay delivers one event again through.
	DLQ *eventbus.DeadLetterQueue
	// Stop, when closed, ends the live tails (a server shutting down waits
	// for its requests, and a tail never ends by itself).
	Stop <-chan struct{}
}

// maxBody caps a request body.
const maxBody = 64 << 10

// New returns the API as an http.Handler for the routes listed in the
// package documentation.
func New(opts Options) (http.Handler, error) {
	if opts.Auth == nil || opts.Admin == nil || opts.Audit == nil {
		return nil, fmt.Errorf("%w: consoleapi.New needs Options.Auth, Admin and Audit", eventbus.ErrInvalidConfig)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxTailStreams < 0 || opts.TailRate < 0 {
		return nil, fmt.Errorf("%w: consoleapi.Options: MaxTailStreams and TailRate may not be negative", eventbus.ErrInvalidConfig)
	}
	if opts.MaxTailStreams == 0 {
		opts.MaxTailStreams = DefaultMaxTailStreams
	}
	if opts.TailRate == 0 {
		opts.TailRate = DefaultTailRate
	}
	a := &api{Options: opts, tails: make(chan struct{}, opts.MaxTailStreams)}
	mux := http.NewServeMux()
	mux.Handle("GET /api/audit", a.route(false, a.auditList))
	mux.Handle("GET /api/groups", a.route(true, a.groupList))
	mux.Handle("GET /api/groups/{group}", a.route(true, a.groupGet))
	mux.Handle("POST /api/groups/{group}/reset", a.route(true, a.groupReset))
	mux.Handle("POST /api/groups/{group}/replay", a.route(true, a.replay))
	mux.Handle("GET /api/topics", a.route(true, a.topicList))
	mux.Handle("GET /api/tail", a.route(false, a.tail))
	return mux, nil
}

type api struct {
	Options
	tails chan struct{} // one token per running live tail
}

type endpoint func(w http.ResponseWriter, r *http.Request, who dlqhttp.Principal) error

// route authenticates the request (admin only when adminOnly), runs e and
// turns its error or panic into a JSON error response.
func (a *api) route(adminOnly bool, e endpoint) http.Handler {
	return httpjson.Guard(a.Logger, "consoleapi", func(w http.ResponseWriter, r *http.Request) {
		who, err := a.Auth.Authenticate(r)
		if err != nil {
			dlqhttp.Reject(w, err)
			return
		}
		if adminOnly && !who.Admin() {
			httpjson.WriteError(w, http.StatusForbidden, httpjson.CodeForbidden, "this needs an admin token; a tenant token sees its tenant's dead-letter entries, audit trail and live tail only")
			return
		}
		if err := e(w, r, who); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *httpjson.Error
	switch {
	case errors.As(err, &ae):
		httpjson.WriteError(w, ae.Status, ae.Code, ae.Message)
	case errors.Is(err, deadletter.ErrNotFound):
		httpjson.WriteError(w, http.StatusNotFound, httpjson.CodeNotFound, err.Error())
	case errors.Is(err, groups.ErrGroupNotFound):
		httpjson.WriteError(w, http.StatusNotFound, httpjson.CodeNotFound, err.Error())
	case errors.Is(err, groups.ErrGroupActive):
		httpjson.WriteError(w, http.StatusConflict, httpjson.CodeConflict, err.Error())
	case errors.Is(err, groups.ErrInvalidTarget), errors.Is(err, audit.ErrInvalidQuery), errors.Is(err, eventbus.ErrInvalidTopic):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.CodeBadRequest, err.Error())
	case r.Context().Err() != nil:
		a.Logger.Debug("consoleapi: request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
		httpjson.WriteError(w, http.StatusServiceUnavailable, httpjson.CodeUnavailable, "request canceled")
	default:
		a.Logger.Error("consoleapi: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		httpjson.WriteError(w, http.StatusInternalServerError, httpjson.CodeInternal, "internal error; see the server log")
	}
}

// GET /api/audit[?actor=&action=&tenantId=&before=&limit=] answers an
// audit.Page. A tenant token sees its tenant's entries only; asking for
// another tenant's is 403.
func (a *api) auditList(w http.ResponseWriter, r *http.Request, who dlqhttp.Principal) error {
	query := r.URL.Query()
	q := audit.Query{Actor: query.Get("actor"), Action: query.Get("action"), TenantID: query.Get("tenantId")}
	var err error
	if q.Limit, err = intParam(query.Get("limit"), "limit", audit.DefaultLimit, 1, audit.MaxLimit); err != nil {
		return err
	}
	if v := query.Get("before"); v != "" {
		if q.Before, err = strconv.ParseInt(v, 10, 64); err != nil || q.Before < 1 {
			return httpjson.BadRequest("before %q is not a positive offset (give the next of the previous page)", v)
		}
	}
	if !who.Admin() {
		if q.TenantID != "" && q.TenantID != who.Tenant {
			return &httpjson.Error{Status: http.StatusForbidden, Code: httpjson.CodeForbidden, Message: "this token may not read the audit trail of other tenants"}
		}
		q.TenantID = who.Tenant
	}
	page, err := a.Audit.List(r.Context(), q)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, page)
}

func intParam(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return 0, httpjson.BadRequest("%s %q is not an integer", name, v)
	case n < lo || n > hi:
		return 0, httpjson.BadRequest("%s %d is not between %d and %d", name, n, lo, hi)
	}
	return n, nil
}

// GET /api/groups answers {"groups": [groups.Summary]}.
func (a *api) groupList(w http.ResponseWriter, r *http.Request, _ dlqhttp.Principal) error {
	list, err := groups.List(r.Context(), a.Admin)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, map[string]any{"groups": list})
}

// GroupDetail is the answer of GET /api/groups/{group}: the group and its
// lag history.
type GroupDetail struct {
	groups.Group
	// History is the group's total lag sampled by the server, oldest first.
	History []groups.Point `json:"history"`
	// SampleInterval is the time between two samples of History, in seconds.
	SampleInterval float64 `json:"sampleIntervalSeconds"`
}

// GET /api/groups/{group}
func (a *api) groupGet(w http.ResponseWriter, r *http.Request, _ dlqhttp.Principal) error {
	g, err := groups.Describe(r.Context(), a.Admin, r.PathValue("group"))
	if err != nil {
		return err
	}
	out := GroupDetail{Group: g, History: []groups.Point{}}
	if a.History != nil {
		out.History, out.SampleInterval = a.History.Points(g.Group), a.History.Interval().Seconds()
	}
	return httpjson.Write(w, http.StatusOK, out)
}

// ResetRequest is the body of POST /api/groups/{group}/reset.
type ResetRequest struct {
	// To is the target, as groups.ParseTarget reads it: earliest, latest,
	// offset:<n>, time:<RFC 3339> or ago:<duration>.
	To string `json:"to"`
	// Topics to reset; empty: every topic the group has committed offsets on.
	Topics []string `json:"topics,omitempty"`
	// Execute applies the reset; false (the default) only previews it.
	Execute bool `json:"execute"`
}

// ResetResponse is the answer of POST /api/groups/{group}/reset.
type ResetResponse struct {
	groups.ResetPlan
	// Executed is true when the offsets were moved.
	Executed bool `json:"executed"`
}

// POST /api/groups/{group}/reset: a preview (200 with the plan) or, with
// "execute": true, the reset applied and recorded in the audit trail.
func (a *api) groupReset(w http.ResponseWriter, r *http.Request, who dlqhttp.Principal) error {
	var req ResetRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpjson.BadRequest("the body is not a reset request (%v); send {\"to\":\"earliest\",\"topics\":[...],\"execute\":false}", err)
	}
	target, err := groups.ParseTarget(req.To, a.Now())
	if err != nil {
		return err
	}
	group := r.PathValue("group")
	plan, err := groups.PlanReset(r.Context(), a.Admin, group, req.Topics, target)
	if err != nil {
		return err
	}
	if !req.Execute {
		return httpjson.Write(w, http.StatusOK, ResetResponse{ResetPlan: plan})
	}
	err = groups.Reset(r.Context(), a.Admin, plan)
	a.recordReset(r.Context(), who, plan, err)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, ResetResponse{ResetPlan: plan, Executed: true})
}

// recordReset adds a reset to the audit trail.
func (a *api) recordReset(ctx context.Context, who dlqhttp.Principal, plan groups.ResetPlan, err error) {
	e := ResetEntry(who.Name, plan, err)
	e.ActorTenant = who.Tenant
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if rerr := a.Audit.Record(ctx, e); rerr != nil {
		a.Logger.Error("consoleapi: the audit trail did not take a reset", "group", plan.Group, "by", who.Name, "err", rerr)
	}
}

// auditTimeout bounds the write of one audit entry.
const auditTimeout = 10 * time.Second

// ResetEntry is the audit entry of a reset by actor that ended with err.
// `eventbus groups reset --execute` records the same.
func ResetEntry(actor string, plan groups.ResetPlan, err error) audit.Entry {
	detail := map[string]string{
		"to":        plan.Target.String(),
		"redeliver": strconv.FormatInt(plan.Redeliver, 10),
		"skip":      strconv.FormatInt(plan.Skip, 10),
	}
	var parts []string
	for _, p := range plan.Partitions {
		parts = append(parts, fmt.Sprintf("%s/%d:%d->%d", p.Topic, p.Partition, p.Current, p.New))
	}
	detail["offsets"] = strings.Join(parts, " ")
	e := audit.Entry{Actor: actor, Action: audit.ActionGroupReset, Target: plan.Group, Outcome: audit.OutcomeOK, Detail: detail}
	if err != nil {
		e.Outcome, e.Error = audit.OutcomeFailed, err.Error()
	}
	return e
}
