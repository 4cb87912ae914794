package outbox

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus"
)

// The default table names (in the connection's search_path, normally the
// public schema).
const (
	DefaultTable      = "eventbus_outbox"
	DefaultInboxTable = "eventbus_inbox"
)

// Shards is the number of shards the outbox's rows are divided into by the
// hash of their key (the partition key, else the tenant ID). A relay sends
// only the rows of the shards it holds (a PostgreSQL advisory lock each),
// so the events of one key are sent by one relay at a time, in order.
const Shards = 32

// Config names the tables. Writers, relays, inboxes and Migrate of one
// outbox use the same Config.
type Config struct {
	// Table is the outbox table, "table" or "schema.table" (letters,
	// digits and underscores; at most 50 characters each). Default:
	// DefaultTable.
	Table string
	// InboxTable is the inbox table, named as Table. Default:
	// DefaultInboxTable.
	InboxTable string
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.InboxTable == "" {
		c.InboxTable = DefaultInboxTable
	}
	return c
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,49}$`)

// tableName is a checked, possibly schema-qualified table name.
type tableName struct {
	schema, name string
}

func parseTable(what, s string) (tableName, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return tableName{}, fmt.Errorf("%w: outbox: %s %q: give \"table\" or \"schema.table\"", eventbus.ErrInvalidConfig, what, s)
	}
	for _, p := range parts {
		if !identRE.MatchString(p) {
			return tableName{}, fmt.Errorf("%w: outbox: %s %q: names are letters, digits and underscores (at most 50), not starting with a digit",
				eventbus.ErrInvalidConfig, what, s)
		}
	}
	if len(parts) == 2 {
		return tableName{schema: parts[0], name: parts[1]}, nil
	}
	return tableName{name: parts[0]}, nil
}

// sql is the table's quoted name for SQL text.
func (t tableName) sql() string {
	if t.schema == "" {
		return pgx.Identifier{t.name}.Sanitize()
	}
	return pgx.Identifier{t.schema, t.name}.Sanitize()
}

// plain is the table's name as written ("schema.table").
func (t tableName) plain() string {
	if t.schema == "" {
		return t.name
	}
	return t.schema + "." + t.name
}

// suffixed is a quoted name beside the table (for an index).
func (t tableName) suffixed(suffix string) string {
	return pgx.Identifier{t.name + suffix}.Sanitize()
}

// channel is the LISTEN/NOTIFY channel of an outbox table: its name, or
// a hash of it where the name would pass PostgreSQL's 63-byte limit.
func (t tableName) channel() string {
	c := "eventbus_outbox:" + t.plain()
	if len(c) > 63 {
		c = fmt.Sprintf("eventbus_outbox:%08x", uint32(hashKey(t.plain())))
	}
	return c
}

// Validate checks the table names (after WithDefaults); it fails with
// eventbus.ErrInvalidConfig.
func (c Config) Validate() error {
	_, err := c.tables()
	return err
}

type tables struct {
	outbox, inbox tableName
}

func (c Config) tables() (tables, error) {
	c = c.WithDefaults()
	o, err := parseTable("Table", c.Table)
	if err != nil {
		return tables{}, err
	}
	i, err := parseTable("InboxTable", c.InboxTable)
	if err != nil {
		return tables{}, err
	}
	return tables{outbox: o, inbox: i}, nil
}

// Beginner starts transactions: a *pgxpool.Pool, *pgx.Conn or pgx.Tx (a
// savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migrate creates the outbox and inbox tables of cfg (and their schema
// when the names are qualified) if they do not exist, in one transaction.
// It is idempotent and safe to run from several processes at once (it
// holds an advisory transaction lock); run it at startup, or with
// `eventbus outbox migrate`. db must allow CREATE in the schema.
func Migrate(ctx context.Context, db Beginner, cfg Config) error {
	t, err := cfg.tables()
	if err != nil {
		return err
	}
	stmts := []string{"SELECT pg_advisory_xact_lock(hashtext('eventbus_outbox_migrate'))"}
	for _, s := range []string{t.outbox.schema, t.inbox.schema} {
		if s != "" {
			stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s}.Sanitize())
		}
	}
	stmts = append(stmts,
		`CREATE TABLE IF NOT EXISTS `+t.outbox.sql()+` (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	shard         smallint    NOT NULL,
	event_id      text        NOT NULL,
	topic         text        NOT NULL,
	key           bytea       NOT NULL,
	value         bytea       NOT NULL,
	header_keys   text[]      NOT NULL,
	header_values bytea[]     NOT NULL,
	compression   text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL DEFAULT now(),
	dead_at       timestamptz,
	last_error    text
)`,
		`CREATE INDEX IF NOT EXISTS `+t.outbox.suffixed("_shard_id")+` ON `+t.outbox.sql()+` (shard, id) WHERE dead_at IS NULL`,
		`CREATE TABLE IF NOT EXISTS `+t.inbox.sql()+` (
	group_id   text        NOT NULL,
	event_id   text        NOT NULL,
	handled_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (group_id, event_id)
)`,
		`CREATE INDEX IF NOT EXISTS `+t.inbox.suffixed("_handled_at")+` ON `+t.inbox.sql()+` (handled_at)`,
	)
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: migrate %s and %s: %w", t.outbox.plain(), t.inbox.plain(), err)
	}
	return nil
}
