package eventbustest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus/eventbustest"
)

// fakeTB records what Eventually fails with instead of failing the test;
// its context is ctx. Other methods are the real test's.
type fakeTB struct {
	testing.TB
	ctx    context.Context
	failed []string
}

func (f *fakeTB) Helper()                  {}
func (f *fakeTB) Context() context.Context { return f.ctx }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}

func TestEventuallyReturnsOnceCheckPasses(t *testing.T) {
	t.Parallel()
	calls := 0
	eventbustest.Eventually(t, "the third call", func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("check called %d times, want 3", calls)
	}
}

func TestEventuallyDoesNotWaitWhenCheckPassesAtOnce(t *testing.T) {
	t.Parallel()
	calls := 0
	start := time.Now()
	eventbustest.Eventually(t, "nothing", func() error { calls++; return nil })
	if calls != 1 {
		t.Fatalf("check called %d times, want 1", calls)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a passing check took %s", d)
	}
}

// TestEventuallyFailsAfterWaitTimeout changes WaitTimeout, so it is not
// parallel.
func TestEventuallyFailsAfterWaitTimeout(t *testing.T) {
	defer func(d time.Duration) { eventbustest.WaitTimeout = d }(eventbustest.WaitTimeout)
	eventbustest.WaitTimeout = 100 * time.Millisecond
	fake := &fakeTB{TB: t, ctx: context.Background()}
	calls := 0
	start := time.Now()
	eventbustest.Eventually(fake, "the moon", func() error {
		calls++
		return fmt.Errorf("still %d", calls)
	})
	if d := time.Since(start); d < 100*time.Millisecond || d > 10*time.Second {
		t.Errorf("gave up after %s, want about 100ms", d)
	}
	if calls < 2 {
		t.Errorf("check called %d times, want it polled", calls)
	}
	if len(fake.failed) != 1 {
		t.Fatalf("failed %d times: %q", len(fake.failed), fake.failed)
	}
	msg := fake.failed[0]
	if want := fmt.Sprintf("still %d", calls); !strings.Contains(msg, "the moon") || !strings.HasSuffix(msg, want) || !strings.Contains(msg, "100ms") {
		t.Fatalf("failed with %q; want what was waited for, the timeout and the last check's error %q", msg, want)
	}
}

func TestEventuallyStopsWhenTheTestsContextIsDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	fake := &fakeTB{TB: t, ctx: ctx}
	calls := 0
	start := time.Now()
	eventbustest.Eventually(fake, "the moon", func() error {
		calls++
		if calls == 3 {
			cancel(errors.New("test over"))
		}
		return errors.New("not yet")
	})
	if d := time.Since(start); d > eventbustest.WaitTimeout/2 {
		t.Errorf("gave up after %s, want at once", d)
	}
	if calls != 3 {
		t.Errorf("check called %d times after the context was done, want 3 in all", calls)
	}
	if len(fake.failed) != 1 || !strings.Contains(fake.failed[0], "the moon") ||
		!strings.Contains(fake.failed[0], "test over") || !strings.HasSuffix(fake.failed[0], "not yet") {
		t.Fatalf("failed with %q; want what was waited for, why the context ended and the last error", fake.failed)
	}
}
