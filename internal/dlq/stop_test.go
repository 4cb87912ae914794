package dlq

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/wire"
)

// TestStopHoldsNoLockWhileWaiting: stopping the dead letter queue waits
// for the retry scheduler's loop, and that loop may need the queue's mutex
// (its first write to a new dlq.* topic calls noticeTopic). The stop must
// not hold the mutex while it waits, or neither would ever move on: here
// the scheduler's clock calls noticeTopic once the stop has begun, and the
// stop must return because the loop finished, not because its context
// expired.
func TestStopHoldsNoLockWhileWaiting(t *testing.T) {
	t.Parallel()
	stopping := make(chan struct{})
	var once sync.Once
	inTick := make(chan struct{})
	var q *Queue
	clock := func() time.Time {
		once.Do(func() {
			close(inTick)
			<-stopping
			q.noticeTopic() // what the loop's first write to a new topic does
		})
		return time.Now()
	}
	q, _, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: 10 * time.Millisecond}})
	// The scheduler ticks only for partitions it owns: give it one, with an
	// entry due at once. The clock stays the real one until the scheduler
	// runs.
	r := eventRecord("core.user.created", "acme")
	if _, err := q.RecordFailure(ctx, r, r.Topic, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "connection refused"}); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	q.cfg.Now = clock // from here on only the scheduler reads the clock
	q.mu.Unlock()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inTick:
	case <-ctx.Done():
		t.Fatal("the scheduler never ticked")
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	go func() {
		// Let the stop take what it takes before the clock needs the mutex.
		q.mu.Lock()
		for !q.stopped {
			q.mu.Unlock()
			time.Sleep(time.Millisecond)
			q.mu.Lock()
		}
		q.mu.Unlock()
		close(stopping)
	}()
	q.Stop(stopCtx)
	if stopCtx.Err() != nil {
		t.Fatal("the stop returned only when its context expired: it held the mutex the scheduler needed")
	}
	select {
	case <-q.sched.done:
	default:
		t.Fatal("the stop returned before the scheduler's loop finished")
	}
}
