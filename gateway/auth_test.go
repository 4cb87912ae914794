package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// TestPluginTokensPublishOnlyTheirOwnEvents: a plugin token publishes its
// plugin's events (for its tenant, when it has one) and nothing else;
// refused requests send nothing.
func TestPluginTokensPublishOnlyTheirOwnEvents(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	own := eventbustest.UniqueTopic(t, "plugin.crm.contact.created")
	other := eventbustest.UniqueTopic(t, "plugin.billing.invoice.created")
	core := eventbustest.UniqueTopic(t, "core.user.created")
	crmLike := "plugin.crm-x." + strings.TrimPrefix(own, "plugin.crm.") // another plugin whose ID starts with crm
	ev := func(topic, tenant string) string {
		return fmt.Sprintf(`{"type":%q,"tenantId":%q,"data":{}}`, topic, tenant)
	}
	cases := []struct {
		name, token, body string
		status            int
	}{
		{"own event, own tenant", crmToken, ev(own, "acme"), 200},
		{"own event, another tenant", crmToken, ev(own, "globex"), 403},
		{"a core event", crmToken, ev(core, "acme"), 403},
		{"another plugin's event", crmToken, ev(other, "acme"), 403},
		{"a plugin whose ID extends its own", crmToken, ev(crmLike, "acme"), 403},
		{"any-tenant token, another tenant", anyCRMToken, ev(own, "globex"), 200},
		{"any-tenant token, a core event", anyCRMToken, ev(core, "globex"), 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.post("/api/events", c.body, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + c.token})
			if a.Status != c.status {
				t.Fatalf("status %d, want %d: %s", a.Status, c.status, a.Raw)
			}
			if c.status == 403 && a.Body["sentinel"] != "ErrForbidden" {
				t.Fatalf("sentinel %v, want ErrForbidden: %s", a.Body["sentinel"], a.Raw)
			}
		})
	}
	// A batch with one event outside the scope sends none.
	a := f.post("/api/events/batch", "["+ev(own, "acme")+","+ev(core, "acme")+"]",
		map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + crmToken})
	if a.Status != 403 || !strings.Contains(a.Raw, "event 1") {
		t.Fatalf("batch: status %d, want 403 naming event 1: %s", a.Status, a.Raw)
	}
	if n := endOffsets(t, f.brokers, own); n != 2 {
		t.Fatalf("%s holds %d events, want the 2 allowed", own, n)
	}
	for _, topic := range []string{core, other} {
		if n := endOffsets(t, f.brokers, topic); n > 0 {
			t.Fatalf("%s holds %d events, want none", topic, n)
		}
	}
}

func TestParsePluginTokens(t *testing.T) {
	got, err := gateway.ParsePluginTokens(" k8Qz1vXw9mR2pL7a=plugin:crm , Yt4nB6cD0eF3gH5j=plugin:crm:tenant:acme,,")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]gateway.PluginScope{"k8Qz1vXw9mR2pL7a": {PluginID: "crm"}, "Yt4nB6cD0eF3gH5j": {PluginID: "crm", TenantID: "acme"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{
		"k8Qz1vXw9mR2pL7a",                                            // no scope
		"short=plugin:crm",                                            // too short
		"k8Qz1vXw9mR2pL7a=plugin:CRM",                                 // not kebab-case
		"k8Qz1vXw9mR2pL7a=plugin:crm:tenant:a.b",                      // bad tenant
		"k8Qz1vXw9mR2pL7a=plugin:crm,k8Qz1vXw9mR2pL7a=plugin:billing", // one token, two scopes
	} {
		_, err := gateway.ParsePluginTokens(bad)
		if !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("%q: error %v, want ErrInvalidConfig", bad, err)
		} else if strings.Contains(err.Error(), "k8Qz1vXw9mR2pL7a") {
			t.Errorf("%q: the error shows the token: %v", bad, err)
		}
	}
}

