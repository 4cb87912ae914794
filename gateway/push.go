package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/wire"
)

// push is one running push subscription.
type push struct {
	g    *Gateway
	sub  Subscription // with defaults
	ids  []string     // the bus's subscription IDs, one per event type
	pull *pullQueue   // for a pull subscription
}

// Subscribe starts a push subscription: it joins the subscription's
// consumer group for each of its event types and returns once partitions
// are assigned (as eventbus.Bus.Subscribe does). Each event is then POSTed
// to the endpoint, and its answer steers it (see Push subscriptions in the
// package documentation). A bad declaration fails with
// ErrInvalidSubscription, an endpoint outside Config.AllowedEndpoints with
// ErrEndpointNotAllowed, a bad event type with eventbus.ErrInvalidTopic; a
// name already running with ErrInvalidSubscription.
func (g *Gateway) Subscribe(ctx context.Context, s Subscription) error {
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return err
	}
	if err := g.checkEndpoint(s); err != nil {
		return err
	}
	ordering, _ := s.ordering()
	g.mu.Lock()
	if _, ok := g.subs[s.Name]; ok {
		g.mu.Unlock()
		return fmt.Errorf("%w: a subscription named %q already runs; remove it first or pick another name", ErrInvalidSubscription, s.Name)
	}
	p := &push{g: g, sub: s}
	handler := p.handle
	if s.Pull {
		p.pull = newPullQueue()
		handler = p.pull.handle(time.Duration(s.Timeout))
	}
	g.subs[s.Name] = p // reserved while it starts
	g.mu.Unlock()
	for _, topic := range s.Events {
		opts := []eventbus.SubscribeOption{eventbus.InGroup(s.Group), eventbus.WithDelivery(eventbus.Delivery{
			FromBeginning: s.FromBeginning, Ordering: ordering, MaxConcurrency: s.MaxConcurrency,
		})}
		if s.TenantID != "" {
			opts = append(opts, eventbus.ForTenant(s.TenantID))
		}
		if s.WorkspaceID != "" {
			opts = append(opts, eventbus.ForWorkspace(s.WorkspaceID))
		}
		id, err := eventbus.Subscribe(ctx, g.cfg.Bus, eventbus.Name[json.RawMessage](topic), handler, opts...)
		if err != nil {
			p.stop(context.WithoutCancel(ctx))
			g.mu.Lock()
			if g.subs[s.Name] == p {
				delete(g.subs, s.Name)
			}
			g.mu.Unlock()
			return fmt.Errorf("push subscription %q: %w", s.Name, err)
		}
		g.mu.Lock()
		current := g.subs[s.Name] == p
		if current {
			p.ids = append(p.ids, id)
		}
		g.mu.Unlock()
		if !current { // removed or closed while it started
			_ = g.cfg.Bus.Unsubscribe(context.WithoutCancel(ctx), id)
			p.stop(context.WithoutCancel(ctx))
			return fmt.Errorf("%w: push subscription %q was removed while it started", eventbus.ErrSubscriptionNotFound, s.Name)
		}
	}
	g.cfg.Logger.Info("eventbus gateway: push subscription running",
		"subscription", s.Name, "events", strings.Join(s.Events, ","), "group", s.Group, "endpoint", s.Endpoint)
	return nil
}

// Unsubscribe stops the push subscription named name: no request is
// started after it returns, and running requests are waited for as
// eventbus.Bus.Unsubscribe waits for handlers (bounded by ctx).
func (g *Gateway) Unsubscribe(ctx context.Context, name string) error {
	g.mu.Lock()
	p, ok := g.subs[name]
	delete(g.subs, name)
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no push subscription named %q", eventbus.ErrSubscriptionNotFound, name)
	}
	return p.stop(ctx)
}

// Close stops following the declarations (see Start) and stops every push
// subscription (bounded by ctx). Publishing keeps working until the bus
// shuts down.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	s := g.store
	g.store = nil
	g.mu.Unlock()
	if s != nil {
		s.stop() // no declaration starts or stops anything after this
	}
	g.mu.Lock()
	subs := g.subs
	g.subs = map[string]*push{}
	g.mu.Unlock()
	var errs []error
	for _, p := range subs {
		errs = append(errs, p.stop(ctx))
	}
	return errors.Join(errs...)
}

// Subscriptions returns the running push subscriptions, with their
// defaults filled in, sorted by name.
func (g *Gateway) Subscriptions() []Subscription {
	g.mu.Lock()
	out := make([]Subscription, 0, len(g.subs))
	for _, p := range g.subs {
		out = append(out, p.sub)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// listSubscriptions answers GET /api/subscriptions: the running
// subscriptions the token may see (an admin every one, a token scoped to a
// tenant those of its tenant).
func (g *Gateway) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	who, err := g.auth.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []Subscription{}
	for _, s := range g.Subscriptions() {
		if who.maySee(s.TenantID) {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}{out})
}

func (p *push) stop(ctx context.Context) error {
	p.g.mu.Lock()
	ids := p.ids
	p.ids = nil
	p.g.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, p.g.cfg.Bus.Unsubscribe(ctx, id))
	}
	return errors.Join(errs...)
}

// answerSnippet is how much of a failed answer's body goes into the
// failure reason.
const answerSnippet = 512

