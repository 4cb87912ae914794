package outbox

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/plexica/eventbus"
)

// PublishSQL is Publish for a database/sql transaction (any PostgreSQL
// driver: the headers travel as array literals, not driver-specific
// arrays). The event is checked and written as Publish does.
func (w *Writer) PublishSQL(ctx context.Context, tx *sql.Tx, eventType string, data any, meta eventbus.PublishMetadata, opts ...eventbus.PublishOption) (string, error) {
	if tx == nil {
		return "", fmt.Errorf("%w: outbox: PublishSQL needs a transaction", eventbus.ErrInvalidConfig)
	}
	ev, err := w.bus.EncodeEvent(eventType, data, meta, opts...)
	if err != nil {
		return "", err
	}
	keys := make([]string, len(ev.Headers))
	values := make([]string, len(ev.Headers))
	for i, h := range ev.Headers {
		keys[i] = arrayElem(h.Key)
		values[i] = `"\\x` + hex.EncodeToString(h.Value) + `"`
	}
	key := ev.Key
	if key == nil {
		key = []byte{}
	}
	if _, err := tx.ExecContext(ctx, w.insertSQL, ShardOf(ev.Key), ev.ID, ev.Topic, key, ev.Value,
		"{"+strings.Join(keys, ",")+"}", "{"+strings.Join(values, ",")+"}", string(ev.Compression), w.table.channel()); err != nil {
		return "", fmt.Errorf("outbox: write event %q into %s: %w", eventType, w.table.plain(), err)
	}
	return ev.ID, nil
}

// PublishSQL writes data of the type its name carries into the outbox in
// a database/sql transaction; see Writer.PublishSQL.
func PublishSQL[T any](ctx context.Context, tx *sql.Tx, w *Writer, name eventbus.Name[T], data T, meta eventbus.PublishMetadata, opts ...eventbus.PublishOption) (string, error) {
	return w.PublishSQL(ctx, tx, string(name), data, meta, opts...)
}

// arrayElem quotes s as an element of a PostgreSQL array literal.
func arrayElem(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
