package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// send makes a request to a gateway's server with a token.
func send(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// startGateway starts a gateway on its own bus (as another process
// would), sharing the brokers and the subscriptions topic.
func startGateway(t *testing.T, brokers []string, cfg gateway.Config) (*gateway.Gateway, *eventbus.Bus, *httptest.Server) {
	t.Helper()
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	cfg.Bus = bus
	cfg.AdminTokens = []string{adminToken}
	cfg.TenantTokens = map[string]string{acmeToken: "acme"}
	cfg.PluginTokens = map[string]gateway.PluginScope{crmToken: {PluginID: "crm", TenantID: "acme"}}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close(context.Background()) })
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return gw, bus, srv
}

func names(gw *gateway.Gateway) []string {
	var out []string
	for _, s := range gw.Subscriptions() {
		out = append(out, s.Name)
	}
	return out
}

// TestDeclaredSubscriptionsAreDurableAndShared: a subscription declared
// over HTTP runs on every gateway sharing the subscriptions topic, survives
// their restart, and stops everywhere when removed.
func TestDeclaredSubscriptionsAreDurableAndShared(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	got := make(chan string, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Get("ce-id") }))
	defer hook.Close()
	cfg := gateway.Config{SubscriptionsTopic: eventbustest.UniqueID("__gateway_subscriptions"), AllowedEndpoints: []string{hook.URL + "/"}}
	receive := func(id string) {
		t.Helper()
		select {
		case g := <-got:
			if g != id {
				t.Fatalf("pushed %q, want %q", g, id)
			}
		case <-time.After(eventbustest.WaitTimeout):
			t.Fatalf("event %s not pushed", id)
		}
	}
	gw1, bus1, srv1 := startGateway(t, brokers, cfg)
	decl, _ := json.Marshal(gateway.Subscription{Name: "acme-users", Events: []string{topic}, Endpoint: hook.URL + "/users", TenantID: "acme"})
	if status, body := send(t, srv1, http.MethodPost, "/api/subscriptions", acmeToken, string(decl)); status != http.StatusCreated {
		t.Fatalf("declare: %d %s", status, body)
	}
	receive(eventbustest.MustPublish(t, bus1, topic, map[string]int{"n": 1}, eventbus.PublishMetadata{TenantID: "acme"}))

	gw2, _, _ := startGateway(t, brokers, cfg) // another replica: runs it too
	if !slices.Contains(names(gw2), "acme-users") {
		t.Fatalf("the second gateway runs %v, want acme-users", names(gw2))
	}
	ctx := context.Background()
	_ = gw1.Close(ctx)
	_ = gw2.Close(ctx)

	gw3, bus3, srv3 := startGateway(t, brokers, cfg) // a restart
	if !slices.Contains(names(gw3), "acme-users") {
		t.Fatalf("after a restart the gateway runs %v, want acme-users", names(gw3))
	}
	receive(eventbustest.MustPublish(t, bus3, topic, map[string]int{"n": 2}, eventbus.PublishMetadata{TenantID: "acme"}))
	if status, body := send(t, srv3, http.MethodDelete, "/api/subscriptions/acme-users", acmeToken, ""); status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", status, body)
	}
	if n := names(gw3); len(n) != 0 {
		t.Fatalf("after removal the gateway runs %v", n)
	}
	gw4, _, _ := startGateway(t, brokers, cfg)
	if n := names(gw4); len(n) != 0 {
		t.Fatalf("a removed subscription came back at start: %v", n)
	}
}

// TestDeclarationScopes: who may declare and remove what.
func TestDeclarationScopes(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	core := eventbustest.UniqueTopic(t, "core.user.created")
	own := eventbustest.UniqueTopic(t, "plugin.crm.contact.created")
	other := eventbustest.UniqueTopic(t, "plugin.billing.invoice.paid")
	hook := endpointServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	_, _, srv := startGateway(t, brokers, gateway.Config{SubscriptionsTopic: eventbustest.UniqueID("__gateway_subscriptions"), AllowedEndpoints: []string{hook + "/"}})
	decl := func(s gateway.Subscription) string {
		if s.Endpoint == "" {
			s.Endpoint = hook + "/x"
		}
		b, _ := json.Marshal(s)
		return string(b)
	}
	for _, c := range []struct {
		name, token, body string
		status            int
	}{
		{"tenant token, own tenant", acmeToken, decl(gateway.Subscription{Name: "a1", Events: []string{core}, TenantID: "acme"}), 201},
		{"tenant token, no tenant filter", acmeToken, decl(gateway.Subscription{Name: "a2", Events: []string{core}}), 403},
		{"tenant token, another tenant", acmeToken, decl(gateway.Subscription{Name: "a3", Events: []string{core}, TenantID: "globex"}), 403},
		{"plugin token, own and core events", crmToken, decl(gateway.Subscription{Name: "p1", Events: []string{own, core}, TenantID: "acme"}), 201},
		{"plugin token, another plugin's events", crmToken, decl(gateway.Subscription{Name: "p2", Events: []string{other}, TenantID: "acme"}), 403},
		{"outside the allowlist", adminToken, decl(gateway.Subscription{Name: "x1", Events: []string{core}, Endpoint: "http://169.254.169.254/"}), 403},
		{"a dead-letter topic", adminToken, decl(gateway.Subscription{Name: "x2", Events: []string{"dlq." + core}}), 400},
		{"a bad event type", adminToken, decl(gateway.Subscription{Name: "x3", Events: []string{"core.user.create"}}), 400},
		{"unknown field", adminToken, `{"name":"x4","events":["` + core + `"],"endpoint":"` + hook + `/","tenantID":"acme"}`, 400},
		{"taking over another scope's name", crmToken, decl(gateway.Subscription{Name: "a1", Events: []string{core}, TenantID: "acme"}), 403},
		{"no token", "", decl(gateway.Subscription{Name: "x5", Events: []string{core}}), 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			if status, body := send(t, srv, http.MethodPost, "/api/subscriptions", c.token, c.body); status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
		})
	}
	for _, c := range []struct {
		name, token, path string
		status            int
	}{
		{"the plugin removes the tenant's", crmToken, "/api/subscriptions/a1", 403},
		{"unknown", acmeToken, "/api/subscriptions/nope", 404},
		{"the tenant removes its own", acmeToken, "/api/subscriptions/a1", 204},
		{"an admin removes the plugin's", adminToken, "/api/subscriptions/p1", 204},
	} {
		t.Run("remove: "+c.name, func(t *testing.T) {
			if status, body := send(t, srv, http.MethodDelete, c.path, c.token, ""); status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
		})
	}
}

// TestDeclaringNeedsAnAllowlistUnlessAdmin: without --push-allow only an
// admin token may declare (no endpoint chosen by a tenant or plugin).
func TestDeclaringNeedsAnAllowlistUnlessAdmin(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	core := eventbustest.UniqueTopic(t, "core.user.created")
	hook := endpointServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	_, _, srv := startGateway(t, brokers, gateway.Config{SubscriptionsTopic: eventbustest.UniqueID("__gateway_subscriptions")})
	body, _ := json.Marshal(gateway.Subscription{Name: "a", Events: []string{core}, Endpoint: hook, TenantID: "acme"})
	if status, raw := send(t, srv, http.MethodPost, "/api/subscriptions", acmeToken, string(body)); status != http.StatusForbidden {
		t.Fatalf("tenant token: %d %s, want 403", status, raw)
	}
	if status, raw := send(t, srv, http.MethodPost, "/api/subscriptions", adminToken, string(body)); status != http.StatusCreated {
		t.Fatalf("admin token: %d %s, want 201", status, raw)
	}
}
