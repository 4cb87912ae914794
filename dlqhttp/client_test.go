package dlqhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/eventbustest"
)

// IDs and topics that need escaping in a URL path or query: a slash, a
// query, a fragment, a percent, a space, non-ASCII letters, and the dot
// segments a path would otherwise resolve.
var oddNames = []string{"no/such?id=1&x#frag %41 é", "..", ".", "a..b/../c", "%2F"}

func newClient(t *testing.T, baseURL, token string) *dlqhttp.Client {
	t.Helper()
	c, err := dlqhttp.NewClient(baseURL, token, &http.Client{Timeout: eventbustest.WaitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiError checks that err is an *APIError with status and code.
func apiError(t *testing.T, err error, status int, code string) *dlqhttp.APIError {
	t.Helper()
	var e *dlqhttp.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *APIError %d %s", err, err, status, code)
	}
	if e.Status != status || e.Code != code || e.Message == "" {
		t.Fatalf("APIError %+v, want %d %s with a message", e, status, code)
	}
	return e
}

// typeScriptRecord is a dead-letter record of the TypeScript package, the
// only kind of entry whose ID is not ours (a hex hash): any string.
func typeScriptRecord(topic, id, tenant string) *kgo.Record {
	event := fmt.Sprintf(`{"id":"ts-event","type":%q,"tenantId":%q,"timestamp":"2026-11-29T06:00:00.000Z","data":{"n":1},"metadata":{"source":"core","correlationId":"c-1","version":"1.0"}}`,
		topic, tenant)
	value := fmt.Sprintf(`{"id":%q,"originalEvent":%s,"originalTopic":%q,"failureReason":"smtp down","failureTimestamp":"2026-11-29T06:00:01.000Z","retryCount":0,"maxRetries":3,"consumerGroup":"ts-mailer","partition":0,"offset":"17"}`,
		id, event, topic)
	return &kgo.Record{Topic: "dlq." + topic, Key: []byte(id), Value: []byte(value)}
}

// TestClient calls every route through the Client, against the handler on
// a bus of the embedded broker (the fixture of TestAPI).
func TestClient(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	admin := newClient(t, f.srv.URL, adminToken)
	a := newClient(t, f.srv.URL, tokenA)
	b := newClient(t, f.srv.URL+"/api/dlq/", tokenB) // the API's own address works too

	t.Run("auth", func(t *testing.T) {
		for _, c := range []*dlqhttp.Client{newClient(t, f.srv.URL, "wrong-token-0123456789"), newClient(t, f.srv.URL, "")} {
			_, err := c.Stats(ctx, deadletter.Query{})
			e := apiError(t, err, http.StatusUnauthorized, "unauthorized")
			if errors.Unwrap(e) != nil || errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("401 wraps %v", errors.Unwrap(e))
			}
			if _, err := c.Get(ctx, f.ids["a2"]); !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
				t.Fatalf("Get with a bad token: %v", err)
			}
		}
	})

	t.Run("stats", func(t *testing.T) {
		s, err := admin.Stats(ctx, deadletter.Query{})
		if err != nil || s.Total != 4 || s.ByTopic[f.topicA] != 3 || s.ByTopic[f.topicB] != 1 || s.ByStatus["max-retries-exceeded"] != 4 {
			t.Fatalf("admin stats %+v, %v", s, err)
		}
		if s, err := admin.Stats(ctx, deadletter.Query{TenantID: f.tenantB}); err != nil || s.Total != 1 {
			t.Fatalf("admin stats of tenant B %+v, %v", s, err)
		}
		if s, err := admin.Stats(ctx, deadletter.Query{Topic: f.topicB, Status: deadletter.StatusMaxRetriesExceeded}); err != nil || s.Total != 1 || s.ByTopic[f.topicB] != 1 {
			t.Fatalf("admin stats of topic B %+v, %v", s, err)
		}
		if s, err := b.Stats(ctx, deadletter.Query{}); err != nil || s.Total != 1 || len(s.ByTopic) != 1 {
			t.Fatalf("tenant B stats %+v, %v", s, err)
		}
		_, err = a.Stats(ctx, deadletter.Query{TenantID: f.tenantB})
		apiError(t, err, http.StatusForbidden, "forbidden")
		_, err = admin.Stats(ctx, deadletter.Query{Status: "broken"})
		apiError(t, err, http.StatusBadRequest, "bad_request")
		// What the route cannot carry is refused before any request.
		for _, q := range []deadletter.Query{{Limit: 1}, {Offset: 1}, {Oldest: true}, {VerifiedTenant: true}} {
			if _, err := admin.Stats(ctx, q); !errors.Is(err, eventbus.ErrInvalidConfig) {
				t.Fatalf("Stats(%+v): %v", q, err)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		all, total, err := admin.List(ctx, deadletter.Query{})
		if err != nil || total != 4 || len(all) != 4 {
			t.Fatalf("list %+v, %d, %v", all, total, err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].FailedAt.After(all[i-1].FailedAt) {
				t.Fatalf("not newest first: %v", all)
			}
		}
		asc, _, err := admin.List(ctx, deadletter.Query{Oldest: true})
		if err != nil || asc[0].ID != all[3].ID || asc[3].ID != all[0].ID {
			t.Fatalf("oldest first %+v, %v", asc, err)
		}
		page, total, err := admin.List(ctx, deadletter.Query{Topic: f.topicA, Status: deadletter.StatusMaxRetriesExceeded, TenantID: f.tenantA, Offset: 1, Limit: 1})
		if err != nil || total != 2 || len(page) != 1 || page[0].TenantID != f.tenantA {
			t.Fatalf("filtered page %+v, %d, %v", page, total, err)
		}
		// An offset that is not a multiple of the limit.
		mid, total, err := admin.List(ctx, deadletter.Query{Offset: 1, Limit: 2})
		if err != nil || total != 4 || len(mid) != 2 || mid[0].ID != all[1].ID || mid[1].ID != all[2].ID {
			t.Fatalf("entries 1 and 2 %+v, %d, %v", mid, total, err)
		}
		empty, total, err := admin.List(ctx, deadletter.Query{Status: deadletter.StatusPending})
		if err != nil || total != 0 || empty == nil || len(empty) != 0 {
			t.Fatalf("empty list %+v, %d, %v", empty, total, err)
		}
		if items, total, err := b.List(ctx, deadletter.Query{}); err != nil || total != 1 || items[0].ID != f.ids["b1"] {
			t.Fatalf("tenant B list %+v, %v", items, err)
		}
		for _, q := range []deadletter.Query{{Limit: -1}, {Offset: -1}, {VerifiedTenant: true}} {
			if _, _, err := admin.List(ctx, q); !errors.Is(err, eventbus.ErrInvalidConfig) {
				t.Fatalf("List(%+v): %v", q, err)
			}
		}
		_, _, err = a.List(ctx, deadletter.Query{TenantID: f.tenantB})
		apiError(t, err, http.StatusForbidden, "forbidden")
		// A topic holding query syntax reaches the server whole, and is refused.
		for _, topic := range []string{"core.user.created&status=pending", "core.user.created#x", "core.user.created%41"} {
			_, _, err := admin.List(ctx, deadletter.Query{Topic: topic})
			if e := apiError(t, err, http.StatusBadRequest, "bad_request"); !strings.Contains(e.Message, strconv.Quote(topic)) {
				t.Fatalf("topic %q: the server saw another: %v", topic, e)
			}
		}
	})

	t.Run("get", func(t *testing.T) {
		e, err := a.Get(ctx, f.ids["a2"])
		if err != nil || e.ID != f.ids["a2"] || e.EventID != f.events["a2"] || e.TenantID != f.tenantA || e.OriginalTopic != f.topicA ||
			e.ConsumerGroup != f.group || e.Status != deadletter.StatusMaxRetriesExceeded || !e.Permanent {
			t.Fatalf("entry %+v, %v", e, err)
		}
		e, err = admin.Get(ctx, f.ids["secret"])
		if err != nil || strings.Contains(string(e.OriginalEvent), secret) || !strings.Contains(string(e.OriginalEvent), dlqhttp.Redacted) {
			t.Fatalf("redacted entry %s, %v", e.OriginalEvent, err)
		}
		// Another tenant's entry is not found, as an unknown one is.
		_, err = b.Get(ctx, f.ids["a2"])
		apiError(t, err, http.StatusNotFound, "not_found")
		if !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("404 is not deadletter.ErrNotFound: %v", err)
		}
		// Odd IDs reach the route whole: the server names the very ID.
		for _, id := range oddNames {
			_, err := admin.Get(ctx, id)
			e := apiError(t, err, http.StatusNotFound, "not_found")
			if want := fmt.Sprintf("no dead-letter entry %q", id); e.Message != want || !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("Get(%q): %v, want %s", id, err, want)
			}
			if got := err.Error(); got != "dlqhttp: 404 not_found: "+e.Message {
				t.Fatalf("Error() = %q", got)
			}
		}
		// No route has an empty ID.
		_, err = admin.Get(ctx, "")
		var ae *dlqhttp.APIError
		if !errors.Is(err, deadletter.ErrNotFound) || errors.As(err, &ae) {
			t.Fatalf("Get(\"\"): %v", err)
		}
	})

	// The rest changes entries.

	t.Run("retry", func(t *testing.T) {
		// An automatic-rule retry of an entry out of retries conflicts.
		err := a.Retry(ctx, f.ids["a2"], deadletter.RetryIfAllowed())
		apiError(t, err, http.StatusConflict, "conflict")
		if !errors.Is(err, deadletter.ErrRetryNotAllowed) || errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("409 is not ErrRetryNotAllowed: %v", err)
		}
		err = b.Retry(ctx, f.ids["a2"])
		if apiError(t, err, http.StatusNotFound, "not_found"); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("retry of another tenant's entry: %v", err)
		}
		for _, id := range oddNames {
			if err := admin.Retry(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("Retry(%q): %v", id, err)
			}
		}
		if err := admin.Retry(ctx, ""); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("Retry(\"\"): %v", err)
		}
		// A manual retry reaches the handler, which now succeeds.
		f.healed.Store(f.events["a2"], true)
		if err := a.Retry(ctx, f.ids["a2"]); err != nil {
			t.Fatal(err)
		}
		if e := f.waitEntry(t, "a2", func(e deadletter.Entry) bool { return e.Status == deadletter.StatusResolved }); e.RetryCount != 1 {
			t.Fatalf("resolved entry %+v", e)
		}
	})

	t.Run("retry topic", func(t *testing.T) {
		// The filter narrows the retry: no entry of topic A is pending.
		if ok, failed, err := admin.RetryAll(ctx, deadletter.Query{Topic: f.topicA, Status: deadletter.StatusPending}); err != nil || ok != 0 || failed != 0 {
			t.Fatalf("retry of topic A's pending entries %d, %d, %v", ok, failed, err)
		}
		// A tenant token may not name another tenant.
		_, _, err := a.RetryAll(ctx, deadletter.Query{Topic: f.topicA, TenantID: f.tenantB})
		apiError(t, err, http.StatusForbidden, "forbidden")
		ok, failed, err := b.RetryAll(ctx, deadletter.Query{Topic: f.topicA})
		if err != nil || ok != 1 || failed != 0 {
			t.Fatalf("tenant B topic retry %d, %d, %v", ok, failed, err)
		}
		// Admin retries every unresolved entry of a topic (a2 is resolved),
		// named by its dlq topic too.
		ok, failed, err = admin.RetryAll(ctx, deadletter.Query{Topic: f.topicA})
		if err != nil || ok != 2 || failed != 0 {
			t.Fatalf("admin topic retry %d, %d, %v", ok, failed, err)
		}
		// A topic with path syntax reaches the route whole, and is refused.
		for _, topic := range append([]string{"dlq." + f.topicA, "core.user/created?x=1#y", "orders"}, oddNames...) {
			_, _, err := admin.RetryAll(ctx, deadletter.Query{Topic: topic})
			if e := apiError(t, err, http.StatusBadRequest, "bad_request"); !strings.Contains(e.Message, strconv.Quote(topic)) {
				t.Fatalf("RetryAll(%q): the server saw another topic: %v", topic, e)
			}
		}
		if _, _, err := admin.RetryAll(ctx, deadletter.Query{}); !errors.Is(err, eventbus.ErrInvalidTopic) {
			t.Fatalf("RetryAll without a topic: %v", err)
		}
		if _, _, err := admin.RetryAll(ctx, deadletter.Query{Topic: f.topicA, Limit: 1}); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Fatalf("RetryAll with a limit: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		err := b.Delete(ctx, f.ids["a3"])
		if apiError(t, err, http.StatusNotFound, "not_found"); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("delete of another tenant's entry: %v", err)
		}
		if err := a.Delete(ctx, f.ids["a3"]); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Get(ctx, f.ids["a3"]); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("deleted entry: %v", err)
		}
		if err := admin.Delete(ctx, f.ids["a3"]); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		for _, id := range append([]string{""}, oddNames...) {
			if err := admin.Delete(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("Delete(%q): %v", id, err)
			}
		}
	})

	t.Run("entries with odd IDs", func(t *testing.T) {
		// Entries of the TypeScript package keep the ID it gave them.
		raw, err := kgo.NewClient(f.bus.Client().KafkaOpts()...)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		for _, id := range oddNames {
			if err := raw.ProduceSync(ctx, typeScriptRecord(f.topicB, id, f.tenantA)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range oddNames {
			var e deadletter.Entry
			for deadline := time.Now().Add(eventbustest.WaitTimeout); ; {
				if e, err = admin.Get(ctx, id); err == nil || !errors.Is(err, deadletter.ErrNotFound) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond) // bounded poll: the view reads the record in the background
			}
			if err != nil || e.ID != id || e.Origin != deadletter.OriginTypeScript || e.OriginalTopic != f.topicB {
				t.Fatalf("Get(%q) = %+v, %v", id, e, err)
			}
			// Never retried automatically: only by hand.
			if err := admin.Retry(ctx, id, deadletter.RetryIfAllowed()); !errors.Is(err, deadletter.ErrRetryNotAllowed) {
				t.Fatalf("automatic retry of %q: %v", id, err)
			}
			if err := admin.Retry(ctx, id); err != nil {
				t.Fatalf("Retry(%q): %v", id, err)
			}
			if e, err := admin.Get(ctx, id); err != nil || e.RetryCount != 1 {
				t.Fatalf("retried entry %q: %+v, %v", id, e, err)
			}
			if err := admin.Delete(ctx, id); err != nil {
				t.Fatalf("Delete(%q): %v", id, err)
			}
			if _, err := admin.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("deleted entry %q: %v", id, err)
			}
		}
	})

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		var ue *url.Error
		if _, err := admin.Stats(ctx, deadletter.Query{}); !errors.Is(err, context.Canceled) || !errors.As(err, &ue) {
			t.Fatalf("canceled: %v", err)
		}
	})

	t.Run("shut down", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, eventbustest.WaitTimeout)
		defer cancel()
		if err := f.bus.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := admin.Stats(ctx, deadletter.Query{})
		if e := apiError(t, err, http.StatusServiceUnavailable, "unavailable"); errors.Unwrap(e) != nil {
			t.Fatalf("503 wraps %v", errors.Unwrap(e))
		}
	})
}

