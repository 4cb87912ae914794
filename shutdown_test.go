package eventbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// Shutdown(context.Background()) is bounded (issue 20): with a handler
// that ignores its context it returns within Config.ShutdownTimeout (here
// a short one), and a handler that honours its context has it cancelled
// when the grace period ends, three quarters of the way to the bound.
func TestShutdownWithoutDeadlineReturnsWithinShutdownTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	bus := eventbustest.NewBus(t, eventbus.Config{ShutdownTimeout: timeout})
	topic := eventbustest.UniqueTopic(t, "core.user.created")

	release := make(chan struct{}) // the deaf handler's only way out
	t.Cleanup(func() { close(release) })
	deafRunning, politeRunning := make(chan struct{}), make(chan struct{})
	politeCancelled := make(chan time.Time, 1)
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		close(deafRunning)
		<-release // ignores ctx
		return nil
	}, eventbus.InGroup(eventbustest.UniqueID("deaf")))
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		close(politeRunning)
		<-ctx.Done()
		politeCancelled <- time.Now()
		return ctx.Err()
	}, eventbus.InGroup(eventbustest.UniqueID("polite")))
	eventbustest.MustPublish(t, bus, topic, map[string]int{"n": 1}, eventbus.PublishMetadata{TenantID: "acme"})
	for _, running := range []chan struct{}{deafRunning, politeRunning} {
		select {
		case <-running:
		case <-time.After(eventbustest.WaitTimeout):
			t.Fatal("the handlers did not start")
		}
	}

	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- bus.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		took := time.Since(began)
		if err == nil {
			t.Errorf("Shutdown abandoned a running handler and returned no error (after %s)", took)
		}
		t.Logf("Shutdown returned after %s: %v", took, err)
	case <-time.After(3 * timeout):
		t.Fatalf("Shutdown(context.Background()) still blocked after %s (3× the shutdown timeout %s) by a handler that ignores its context",
			3*timeout, timeout)
	}
	select {
	case at := <-politeCancelled:
		// The grace period is three quarters of the bound; allow for a
		// loaded machine on the late side only.
		grace := timeout * 3 / 4
		if got := at.Sub(began); got < grace-100*time.Millisecond || got > timeout {
			t.Errorf("a handler honouring its context was cancelled %s into Shutdown; want about %s (3/4 of %s)", got, grace, timeout)
		}
	default:
		t.Error("Shutdown returned without cancelling the context of a running handler")
	}
}
