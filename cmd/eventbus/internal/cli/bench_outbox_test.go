package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
	"github.com/plexica/eventbus/eventbustest"
)

// TestBenchQuickOutboxPhases runs `bench --quick --phases outbox,inbox`
// against an embedded broker and a test database, and checks that the
// report has every figure of both phases (no duration or ratio is
// asserted) and that the run dropped its schema.
func TestBenchQuickOutboxPhases(t *testing.T) {
	dsn := eventbustest.Postgres(t)
	brokers := eventbustest.Brokers(t)
	code, stdout, stderr := runCLI(context.Background(), "--log-level", "warn", "bench", "--quick", "--json",
		"--phases", "inbox,outbox", "--brokers", strings.Join(brokers, ","), "--outbox-dsn", dsn)
	if code != ExitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
	o, in := rep.Outbox, rep.Inbox
	if o == nil || in == nil {
		t.Fatalf("outbox %v, inbox %v in the report", o, in)
	}
	for name, v := range map[string]float64{
		"tx row p95": o.TxRow.P95, "tx ours p95": o.TxOurs.P95, "tx raw p95": o.TxRaw.P95,
		"relay": o.Relay.PerSecond, "relay raw": o.RelayRaw.PerSecond, "commit p95": o.CommitToHandler.P95,
		"inbox ours": in.Ours.PerSecond, "inbox raw": in.Raw.PerSecond, "inbox plain": in.Plain.PerSecond,
	} {
		if !(v > 0) {
			t.Errorf("%s is %v", name, v)
		}
	}
	if o.Relay.Events != int64(bench.QuickOutboxBacklog) || o.CommitToHandler.Count != o.CommitSent || in.DuplicateEffects != 0 {
		t.Errorf("relay sent %d of %d; commit to handler %d of %d arrived; %d duplicate effects",
			o.Relay.Events, bench.QuickOutboxBacklog, o.CommitToHandler.Count, o.CommitSent, in.DuplicateEffects)
	}
	if !strings.Contains(stderr, "bench: [1/2] outbox") || !strings.Contains(stderr, "bench: [2/2] inbox") {
		t.Fatalf("no progress lines of the phases on stderr:\n%s", stderr)
	}
	// The table has the phases' rows.
	code, table, stderr := runCLI(context.Background(), "--log-level", "warn", "bench", "--quick",
		"--phases", "outbox", "--events", "300", "--brokers", strings.Join(brokers, ","), "--outbox-dsn", dsn)
	if code != ExitOK || !strings.Contains(table, "outbox relay, 300 rows") || !strings.Contains(table, "outbox commit to handler") {
		t.Fatalf("exit code %d; table:\n%s\nstderr:\n%s", code, table, stderr)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'eventbus_bench_%'").Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d bench schemas left behind (%v)", left, err)
	}
}
