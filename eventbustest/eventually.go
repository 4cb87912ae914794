package eventbustest

import (
	"context"
	"testing"
	"time"
)

// pollInterval is how long Eventually waits between two checks.
const pollInterval = 10 * time.Millisecond

// Eventually calls check until it returns nil, every few milliseconds, for
// at most WaitTimeout; then it fails the test with what the last check
// returned and what was waited for:
//
//	eventbustest.Eventually(t, "the entry to be retried", func() error {
//		e, err := q.Get(ctx, id)
//		if err != nil {
//			return err
//		}
//		if e.RetryCount != 1 {
//			return fmt.Errorf("retried %d times", e.RetryCount)
//		}
//		return nil
//	})
//
// It also gives up, failing the test, when the test's context is done
// (t.Context ends just before the test's cleanups run, so in a cleanup
// Eventually checks once). check runs on the caller's goroutine, so it may
// call t.Fatal itself.
func Eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	timeout := WaitTimeout
	giveUp := time.NewTimer(timeout)
	defer giveUp.Stop()
	next := time.NewTimer(pollInterval)
	defer next.Stop()
	done := t.Context().Done()
	for {
		err := check()
		if err == nil {
			return
		}
		next.Reset(pollInterval)
		select {
		case <-next.C:
		case <-giveUp.C:
			t.Fatalf("waited %s for %s: %v", timeout, what, err)
			return
		case <-done:
			t.Fatalf("stopped waiting for %s, the test's context is done (%v): %v", what, context.Cause(t.Context()), err)
			return
		}
	}
}
