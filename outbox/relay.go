package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
)

// The relay's defaults.
const (
	// DefaultBatchSize is how many rows a relay reads and sends at once
	// (eventbus.MaxBatchSize, the most PublishEncoded takes).
	DefaultBatchSize = eventbus.MaxBatchSize
	// DefaultPollInterval is how long an idle relay waits for a
	// notification before it looks at the table anyway, and how often it
	// tries to take the shards no relay holds.
	DefaultPollInterval = time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait after a
	// failure (brokers or database unreachable); it doubles from the
	// first to the second.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// RelayApplicationName is the application_name of a relay's database
// session (in pg_stat_activity).
const RelayApplicationName = "eventbus-outbox-relay"

// RelayConfig configures a Relay. Every zero field means its default.
type RelayConfig struct {
	// Config names the outbox table.
	Config
	// BatchSize is how many rows are read and sent at once, 1 to
	// eventbus.MaxBatchSize. Default: DefaultBatchSize.
	BatchSize int
	// PollInterval: see DefaultPollInterval.
	PollInterval time.Duration
	// MinBackoff, MaxBackoff: see DefaultMinBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives failures (default: slog.Default()).
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c RelayConfig) WithDefaults() RelayConfig {
	c.Config = c.Config.WithDefaults()
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c RelayConfig) validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > eventbus.MaxBatchSize:
		return fmt.Errorf("%w: outbox: RelayConfig.BatchSize %d: give 1 to %d", eventbus.ErrInvalidConfig, c.BatchSize, eventbus.MaxBatchSize)
	case c.PollInterval < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("%w: outbox: RelayConfig: PollInterval and backoffs must be positive, MaxBackoff ≥ MinBackoff", eventbus.ErrInvalidConfig)
	}
	return nil
}

// Relay sends the committed rows of an outbox table to the brokers and
// deletes them once the brokers acknowledged them. Run several (in several
// processes) for availability: each holds some of the table's Shards, and
// the events of one key are sent by one relay at a time, in the order
// they were written. See the package documentation.
type Relay struct {
	pool      *pgxpool.Pool
	connCfg   *pgx.ConnConfig
	bus       *eventbus.Bus
	cfg       RelayConfig
	table     tableName
	lockKey   int32 // the advisory lock class of the shards
	memberKey int32 // the advisory lock class of the relays' presence

	sent, dead atomic.Int64
	shards     atomic.Int32
}

// NewRelay returns a relay of the outbox of cfg that sends with bus. It
// opens a connection of its own with pool's connection settings (it holds
// session advisory locks and LISTENs on it), and reopens it after a
// failure; pool serves Backlog and Collector.
func NewRelay(pool *pgxpool.Pool, bus *eventbus.Bus, cfg RelayConfig) (*Relay, error) {
	if pool == nil || bus == nil {
		return nil, fmt.Errorf("%w: outbox.NewRelay needs a pool and a bus", eventbus.ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := cfg.tables()
	if err != nil {
		return nil, err
	}
	connCfg := pool.Config().ConnConfig.Copy()
	connCfg.RuntimeParams["application_name"] = RelayApplicationName
	return &Relay{
		pool:      pool,
		connCfg:   connCfg,
		bus:       bus,
		cfg:       cfg,
		table:     t.outbox,
		lockKey:   hashKey(t.outbox.plain()) & 0x7fffffff,
		memberKey: hashKey("members:"+t.outbox.plain()) & 0x7fffffff,
	}, nil
}

// hashKey is the advisory lock class of a table: FNV-1a of its name.
func hashKey(s string) int32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return int32(h)
}

// RelayStats are a relay's counters.
type RelayStats struct {
	// Sent counts the events the brokers acknowledged (and that were
	// deleted from the table).
	Sent int64
	// Dead counts the rows set aside because this bus refuses them for
	// good (ErrInvalidTopic, ErrEventTooLarge, ErrInvalidEvent): they stay
	// in the table with dead_at and last_error set.
	Dead int64
	// Shards is how many shards the relay holds now.
	Shards int
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Sent: r.sent.Load(), Dead: r.dead.Load(), Shards: int(r.shards.Load())}
}