// request is what a recording server saw.
type request struct {
	method, path, query, auth, accept string
}

// recorder is a server that answers every request with status and body,
// and records it.
func recorder(t *testing.T, status int, body string) (*httptest.Server, func() request) {
	t.Helper()
	var (
		mu   sync.Mutex
		last request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = request{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Accept")}
		mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() request {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// TestClientRequests checks the requests the Client sends: method, path
// (with its prefix and escaping), query and headers.
func TestClientRequests(t *testing.T) {
	ctx := t.Context()
	srv, last := recorder(t, http.StatusOK, `{}`)
	c := newClient(t, srv.URL+"/gw/", "token-0123456789abcdef")
	for _, tc := range []struct {
		call func() error
		want request
	}{
		{func() error { _, err := c.Stats(ctx, deadletter.Query{}); return err }, request{method: "GET", path: "/gw/api/dlq/stats"}},
		{func() error { _, err := c.Stats(ctx, deadletter.Query{TenantID: "a&b c"}); return err }, request{method: "GET", path: "/gw/api/dlq/stats", query: "tenantId=a%26b+c"}},
		{func() error {
			_, err := c.Stats(ctx, deadletter.Query{Topic: "core.a.b", Status: deadletter.StatusPending})
			return err
		}, request{method: "GET", path: "/gw/api/dlq/stats", query: "status=pending&topic=core.a.b"}},
		{func() error { _, _, err := c.List(ctx, deadletter.Query{}); return err }, request{method: "GET", path: "/gw/api/dlq/events", query: "page=1&pageSize=100"}},
		{func() error {
			_, _, err := c.List(ctx, deadletter.Query{Topic: "core.a.b", Status: deadletter.StatusPending, TenantID: "t=1", Offset: 5, Limit: 5, Oldest: true})
			return err
		}, request{method: "GET", path: "/gw/api/dlq/events", query: "page=2&pageSize=5&sort=failedAt&status=pending&tenantId=t%3D1&topic=core.a.b"}},
		{func() error { _, err := c.Get(ctx, "a/b?c#d %"); return err }, request{method: "GET", path: "/gw/api/dlq/events/a%2Fb%3Fc%23d%20%25"}},
		{func() error { _, err := c.Get(ctx, ".."); return err }, request{method: "GET", path: "/gw/api/dlq/events/%2E%2E"}},
		{func() error { return c.Retry(ctx, "é") }, request{method: "POST", path: "/gw/api/dlq/events/%C3%A9/retry"}},
		{func() error { return c.Retry(ctx, "x", deadletter.RetryIfAllowed()) }, request{method: "POST", path: "/gw/api/dlq/events/x/retry", query: "manual=false"}},
		{func() error { _, _, err := c.RetryAll(ctx, deadletter.Query{Topic: "core.user/x"}); return err }, request{method: "POST", path: "/gw/api/dlq/retry/topic/core.user%2Fx"}},
		{func() error {
			_, _, err := c.RetryAll(ctx, deadletter.Query{Topic: "core.a.b", Status: deadletter.StatusPending, TenantID: "acme"})
			return err
		}, request{method: "POST", path: "/gw/api/dlq/retry/topic/core.a.b", query: "status=pending&tenantId=acme"}},
		{func() error { return c.Delete(ctx, "./x") }, request{method: "DELETE", path: "/gw/api/dlq/events/.%2Fx"}},
	} {
		if err := tc.call(); err != nil {
			t.Fatalf("%+v: %v", tc.want, err)
		}
		tc.want.auth, tc.want.accept = "Bearer token-0123456789abcdef", "application/json"
		if got := last(); got != tc.want {
			t.Fatalf("request %+v, want %+v", got, tc.want)
		}
	}

	// Without a token, no Authorization; the base may be the API's address.
	for _, base := range []string{srv.URL, srv.URL + "/", srv.URL + "/api/dlq", srv.URL + "/api/dlq/"} {
		if _, err := newClient(t, base, "").Stats(ctx, deadletter.Query{}); err != nil {
			t.Fatal(err)
		}
		if got := last(); got.path != "/api/dlq/stats" || got.auth != "" {
			t.Fatalf("base %s: request %+v", base, got)
		}
	}
}

// TestClientErrors: answers that are not the API's, and no answer at all.
func TestClientErrors(t *testing.T) {
	ctx := t.Context()

	// A proxy's error page.
	srv, _ := recorder(t, http.StatusBadGateway, "\n<html>upstream down</html>\n<body>...</body>\n")
	_, err := newClient(t, srv.URL, "").Stats(ctx, deadletter.Query{})
	var e *dlqhttp.APIError
	if !errors.As(err, &e) || *e != (dlqhttp.APIError{Status: http.StatusBadGateway, Message: "<html>upstream down</html>"}) {
		t.Fatalf("502: %#v", err)
	}
	if got, want := err.Error(), "dlqhttp: 502 Bad Gateway (not the DLQ API's error): <html>upstream down</html>"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	// A 404 that is not the API's is no missing entry.
	srv, _ = recorder(t, http.StatusNotFound, "404 page not found\n")
	if _, err := newClient(t, srv.URL, "").Get(ctx, "x"); !errors.As(err, &e) || e.Code != "" || errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("foreign 404: %v", err)
	}
	// A success that is not the API's JSON.
	srv, _ = recorder(t, http.StatusOK, "<html>hello</html>")
	_, _, err = newClient(t, srv.URL, "").List(ctx, deadletter.Query{})
	var syntax *json.SyntaxError
	if !errors.As(err, &syntax) || !strings.Contains(err.Error(), srv.URL+"/api/dlq/events") {
		t.Fatalf("HTML answer: %v", err)
	}
	srv, _ = recorder(t, http.StatusOK, "")
	if err := newClient(t, srv.URL, "").Retry(ctx, "x"); !errors.As(err, &syntax) {
		t.Fatalf("empty answer: %v", err)
	}

	// Nobody listens: the error names the URL.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = newClient(t, "http://"+addr, "").Stats(ctx, deadletter.Query{})
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "http://"+addr+"/api/dlq/stats") || errors.As(err, &e) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestNewClient(t *testing.T) {
	for _, base := range []string{
		"", "localhost:8080", "127.0.0.1:8080", "ftp://host", "http://", "http:///api/dlq", "http:host",
		"http://user:pass@host", "http://host/?x=1", "http://host/?", "http://host/#top", "http://host/%zz",
	} {
		if c, err := dlqhttp.NewClient(base, "", nil); !errors.Is(err, eventbus.ErrInvalidConfig) || c != nil {
			t.Errorf("NewClient(%q): %v", base, err)
		} else if strings.Contains(err.Error(), "pass@") {
			t.Errorf("NewClient(%q) shows the password: %v", base, err)
		}
	}
	for _, token := range []string{"tok\nen", "token\r", "a\x00b"} {
		if _, err := dlqhttp.NewClient("http://host", token, nil); !errors.Is(err, eventbus.ErrInvalidConfig) || strings.Contains(err.Error(), token) {
			t.Errorf("token %q: %v", token, err)
		}
	}
	for _, base := range []string{"http://host", "https://host:8443/", "http://[::1]:80/a/b", "HTTP://host/api/dlq"} {
		if _, err := dlqhttp.NewClient(base, "a token, with blanks", nil); err != nil {
			t.Errorf("NewClient(%q): %v", base, err)
		}
	}
}

// TestClientListPages: List reads page after page when the offset and limit
// are not one page of the API, and stops at the limit or the end.
func TestClientListPages(t *testing.T) {
	const n = 2*dlqhttp.MaxPageSize + 17
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
		p := dlqhttp.Page{Items: []deadletter.Entry{}, Total: n, Page: page, PageSize: size, TotalPages: (n + size - 1) / size}
		for i := (page - 1) * size; i < min(page*size, n); i++ {
			p.Items = append(p.Items, deadletter.Entry{ID: strconv.Itoa(i)})
		}
		_ = json.NewEncoder(w).Encode(p)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "")
	for _, tc := range []struct {
		offset, limit, from, to int
		requests                int32
	}{
		{0, 0, 0, n, 3},                          // all: every page
		{5, 0, 5, n, 3},                          // all the rest, from inside the first page
		{10, 5, 10, 15, 1},                       // one page of 5 (the third)
		{7, 150, 7, 157, 2},                      // more than a page, off the grid
		{n - 3, 10, n - 3, n, 1},                 // past the end
		{n + 5, 10, n + 5, n + 5, 1},             // wholly past the end
		{dlqhttp.MaxPageSize - 1, 2, 99, 101, 2}, // across two pages
	} {
		requests.Store(0)
		items, total, err := c.List(t.Context(), deadletter.Query{Offset: tc.offset, Limit: tc.limit})
		if err != nil || total != n || len(items) != max(tc.to-tc.from, 0) {
			t.Fatalf("List(offset %d, limit %d): %d items, total %d, %v", tc.offset, tc.limit, len(items), total, err)
		}
		for i, e := range items {
			if e.ID != strconv.Itoa(tc.from+i) {
				t.Fatalf("List(offset %d, limit %d): item %d is %s", tc.offset, tc.limit, i, e.ID)
			}
		}
		if got := requests.Load(); got != tc.requests {
			t.Fatalf("List(offset %d, limit %d): %d requests, want %d", tc.offset, tc.limit, got, tc.requests)
		}
	}
}
