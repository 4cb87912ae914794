package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/outbox"
)

// Environment of the outbox settings.
const (
	// EnvOutboxDSN names the PostgreSQL database of the outbox that
	// `eventbus serve` relays, and that `eventbus outbox migrate` creates
	// the tables in.
	EnvOutboxDSN = "EVENTBUS_OUTBOX_DSN"
	// EnvOutboxTable names the outbox table ("table" or "schema.table").
	EnvOutboxTable = "EVENTBUS_OUTBOX_TABLE"
	// EnvInboxTable names the inbox table.
	EnvInboxTable = "EVENTBUS_INBOX_TABLE"
)

// addOutboxFlags adds the flags that name the outbox's database and tables.
func addOutboxFlags(cmd *cobra.Command, dsnUsage string) {
	f := cmd.Flags()
	f.String("outbox-dsn", "", dsnUsage+" (env "+EnvOutboxDSN+"), e.g. postgres://app@db:5432/app")
	f.String("outbox-table", outbox.DefaultTable, `the outbox table, "table" or "schema.table" (env `+EnvOutboxTable+")")
	f.String("inbox-table", outbox.DefaultInboxTable, `the inbox table, "table" or "schema.table" (env `+EnvInboxTable+")")
}

// resolveOutbox reads the outbox flags: the DSN ("" when none) and the
// tables.
func (a *app) resolveOutbox(cmd *cobra.Command) (string, outbox.Config, error) {
	dsn := a.stringSetting(cmd, "outbox-dsn", EnvOutboxDSN)
	cfg := outbox.Config{
		Table:      a.stringSetting(cmd, "outbox-table", EnvOutboxTable),
		InboxTable: a.stringSetting(cmd, "inbox-table", EnvInboxTable),
	}
	if dsn != "" {
		if _, err := pgxpool.ParseConfig(dsn); err != nil {
			return "", cfg, usageErrorf("--outbox-dsn: %v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return "", cfg, usageErrorf("%v", err)
	}
	return dsn, cfg, nil
}

func (a *app) outboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "The transactional outbox on PostgreSQL: create its tables",
		Long: `The transactional outbox and the idempotent inbox on PostgreSQL (package
github.com/plexica/eventbus/outbox). Services write events in their own
transactions; "eventbus serve --outbox-dsn" (or the library's outbox.Relay)
publishes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("outbox needs a subcommand: migrate")
		},
	}
	cmd.AddCommand(a.outboxMigrateCmd())
	return cmd
}

func (a *app) outboxMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create the outbox and inbox tables if they do not exist (idempotent)",
		Example: `  eventbus outbox migrate --outbox-dsn postgres://app@db:5432/app
  EVENTBUS_OUTBOX_DSN=postgres://app@db/app eventbus outbox migrate --outbox-table app.outbox --inbox-table app.inbox`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, cfg, err := a.resolveOutbox(cmd)
			if err != nil {
				return err
			}
			if dsn == "" {
				return usageErrorf("outbox migrate needs --outbox-dsn (or %s)", EnvOutboxDSN)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				return err
			}
			defer pool.Close()
			if err := outbox.Migrate(ctx, pool, cfg); err != nil {
				return err
			}
			cfg = cfg.WithDefaults()
			fmt.Fprintf(a.stdout, "outbox: tables %s and %s are ready\n", cfg.Table, cfg.InboxTable)
			return nil
		},
	}
	addOutboxFlags(cmd, "the PostgreSQL database to create the tables in")
	return cmd
}