// Run relays until ctx ends, then returns nil. Failures do not end it: an
// unreachable database is reconnected to and unreachable brokers are
// retried, each after a backoff, and the rows wait in the table.
func (r *Relay) Run(ctx context.Context) error {
	backoff := r.cfg.MinBackoff
	for {
		began := time.Now()
		err := r.session(ctx)
		r.shards.Store(0)
		if time.Since(began) > r.cfg.MaxBackoff {
			backoff = r.cfg.MinBackoff // the session worked for a while: a new failure
		}
		if ctx.Err() != nil {
			return nil
		}
		r.cfg.Logger.Warn("outbox relay: database session ended; reconnecting", "table", r.table.plain(), "err", err, "backoff", backoff)
		if !sleep(ctx, jitter(backoff)) {
			return nil
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type row struct {
	id int64
	ev eventbus.EncodedEvent
}

// session runs the relay on one database connection until it fails or ctx
// ends. The shards' advisory locks belong to the connection: closing it
// (or its loss) releases them.
func (r *Relay) session(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, r.connCfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{r.table.channel()}.Sanitize()); err != nil {
		return err
	}
	// Presence: the relays of the table are the sessions that hold a lock
	// of this class (one each, on their backend PID).
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, pg_backend_pid())", r.memberKey); err != nil {
		return err
	}
	// The oldest rows of each held shard (an index range each), then the
	// oldest of those: what is read of a shard is always a prefix of it in
	// id order, and the cost does not grow with the backlog.
	sel := `SELECT o.id, o.event_id, o.topic, o.key, o.value, o.header_keys, o.header_values, o.compression
		FROM unnest($1::int[]) s, LATERAL (SELECT * FROM ` + r.table.sql() + ` t
			WHERE t.shard = s AND t.dead_at IS NULL ORDER BY t.id LIMIT $2) o
		ORDER BY o.id LIMIT $2`
	del := `DELETE FROM ` + r.table.sql() + ` WHERE id = ANY($1)`
	held := []int32{}
	var lastClaim time.Time
	backoff := r.cfg.MinBackoff
	for {
		if time.Since(lastClaim) >= r.cfg.PollInterval {
			// Between batches: nothing of a shard given up is in flight.
			if held, err = r.balance(ctx, conn, held); err != nil {
				return err
			}
			r.shards.Store(int32(len(held)))
			lastClaim = time.Now()
		}
		var rows []row
		if len(held) > 0 {
			rows, err = r.read(ctx, conn, sel, held)
			if err != nil {
				return err
			}
		}
		if len(rows) == 0 {
			if err := r.wait(ctx, conn); err != nil {
				return err
			}
			continue
		}
		sent, sendErr := r.send(ctx, conn, rows)
		if len(sent) > 0 {
			if _, err := conn.Exec(ctx, del, sent); err != nil {
				return err // the sent rows are sent again by whoever holds their shard next
			}
			r.sent.Add(int64(len(sent)))
		}
		if sendErr == nil {
			backoff = r.cfg.MinBackoff
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Logger.Warn("outbox relay: the brokers did not take the events; they wait in the table", "table", r.table.plain(),
			"events", len(rows)-len(sent), "err", sendErr, "backoff", backoff)
		if !sleep(ctx, jitter(backoff)) {
			return ctx.Err()
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

// balance gives up the shards this relay holds beyond its fair share
// (Shards divided by the number of relays of the table, rounded up) and
// takes free shards, in random order, up to it. It returns the shards held.
func (r *Relay) balance(ctx context.Context, conn *pgx.Conn, held []int32) ([]int32, error) {
	var relays int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::int4::oid AND objsubid = 2`, r.memberKey).Scan(&relays); err != nil {
		return held, err
	}
	share := (Shards + max(relays, 1) - 1) / max(relays, 1)
	if len(held) > share {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, s) FROM unnest($2::int[]) s`, r.lockKey, held[share:]); err != nil {
			return held, err
		}
		return r.heldShards(ctx, conn)
	}
	if len(held) == share {
		return held, nil
	}
	// The candidates are materialised first, so that the lock is tried
	// only as the LIMIT pulls rows.
	if _, err := conn.Exec(ctx, `WITH free AS MATERIALIZED (
			SELECT s FROM generate_series(0, $2 - 1) s WHERE NOT (s = ANY($3::int[])) ORDER BY random())
		SELECT s FROM free WHERE pg_try_advisory_lock($1, s) LIMIT $4`, r.lockKey, Shards, held, share-len(held)); err != nil {
		return held, err
	}
	return r.heldShards(ctx, conn)
}

// heldShards returns the shards whose locks this session holds, as
// PostgreSQL sees them.
func (r *Relay) heldShards(ctx context.Context, conn *pgx.Conn) ([]int32, error) {
	rows, err := conn.Query(ctx, `SELECT objid::bigint::int4 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND pid = pg_backend_pid() AND classid = $1::int4::oid AND objsubid = 2 ORDER BY objid`, r.lockKey)
	if err != nil {
		return nil, err
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if held == nil {
		held = []int32{}
	}
	return held, err
}

func (r *Relay) read(ctx context.Context, conn *pgx.Conn, sel string, held []int32) ([]row, error) {
	rows, err := conn.Query(ctx, sel, held, r.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(s pgx.CollectableRow) (row, error) {
		var x row
		var keys []string
		var values [][]byte
		var compression string
		if err := s.Scan(&x.id, &x.ev.ID, &x.ev.Topic, &x.ev.Key, &x.ev.Value, &keys, &values, &compression); err != nil {
			return x, err
		}
		if len(keys) != len(values) {
			return x, fmt.Errorf("outbox row %d has %d header keys and %d values", x.id, len(keys), len(values))
		}
		x.ev.Headers = make([]kgo.RecordHeader, len(keys))
		for i := range keys {
			x.ev.Headers[i] = kgo.RecordHeader{Key: keys[i], Value: values[i]}
		}
		x.ev.Compression = eventbus.Compression(compression)
		return x, nil
	})
}

// send publishes rows and returns the IDs of the rows the brokers
// acknowledged. A row this bus refuses for good is set aside (dead_at).
func (r *Relay) send(ctx context.Context, conn *pgx.Conn, rows []row) ([]int64, error) {
	events := make([]eventbus.EncodedEvent, len(rows))
	for i := range rows {
		events[i] = rows[i].ev
	}
	results, err := r.bus.PublishEncoded(ctx, events)
	if results == nil && err != nil {
		if !permanent(err) {
			return nil, err
		}
		// One of the rows is refused before anything was sent: send them
		// one by one to find it, and set it aside.
		var sent []int64
		for _, x := range rows {
			_, err := r.bus.PublishEncoded(ctx, []eventbus.EncodedEvent{x.ev})
			switch {
			case err == nil:
				sent = append(sent, x.id)
			case permanent(err):
				if _, derr := conn.Exec(ctx, `UPDATE `+r.table.sql()+` SET dead_at = now(), last_error = $2 WHERE id = $1`, x.id, err.Error()); derr != nil {
					return sent, derr
				}
				r.dead.Add(1)
				r.cfg.Logger.Error("outbox relay: an event is refused for good and set aside (dead_at)", "table", r.table.plain(),
					"row", x.id, "event_id", x.ev.ID, "topic", x.ev.Topic, "err", err)
			default:
				return sent, err // keep the order of what follows
			}
		}
		return sent, nil
	}
	sent := make([]int64, 0, len(rows))
	for i, res := range results {
		if res.Err == nil {
			sent = append(sent, rows[i].id)
		}
	}
	return sent, err
}

func permanent(err error) bool {
	return errors.Is(err, eventbus.ErrInvalidTopic) || errors.Is(err, eventbus.ErrEventTooLarge) ||
		errors.Is(err, eventbus.ErrInvalidEvent)
}

// wait returns on a notification of the table's channel or after the poll
// interval.
func (r *Relay) wait(ctx context.Context, conn *pgx.Conn) error {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
	defer cancel()
	_, err := conn.WaitForNotification(wctx)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return nil // the poll interval passed
	}
	return err
}
