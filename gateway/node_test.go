package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
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
	node := nodeOrSkip(t)
	f := newFixture(t, gateway.Config{}, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 10 * time.Millisecond}})
	startDLQ(t, f.bus)
	userTopic := eventbustest.UniqueTopic(t, "core.user.created")
	contactTopic := eventbustest.UniqueTopic(t, "plugin.crm.contact.created")
	endpoint, _ := runNode(t, node, "plugin.mjs", "GATEWAY_URL="+f.srv.URL, "TOKEN="+adminToken, "PORT=0", "CONTACT_TOPIC="+contactTopic)

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
	e := dlqEntry(t, f.bus, userTopic, id, deadletter.StatusResolved)
	if !strings.Contains(e.FailureReason, "first delivery fails on purpose") {
		t.Fatalf("dead-letter reason %q, want the plugin's 500", e.FailureReason)
	}
}

// nodeOrSkip returns node's path, or skips the test without it (fails it
// when requireNodeEnv is set).
func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv(requireNodeEnv) != "" {
			t.Fatalf("node not found and %s is set: %v", requireNodeEnv, err)
		}
		t.Skip("node is not installed (apt-get install nodejs, Node 18 or later); set " + requireNodeEnv + " to require it")
	}
	return node
}

// runNode runs examples/gateway-node/<script> until the test ends. The
// script's first line says "listening on <endpoint URL>"; its next lines
// come on the channel (and into the test's log).
func runNode(t *testing.T, node, script string, env ...string) (endpoint string, output <-chan string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "examples", "gateway-node", script))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	first := make(chan string, 1)
	logged := make(chan string, 16)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sc := bufio.NewScanner(out)
		for n := 0; sc.Scan(); n++ {
			if n == 0 {
				first <- sc.Text()
				continue
			}
			t.Logf("node: %s", sc.Text())
			select {
			case logged <- sc.Text():
			default:
			}
		}
		close(logged)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		<-finished // no logging after the test
		if t.Failed() {
			t.Logf("node's stderr:\n%s", stderr.String())
		}
	})
	select {
	case line := <-first:
		endpoint, _ = strings.CutPrefix(line, "listening on ")
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatalf("node %s did not start", script)
	}
	return endpoint, logged
}

// TestReadmeNodeEndpoint runs the README's push endpoint
// (examples/gateway-node/hook.mjs, which the README shows whole): a
// subscription declared as `eventbus subscriptions add` declares it, and
// an event published as the README's curl publishes it reach it.
func TestReadmeNodeEndpoint(t *testing.T) {
	hook, err := os.ReadFile(filepath.Join("..", "examples", "gateway-node", "hook.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```js\n"+string(hook)+"```") {
		t.Fatal("README.md does not show examples/gateway-node/hook.mjs as it is (one ```js block); copy the file into it")
	}
	node := nodeOrSkip(t)
	brokers := eventbustest.Brokers(t)
	_, _, srv := startGateway(t, brokers, gateway.Config{SubscriptionsTopic: eventbustest.UniqueID("__gateway_subscriptions")})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	endpoint, output := runNode(t, node, "hook.mjs", "PORT=0")
	decl := fmt.Sprintf(`{"name":%q,"events":[%q],"endpoint":%q}`, eventbustest.UniqueID("crm-users"), topic, endpoint)
	if status, body := send(t, srv, http.MethodPost, "/api/subscriptions", adminToken, decl); status != http.StatusCreated {
		t.Fatalf("declare: %d %s", status, body)
	}
	if status, body := send(t, srv, http.MethodPost, "/api/events", adminToken,
		fmt.Sprintf(`{"type":%q,"tenantId":"acme","data":{"userId":"u-1"}}`, topic)); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	want := topic + ` acme {"userId":"u-1"}`
	timeout := time.After(eventbustest.WaitTimeout)
	for {
		select {
		case line, ok := <-output:
			if !ok {
				t.Fatalf("node exited before printing %q", want)
			}
			if line == want {
				return
			}
		case <-timeout:
			t.Fatalf("node did not print %q", want)
		}
	}
}
