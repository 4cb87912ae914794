package topicadmin

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newAdmin(t *testing.T) (*Admin, context.Context) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return New(cl), ctx
}

func TestEnsureCreatesOnceAndListsFresh(t *testing.T) {
	a, ctx := newAdmin(t)
	var settingsCalls atomic.Int32
	settings := func() Settings {
		settingsCalls.Add(1)
		return Settings{Partitions: 2, Retention: time.Hour, Configs: map[string]string{"cleanup.policy": "delete"}}
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Ensure(ctx, "core.user.created", 30*time.Second, settings)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := settingsCalls.Load(); n != 1 {
		t.Fatalf("%d creation requests for one name, want 1", n)
	}
	if err := a.Ensure(ctx, "core.user.created", 30*time.Second, settings); err != nil || settingsCalls.Load() != 1 {
		t.Fatalf("a second Ensure: %v, %d requests", err, settingsCalls.Load())
	}
	topics, err := a.Fresh(ctx)
	if err != nil || !slices.Contains(topics, "core.user.created") {
		t.Fatalf("Fresh() = %v, %v", topics, err)
	}
	some, err := a.Fresh(ctx, "core.user.created", "core.nothing.here")
	if err != nil || !slices.Equal(some, []string{"core.user.created"}) {
		t.Fatalf("Fresh(two names) = %v, %v", some, err)
	}
}

func TestEnsureForgetsAFailure(t *testing.T) {
	a, ctx := newAdmin(t)
	settings := func() Settings { return Settings{Partitions: 1, Retention: time.Hour} }
	if err := a.Ensure(ctx, "core.user.created", time.Nanosecond, settings); !errors.Is(err, ErrTimedOut) {
		t.Fatalf("Ensure bounded by 1 ns: %v, want ErrTimedOut", err)
	}
	if err := a.Ensure(ctx, "core.user.created", 30*time.Second, settings); err != nil {
		t.Fatalf("the retry after a failure: %v", err)
	}
	if topics, err := a.Fresh(ctx, "core.user.created"); err != nil || len(topics) != 1 {
		t.Fatalf("Fresh = %v, %v", topics, err)
	}
}

// TestEnsureOutlivesACancelledCaller checks that a caller's cancellation
// ends its own wait, not the creation that others share.
func TestEnsureOutlivesACancelledCaller(t *testing.T) {
	a, ctx := newAdmin(t)
	settings := func() Settings { return Settings{Partitions: 1, Retention: time.Hour} }
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Ensure(cancelled, "core.user.created", 30*time.Second, settings); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ensure with a cancelled context: %v, want context.Canceled", err)
	}
	if err := a.Ensure(ctx, "core.user.created", 30*time.Second, settings); err != nil {
		t.Fatalf("Ensure after a cancelled caller: %v", err)
	}
}
