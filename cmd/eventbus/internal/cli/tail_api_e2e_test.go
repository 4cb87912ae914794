package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/eventbustest"
)

// TestTailThroughAPI: `eventbus tail --api` reads serve's live tail with
// the console's filters applied on the server, and a tenant token's tail
// holds its tenant's events only.
func TestTailThroughAPI(t *testing.T) {
	_, lines, serveErr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory",
		"--admin-token", "ana:"+anaToken+",acme-ops:"+acmeToken+"=tenant:acme")
	brokers, httpAddr := waitForServe(t, lines)
	if httpAddr == "" {
		t.Fatalf("no HTTP line; stderr:\n%s", serveErr)
	}
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	eventbustest.MustPublish(t, bus, topic, 0, eventbus.PublishMetadata{TenantID: "acme"}) // the topic exists

	byKey, keyOut, keyErr := startBinary(t, "tail", topic, "--api", httpAddr, "--token", anaToken, "--key", "order-7", "--text", "REFUND", "--max", "1", "--json")
	waitStderr(t, keyErr, "eventbus: tailing "+topic)
	tenant, tenantOut, tenantErr := startBinary(t, "tail", topic, "--api", httpAddr, "--token", acmeToken, "--max", "1")
	waitStderr(t, tenantErr, "eventbus: tailing "+topic)

	eventbustest.MustPublish(t, bus, topic, map[string]string{"note": "refund"}, eventbus.PublishMetadata{TenantID: "globex"}, eventbus.WithPartitionKey("order-8"))
	eventbustest.MustPublish(t, bus, topic, map[string]string{"note": "shipped"}, eventbus.PublishMetadata{TenantID: "globex"}, eventbus.WithPartitionKey("order-7"))
	want := eventbustest.MustPublish(t, bus, topic, map[string]string{"note": "refund"}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey("order-7"))

	code, out := waitExit(t, byKey, keyOut)
	if code != 0 {
		t.Fatalf("tail --key exited %d; stderr:\n%s", code, keyErr)
	}
	var r consoleapi.TailRecord
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("tail --json printed %q: %v", out, err)
	}
	if r.Key != "order-7" || r.TenantID != "acme" || !strings.Contains(string(r.Value), want) {
		t.Errorf("tail --key order-7 --text REFUND printed %+v, want event %s", r, want)
	}
	code, out = waitExit(t, tenant, tenantOut)
	if code != 0 || !strings.Contains(out, want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("the tenant's tail exited %d and printed:\n%s\nwant the one line of acme's event %s", code, out, want)
	}

	if code, _, stderr := runBinary(t, "", nil, "tail", topic, "--key", "order-7"); code != ExitUsage || !strings.Contains(stderr, "--api") {
		t.Errorf("--key without --api: exit %d, stderr %s", code, stderr)
	}
}
