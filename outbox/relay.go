package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
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
	// DefaultMaxInFlight is how many batches a relay has on their way to
	// the brokers at once.
	DefaultMaxInFlight = 4
)

// vacuumRows is how many rows a relay deletes before it vacuums the table.
const vacuumRows = 20_000

// stopWriteTimeout bounds the deletes of a relay that stops.
const stopWriteTimeout = 5 * time.Second

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
	// MaxInFlight is how many batches are sent at once, 1 to Shards: the
	// shards are divided among that many lanes (shard modulo MaxInFlight),
	// and a round sends at most one batch per lane, so the events of a key
	// are still sent one batch after the other. Default:
	// DefaultMaxInFlight.
	MaxInFlight int
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
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
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
	case c.MaxInFlight < 1 || c.MaxInFlight > Shards:
		return fmt.Errorf("%w: outbox: RelayConfig.MaxInFlight %d: give 1 to %d", eventbus.ErrInvalidConfig, c.MaxInFlight, Shards)
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

	// Test hooks (export_test.go): beforeSend runs before a batch is
	// sent, with its event IDs, and fails the send when it returns an
	// error; afterSend runs once the brokers answered, with the batch's
	// event IDs and those acknowledged, before their rows are deleted.
	beforeSend func(ids []string) error
	afterSend  func(ids, acked []string)

	// vacuumEvery is how many deleted rows start a VACUUM of the table
	// (vacuumRows); deletedSinceVacuum counts them (Run's goroutine only).
	vacuumEvery        int
	deletedSinceVacuum int
	vacuuming          atomic.Bool
	vacuums            atomic.Int64
	vacuumFailed       sync.Once

	// unwritten is what a session that ended had not yet written: the
	// rows acknowledged (to delete) and refused for good (to set aside).
	// Only the goroutine of Run uses it.
	unwritten struct {
		toDelete []int64
		toBury   []deadRow
	}
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
	// The relay's reads walk an index in id order and stop at the LIMIT;
	// without these, stale statistics (a table just filled) make the
	// planner collect and sort a whole shard for every batch, or start
	// parallel workers (some 100 ms) to walk the index.
	connCfg.RuntimeParams["enable_bitmapscan"] = "off"
	connCfg.RuntimeParams["enable_sort"] = "off"
	connCfg.RuntimeParams["max_parallel_workers_per_gather"] = "0"
	return &Relay{
		pool:        pool,
		connCfg:     connCfg,
		bus:         bus,
		cfg:         cfg,
		table:       t.outbox,
		lockKey:     hashKey(t.outbox.plain()) & 0x7fffffff,
		memberKey:   hashKey("members:"+t.outbox.plain()) & 0x7fffffff,
		vacuumEvery: vacuumRows,
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
	id    int64
	shard int32
	ev    eventbus.EncodedEvent
}

// A batch is what one lane sends at once, and what came of it.
type batch struct {
	lane int
	rows []row
	// Set by the lane when the send returns:
	sent []int64   // acknowledged: to delete
	dead []deadRow // refused for good: to set aside
	err  error     // why the rest was not sent (nil: all sent or dead)
}

type deadRow struct {
	row
	err error
}

// session runs the relay on one database connection until it fails or ctx
// ends. The shards' advisory locks belong to the connection: closing it
// (or its loss) releases them.
//
// The work is pipelined in rounds. The held shards are divided among
// MaxInFlight lanes (shard modulo MaxInFlight); a round sends at most one
// batch per lane, so a shard, hence a key, has at most one batch in
// flight. While a round is in flight this goroutine, the only user of the
// connection, deletes what the brokers acknowledged and reads the next
// round (the oldest rows not in flight) in one round trip: DELETE ...
// WHERE id = ANY($1), then the SELECT. The next round starts once the
// whole round is back and acknowledged; after a failure it is dropped and
// read again after the backoff, so no batch of a key overtakes one that
// failed.
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
	p := &pipeline{r: r, conn: conn, held: []int32{}, busy: make([]bool, r.cfg.MaxInFlight),
		done: make(chan *batch, r.cfg.MaxInFlight), flying: map[*batch]bool{}, toDelete: r.unwritten.toDelete, toBury: r.unwritten.toBury}
	// Lanes still sending when the session ends finish before it returns;
	// what the brokers acknowledged (or refused for good) and is not yet
	// written is written by the next session, first thing.
	defer func() {
		p.drain()
		if ctx.Err() != nil && !conn.IsClosed() { // stopping: write them now
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopWriteTimeout)
			_ = p.flush(wctx) // on failure they are sent again by the next relay
			cancel()
		}
		r.unwritten.toDelete, r.unwritten.toBury = p.toDelete, p.toBury
	}()
	return p.run(ctx)
}

// pipeline is one session's state; only the session's goroutine uses it,
// the lanes' goroutines hand their batches back on done.
type pipeline struct {
	r      *Relay
	conn   *pgx.Conn
	held   []int32
	busy   []bool // lane has a batch in flight
	n      int    // lanes busy
	flying map[*batch]bool
	done   chan *batch

	toDelete []int64
	toBury   []deadRow
	sendErr  error // the first failure since the last backoff
}

