package eventbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/plexica/eventbus/breaker"
)

// TestBreakerCountsOnlyUnavailability checks what the breaker counts:
// failures wrapping ErrBrokerUnavailable open it; a success resets the
// count and closes it from half-open; the caller's failures (its context,
// bad input, a broker's rejection of one event) neither count nor reset.
func TestBreakerCountsOnlyUnavailability(t *testing.T) {
	b := newBreaker(breaker.Config{FailureThreshold: 2, OpenTimeout: time.Millisecond, HalfOpenSuccesses: 2})
	unavailable := fmt.Errorf("%w: down", ErrBrokerUnavailable)
	callers := []error{
		context.Canceled,
		fmt.Errorf("caller: %w", context.DeadlineExceeded),
		fmt.Errorf("%w: big", ErrEventTooLarge),
		deliveryError(context.Background(), context.Background(), kerr.MessageTooLarge, unavailable),
		deliveryError(context.Background(), context.Background(), kerr.TopicAuthorizationFailed, unavailable),
	}
	for _, err := range callers {
		for range 3 {
			_ = b.run(func() error { return err })
		}
		if s := b.state(); s != breaker.Closed {
			t.Fatalf("breaker %s after the caller's failures (%v), want closed", s, err)
		}
	}
	_ = b.run(func() error { return unavailable })
	_ = b.run(func() error { return nil }) // resets the count
	_ = b.run(func() error { return unavailable })
	if s := b.state(); s != breaker.Closed {
		t.Fatalf("breaker %s after failure, success, failure (threshold 2), want closed", s)
	}
	_ = b.run(func() error { return unavailable })
	if s := b.state(); s != breaker.Open {
		t.Fatalf("breaker %s after 2 unavailable failures in a row, want open", s)
	}
	for i := 0; b.state() == breaker.Open; i++ { // OpenTimeout is 1 ms
		if i == 5000 {
			t.Fatal("the breaker did not half-open within 5 s of its 1 ms OpenTimeout")
		}
		time.Sleep(time.Millisecond)
	}
	_ = b.run(func() error { return context.Canceled })
	_ = b.run(func() error { return nil })
	_ = b.run(func() error { return nil })
	if s := b.state(); s != breaker.Closed {
		t.Fatalf("breaker %s after 2 successes half-open, want closed", s)
	}
	if !errors.Is(deliveryError(context.Background(), context.Background(), kerr.NotEnoughReplicas, unavailable), ErrBrokerUnavailable) {
		t.Fatal("NOT_ENOUGH_REPLICAS does not wrap ErrBrokerUnavailable")
	}
}

// TestBreakerCountsOnlyFailuresWithNothingDelivered (issue 24): a publish
// that failed as unavailable counts only when no record was acknowledged
// since the breaker let it through. Two publishes to a partition without
// a leader fail after a third, to a partition whose leader is alive,
// succeeded (or after a record of a batch was acknowledged): the cluster
// takes writes, the breaker stays closed. The same failures with nothing
// acknowledged meanwhile open it.
func TestBreakerCountsOnlyFailuresWithNothingDelivered(t *testing.T) {
	b := newBreaker(breaker.Config{FailureThreshold: 2, OpenTimeout: time.Hour, HalfOpenSuccesses: 2})
	unavailable := fmt.Errorf("%w: no leader", ErrBrokerUnavailable)
	allow := func() func(error) {
		t.Helper()
		done, err := b.allow()
		if err != nil {
			t.Fatalf("allow: %v (breaker %s)", err, b.state())
		}
		return done
	}
	a, c, live := allow(), allow(), allow()
	live(nil)
	a(unavailable)
	c(unavailable)
	if s := b.state(); s != breaker.Closed {
		t.Fatalf("breaker %s after 2 failures let through before a success; want closed", s)
	}
	a, c = allow(), allow()
	b.delivered() // a record of a batch acknowledged
	a(unavailable)
	c(unavailable)
	if s := b.state(); s != breaker.Closed {
		t.Fatalf("breaker %s after 2 failures let through before a record was acknowledged; want closed", s)
	}
	allow()(unavailable)
	allow()(unavailable)
	if s := b.state(); s != breaker.Open {
		t.Fatalf("breaker %s after 2 failures with nothing acknowledged; want open", s)
	}
	if _, err := b.allow(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("allow when open: %v, want ErrCircuitOpen", err)
	}
}
