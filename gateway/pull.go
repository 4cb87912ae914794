package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/plexica/eventbus"
)

// Limits of a pull request.
const (
	// DefaultPullMax is how many events one pull returns at most when it
	// does not say (max); MaxPullMax caps what it may ask.
	DefaultPullMax = 10
	MaxPullMax     = 100
	// DefaultPullWait is how long a pull waits for a first event when it
	// does not say (wait); MaxPullWait caps what it may ask.
	DefaultPullWait = 20 * time.Second
	MaxPullWait     = time.Minute
)

// pullQueue hands a pull subscription's events to the clients that take
// them. Each event's handler waits, holding the event's key (so per-key
// order is as with push), until a client takes the event and then until
// the client acknowledges it, gives it back, or its lease ends.
type pullQueue struct {
	ready chan *lease // events waiting for a client (unbuffered: the handler waits)

	mu     sync.Mutex
	leases map[string]*lease // taken, by lease ID
}

// lease is one event taken by a client.
type lease struct {
	id   string
	ev   eventbus.RawEvent
	done chan error // the outcome: nil (acknowledged) or the failure
}

func newPullQueue() *pullQueue {
	return &pullQueue{ready: make(chan *lease), leases: map[string]*lease{}}
}

// handle is the bus's handler of a pull subscription whose leases last
// timeout.
func (q *pullQueue) handle(timeout time.Duration) eventbus.Handler {
	return func(ctx context.Context, ev eventbus.RawEvent) error {
		l := &lease{id: uuid.NewString(), ev: ev, done: make(chan error, 1)}
		defer func() { // registered by take
			q.mu.Lock()
			delete(q.leases, l.id)
			q.mu.Unlock()
		}()
		select {
		case q.ready <- l: // taken: the lease starts
		case <-ctx.Done():
			return ctx.Err()
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case err := <-l.done:
			return err
		case <-t.C:
			return fmt.Errorf("pull: event %s was taken but not acknowledged within %s (the subscription's timeout)", ev.ID, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take returns up to max events, waiting up to wait for the first, and
// registers their leases.
func (q *pullQueue) take(ctx context.Context, max int, wait time.Duration) (out []*lease) {
	defer func() {
		q.mu.Lock()
		for _, l := range out {
			q.leases[l.id] = l
		}
		q.mu.Unlock()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l := <-q.ready:
		out = append(out, l)
	case <-t.C:
		return nil
	case <-ctx.Done():
		return nil
	}
	for len(out) < max {
		select {
		case l := <-q.ready:
			out = append(out, l)
		default:
			return out
		}
	}
	return out
}

// settle ends a lease with err (nil: acknowledged); false when the lease
// is unknown (settled already, or expired).
func (q *pullQueue) settle(id string, err error) bool {
	q.mu.Lock()
	l, ok := q.leases[id]
	if ok {
		delete(q.leases, id)
	}
	q.mu.Unlock()
	if ok {
		l.done <- err
	}
	return ok
}

// pulled is one event of a pull answer.
type pulled struct {
	// LeaseID acknowledges the event.
	LeaseID string `json:"leaseId"`
	// Event is the bus's event.
	Event eventbus.RawEvent `json:"event"`
}

// pullSub returns the pull subscription of the request's name, if the
// token may use it; else it answers the error.
func (g *Gateway) pullSub(w http.ResponseWriter, r *http.Request) *push {
	who, err := g.auth.authenticate(r)
	if err != nil {
		writeError(w, err)
		return nil
	}
	name := r.PathValue("name")
	g.mu.Lock()
	p := g.subs[name]
	g.mu.Unlock()
	if p == nil || p.pull == nil || !who.maySee(p.sub.TenantID) {
		writeError(w, fmt.Errorf("%w: no pull subscription named %q that this token may use", eventbus.ErrSubscriptionNotFound, name))
		return nil
	}
	return p
}

// pullEvents answers GET /api/subscriptions/{name}/events?max=&wait=:
// {"events":[{"leaseId","event"},...]}, possibly empty after wait.
func (g *Gateway) pullEvents(w http.ResponseWriter, r *http.Request) {
	p := g.pullSub(w, r)
	if p == nil {
		return
	}
	max, wait := DefaultPullMax, DefaultPullWait
	if v := r.URL.Query().Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPullMax {
			writeError(w, fmt.Errorf("%w: max=%q; want 1 to %d", ErrBadRequest, v, MaxPullMax))
			return
		}
		max = n
	}
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxPullWait {
			writeError(w, fmt.Errorf("%w: wait=%q; want a duration from 0s to %s (20s)", ErrBadRequest, v, MaxPullWait))
			return
		}
		wait = d
	}
	out := []pulled{}
	for _, l := range p.pull.take(r.Context(), max, wait) {
		out = append(out, pulled{LeaseID: l.id, Event: l.ev})
	}
	writeJSON(w, http.StatusOK, struct {
		Events []pulled `json:"events"`
	}{out})
}

// ackRequest is the body of POST /api/subscriptions/{name}/ack.
type ackRequest struct {
	// Ack are the leases of events handled.
	Ack []string `json:"ack"`
	// Nack are the leases of events that failed: dead-lettered, with
	// automatic retries unless Permanent.
	Nack []struct {
		LeaseID   string `json:"leaseId"`
		Reason    string `json:"reason"`
		Permanent bool   `json:"permanent"`
	} `json:"nack"`
}

// ack answers POST /api/subscriptions/{name}/ack: {"settled":n,"unknown":[ids]}
// (unknown: expired or settled already).
func (g *Gateway) ack(w http.ResponseWriter, r *http.Request) {
	p := g.pullSub(w, r)
	if p == nil {
		return
	}
	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	var req ackRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, fmt.Errorf("%w: the body is not {\"ack\":[leaseId,...],\"nack\":[{\"leaseId\",\"reason\",\"permanent\"}]}: %v", ErrBadRequest, err))
		return
	}
	settled, unknown := 0, []string{}
	for _, id := range req.Ack {
		if p.pull.settle(id, nil) {
			settled++
		} else {
			unknown = append(unknown, id)
		}
	}
	for _, n := range req.Nack {
		var failure error = fmt.Errorf("pull subscription %s: the client failed the event: %s", p.sub.Name, n.Reason)
		if n.Permanent {
			failure = eventbus.Permanent(failure)
		}
		if p.pull.settle(n.LeaseID, failure) {
			settled++
		} else {
			unknown = append(unknown, n.LeaseID)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Settled int      `json:"settled"`
		Unknown []string `json:"unknown"`
	}{settled, unknown})
}
