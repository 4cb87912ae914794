package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/outbox"
)

// The inbox phase's settings.
const (
	// InboxEvents is the backlog each side of the inbox phase handles
	// (QuickInboxEvents with Quick), unless the phase's duration ends
	// first.
	InboxEvents      = 4_000
	QuickInboxEvents = 200
	// InboxConcurrency is every side's Delivery.MaxConcurrency.
	InboxConcurrency = 16
	// InboxHandlerTime is the handler's own work per event, besides its
	// insert.
	InboxHandlerTime = 10 * time.Millisecond
)

// Inbox is the inbox phase's figures: a subscription whose handler takes
// 10 ms and inserts one effect row per event, handled through
// outbox.Inbox (ours: the effect and the inbox record in one
// transaction), by hand (raw: a pgx transaction that inserts the record
// with ON CONFLICT DO NOTHING and runs the handler when it was new), and
// with no deduplication at all (plain). Same subscription, same
// concurrency.
type Inbox struct {
	Events      int     `json:"events"`
	Concurrency int     `json:"concurrency"`
	HandlerMs   float64 `json:"handlerMs"`
	Ours        Rate    `json:"ours"`
	Raw         Rate    `json:"raw"`
	Plain       Rate    `json:"plain"`
	// Ratio is ours/raw.
	Ratio float64 `json:"ratio"`
	// DuplicateEffects counts effect rows beyond one per event, over the
	// ours and raw sides (0 unless something is broken).
	DuplicateEffects int `json:"duplicateEffects"`
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// inboxPhase runs the inbox phase.
func (r *runner) inboxPhase(ctx context.Context) (*Inbox, error) {
	pg, err := r.openPostgres(ctx)
	if err != nil {
		return nil, err
	}
	step := r.step(PhaseInbox)
	in := &Inbox{Events: InboxEvents, Concurrency: InboxConcurrency, HandlerMs: ms(InboxHandlerTime)}
	if r.cfg.Quick {
		in.Events = QuickInboxEvents
	}
	if r.cfg.MaxEvents > 0 {
		in.Events = min(in.Events, r.cfg.MaxEvents)
	}
	inbox, err := outbox.NewInbox(pg.pool, outbox.InboxConfig{Config: pg.cfg})
	if err != nil {
		return nil, err
	}
	topic := r.topics.name("inbox", "all")
	r.progress("%s inbox: publishing a backlog of %d events over %d tenants (raw producer)", step, in.Events, SlowKeys)
	if _, err := r.fillBacklog(ctx, topic, in.Events); err != nil {
		return nil, fmt.Errorf("inbox: backlog: %w", err)
	}
	insertEffect := `INSERT INTO ` + pg.schema + `.effects (event_id) VALUES ($1)`
	effect := func(ctx context.Context, db execer, id string) error {
		time.Sleep(InboxHandlerTime) // the handler's own work
		_, err := db.Exec(ctx, insertEffect, id)
		return err
	}
	insertRecord := `INSERT INTO ` + pg.schema + `.raw_inbox (group_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	sides := []struct {
		name    string
		rate    *Rate
		handler func(group string) eventbus.Handler
	}{
		{"plain", &in.Plain, func(string) eventbus.Handler {
			return func(ctx context.Context, ev eventbus.RawEvent) error { return effect(ctx, pg.pool, ev.ID) }
		}},
		{"raw", &in.Raw, func(group string) eventbus.Handler {
			return func(ctx context.Context, ev eventbus.RawEvent) error {
				return pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
					tag, err := tx.Exec(ctx, insertRecord, group, ev.ID)
					if err != nil || tag.RowsAffected() == 0 {
						return err
					}
					return effect(ctx, tx, ev.ID)
				})
			}
		}},
		{"ours", &in.Ours, func(group string) eventbus.Handler {
			return inbox.Handler(group, func(ctx context.Context, tx pgx.Tx, ev eventbus.RawEvent) error {
				return effect(ctx, tx, ev.ID)
			})
		}},
	}
	for _, side := range sides {
		r.progress("%s inbox (%s handler, %d at a time), %s: up to %s", step, InboxHandlerTime, InboxConcurrency, side.name, r.cfg.Duration)
		if _, err := pg.pool.Exec(ctx, "TRUNCATE "+pg.schema+".effects"); err != nil {
			return nil, err
		}
		err := r.profiled("inbox-"+side.name, func() (err error) {
			*side.rate, err = r.runInboxSide(ctx, topic, in.Events, side.handler)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("inbox, %s: %w", side.name, err)
		}
		if side.name != "plain" {
			var extra int
			if err := pg.pool.QueryRow(ctx, "SELECT count(*) - count(DISTINCT event_id) FROM "+pg.schema+".effects").Scan(&extra); err != nil {
				return nil, err
			}
			in.DuplicateEffects += extra
		}
		r.progress("      %s: %.0f events/s (%d events in %.2fs)", side.name, side.rate.PerSecond, side.rate.Events, side.rate.Seconds)
	}
	in.Ratio = in.Ours.PerSecond / in.Raw.PerSecond
	return in, nil
}

// runInboxSide subscribes handler in a new group from the beginning of
// topic and counts from its first call until n events were handled or the
// phase's duration passed.
func (r *runner) runInboxSide(ctx context.Context, topic string, n int, handler func(group string) eventbus.Handler) (Rate, error) {
	group := "bench-inbox-" + randomHex(4)
	var (
		mu      sync.Mutex
		first   time.Time
		handled int
		started = make(chan struct{})
		done    = make(chan time.Time, 1)
	)
	h := handler(group)
	id, err := eventbus.Subscribe(ctx, r.bus, eventbus.Name[json.RawMessage](topic), func(ctx context.Context, ev eventbus.RawEvent) error {
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
			close(started)
		}
		mu.Unlock()
		if err := h(ctx, ev); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if handled++; handled == n {
			done <- time.Now()
		}
		return nil
	}, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true, MaxConcurrency: InboxConcurrency}))
	if err != nil {
		return Rate{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.bus.Unsubscribe(sctx, id)
	}()
	select {
	case <-started:
	case <-time.After(setupTimeout):
		return Rate{}, fmt.Errorf("no event arrived within %s", setupTimeout)
	case <-ctx.Done():
		return Rate{}, ctx.Err()
	}
	var end time.Time
	select {
	case end = <-done:
	case <-time.After(r.cfg.Duration):
		end = time.Now()
	case <-ctx.Done():
		return Rate{}, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return newRate(int64(min(handled, n)), end.Sub(first)), nil
}
