package outbox

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus"
)

// Writer writes events into the outbox table in the caller's transaction.
// It is safe for concurrent use.
type Writer struct {
	bus       *eventbus.Bus
	table     tableName
	insert    string
	insertSQL string // for database/sql: the header arrays as literals
}

// NewWriter returns a writer of the outbox of cfg. bus validates and
// encodes the events exactly as bus.Publish would (its topic rules,
// Config.MaxEventBytes and Config.Source); it need not be connected to
// the brokers that the relay later sends to, but it should be configured
// like the relay's bus.
func NewWriter(bus *eventbus.Bus, cfg Config) (*Writer, error) {
	if bus == nil {
		return nil, fmt.Errorf("%w: outbox.NewWriter needs a bus (it validates and encodes the events)", eventbus.ErrInvalidConfig)
	}
	t, err := cfg.tables()
	if err != nil {
		return nil, err
	}
	insert := `WITH ins AS (INSERT INTO ` + t.outbox.sql() +
		` (shard, event_id, topic, key, value, header_keys, header_values, compression)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8))
SELECT pg_notify($9, '')`
	return &Writer{
		bus:       bus,
		table:     t.outbox,
		insert:    insert,
		insertSQL: strings.Replace(insert, "$6, $7, $8", "$6::text[], $7::bytea[], $8", 1),
	}, nil
}

// Publish writes one event of type eventType (its topic) into the outbox
// in tx and returns its ID, chosen now: the relay publishes it with this
// ID if and only if tx commits, in the order of writing among the events
// of its key (WithPartitionKey, else the tenant ID). The event is checked
// as Bus.Publish checks it, and bad input fails with the same sentinels
// (ErrInvalidTopic, ErrTenantRequired, ErrEventTooLarge,
// ErrInvalidEvent) with nothing written. An error from the database
// leaves tx as PostgreSQL leaves it (aborted): roll it back.
func (w *Writer) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any, meta eventbus.PublishMetadata, opts ...eventbus.PublishOption) (string, error) {
	ev, err := w.bus.EncodeEvent(eventType, data, meta, opts...)
	if err != nil {
		return "", err
	}
	keys := make([]string, len(ev.Headers))
	values := make([][]byte, len(ev.Headers))
	for i, h := range ev.Headers {
		keys[i], values[i] = h.Key, h.Value
		if values[i] == nil {
			values[i] = []byte{}
		}
	}
	key := ev.Key
	if key == nil {
		key = []byte{}
	}
	if _, err := tx.Exec(ctx, w.insert, ShardOf(ev.Key), ev.ID, ev.Topic, key, ev.Value, keys, values,
		string(ev.Compression), w.table.channel()); err != nil {
		return "", fmt.Errorf("outbox: write event %q into %s: %w", eventType, w.table.plain(), err)
	}
	return ev.ID, nil
}

// Publish writes data of the type its name carries into the outbox in tx;
// see Writer.Publish.
//
//	id, err := outbox.Publish(ctx, tx, w, catalog.UserCreated, catalog.UserCreatedData{...}, meta)
func Publish[T any](ctx context.Context, tx pgx.Tx, w *Writer, name eventbus.Name[T], data T, meta eventbus.PublishMetadata, opts ...eventbus.PublishOption) (string, error) {
	return w.Publish(ctx, tx, string(name), data, meta, opts...)
}

// ShardOf returns the shard (0 to Shards-1) of a record key: FNV-1a of
// the key, modulo Shards.
func ShardOf(key []byte) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % Shards)
}
