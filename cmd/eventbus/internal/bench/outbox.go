package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// The outbox and inbox phases' sizes.
const (
	// OutboxBacklog is how many committed outbox rows each side of the
	// relay figure drains (QuickOutboxBacklog with Quick).
	OutboxBacklog      = 100_000
	QuickOutboxBacklog = 2_000
	// OutboxTransactions is how many transactions each side of the
	// transaction-cost figure commits (QuickOutboxTransactions with Quick).
	OutboxTransactions      = 3_000
	QuickOutboxTransactions = 200
	// OutboxKeys is how many partition keys the outbox's events have.
	OutboxKeys = 64
	// CommitRate is the rate of the commit-to-handler figure,
	// transactions (one event each) per second.
	CommitRate = 1_000
	// TargetRelayPerSecond and TargetCommitP95Ms are issue 21's targets.
	TargetRelayPerSecond = 20_000
	TargetCommitP95Ms    = 25.0
)

// Outbox is the outbox phase's figures: what writing an event in the
// caller's transaction costs, how fast the relay drains a backlog, and how
// long a committed event takes to reach a handler. Raw is what a service
// would write by hand with pgx and franz-go: the same record (built as the
// other raw sides build theirs) inserted into a plain table, and a loop
// that selects the oldest 100 rows, produces them with ProduceSync and
// deletes them, one batch after the other (no shards, locks, breaker,
// notifications or pipelining).
type Outbox struct {
	// Transactions per side, Backlog rows per relay side, Keys keys.
	Transactions int `json:"transactions"`
	Backlog      int `json:"backlog"`
	Keys         int `json:"keys"`
	// TxRow is a transaction that inserts one business row; TxOurs the same
	// with Writer.Publish of one event; TxRaw the same with a pgx INSERT
	// of the record.
	TxRow  Latency `json:"txRow"`
	TxOurs Latency `json:"txOurs"`
	TxRaw  Latency `json:"txRaw"`
	// Relay is outbox.Relay (defaults) draining Backlog committed rows;
	// RelayRaw the hand-written loop draining as many.
	Relay    Rate    `json:"relay"`
	RelayRaw Rate    `json:"relayRaw"`
	Ratio    float64 `json:"ratio"`
	// CommitToHandler is the time from just before a commit to the
	// handler of a subscriber, one event per transaction at CommitRate/s
	// for the phase's duration, the relay woken by LISTEN/NOTIFY.
	CommitRate      int     `json:"commitRate"`
	CommitToHandler Latency `json:"commitToHandler"`
	CommitSent      int     `json:"commitSent"`
}

// pgBench is a PostgreSQL schema of one run: the outbox and inbox phases'
// tables, dropped at the end.
type pgBench struct {
	pool   *pgxpool.Pool
	schema string
	cfg    outbox.Config
}

// openPostgres connects to Config.OutboxDSN, or to a throwaway cluster,
// and creates a schema for the run with the outbox's tables.
func (r *runner) openPostgres(ctx context.Context) (*pgBench, error) {
	if r.pg != nil {
		return r.pg, nil
	}
	dsn := r.cfg.OutboxDSN
	if dsn == "" {
		r.progress("starting a throwaway PostgreSQL (initdb, postgres; --outbox-dsn names one instead)")
		var err error
		if dsn, err = eventbustest.PostgresServer(); err != nil {
			return nil, fmt.Errorf("bench: outbox phases: %w; or give --outbox-dsn", err)
		}
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: --outbox-dsn: %w", err)
	}
	pcfg.MaxConns = 2 * InboxConcurrency
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("bench: outbox phases: connect to PostgreSQL: %w", err)
	}
	schema := "eventbus_bench_" + randomHex(4)
	pg := &pgBench{pool: pool, schema: schema, cfg: outbox.Config{Table: schema + ".outbox", InboxTable: schema + ".inbox"}}
	if err := outbox.Migrate(cctx, pool, pg.cfg); err != nil {
		pool.Close()
		return nil, fmt.Errorf("bench: outbox phases: %w", err)
	}
	for _, stmt := range []string{
		`CREATE TABLE ` + schema + `.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL)`,
		`CREATE TABLE ` + schema + `.raw_outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			topic text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, header_keys text[] NOT NULL, header_values bytea[] NOT NULL)`,
		`CREATE TABLE ` + schema + `.raw_inbox (group_id text NOT NULL, event_id text NOT NULL, PRIMARY KEY (group_id, event_id))`,
		`CREATE TABLE ` + schema + `.effects (event_id text NOT NULL)`,
	} {
		if _, err := pool.Exec(cctx, stmt); err != nil {
			pool.Close()
			return nil, fmt.Errorf("bench: outbox phases: %w", err)
		}
	}
	r.pg = pg
	return pg, nil
}

