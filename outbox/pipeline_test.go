package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// backlog writes perKey events for each key in one transaction, the keys
// interleaved, and returns the shard of each event ID and the ID of each
// (key, n).
func backlog(t *testing.T, f fixture, keys []string, perKey int) (shardOf map[string]int, idOf map[seq]string) {
	t.Helper()
	shardOf, idOf = map[string]int{}, map[seq]string{}
	inTx(t, f.pool, func(tx pgx.Tx) error {
		for n := range perKey {
			for _, key := range keys {
				id, err := f.w.Publish(t.Context(), tx, f.topic, seq{key, n}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(key))
				if err != nil {
					return err
				}
				shardOf[id] = outbox.ShardOf([]byte(key))
				idOf[seq{key, n}] = id
			}
		}
		return nil
	})
	return shardOf, idOf
}

// keysInLanes returns n keys for each of lanes lanes of a relay with
// MaxInFlight lanes (shard modulo lanes), so that every lane has work.
func keysInLanes(lanes, n int) []string {
	var keys []string
	per := make([]int, lanes)
	for i := 0; len(keys) < lanes*n; i++ {
		key := fmt.Sprintf("order-%d", i)
		if l := outbox.ShardOf([]byte(key)) % lanes; per[l] < n {
			per[l]++
			keys = append(keys, key)
		}
	}
	return keys
}

// inFlight tracks, through the relay's send hooks, which shards have a
// batch on its way, and records a batch that starts while a batch of one
// of its shards is in flight: the events of one key would race.
type inFlight struct {
	shardOf map[string]int
	mu      sync.Mutex
	shards  map[int]int // shard → batches in flight with it
	overlap []string
}

func newInFlight(shardOf map[string]int) *inFlight {
	return &inFlight{shardOf: shardOf, shards: map[int]int{}}
}

func (f *inFlight) shardsOf(ids []string) []int {
	var shards []int
	for _, id := range ids {
		if s := f.shardOf[id]; !slices.Contains(shards, s) {
			shards = append(shards, s)
		}
	}
	return shards
}

func (f *inFlight) before(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.shardsOf(ids) {
		if f.shards[s] > 0 {
			f.overlap = append(f.overlap, fmt.Sprintf("a batch of shard %d started while another of it was in flight", s))
		}
		f.shards[s]++
	}
}

func (f *inFlight) after(ids, _ []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.shardsOf(ids) {
		f.shards[s]--
	}
}

func (f *inFlight) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.overlap) > 0 {
		t.Fatalf("%d overlaps, the first: %s", len(f.overlap), f.overlap[0])
	}
}

// runRelay runs r until the test ends.
func runRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
}

// TestRelayPipelineHoldsBackAKeyBehindAFailedBatch: the relay sends several
// batches at once and reads the next ones meanwhile; the batch that holds
// event 3 of one key is held until another batch has started or come
// back, then fails. The events of that key after it
// must wait: no batch of its shard starts while it is in flight, and the
// key's events arrive in order, none missing, none twice.
func TestRelayPipelineHoldsBackAKeyBehindAFailedBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const lanes, perKey = 4, 40
	keys := keysInLanes(lanes, 2)
	shardOf, idOf := backlog(t, f, keys, perKey)
	victim := idOf[seq{keys[0], 3}]
	track := newInFlight(shardOf)
	r, err := outbox.NewRelay(f.pool, f.bus, outbox.RelayConfig{BatchSize: 5, MaxInFlight: lanes, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		held    bool
		another = make(chan struct{})
	)
	// signal tells the held batch that another batch started or came back
	// meanwhile: the relay went on with other lanes.
	signal := func(ids []string) {
		mu.Lock()
		defer mu.Unlock()
		if held && another != nil && !slices.Contains(ids, victim) {
			close(another)
			another = nil
		}
	}
	outbox.SetSendHooks(r, func(ids []string) error {
		track.before(ids)
		signal(ids)
		mu.Lock()
		hold := !held && slices.Contains(ids, victim)
		held = held || hold
		wait := another
		mu.Unlock()
		if !hold {
			return nil
		}
		select {
		case <-wait:
		case <-time.After(eventbustest.WaitTimeout):
			t.Error("no other batch started or came back while one was held")
		}
		return errors.New("refused by the test")
	}, func(ids, acked []string) {
		track.after(ids, acked)
		signal(ids)
	})
	runRelay(t, r)
	events := f.rec.WaitFor(t, len(keys)*perKey)
	if d := checkOrder(t, events, len(keys), perKey); d != 0 {
		t.Fatalf("%d duplicates: rows were sent twice", d)
	}
	track.check(t)
	waitEmpty(t, f.pool, "eventbus_outbox")
}

// TestRelaySessionLostAroundASendLosesNothing ends the relay's database
// session at the two bad moments of a batch: after it was read and before
// it was sent (the send then fails), and after the brokers acknowledged
// it and before its rows were deleted. The relay reconnects, deletes what
// the brokers acknowledged, and sends what is still in the table: every
// event arrives, each key in order, and the batch acknowledged but not
// deleted is not sent again.
func TestRelaySessionLostAroundASendLosesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const lanes, perKey = 4, 30
	keys := keysInLanes(lanes, 2)
	shardOf, idOf := backlog(t, f, keys, perKey)
	beforeVictim, afterVictim := idOf[seq{keys[1], 5}], idOf[seq{keys[2], 20}]
	track := newInFlight(shardOf)
	r, err := outbox.NewRelay(f.pool, f.bus, outbox.RelayConfig{BatchSize: 5, MaxInFlight: lanes, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	endSession := func() {
		// The relay's connection, not the pool's: it holds the locks.
		if n := count(t, f.pool, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, outbox.RelayApplicationName); n != 1 {
			t.Errorf("ended %d relay sessions, want 1", n)
		}
	}
	var mu sync.Mutex
	var killedBefore, killedAfter bool
	var ackedUndeleted []string
	outbox.SetSendHooks(r, func(ids []string) error {
		track.before(ids)
		mu.Lock()
		defer mu.Unlock()
		if !killedBefore && slices.Contains(ids, beforeVictim) {
			killedBefore = true
			endSession()
			return errors.New("the relay lost its session before sending")
		}
		return nil
	}, func(ids, acked []string) {
		track.after(ids, acked)
		mu.Lock()
		defer mu.Unlock()
		if !killedAfter && slices.Contains(acked, afterVictim) {
			killedAfter = true
			ackedUndeleted = acked
			endSession()
		}
	})
	runRelay(t, r)
	waitEmpty(t, f.pool, "eventbus_outbox")
	eventbustest.Eventually(t, "every event to arrive", func() error {
		ids := map[string]bool{}
		for _, ev := range f.rec.Events() {
			ids[ev.ID] = true
		}
		if len(ids) != len(keys)*perKey {
			return fmt.Errorf("%d distinct events arrived, want %d", len(ids), len(keys)*perKey)
		}
		return nil
	})
	d := checkOrder(t, f.rec.Events(), len(keys), perKey)
	mu.Lock()
	defer mu.Unlock()
	if !killedBefore || !killedAfter {
		t.Fatalf("the session was ended before a send: %v, after one: %v", killedBefore, killedAfter)
	}
	// The next session deleted the rows acknowledged before the loss.
	seen := map[string]int{}
	for _, ev := range f.rec.Events() {
		seen[ev.ID]++
	}
	for _, id := range ackedUndeleted {
		if seen[id] != 1 {
			t.Fatalf("event %s was acknowledged before the session ended and arrived %d times", id, seen[id])
		}
	}
	track.check(t)
	t.Logf("session ended twice: 0 lost, %d duplicates", d)
}