// TestListSubscriptionsByScope: an admin token sees every subscription, a
// tenant token only its tenant's, and no token none.
func TestListSubscriptionsByScope(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	hook := endpointServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	subscribe(t, f, gateway.Subscription{Name: "all-tenants", Events: []string{topic}, Endpoint: hook})
	subscribe(t, f, gateway.Subscription{Name: "acme-only", Events: []string{topic}, Endpoint: hook, TenantID: "acme"})
	subscribe(t, f, gateway.Subscription{Name: "globex-only", Events: []string{topic}, Endpoint: hook, TenantID: "globex"})
	list := func(token string) (int, []string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, f.srv.URL+"/api/subscriptions", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Subscriptions []gateway.Subscription }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		var names []string
		for _, s := range body.Subscriptions {
			names = append(names, s.Name)
		}
		return resp.StatusCode, names
	}
	if status, names := list(adminToken); status != 200 || strings.Join(names, ",") != "acme-only,all-tenants,globex-only" {
		t.Errorf("admin: %d %v", status, names)
	}
	if status, names := list(acmeToken); status != 200 || strings.Join(names, ",") != "acme-only" {
		t.Errorf("tenant acme: %d %v", status, names)
	}
	if status, _ := list(""); status != 401 {
		t.Errorf("no token: %d, want 401", status)
	}
	// A second subscription of the same name is refused; removing it frees the name.
	ctx := context.Background()
	if err := f.gw.Subscribe(ctx, gateway.Subscription{Name: "acme-only", Events: []string{topic}, Endpoint: hook}); !errors.Is(err, gateway.ErrInvalidSubscription) {
		t.Fatalf("a second acme-only: %v, want ErrInvalidSubscription", err)
	}
	if err := f.gw.Unsubscribe(ctx, "acme-only"); err != nil {
		t.Fatal(err)
	}
	if err := f.gw.Unsubscribe(ctx, "acme-only"); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Fatalf("removing it twice: %v, want ErrSubscriptionNotFound", err)
	}
}

// TestSubscribeRefusesBadDeclarations: the allowlist and the fields are
// checked at declaration, before any group is joined.
func TestSubscribeRefusesBadDeclarations(t *testing.T) {
	f := newFixture(t, gateway.Config{AllowedEndpoints: []string{"https://hooks.internal/plexica/", "http://10.0.3.7:3000/events"}}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	ctx := context.Background()
	for _, c := range []struct {
		endpoint string
		want     error
	}{
		{"http://169.254.169.254/latest/meta-data", gateway.ErrEndpointNotAllowed},
		{"http://hooks.internal/plexica/x", gateway.ErrEndpointNotAllowed},           // another scheme
		{"https://hooks.internal/plexicaX", gateway.ErrEndpointNotAllowed},           // not under the path
		{"https://hooks.internal.evil.test/plexica/", gateway.ErrEndpointNotAllowed}, // another host
		{"http://10.0.3.7:3001/events", gateway.ErrEndpointNotAllowed},               // another port
		{"http://10.0.3.7:3000/events-other", gateway.ErrEndpointNotAllowed},
		{"https://user:pw@hooks.internal/plexica/", gateway.ErrInvalidSubscription},
		{"ftp://hooks.internal/plexica/", gateway.ErrInvalidSubscription},
	} {
		err := f.gw.Subscribe(ctx, gateway.Subscription{Name: "s", Events: []string{topic}, Endpoint: c.endpoint})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.endpoint, err, c.want)
		}
	}
	for _, ok := range []string{"https://hooks.internal/plexica/orders", "http://10.0.3.7:3000/events", "http://10.0.3.7:3000/events/a"} {
		name := eventbustest.UniqueID("ok")
		if err := f.gw.Subscribe(ctx, gateway.Subscription{Name: name, Events: []string{topic}, Endpoint: ok}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, s := range []gateway.Subscription{
		{Name: "Bad Name", Events: []string{topic}, Endpoint: "http://10.0.3.7:3000/events"},
		{Name: "no-events", Endpoint: "http://10.0.3.7:3000/events"},
		{Name: "ws", Events: []string{topic}, Endpoint: "http://10.0.3.7:3000/events", WorkspaceID: "w1"},
		{Name: "body", Events: []string{topic}, Endpoint: "http://10.0.3.7:3000/events", Body: "xml"},
	} {
		if err := f.gw.Subscribe(ctx, s); !errors.Is(err, gateway.ErrInvalidSubscription) {
			t.Errorf("%+v: %v, want ErrInvalidSubscription", s, err)
		}
	}
	if err := f.gw.Subscribe(ctx, gateway.Subscription{Name: "topic", Events: []string{"core.user.create"}, Endpoint: "http://10.0.3.7:3000/events"}); !errors.Is(err, eventbus.ErrInvalidTopic) {
		t.Errorf("bad topic: %v, want ErrInvalidTopic", err)
	}
}
