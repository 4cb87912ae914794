package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
)

// The inbox's defaults.
const (
	// DefaultRetention is how long an inbox remembers that a group handled
	// an event.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultCleanupInterval is how often Inbox.Run deletes the records
	// older than the retention.
	DefaultCleanupInterval = 10 * time.Minute
)

// InboxConfig configures an Inbox. Every zero field means its default.
type InboxConfig struct {
	// Config names the inbox table.
	Config
	// Retention is how long the record of a handled event is kept
	// (default DefaultRetention). A redelivery older than this is handled
	// again: keep it longer than the longest redelivery you expect (the
	// topic's retention, if consumers may be reset to the start; the dead
	// letter queue's retry window).
	Retention time.Duration
	// CleanupInterval is how often Run deletes expired records (default
	// DefaultCleanupInterval).
	CleanupInterval time.Duration
	// Logger receives cleanup failures (default: slog.Default()).
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c InboxConfig) WithDefaults() InboxConfig {
	c.Config = c.Config.WithDefaults()
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultCleanupInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Inbox runs handlers' database work exactly once per (group, event ID):
// the work and the record that the group handled the event commit in one
// transaction, and only when the handler succeeds.
type Inbox struct {
	pool   *pgxpool.Pool
	cfg    InboxConfig
	table  tableName
	record string
}

// NewInbox returns the inbox of cfg on pool.
func NewInbox(pool *pgxpool.Pool, cfg InboxConfig) (*Inbox, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: outbox.NewInbox needs a pool", eventbus.ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if cfg.Retention < 0 || cfg.CleanupInterval < 0 {
		return nil, fmt.Errorf("%w: outbox: InboxConfig.Retention and CleanupInterval must be positive", eventbus.ErrInvalidConfig)
	}
	t, err := cfg.tables()
	if err != nil {
		return nil, err
	}
	return &Inbox{
		pool: pool, cfg: cfg, table: t.inbox,
		record: `INSERT INTO ` + t.inbox.sql() + ` (group_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
	}, nil
}

// TxHandler does a handler's database work in tx.
type TxHandler[T any] func(ctx context.Context, tx pgx.Tx, ev eventbus.Event[T]) error

// Handler returns an eventbus.Handler that runs fn exactly once per event
// for group (use the subscription's group): it begins a transaction,
// records (group, event ID) in the inbox, runs fn in it and commits. When
// the record exists already (a redelivery, or a dead letter queue retry
// of an event that was handled), fn is not run and the event is
// acknowledged. When fn fails (or the commit does) the transaction rolls
// back, leaving no effect and no record, and the error goes to the
// subscription's failure policy (retries, dead letter queue) like any
// handler's. Two deliveries of one event at once are serialised by the
// record's primary key: the second waits for the first to commit or roll
// back.
//
// Only fn's work in tx is exactly-once; anything else it does (a mail, a
// call) happens again when the transaction rolls back after it.
//
// Each running handler holds one of the pool's connections for its
// transaction: size the pool (pgxpool's MaxConns) for the subscription's
// MaxConcurrency, or handlers wait for connections.
func (in *Inbox) Handler(group string, fn TxHandler[json.RawMessage]) eventbus.Handler {
	return Handle(in, group, fn)
}

// Handle is Inbox.Handler for typed events, to pass to eventbus.Subscribe:
//
//	eventbus.Subscribe(ctx, bus, catalog.UserCreated,
//		outbox.Handle(inbox, "mailer", func(ctx context.Context, tx pgx.Tx, ev eventbus.Event[catalog.UserCreatedData]) error {
//			_, err := tx.Exec(ctx, "INSERT INTO welcome_mails (user_id) VALUES ($1)", ev.Data.UserID)
//			return err
//		}), eventbus.InGroup("mailer"))
func Handle[T any](in *Inbox, group string, fn TxHandler[T]) func(context.Context, eventbus.Event[T]) error {
	return func(ctx context.Context, ev eventbus.Event[T]) error {
		_, err := in.Do(ctx, group, ev.ID, func(tx pgx.Tx) error { return fn(ctx, tx, ev) })
		return err
	}
}

// Do runs fn once for (group, eventID): in one transaction it records the
// pair and runs fn, committing both when fn succeeds. It returns false
// and does not run fn when the pair was recorded already. Handler and
// Handle are Do for subscriptions; call it directly to deduplicate other
// work by an ID.
func (in *Inbox) Do(ctx context.Context, group, eventID string, fn func(pgx.Tx) error) (ran bool, err error) {
	if group == "" || eventID == "" {
		return false, fmt.Errorf("%w: outbox: the inbox needs a group and an event ID (got %q, %q)", eventbus.ErrInvalidConfig, group, eventID)
	}
	err = pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, in.record, group, eventID)
		if err != nil {
			return fmt.Errorf("outbox: inbox %s: record (%s, %s): %w", in.table.plain(), group, eventID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // handled before: commit nothing
		}
		ran = true
		return fn(tx)
	})
	if err != nil {
		return false, err
	}
	return ran, nil
}

// Cleanup deletes the records older than the retention and returns how
// many it deleted.
func (in *Inbox) Cleanup(ctx context.Context) (int64, error) {
	tag, err := in.pool.Exec(ctx, `DELETE FROM `+in.table.sql()+` WHERE handled_at < now() - $1::interval`, in.cfg.Retention)
	if err != nil {
		return 0, fmt.Errorf("outbox: inbox %s: cleanup: %w", in.table.plain(), err)
	}
	return tag.RowsAffected(), nil
}

// Run deletes expired records every CleanupInterval until ctx ends, then
// returns nil. A failed cleanup is logged and tried again at the next
// interval.
func (in *Inbox) Run(ctx context.Context) error {
	t := time.NewTicker(in.cfg.CleanupInterval)
	defer t.Stop()
	for {
		if _, err := in.Cleanup(ctx); err != nil && ctx.Err() == nil {
			in.cfg.Logger.Warn("outbox: inbox cleanup failed; trying again later", "table", in.table.plain(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
