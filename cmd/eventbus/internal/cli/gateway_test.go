package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus/gateway"
)

const gatewayTestToken = "gateway-test-token-0123456789"

// writeSubscriptions writes a subscriptions file for serve.
func writeSubscriptions(t *testing.T, subs ...gateway.Subscription) string {
	t.Helper()
	b, err := json.Marshal(gateway.SubscriptionsFile{Subscriptions: subs})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "subscriptions.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServe starts serve in this process with args, closed with the test.
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	cfg, err := resolveServe(t, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newServer(cfg, log, log)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		_ = s.Close(context.Background())
		t.Fatal(err)
	}
	go func() { _ = s.Run(context.Background()) }()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func publishHTTP(t *testing.T, s *server, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.listener.Addr().String()+"/api/events", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+gatewayTestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
}

// TestServeGatewayPublishesAndPushes: serve publishes over HTTP with its
// --admin-token, and runs the push subscriptions of --subscriptions; a
// subscription picks up where it stopped after serve restarts (its group
// and committed offsets live in the broker, its declaration in the file).
func TestServeGatewayPublishesAndPushes(t *testing.T) {
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("ce-id")
	}))
	defer hook.Close()
	file := writeSubscriptions(t, gateway.Subscription{Name: "hook", Events: []string{"core.invoice.paid"}, Endpoint: hook.URL + "/events", FromBeginning: true})
	data := t.TempDir()
	args := []string{"--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", data,
		"--admin-token", gatewayTestToken, "--subscriptions", file, "--push-allow", hook.URL + "/"}
	receive := func(id string) {
		t.Helper()
		select {
		case g := <-got:
			if g != id {
				t.Fatalf("pushed event %q, want %q", g, id)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("event %s was not pushed", id)
		}
	}
	s := startServe(t, args...)
	publishHTTP(t, s, `{"id":"inv-1","type":"core.invoice.paid","tenantId":"acme","data":{"total":12}}`)
	receive("inv-1")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = startServe(t, args...)
	publishHTTP(t, s, `{"id":"inv-2","type":"core.invoice.paid","tenantId":"acme","data":{"total":13}}`)
	receive("inv-2") // not inv-1 again: the group resumed at its commit
}

// TestServeRefusesEndpointOutsideAllowlist: a subscription whose endpoint
// is not under --push-allow stops serve from starting, saying why.
func TestServeRefusesEndpointOutsideAllowlist(t *testing.T) {
	file := writeSubscriptions(t, gateway.Subscription{Name: "metadata", Events: []string{"core.invoice.paid"}, Endpoint: "http://169.254.169.254/latest"})
	cfg, err := resolveServe(t, nil, "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory",
		"--subscriptions", file, "--push-allow", "https://hooks.internal/")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newServer(cfg, log, log)
	defer func() { _ = s.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err = s.Start(ctx)
	if !errors.Is(err, gateway.ErrEndpointNotAllowed) || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Fatalf("Start: %v; want ErrEndpointNotAllowed naming the endpoint", err)
	}
}

// TestServeSubscriptionsFileErrors: a bad subscriptions file is a usage
// error naming what is wrong.
func TestServeSubscriptionsFileErrors(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct{ content, want string }{
		{`{"subscriptions":[{"name":"a","events":["core.invoice.paid"],"endpoint":"http://x/","timeout":"soon"}]}`, `duration "soon"`},
		{`{"subscriptions":[{"name":"a","events":["core.invoice.paid"],"endpont":"http://x/"}]}`, `unknown member "endpont"`},
		{`{"subscriptions":[{"name":"a","events":["core.invoice.paid"],"endpoint":"http://x/","tenantID":"acme"}]}`, `unknown member "tenantID"`},
		{`{"subscriptions":[{"name":"A b","events":["core.invoice.paid"],"endpoint":"http://x/"}]}`, `name "A b"`},
		{`{"subscriptions":[{"name":"a","endpoint":"http://x/"}]}`, `has no events`},
		{`{"subscriptions":[{"name":"a","events":["x"],"endpoint":"http://x/","ordering":"random"}]}`, `ordering "random"`},
		{`{"subscriptions":[{"name":"a","events":["x"],"endpoint":"http://x/"},{"name":"a","events":["y"],"endpoint":"http://x/"}]}`, `repeats the name "a"`},
	} {
		path := filepath.Join(dir, fmt.Sprintf("s%d.json", i))
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := resolveServe(t, nil, "--subscriptions", path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.content, err, c.want)
		}
	}
	if _, err := resolveServe(t, nil, "--subscriptions", filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing file was accepted")
	}
	cfg, err := resolveServe(t, map[string]string{EnvPluginTokens: "k8Qz1vXw9mR2pL7a=plugin:crm:tenant:acme"})
	if err != nil || cfg.PluginTokens["k8Qz1vXw9mR2pL7a"] != (gateway.PluginScope{PluginID: "crm", TenantID: "acme"}) {
		t.Errorf("plugin tokens from the environment: %v %v", cfg.PluginTokens, err)
	}
	if _, err := resolveServe(t, nil, "--plugin-token", "k8Qz1vXw9mR2pL7a=plugin:CRM"); err == nil || !strings.Contains(err.Error(), "--plugin-token") {
		t.Errorf("a bad plugin token: %v", err)
	}
}

// TestSubscriptionsCommands adds, lists and removes a push subscription
// through a running serve, as an operator would.
func TestSubscriptionsCommands(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	s := startServe(t, "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory",
		"--admin-token", gatewayTestToken, "--push-allow", hook.URL+"/")
	api := []string{"--api", s.listener.Addr().String(), "--token", gatewayTestToken}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	run := func(args ...string) (int, string, string) {
		return runCLI(ctx, append(append([]string{"subscriptions"}, args...), api...)...)
	}
	code, out, errOut := run("add", "crm-users", "--events", "core.user.created", "--endpoint", hook.URL+"/users", "--tenant", "acme", "--timeout", "3s")
	if code != 0 || !strings.Contains(out, "push subscription crm-users: core.user.created -> "+hook.URL+"/users (group gateway.crm-users)") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	code, out, errOut = run("list")
	if code != 0 || !strings.Contains(out, "crm-users") || !strings.Contains(out, "acme") || !strings.Contains(out, "3s") {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}
	code, _, errOut = run("add", "metadata", "--events", "core.user.created", "--endpoint", "http://169.254.169.254/")
	if code == 0 || !strings.Contains(errOut, "ErrEndpointNotAllowed") {
		t.Fatalf("add outside the allowlist: %d %q", code, errOut)
	}
	if code, out, errOut = run("remove", "crm-users"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %d %q %q", code, out, errOut)
	}
	if code, out, errOut = run("list"); code != 0 || !strings.Contains(out, "no push subscriptions") {
		t.Fatalf("list after remove: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = runCLI(ctx, "subscriptions", "list", "--api", s.listener.Addr().String(), "--token", "wrong-token-0123456789"); code == 0 || !strings.Contains(errOut, "--token") {
		t.Fatalf("a wrong token: %d %q", code, errOut)
	}
}
