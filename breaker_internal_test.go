package eventbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestBreakerCountsOnlyUnavailability checks what the breaker counts:
// failures wrapping ErrBrokerUnavailable open it; a success resets the
// count and closes it from half-open; the caller's failures (its context,
// bad input, a broker's rejection of one event) neither count nor reset.
func TestBreakerCountsOnlyUnavailability(t *testing.T) {
	b := newBreaker(BreakerConfig{FailureThreshold: 2, OpenTimeout: time.Millisecond, HalfOpenSuccesses: 2})
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
		if s := b.state(); s != BreakerClosed {
			t.Fatalf("breaker %s after the caller's failures (%v), want closed", s, err)
		}
	}
	_ = b.run(func() error { return unavailable })
	_ = b.run(func() error { return nil }) // resets the count
	_ = b.run(func() error { return unavailable })
	if s := b.state(); s != BreakerClosed {
		t.Fatalf("breaker %s after failure, success, failure (threshold 2), want closed", s)
	}
	_ = b.run(func() error { return unavailable })
	if s := b.state(); s != BreakerOpen {
		t.Fatalf("breaker %s after 2 unavailable failures in a row, want open", s)
	}
	for i := 0; b.state() == BreakerOpen; i++ { // OpenTimeout is 1 ms
		if i == 5000 {
			t.Fatal("the breaker did not half-open within 5 s of its 1 ms OpenTimeout")
		}
		time.Sleep(time.Millisecond)
	}
	_ = b.run(func() error { return context.Canceled })
	_ = b.run(func() error { return nil })
	_ = b.run(func() error { return nil })
	if s := b.state(); s != BreakerClosed {
		t.Fatalf("breaker %s after 2 successes half-open, want closed", s)
	}
	if !errors.Is(deliveryError(context.Background(), context.Background(), kerr.NotEnoughReplicas, unavailable), ErrBrokerUnavailable) {
		t.Fatal("NOT_ENOUGH_REPLICAS does not wrap ErrBrokerUnavailable")
	}
}
