package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/topic"
)

// DefaultSubscriptionsTopic is Config.SubscriptionsTopic's default: the
// compacted topic that holds the push subscriptions declared over HTTP.
const DefaultSubscriptionsTopic = "__plexica_gateway_subscriptions"

// ErrNotStarted: a subscription was declared or removed over HTTP before
// Gateway.Start read the declarations (or after Close).
var ErrNotStarted = errors.New("gateway not started")

// owner is who declared a subscription over HTTP; it may remove it.
type owner struct {
	Admin  bool   `json:"admin,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	Plugin string `json:"plugin,omitempty"`
}

func ownerOf(p principal) owner { return owner{Admin: p.admin, Tenant: p.tenant, Plugin: p.plugin} }

// declaration is one record of the subscriptions topic: the key is the
// subscription's name, a tombstone removes it.
type declaration struct {
	Subscription Subscription `json:"subscription"`
	Owner        owner        `json:"owner"`
}

// store keeps the declarations of the subscriptions topic and runs them:
// every gateway reads the whole topic at Start, then follows it, so that
// each replica runs every declared subscription (as a member of its
// group) and a declaration survives restarts.
type store struct {
	g      *Gateway
	topic  string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	declared map[string]declaration // running or tried, by name
	applied  int64                  // offset of the next record to apply
	errs     map[int64]error        // the outcome of applying a record, until its writer reads it
	changed  chan struct{}          // closed and replaced whenever applied moves
}

// Start reads the push subscriptions declared over HTTP (in
// Config.SubscriptionsTopic, created if missing) and runs them, then
// follows the topic: declarations made on any gateway sharing the topic
// start and stop here too. A declaration that no longer passes (its
// endpoint left the allowlist) is logged and skipped. Until Start, the
// POST and DELETE routes of /api/subscriptions answer 503 ErrNotStarted.
func (g *Gateway) Start(ctx context.Context) error {
	client := g.cfg.Bus.Client()
	adm, err := client.Admin()
	if err != nil {
		return err
	}
	topic := g.cfg.SubscriptionsTopic
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("gateway: create the subscriptions topic %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("gateway: read the subscriptions topic %s: %w", topic, err)
	}
	end := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Partition == 0 {
			end = o.Offset
		}
	})
	cl, err := kgo.NewClient(append(client.KafkaOpts(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return fmt.Errorf("%w: gateway: %v", eventbus.ErrInvalidConfig, err)
	}
	s := &store{g: g, topic: topic, cl: cl, declared: map[string]declaration{}, errs: map[int64]error{}, changed: make(chan struct{})}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done = cancel, make(chan struct{})
	go s.follow(rctx)
	if err := s.waitApplied(ctx, end); err != nil {
		s.stop()
		return fmt.Errorf("gateway: read the subscriptions topic %s: %w", topic, err)
	}
	g.mu.Lock()
	g.store = s
	g.mu.Unlock()
	return nil
}

// maxOutcomes bounds the outcomes of applied records kept for their
// writers.
const maxOutcomes = 1024

// follow applies the topic's records in order until ctx ends.
func (s *store) follow(ctx context.Context) {
	defer close(s.done)
	for {
		fs := s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			s.g.cfg.Logger.Warn("eventbus gateway: reading the subscriptions topic failed; retrying", "topic", t, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			err := s.apply(ctx, r)
			if err != nil {
				s.g.cfg.Logger.Error("eventbus gateway: a declared push subscription does not run", "subscription", string(r.Key), "err", err)
			}
			s.mu.Lock()
			s.applied = r.Offset + 1
			s.errs[r.Offset] = err
			if len(s.errs) > maxOutcomes { // outcomes nobody waited for
				for off := range s.errs {
					if off < s.applied-maxOutcomes/2 {
						delete(s.errs, off)
					}
				}
			}
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		})
	}
}

// apply starts, replaces or stops the subscription a record declares.
func (s *store) apply(ctx context.Context, r *kgo.Record) error {
	name := string(r.Key)
	s.mu.Lock()
	_, running := s.declared[name]
	delete(s.declared, name)
	s.mu.Unlock()
	if running {
		if err := s.g.Unsubscribe(ctx, name); err != nil && !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
			s.g.cfg.Logger.Warn("eventbus gateway: stopping a push subscription", "subscription", name, "err", err)
		}
	}
	if r.Value == nil {
		return nil // removed
	}
	var d declaration
	if err := json.Unmarshal(r.Value, &d); err != nil {
		return fmt.Errorf("%w: the record of %q is not a declaration: %v", ErrInvalidSubscription, name, err)
	}
	if err := s.g.Subscribe(ctx, d.Subscription); err != nil {
		return err
	}
	s.mu.Lock()
	s.declared[name] = d
	s.mu.Unlock()
	return nil
}

// waitApplied waits until the records before offset end are applied.
func (s *store) waitApplied(ctx context.Context, end int64) error {
	for {
		s.mu.Lock()
		applied, changed := s.applied, s.changed
		s.mu.Unlock()
		if applied >= end {
			return nil
		}
		select {
		case <-changed:
		case <-s.done:
			return ErrNotStarted
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// write appends a declaration (nil: a removal) and returns once this
// gateway applied it, with the outcome.
func (s *store) write(ctx context.Context, name string, d *declaration) error {
	r := &kgo.Record{Topic: s.topic, Partition: 0, Key: []byte(name)}
	if d != nil {
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		r.Value = v
	}
	res := s.cl.ProduceSync(ctx, r)
	if err := res.FirstErr(); err != nil {
		return fmt.Errorf("%w: storing the declaration: %v", eventbus.ErrBrokerUnavailable, err)
	}
	off := res[0].Record.Offset
	if err := s.waitApplied(ctx, off+1); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.errs[off]
	delete(s.errs, off)
	if err != nil {
		return &appliedError{err}
	}
	return nil
}

// appliedError is a declaration that was stored but did not start.
type appliedError struct{ err error }

func (e *appliedError) Error() string { return e.err.Error() }
func (e *appliedError) Unwrap() error { return e.err }

func (s *store) stop() {
	s.cancel()
	<-s.done
	s.cl.Close()
}

// lookup returns the declaration of name, if one was made over HTTP.
func (s *store) lookup(name string) (declaration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.declared[name]
	return d, ok
}

// mayDeclare returns why p may not declare s, or nil: a tenant-scoped
// token only subscriptions filtered to its tenant; a plugin token only its
// own plugin's events and core events; a token that is not an admin only
// when the operator set an endpoint allowlist.
func (g *Gateway) mayDeclare(p principal, s Subscription) error {
	if p.admin {
		return nil
	}
	if len(g.allow) == 0 {
		return fmt.Errorf("%w: only admin tokens may declare push subscriptions while no endpoint allowlist is set (--push-allow)", ErrForbidden)
	}
	if p.tenant != "" && s.TenantID != p.tenant {
		return fmt.Errorf("%w: this token may declare only subscriptions of tenant %q (set tenantId %q)", ErrForbidden, p.tenant, p.tenant)
	}
	if p.plugin != "" {
		for _, ev := range s.Events {
			if !strings.HasPrefix(ev, "plugin."+p.plugin+".") && !strings.HasPrefix(ev, "core.") {
				return fmt.Errorf("%w: %w: plugin %s's token may subscribe to its own plugin.%s.* events and core events, not %q",
					ErrForbidden, eventbus.ErrPluginScope, p.plugin, p.plugin, ev)
			}
		}
	}
	return nil
}

// declare answers POST /api/subscriptions: the body is a Subscription; it
// is checked, stored in the subscriptions topic, started here (and on
// every gateway sharing the topic), and answered 201 with its defaults
// filled in.
func (g *Gateway) declare(w http.ResponseWriter, r *http.Request) {
	who, err := g.auth.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s := g.started()
	if s == nil {
		writeError(w, fmt.Errorf("%w: declarations are read at start; retry shortly", ErrNotStarted))
		return
	}
	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	sub, err := decodeSubscription(body)
	if err != nil {
		writeError(w, fmt.Errorf("%w: the body is not a subscription ({\"name\",\"events\",\"endpoint\",...}): %v", ErrInvalidSubscription, err))
		return
	}
	sub = sub.withDefaults()
	if err := sub.validate(); err != nil {
		writeError(w, err)
		return
	}
	if err := g.checkEndpoint(sub); err != nil {
		writeError(w, err)
		return
	}
	for _, ev := range sub.Events {
		t, err := g.cfg.Bus.Client().Topics().Rules().Parse(ev)
		if err == nil && t.Kind == topic.KindDLQ {
			err = fmt.Errorf("%w: %q is a dead-letter topic; subscriptions deliver core and plugin events", eventbus.ErrInvalidTopic, ev)
		}
		if err != nil {
			writeError(w, err)
			return
		}
	}
	if err := g.mayDeclare(who, sub); err != nil {
		writeError(w, err)
		return
	}
	if prev, ok := s.lookup(sub.Name); ok && !mayRemove(who, prev) {
		writeError(w, fmt.Errorf("%w: a subscription named %q was declared by another scope; pick another name", ErrForbidden, sub.Name))
		return
	} else if !ok && g.running(sub.Name) {
		writeError(w, fmt.Errorf("%w: %q is declared in the operator's subscriptions file; pick another name", ErrInvalidSubscription, sub.Name))
		return
	}
	if err := s.write(r.Context(), sub.Name, &declaration{Subscription: sub, Owner: ownerOf(who)}); err != nil {
		var stored *appliedError
		if errors.As(err, &stored) {
			// Stored but it does not run here: remove it, so that no
			// gateway keeps trying it at every start.
			if e := s.write(context.WithoutCancel(r.Context()), sub.Name, nil); e != nil {
				g.cfg.Logger.Error("eventbus gateway: could not remove a declaration that does not run", "subscription", sub.Name, "err", e)
			}
			err = stored.err
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, sub)
}

// remove answers DELETE /api/subscriptions/{name}: 204 once stopped here
// (and stopping on every gateway sharing the topic).
func (g *Gateway) remove(w http.ResponseWriter, r *http.Request) {
	who, err := g.auth.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s := g.started()
	if s == nil {
		writeError(w, fmt.Errorf("%w: declarations are read at start; retry shortly", ErrNotStarted))
		return
	}
	name := r.PathValue("name")
	d, ok := s.lookup(name)
	switch {
	case !ok && g.running(name):
		writeError(w, fmt.Errorf("%w: %q is declared in the operator's subscriptions file; remove it there", ErrForbidden, name))
		return
	case !ok || (!mayRemove(who, d) && !who.maySee(d.Subscription.TenantID)):
		writeError(w, fmt.Errorf("%w: no push subscription named %q was declared over HTTP", eventbus.ErrSubscriptionNotFound, name))
		return
	case !mayRemove(who, d):
		writeError(w, fmt.Errorf("%w: subscription %q was declared by another scope", ErrForbidden, name))
		return
	}
	if err := s.write(r.Context(), name, nil); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// mayRemove reports whether p may replace or remove d: an admin any, a
// plugin token its plugin's, a tenant token its tenant's.
func mayRemove(p principal, d declaration) bool {
	switch {
	case p.admin:
		return true
	case p.plugin != "":
		return d.Owner.Plugin == p.plugin && d.Owner.Tenant == p.tenant
	default:
		return d.Owner.Plugin == "" && !d.Owner.Admin && d.Owner.Tenant == p.tenant
	}
}

func (g *Gateway) started() *store {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.store
}

func (g *Gateway) running(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.subs[name]
	return ok
}