// handle delivers one event: the bus's handler of the subscription.
//
//   - 2xx: done.
//   - 429 and 503: tried again in place, after Retry-After (capped at
//     MaxRetryBackoff) or a backoff from DefaultRetryBackoff; the event's
//     key waits meanwhile, other keys go on.
//   - other 4xx: a permanent failure (eventbus.Permanent): dead-lettered
//     without automatic retries.
//   - anything else (5xx, 3xx), a timeout or a connection error: a
//     failure, dead-lettered with the bus's automatic retries, which
//     reach this subscription's group only; a Retry-After on the answer
//     sets the first retry's delay.
func (p *push) handle(ctx context.Context, ev eventbus.RawEvent) error {
	backoff := DefaultRetryBackoff
	for {
		status, retryAfter, snippet, err := p.send(ctx, ev)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // released: the event stays unfinished and comes again
			}
			return fmt.Errorf("push subscription %s: POST %s: %w", p.sub.Name, p.sub.Endpoint, err)
		}
		if status >= 200 && status < 300 {
			return nil
		}
		failure := fmt.Errorf("push subscription %s: POST %s answered %d: %s", p.sub.Name, p.sub.Endpoint, status, snippet)
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			wait := backoff
			if retryAfter >= 0 {
				wait = retryAfter
			} else {
				backoff = min(2*backoff, MaxRetryBackoff)
			}
			wait = min(wait, MaxRetryBackoff)
			p.g.cfg.Logger.Debug("eventbus gateway: endpoint asked to come back; the event's key waits",
				"subscription", p.sub.Name, "event_id", ev.ID, "status", status, "retry_in", wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		case status >= 400 && status < 500:
			return eventbus.Permanent(failure)
		case retryAfter >= 0:
			return eventbus.RetryAfter(failure, min(retryAfter, MaxRetryBackoff))
		default:
			return failure
		}
	}
}

// send POSTs ev to the endpoint and returns the answer's status, its
// Retry-After (-1 when absent) and, unless it is a 2xx, the start of its
// body.
func (p *push) send(ctx context.Context, ev eventbus.RawEvent) (status int, retryAfter time.Duration, snippet string, err error) {
	body := ev.Data
	if p.sub.Body != BodyData {
		body = eventValue(ev)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Duration(p.sub.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header = make(http.Header, pushHeaders)
	setCloudEventHeaders(req.Header, ev)
	p.g.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	start := time.Now()
	resp, err := p.g.client.Do(req)
	timedOut := err != nil && rctx.Err() != nil && ctx.Err() == nil
	if err == nil {
		p.g.metrics.observePush(p.sub.Name, answerClass(resp.StatusCode, nil, false), start)
	} else if ctx.Err() == nil {
		p.g.metrics.observePush(p.sub.Name, answerClass(0, err, timedOut), start)
	}
	if err != nil {
		if timedOut {
			return 0, 0, "", fmt.Errorf("no answer within %s (the subscription's timeout): %w", time.Duration(p.sub.Timeout), err)
		}
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, answerSnippet))
		snippet = strings.TrimSpace(string(head))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After")), snippet, nil
}

// eventValue is ev in the wire format: the record's value, its data
// written as the record has it (not re-encoded).
func eventValue(ev eventbus.RawEvent) []byte {
	env := wire.Envelope{
		ID: ev.ID, Type: ev.Type, TenantID: ev.TenantID, WorkspaceID: ev.WorkspaceID,
		Timestamp: ev.Timestamp, Data: ev.Data,
		Source: ev.Metadata.Source, UserID: ev.Metadata.UserID,
		CorrelationID: ev.Metadata.CorrelationID, CausationID: ev.Metadata.CausationID,
		Version: ev.Metadata.Version,
	}
	if len(env.Data) == 0 {
		env.Data = json.RawMessage("null")
	}
	return wire.Append(make([]byte, 0, wire.Size(&env)), &env)
}

// pushHeaderKeys are the headers setCloudEventHeaders writes, in
// canonical form, so that they are set without canonicalising each.
var pushHeaderKeys = [...]string{
	"Content-Type", "Ce-Specversion", "Ce-Id", "Ce-Type", "Ce-Source", "Ce-Time",
	"Ce-" + strings.ToUpper(ExtTenantID[:1]) + ExtTenantID[1:],
	"Ce-" + strings.ToUpper(ExtWorkspaceID[:1]) + ExtWorkspaceID[1:],
	"Ce-" + strings.ToUpper(ExtUserID[:1]) + ExtUserID[1:],
	"Ce-" + strings.ToUpper(ExtCorrelationID[:1]) + ExtCorrelationID[1:],
	"Ce-" + strings.ToUpper(ExtCausationID[:1]) + ExtCausationID[1:],
	"Ce-" + strings.ToUpper(ExtEventVersion[:1]) + ExtEventVersion[1:],
}

// pushHeaders is how many headers a push request may have: the
// CloudEvents ones and the trace context's.
const pushHeaders = len(pushHeaderKeys) + 2

// setCloudEventHeaders writes ev's CloudEvents attributes (binary mode)
// into h: the core attributes and the bus's extensions, as the gateway
// reads them on publish. The values share one allocation.
func setCloudEventHeaders(h http.Header, ev eventbus.RawEvent) {
	values := [len(pushHeaderKeys)]string{
		MediaJSON, "1.0", ev.ID, ev.Type, ev.Metadata.Source, ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		ev.TenantID, ev.WorkspaceID, ev.Metadata.UserID, ev.Metadata.CorrelationID, ev.Metadata.CausationID, ev.Metadata.Version,
	}
	set := make([]string, 0, len(values))
	for i, v := range values {
		if v != "" {
			set = append(set, v)
			h[pushHeaderKeys[i]] = set[len(set)-1 : len(set) : len(set)]
		}
	}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date;
// -1 when absent or unreadable.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return -1
}
