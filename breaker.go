package eventbus

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/internal/errs"
)

// breakerState translates the breaker library's state.
func breakerState(s gobreaker.State) breaker.State {
	switch s {
	case gobreaker.StateHalfOpen:
		return breaker.HalfOpen
	case gobreaker.StateOpen:
		return breaker.Open
	}
	return breaker.Closed
}

// circuit is the publish circuit breaker (see breaker.Config); it guards publishing: a nil cb means disabled. It is two-step so
// that asynchronous publishes report their outcome when it arrives.
//
// It opens when the cluster cannot be reached, not when one partition's
// leader is failing over: a publish that failed as unavailable counts only
// when the brokers acknowledged no record since it was let through. While
// some partitions' leaders take writes, acknowledgements keep coming, and
// the failures of the partitions without a leader (each bounded by
// Config.DeliveryTimeout) do not stop the others' publishes.
type circuit struct {
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]
	cfg breaker.Config
	// acked counts the records the brokers acknowledged (delivered).
	acked atomic.Uint64
}

// partialFailure is an unavailability failure of a publish during which
// the brokers acknowledged other records: one partition's trouble, not
// the cluster's. It neither counts toward opening nor resets the count.
type partialFailure struct{ error }

func (e partialFailure) Unwrap() error { return e.error }

func newBreaker(cfg breaker.Config) *circuit {
	b := &circuit{cfg: cfg}
	if cfg.Disabled {
		return b
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "publish",
		MaxRequests: cfg.HalfOpenSuccesses,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= cfg.FailureThreshold
		},
		// Successes and failures that say the cluster is unavailable
		// count; any other failure neither counts nor resets the count.
		IsExcluded: func(err error) bool {
			if _, partial := err.(partialFailure); partial {
				return true
			}
			return err != nil && !errors.Is(err, ErrBrokerUnavailable)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(breakerState(from), breakerState(to))
			}
		},
	})
	return b
}

// run calls fn through the breaker.
func (b *circuit) run(fn func() error) error {
	done, err := b.allow()
	if err != nil {
		return err
	}
	err = fn()
	done(err)
	return err
}

// allow asks the breaker to let one publish through; done must then be
// called once with its outcome.
func (b *circuit) allow() (done func(error), err error) {
	if b.cb == nil {
		return func(error) {}, nil
	}
	acked := b.acked.Load()
	report, err := b.cb.Allow()
	if err != nil {
		return nil, fmt.Errorf("%w: publishing failed %d times in a row with no broker acknowledging anything meanwhile; the bus retries the brokers %s after it opened",
			ErrCircuitOpen, b.cfg.FailureThreshold, b.cfg.OpenTimeout)
	}
	return func(err error) {
		switch {
		case err == nil:
			b.acked.Add(1)
		case b.acked.Load() != acked && errors.Is(err, ErrBrokerUnavailable):
			err = partialFailure{err} // others were delivered meanwhile
		}
		report(err)
	}, nil
}

// delivered records that the brokers acknowledged a record: the cluster
// takes writes, so the unavailability failures of publishes let through
// before it do not count.
func (b *circuit) delivered() {
	if b.cb != nil {
		b.acked.Add(1)
	}
}

// state returns the breaker's state (closed when disabled).
func (b *circuit) state() breaker.State {
	if b.cb == nil {
		return breaker.Closed
	}
	return breakerState(b.cb.State())
}

// isCallerError reports whether err is the caller's fault.
func isCallerError(err error) bool {
	return errors.Is(err, ErrInvalidTopic) || errors.Is(err, ErrTenantRequired) ||
		errors.Is(err, ErrEventTooLarge) || errors.Is(err, ErrBatchTooLarge) ||
		errors.Is(err, ErrInvalidEvent) || errors.Is(err, ErrShuttingDown)
}

// isUnavailable reports whether err (from a broker request or a record's
// delivery) says the cluster cannot be reached or cannot take writes now,
// rather than something about the request.
func isUnavailable(err error) bool { return errs.Unavailable(err) }

// rejectedEvent maps a broker's rejection of one event (not of the
// cluster's state) to the sentinel it means, or returns nil.
func rejectedEvent(err error) error {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("%w: the broker refused the event as larger than the topic's max.message.bytes allows "+
			"(Config.MaxEventBytes is above it); raise the topic's max.message.bytes or publish smaller events: %w", ErrEventTooLarge, err)
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.InvalidTimestamp),
		errors.Is(err, kerr.UnsupportedForMessageFormat), errors.Is(err, kerr.UnsupportedCompressionType),
		errors.Is(err, kerr.PolicyViolation):
		return fmt.Errorf("%w: the broker refused the event (a topic setting it breaks, such as compaction without a key, "+
			"timestamps outside message.timestamp.difference.max.ms, or a codec the topic forbids): %w", ErrInvalidEvent, err)
	}
	return nil
}
