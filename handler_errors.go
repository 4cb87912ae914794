package eventbus

import (
	"errors"
	"fmt"
	"time"
)

// Permanent marks a handler error as one that retrying cannot fix (for
// example a validation error): the event goes to the dead letter queue as
// max-retries-exceeded at once, without automatic retries. A manual retry
// still works.
//
//	if order.Total < 0 {
//		return eventbus.Permanent(fmt.Errorf("negative total %d", order.Total))
//	}
func Permanent(err error) error {
	if err == nil {
		err = errors.New("permanent failure")
	}
	return &PermanentError{Err: err}
}

// PermanentError is the error Permanent returns.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfter asks for the event's next automatic retry after d instead of
// the backoff schedule (for example when a downstream API said when to come
// back). It still counts as an attempt.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		err = errors.New("retry requested")
	}
	return &RetryAfterError{Err: err, Delay: d}
}

// RetryAfterError is the error RetryAfter returns.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.Delay, e.Err)
}

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// PanicError is the failure of a handler that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }
