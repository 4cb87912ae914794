package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// TestServeRelaysTheOutbox: `eventbus outbox migrate` creates the tables
// (twice: idempotent), `serve --outbox-dsn` relays an event committed in a
// service's transaction, /metrics shows the outbox and /readyz fails when
// the outbox table is gone.
func TestServeRelaysTheOutbox(t *testing.T) {
	dsn := eventbustest.Postgres(t)
	for range 2 {
		code, out, errOut := runCLI(t.Context(), "outbox", "migrate", "--outbox-dsn", dsn, "--outbox-table", "app.outbox")
		if code != 0 || !strings.Contains(out, "app.outbox") {
			t.Fatalf("outbox migrate: exit %d, %q, %q", code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t.Context(), "outbox", "migrate", "--outbox-dsn", dsn, "--outbox-table", "no-such;table"); code == 0 || !strings.Contains(errOut, "outbox-table") && !strings.Contains(errOut, "Table") {
		t.Fatalf("outbox migrate with a bad table name: exit %d, %q", code, errOut)
	}

	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	_, lines, stderr := startBinaryEnv(t, []string{EnvOutboxDSN + "=" + dsn}, "serve", "--brokers", strings.Join(broker.Addrs(), ","),
		"--http-addr", "127.0.0.1:0", "--admin-token", "outbox-test-token-0001", "--outbox-table", "app.outbox")
	_, httpAddr := waitForServe(t, lines)
	if httpAddr == "" {
		t.Fatalf("serve printed no %s line; stderr:\n%s", HTTPLinePrefix, stderr)
	}

	bus := eventbustest.NewBus(t, eventbus.Config{}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	w, err := outbox.NewWriter(bus, outbox.Config{Table: "app.outbox"})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		id, err = w.Publish(t.Context(), tx, topic, "from the database", eventbus.PublishMetadata{TenantID: "acme"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rec.WaitForID(t, id)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	eventbustest.Eventually(t, "/metrics to count the relayed event", func() error {
		if _, body := get("/metrics"); !strings.Contains(body, `eventbus_outbox_sent_total{table="app.outbox"} 1`) ||
			!strings.Contains(body, `eventbus_outbox_backlog_rows{table="app.outbox"} 0`) {
			return fmt.Errorf("no outbox metrics with 1 sent and 0 waiting in /metrics")
		}
		return nil
	})
	eventbustest.Eventually(t, "/readyz to say ready", func() error {
		if code, body := get("/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
	if _, err := pool.Exec(t.Context(), "DROP TABLE app.outbox"); err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "/readyz to name the outbox", func() error {
		if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "the outbox is unreachable") {
			return fmt.Errorf("/readyz with the outbox table gone = %d %q", code, body)
		}
		return nil
	})
}