// close drops the run's schema.
func (pg *pgBench) close(logWarn func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pg.pool.Exec(ctx, "DROP SCHEMA "+pg.schema+" CASCADE"); err != nil {
		logWarn("bench: drop the outbox phases' schema; drop it by hand", "schema", pg.schema, "err", err)
	}
	pg.pool.Close()
}

func (r *runner) outboxSizes() (transactions, backlog int) {
	transactions, backlog = OutboxTransactions, OutboxBacklog
	if r.cfg.Quick {
		transactions, backlog = QuickOutboxTransactions, QuickOutboxBacklog
	}
	if r.cfg.MaxEvents > 0 {
		transactions, backlog = min(transactions, r.cfg.MaxEvents), min(backlog, r.cfg.MaxEvents)
	}
	return transactions, backlog
}

// outboxKey is event i's partition key.
func outboxKey(i int) string { return fmt.Sprintf("order-%d", i%OutboxKeys) }

// outboxPhase runs the outbox phase.
func (r *runner) outboxPhase(ctx context.Context) (*Outbox, error) {
	pg, err := r.openPostgres(ctx)
	if err != nil {
		return nil, err
	}
	step := r.step(PhaseOutbox)
	o := &Outbox{Keys: OutboxKeys, CommitRate: CommitRate}
	o.Transactions, o.Backlog = r.outboxSizes()
	w, err := outbox.NewWriter(r.bus, pg.cfg)
	if err != nil {
		return nil, err
	}
	// Transaction cost.
	topic := r.topics.name("outbox", "ours")
	rawTopic := r.topics.name("outbox", "raw")
	insertOrder := `INSERT INTO ` + pg.schema + `.orders (customer) VALUES ($1)`
	insertRaw := `INSERT INTO ` + pg.schema + `.raw_outbox (topic, key, value, header_keys, header_values) VALUES ($1, $2, $3, $4, $5)`
	sides := []struct {
		name  string
		lat   *Latency
		event func(ctx context.Context, tx pgx.Tx, i int) error
	}{
		{"row", &o.TxRow, nil},
		{"row+outbox", &o.TxOurs, func(ctx context.Context, tx pgx.Tx, i int) error {
			_, err := w.Publish(ctx, tx, topic, r.events.data(i, 0), r.events.meta(i), eventbus.WithPartitionKey(outboxKey(i)))
			return err
		}},
		{"row+raw insert", &o.TxRaw, func(ctx context.Context, tx pgx.Tx, i int) error {
			rec := r.events.rawRecordOf(rawTopic, i, 0, outboxKey(i))
			keys, values := splitHeaders(rec.Headers)
			_, err := tx.Exec(ctx, insertRaw, rec.Topic, rec.Key, rec.Value, keys, values)
			return err
		}},
	}
	for _, side := range sides {
		r.progress("%s outbox: %d transactions inserting one row, %s", step, o.Transactions, side.name)
		samples := make([]time.Duration, 0, o.Transactions)
		err := r.profiled("outbox-tx-"+side.name, func() error {
			for i := range o.Transactions {
				began := time.Now()
				err := pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, insertOrder, "c-1"); err != nil {
						return err
					}
					if side.event == nil {
						return nil
					}
					return side.event(ctx, tx, i)
				})
				if err != nil {
					return err
				}
				samples = append(samples, time.Since(began))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("outbox, transactions %s: %w", side.name, err)
		}
		*side.lat = summarize(samples)
		r.progress("      %s: p50 %.3f ms, p95 %.3f ms", side.name, side.lat.P50, side.lat.P95)
	}
	// The rows of the transaction-cost figure are the first of the
	// backlogs; fill both up to Backlog.
	r.progress("%s outbox: committing backlogs of %d events (not timed)", step, o.Backlog)
	if err := r.fillOutbox(ctx, pg, o.Backlog-o.Transactions, o.Transactions, func(ctx context.Context, tx pgx.Tx, i int) error {
		return sides[1].event(ctx, tx, i)
	}); err != nil {
		return nil, fmt.Errorf("outbox, backlog: %w", err)
	}
	if err := r.fillOutbox(ctx, pg, o.Backlog-o.Transactions, o.Transactions, func(ctx context.Context, tx pgx.Tx, i int) error {
		return sides[2].event(ctx, tx, i)
	}); err != nil {
		return nil, fmt.Errorf("outbox, raw backlog: %w", err)
	}
	if _, err := pg.pool.Exec(ctx, "ANALYZE "+pg.schema+".outbox, "+pg.schema+".raw_outbox"); err != nil {
		return nil, err
	}
	// Relay throughput, raw first (ours then keeps running for the
	// commit-to-handler figure).
	r.progress("%s outbox: raw relay loop (pgx SELECT 100, kgo ProduceSync, DELETE) draining %d rows", step, o.Backlog)
	err = r.profiled("outbox-relay-raw", func() (err error) {
		o.RelayRaw, err = r.rawRelay(ctx, pg, o.Backlog)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox, raw relay: %w", err)
	}
	r.progress("      raw: %.0f events/s", o.RelayRaw.PerSecond)
	relay, err := outbox.NewRelay(pg.pool, r.bus, outbox.RelayConfig{Config: pg.cfg, Logger: r.cfg.Logger})
	if err != nil {
		return nil, err
	}
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	defer func() {
		stopRelay()
		<-relayDone
	}()
	r.progress("%s outbox: outbox.Relay draining %d rows", step, o.Backlog)
	err = r.profiled("outbox-relay-ours", func() error {
		began := time.Now()
		go func() { relayDone <- relay.Run(rctx) }()
		deadline := time.Now().Add(setupTimeout + time.Duration(o.Backlog)*time.Millisecond)
		for relay.Stats().Sent < int64(o.Backlog) {
			if time.Now().After(deadline) {
				return fmt.Errorf("the relay sent %d of %d events in %s", relay.Stats().Sent, o.Backlog, time.Since(began).Round(time.Second))
			}
			if !sleepCtx(ctx, time.Millisecond) {
				return ctx.Err()
			}
		}
		o.Relay = newRate(int64(o.Backlog), time.Since(began))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox, relay: %w", err)
	}
	o.Ratio = o.Relay.PerSecond / o.RelayRaw.PerSecond
	r.progress("      ours: %.0f events/s (%.2f× raw)", o.Relay.PerSecond, o.Ratio)
	// Commit to handler.
	r.progress("%s outbox: commit to handler at %d transactions/s for %s", step, CommitRate, r.cfg.Duration)
	err = r.profiled("outbox-commit", func() (err error) {
		o.CommitToHandler, o.CommitSent, err = r.commitToHandler(ctx, pg, w)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox, commit to handler: %w", err)
	}
	r.progress("      p50 %.3f ms, p95 %.3f ms (%d of %d arrived)", o.CommitToHandler.P50, o.CommitToHandler.P95, o.CommitToHandler.Count, o.CommitSent)
	return o, nil
}

func splitHeaders(hs []kgo.RecordHeader) ([]string, [][]byte) {
	keys := make([]string, len(hs))
	values := make([][]byte, len(hs))
	for i, h := range hs {
		keys[i], values[i] = h.Key, h.Value
	}
	return keys, values
}

// fillOutbox commits n events, 1,000 per transaction, numbered from first.
func (r *runner) fillOutbox(ctx context.Context, pg *pgBench, n, first int, write func(context.Context, pgx.Tx, int) error) error {
	for done := 0; done < n; {
		err := pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
			for i := 0; i < 1000 && done < n; i, done = i+1, done+1 {
				if err := write(ctx, tx, first+done); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// rawRelay drains n rows of the raw outbox the way a hand-written relay
// would: select the oldest 100, produce them and wait, delete them.
func (r *runner) rawRelay(ctx context.Context, pg *pgBench, n int) (Rate, error) {
	sel := `SELECT id, topic, key, value, header_keys, header_values FROM ` + pg.schema + `.raw_outbox ORDER BY id LIMIT 100`
	del := `DELETE FROM ` + pg.schema + `.raw_outbox WHERE id = ANY($1)`
	began := time.Now()
	sent := 0
	for sent < n {
		rows, err := pg.pool.Query(ctx, sel)
		if err != nil {
			return Rate{}, err
		}
		var ids []int64
		var records []*kgo.Record
		for rows.Next() {
			var id int64
			var rec kgo.Record
			var keys []string
			var values [][]byte
			if err := rows.Scan(&id, &rec.Topic, &rec.Key, &rec.Value, &keys, &values); err != nil {
				rows.Close()
				return Rate{}, err
			}
			for i := range keys {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: keys[i], Value: values[i]})
			}
			ids = append(ids, id)
			records = append(records, &rec)
		}
		if err := rows.Err(); err != nil {
			return Rate{}, err
		}
		if len(records) == 0 {
			return Rate{}, fmt.Errorf("the raw outbox is empty after %d of %d rows", sent, n)
		}
		if err := r.raw.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return Rate{}, err
		}
		if _, err := pg.pool.Exec(ctx, del, ids); err != nil {
			return Rate{}, err
		}
		sent += len(ids)
	}
	return newRate(int64(sent), time.Since(began)), nil
}

// commitToHandler commits one event per transaction at CommitRate/s for
// the phase's duration and measures from just before each commit to the
// handler of a subscriber in a group of its own.
func (r *runner) commitToHandler(ctx context.Context, pg *pgBench, w *outbox.Writer) (Latency, int, error) {
	topic := r.topics.name("outbox", "e2e")
	rec := newRecorder(CommitRate * int(r.cfg.Duration/time.Second+1))
	var bad atomic.Int64
	warmed := make(chan struct{})
	var warmOnce sync.Once
	// From the beginning: the warm-up event cannot pass the group by.
	stop, err := r.subscribeWith(eventbus.Delivery{FromBeginning: true})(ctx, topic, func(_ context.Context, ev eventbus.RawEvent) error {
		var p payload
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			bad.Add(1)
			return nil
		}
		if p.SentAt < 0 { // the warm-up event
			warmOnce.Do(func() { close(warmed) })
			return nil
		}
		rec.add(time.Duration(r.events.now() - p.SentAt))
		return nil
	})
	if err != nil {
		return Latency{}, 0, err
	}
	defer stop(context.Background())
	send := func(i int, at int64) error {
		return pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
			_, err := w.Publish(ctx, tx, topic, r.events.data(i, at), r.events.meta(i))
			return err
		})
	}
	// Warm-up: the group has joined and the relay runs when one event
	// arrived.
	if err := send(0, -1); err != nil {
		return Latency{}, 0, err
	}
	select {
	case <-warmed:
	case <-time.After(setupTimeout):
		return Latency{}, 0, fmt.Errorf("the warm-up event did not arrive within %s", setupTimeout)
	case <-ctx.Done():
		return Latency{}, 0, ctx.Err()
	}
	var failure firstError
	sent := r.pace(ctx, CommitRate, func(i int) {
		// SentAt is taken just before the commit; the commit is part of
		// what is measured.
		if err := send(i, r.events.now()); err != nil {
			failure.set(err)
		}
	})
	if err := failure.get(); err != nil {
		return Latency{}, sent, err
	}
	wctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	rec.waitFor(wctx, sent)
	if n := bad.Load(); n > 0 {
		return Latency{}, sent, fmt.Errorf("%d events arrived undecodable", n)
	}
	return summarize(rec.take()), sent, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
