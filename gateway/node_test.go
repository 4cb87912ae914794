package gateway_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// requireNodeEnv, when set (CI sets it), makes a missing node fail the
// test instead of skipping it.
const requireNodeEnv = "EVENTBUS_REQUIRE_NODE"

// TestNodePluginLoop runs examples/gateway-node/plugin.mjs, a plugin
// written with plain fetch and node:http: it receives a user event by
// push, fails its first delivery, gets the dead letter queue's retry, and
// then publishes a plugin event through the gateway, which a Go
// subscriber reads.
func TestNodePluginLoop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv(requireNodeEnv) != "" {
			t.Fatalf("node not found and %s is set: %v", requireNodeEnv, err)
		}
		t.Skip("node is not installed (apt-get install nodejs, Node 18 or later); set " + requireNodeEnv + " to require it")
	}
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: eventbus.DLQConfig{RetryBackoff: 10 * time.Millisecond}})
	startDLQ(t, f.bus)
	userTopic := eventbustest.UniqueTopic(t, "core.user.created")
	contactTopic := eventbustest.UniqueTopic(t, "plugin.crm.contact.created")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "examples", "gateway-node", "plugin.mjs"))
	cmd.Env = append(os.Environ(), "GATEWAY_URL="+f.srv.URL, "TOKEN="+adminToken, "PORT=0", "CONTACT_TOPIC="+contactTopic)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node's stderr:\n%s", stderr.String())
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var endpoint string
	select {
	case line := <-lines:
		endpoint, _ = strings.CutPrefix(line, "listening on ")
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("the node plugin did not start")
	}
	go func() { // keep reading, for the log
		for line := range lines {
			t.Logf("node: %s", line)
		}
	}()

	contacts := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, f.bus, contactTopic, contacts.Handle)
	subscribe(t, f, gateway.Subscription{Name: eventbustest.UniqueID("crm-contacts"), Events: []string{userTopic}, Endpoint: endpoint})
	id := eventbustest.MustPublish(t, f.bus, userTopic, map[string]string{"userId": "u-1", "email": "a@acme.test"},
		eventbus.PublishMetadata{TenantID: "acme", CorrelationID: "signup-1"})

	got := contacts.WaitFor(t, 1)[0]
	if got.TenantID != "acme" || got.Metadata.CausationID != id || got.Metadata.CorrelationID != "signup-1" || got.Metadata.Source != "crm" ||
		!strings.Contains(string(got.Data), `"email":"a@acme.test"`) {
		t.Fatalf("the plugin published %+v (data %s); want tenant acme, caused by %s, correlation signup-1, source crm, the user's email", got, got.Data, id)
	}
	e := dlqEntry(t, f.bus, userTopic, id, eventbus.StatusResolved)
	if !strings.Contains(e.FailureReason, "first delivery fails on purpose") {
		t.Fatalf("dead-letter reason %q, want the plugin's 500", e.FailureReason)
	}
}