// sel reads the oldest rows of some shards that are not in flight ($3),
// in id order: what is read of a shard follows what is in flight of it,
// and nothing is skipped (no cursor). The
// relay's connection runs without bitmap scans and sorts (RuntimeParams),
// so that PostgreSQL walks the primary key, whatever its statistics say,
// and stops after the LIMIT.
func (r *Relay) sel() string {
	return `SELECT id, shard, event_id, topic, key, value, header_keys, header_values, compression
		FROM ` + r.table.sql() + ` WHERE shard = ANY($1::int[]) AND dead_at IS NULL AND NOT (id = ANY($3::bigint[])) ORDER BY id LIMIT $2`
}

func (p *pipeline) run(ctx context.Context) error {
	r := p.r
	var lastClaim time.Time
	backoff := r.cfg.MinBackoff
	var next []*batch // read ahead: the next round, started once this one is back
	for {
		claimDue := time.Since(lastClaim) >= r.cfg.PollInterval
		if claimDue && p.n == 0 {
			// Nothing is in flight: the shards given up have nothing of
			// theirs on the way. What was read ahead is read again.
			next = nil
			if err := p.flush(ctx); err != nil {
				return err
			}
			var err error
			if p.held, err = r.balance(ctx, p.conn, p.held); err != nil {
				return err
			}
			r.shards.Store(int32(len(p.held)))
			lastClaim, claimDue = time.Now(), false
		}
		// A round starts only when the previous one is back, all of it
		// acknowledged: after a failure what was read ahead is dropped,
		// and the failed rows are read again, first, after the backoff.
		if p.n == 0 && p.sendErr == nil {
			for _, b := range next {
				p.start(ctx, b)
			}
			next = nil
		}
		// While the round is in flight: delete what was acknowledged and
		// read the next round.
		if p.sendErr == nil && !claimDue {
			var err error
			if next, err = p.exchange(ctx); err != nil {
				return err
			}
		} else if err := p.flush(ctx); err != nil {
			return err
		}
		switch {
		case p.n > 0:
			// Wait for the whole round.
			for p.n > 0 {
				select {
				case b := <-p.done:
					p.finish(b)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		case p.sendErr != nil:
			next = nil
			if err := p.flush(ctx); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.cfg.Logger.Warn("outbox relay: the brokers did not take the events; they wait in the table", "table", r.table.plain(),
				"err", p.sendErr, "backoff", backoff)
			p.sendErr = nil
			if !sleep(ctx, jitter(backoff)) {
				return ctx.Err()
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
		case len(next) == 0 && !claimDue:
			backoff = r.cfg.MinBackoff
			if err := r.wait(ctx, p.conn); err != nil {
				return err
			}
		default:
			backoff = r.cfg.MinBackoff
		}
	}
}

// exchange is one round trip: it deletes the rows acknowledged so far,
// sets aside the rows refused for good, and reads the next round: the
// oldest rows of the held shards that are not in flight, at most
// BatchSize for each lane (a prefix of each of its shards once the rows in
// flight are sent).
func (p *pipeline) exchange(ctx context.Context) ([]*batch, error) {
	r := p.r
	lanes := len(p.busy)
	if len(p.held) == 0 {
		return nil, p.flush(ctx)
	}
	var qb pgx.Batch
	deleted := p.queueWrites(&qb)
	var rows []row
	qb.Queue(r.sel(), p.held, r.cfg.BatchSize*lanes, p.inFlight()).Query(func(rs pgx.Rows) error {
		var err error
		rows, err = pgx.AppendRows(rows, rs, scanRow)
		return err
	})
	if err := p.conn.SendBatch(ctx, &qb).Close(); err != nil {
		return nil, err
	}
	p.wrote(deleted)
	byLane := map[int]*batch{}
	var out []*batch
	for _, x := range rows {
		lane := int(x.shard) % lanes
		b := byLane[lane]
		if b == nil {
			b = &batch{lane: lane}
			byLane[lane] = b
			out = append(out, b)
		}
		if len(b.rows) < r.cfg.BatchSize {
			b.rows = append(b.rows, x) // past it: a later round reads them again
		}
	}
	return out, nil
}

// inFlight returns the IDs of the rows on their way to the brokers.
func (p *pipeline) inFlight() []int64 {
	ids := []int64{}
	for b := range p.flying {
		for _, x := range b.rows {
			ids = append(ids, x.id)
		}
	}
	return ids
}

// queueWrites queues the deletes and set-asides due and returns how many
// rows were deleted by them.
func (p *pipeline) queueWrites(qb *pgx.Batch) int {
	r := p.r
	if len(p.toDelete) > 0 {
		qb.Queue(`DELETE FROM `+r.table.sql()+` WHERE id = ANY($1)`, p.toDelete)
	}
	for _, d := range p.toBury {
		qb.Queue(`UPDATE `+r.table.sql()+` SET dead_at = now(), last_error = $2 WHERE id = $1`, d.id, d.err.Error())
	}
	return len(p.toDelete)
}

// wrote counts what queueWrites queued, once it committed.
func (p *pipeline) wrote(deleted int) {
	r := p.r
	r.sent.Add(int64(deleted))
	r.deletedSinceVacuum += deleted
	if r.deletedSinceVacuum >= r.vacuumEvery && r.vacuuming.CompareAndSwap(false, true) {
		r.deletedSinceVacuum = 0
		go r.vacuum()
	}
	for _, d := range p.toBury {
		r.dead.Add(1)
		r.cfg.Logger.Error("outbox relay: an event is refused for good and set aside (dead_at)", "table", r.table.plain(),
			"row", d.id, "event_id", d.ev.ID, "topic", d.ev.Topic, "err", d.err)
	}
	p.toDelete, p.toBury = p.toDelete[:0], p.toBury[:0]
}

// vacuum vacuums the outbox table, on a connection of the pool: the rows
// the relay deletes leave their index entries behind until then, and every
// read walks over them (autovacuum comes at most once a minute). A failure
// (the relay's user does not own the table) is logged once.
func (r *Relay) vacuum() {
	defer r.vacuuming.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.pool.Exec(ctx, "VACUUM "+r.table.sql()); err != nil {
		r.vacuumFailed.Do(func() {
			r.cfg.Logger.Warn("outbox relay: cannot vacuum the outbox table; autovacuum has to keep it lean", "table", r.table.plain(), "err", err)
		})
		return
	}
	r.vacuums.Add(1)
}

// flush writes the deletes and set-asides due, if any.
func (p *pipeline) flush(ctx context.Context) error {
	if len(p.toDelete) == 0 && len(p.toBury) == 0 {
		return nil
	}
	var qb pgx.Batch
	deleted := p.queueWrites(&qb)
	if err := p.conn.SendBatch(ctx, &qb).Close(); err != nil {
		return err // the sent rows are sent again by whoever holds their shard next
	}
	p.wrote(deleted)
	return nil
}

// start sends b on its lane.
func (p *pipeline) start(ctx context.Context, b *batch) {
	p.busy[b.lane] = true
	p.n++
	p.flying[b] = true
	go func() {
		b.sent, b.dead, b.err = p.r.send(ctx, b.rows)
		if h := p.r.afterSend; h != nil {
			var ids, acked []string
			for _, x := range b.rows {
				ids = append(ids, x.ev.ID)
				if slices.Contains(b.sent, x.id) {
					acked = append(acked, x.ev.ID)
				}
			}
			h(ids, acked)
		}
		p.done <- b
	}()
}

// finish takes back a lane's batch: what was acknowledged is deleted at
// the next round trip, and a failure stops the lanes for a backoff.
func (p *pipeline) finish(b *batch) {
	p.busy[b.lane] = false
	p.n--
	delete(p.flying, b)
	p.toDelete = append(p.toDelete, b.sent...)
	p.toBury = append(p.toBury, b.dead...)
	if b.err != nil && p.sendErr == nil {
		p.sendErr = b.err
	}
}

// drain waits for the lanes still sending and takes their outcomes back.
func (p *pipeline) drain() {
	for p.n > 0 {
		p.finish(<-p.done)
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

func scanRow(s pgx.CollectableRow) (row, error) {
	var x row
	var keys []string
	var values [][]byte
	var compression string
	if err := s.Scan(&x.id, &x.shard, &x.ev.ID, &x.ev.Topic, &x.ev.Key, &x.ev.Value, &keys, &values, &compression); err != nil {
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
}

// send publishes rows and returns the IDs of the rows the brokers
// acknowledged and the rows this bus refuses for good; err says why the
// others were not sent.
func (r *Relay) send(ctx context.Context, rows []row) (sent []int64, dead []deadRow, err error) {
	if h := r.beforeSend; h != nil {
		ids := make([]string, len(rows))
		for i := range rows {
			ids[i] = rows[i].ev.ID
		}
		if err := h(ids); err != nil {
			return nil, nil, err
		}
	}
	events := make([]eventbus.EncodedEvent, len(rows))
	for i := range rows {
		events[i] = rows[i].ev
	}
	results, err := r.bus.PublishEncoded(ctx, events)
	if results == nil && err != nil {
		if !permanent(err) {
			return nil, nil, err
		}
		// One of the rows is refused before anything was sent: send them
		// one by one to find it, and set it aside.
		for _, x := range rows {
			_, err := r.bus.PublishEncoded(ctx, []eventbus.EncodedEvent{x.ev})
			switch {
			case err == nil:
				sent = append(sent, x.id)
			case permanent(err):
				dead = append(dead, deadRow{x, err})
			default:
				return sent, dead, err // keep the order of what follows
			}
		}
		return sent, dead, nil
	}
	sent = make([]int64, 0, len(rows))
	for i, res := range results {
		if res.Err == nil {
			sent = append(sent, rows[i].id)
		}
	}
	return sent, nil, err
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
