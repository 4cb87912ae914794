package dlqhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

const (
	adminToken = "admin-0123456789abcdef"
	tokenA     = "tenant-a-0123456789abcdef"
	tokenB     = "tenant-b-0123456789abcdef"
	// namedToken is an admin token named namedAdmin.
	namedToken = "named-0123456789abcdef"
	namedAdmin = "ana"
	// secret is in the payload and a header of one entry; no response may show it.
	secret = "hunter2"
)

// fixture is a bus whose failing handler put four entries in the DLQ, and
// the API on it:
//
//	secret  topicA  tenantA  data {"password":"hunter2","profile":{"apiKey":"k"}}
//	a2      topicA  tenantA
//	b1      topicA  tenantB
//	a3      topicB  tenantA
//
// The handler fails permanently (so every entry is max-retries-exceeded at
// once, with no automatic retries) except for events marked healed.
type fixture struct {
	bus              *eventbus.Bus
	q                *eventbus.DeadLetterQueue
	srv              *httptest.Server
	topicA, topicB   string
	tenantA, tenantB string
	group            string
	ids              map[string]string // fixture name -> dlq ID
	events           map[string]string // fixture name -> event ID
	healed           sync.Map          // event ID -> true: the handler succeeds
	audit            *audit.Log        // the trail the API records to
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// An admin sees every entry of the cluster, so the exact counts below
	// need a broker of this test's own, even when the suite runs on a shared
	// cluster (EVENTBUS_TEST_BROKERS).
	f := serveFixture(t, eventbustest.StartEmbedded(t, embedded.Config{}).Addrs()...)
	f.topicB = eventbustest.UniqueTopic(t, "core.invoice.issued")

	handler := func(_ context.Context, ev eventbus.RawEvent) error {
		if _, ok := f.healed.Load(ev.ID); ok {
			return nil
		}
		return eventbus.Permanent(errors.New("ledger rejected the event"))
	}
	for _, topic := range []string{f.topicA, f.topicB} {
		eventbustest.MustSubscribe(t, f.bus, topic, handler, eventbus.InGroup(f.group))
	}
	publish := func(name, topic, tenant string, data any, opts ...eventbus.PublishOption) {
		id := eventbustest.MustPublish(t, f.bus, topic, data, eventbus.PublishMetadata{TenantID: tenant}, opts...)
		f.events[name], f.ids[name] = id, deadletter.ID(f.group, topic, tenant, id)
	}
	publish("secret", f.topicA, f.tenantA,
		json.RawMessage(`{"password":"`+secret+`","profile":{"apiKey":"k","name":"Ann"}}`),
		eventbus.WithHeader("x-api-key", secret+"-header"))
	publish("a2", f.topicA, f.tenantA, map[string]int{"n": 2})
	publish("b1", f.topicA, f.tenantB, map[string]int{"n": 3})
	publish("a3", f.topicB, f.tenantA, map[string]int{"n": 4})
	for name := range f.ids {
		f.waitEntry(t, name, func(e deadletter.Entry) bool { return e.Status == deadletter.StatusMaxRetriesExceeded })
	}
	return f
}

// serveFixture returns a fixture without entries: a bus on brokers and the
// API on its DLQ, with topicA, the tenants and the group named (not topicB).
func serveFixture(t *testing.T, brokers ...string) *fixture {
	t.Helper()
	f := &fixture{
		bus: eventbustest.NewBus(t, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond}},
			brokers...),
		topicA:  eventbustest.UniqueTopic(t, "core.user.created"),
		tenantA: eventbustest.UniqueID("acme"),
		tenantB: eventbustest.UniqueID("globex"),
		group:   eventbustest.UniqueID("billing"),
		ids:     map[string]string{},
		events:  map[string]string{},
	}
	f.q = f.bus.DLQ()
	var err error
	if f.audit, err = audit.Open(context.Background(), f.bus.Client(), audit.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.audit.Close)
	// This process runs the queue, as eventbus serve does: it owns the
	// entries and applies failures, retries and deletes.
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if err := f.q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := dlqhttp.New(f.q, dlqhttp.Options{
		AdminTokens:  []string{adminToken},
		TenantTokens: map[string]string{tokenA: f.tenantA, tokenB: f.tenantB},
		Tokens:       []dlqhttp.Token{{Name: namedAdmin, Secret: namedToken}},
		Logger:       slog.New(slog.DiscardHandler),
		Audit:        f.audit,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// waitEntry polls the DLQ (bounded) until the named entry satisfies ok.
func (f *fixture) waitEntry(t *testing.T, name string, ok func(deadletter.Entry) bool) deadletter.Entry {
	t.Helper()
	var e deadletter.Entry
	eventbustest.Eventually(t, "dead-letter entry "+name, func() error {
		var err error
		e, err = f.q.Get(context.Background(), f.ids[name])
		if err == nil && ok(e) {
			return nil
		}
		return fmt.Errorf("last state %+v (err %v)", e, err)
	})
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with token ("" for none) and checks that the response
// never shows the secret.
func (f *fixture) do(t *testing.T, method, path, token string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), secret) {
		t.Fatalf("%s %s shows the secret: %s", method, path, body)
	}
	return response{res.StatusCode, res.Header, body}
}

// want checks the status and decodes the body into v (unless nil).
func (r response) want(t *testing.T, status int, v any) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
	return r
}

// wantError checks an error response's status and code.
func (r response) wantError(t *testing.T, status int, code string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	r.want(t, status, &body)
	if body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("error body %s, want code %s and a message", r.body, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
}

func (f *fixture) list(t *testing.T, query, token string) dlqhttp.Page {
	t.Helper()
	var p dlqhttp.Page
	f.do(t, "GET", "/api/dlq/events"+query, token).want(t, http.StatusOK, &p)
	return p
}

func ids(p dlqhttp.Page) map[string]bool {
	m := map[string]bool{}
	for _, e := range p.Items {
		m[e.ID] = true
	}
	return m
}

func TestAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("auth", func(t *testing.T) {
		for _, tok := range []string{"", "wrong-token", adminToken + "x"} {
			r := f.do(t, "GET", "/api/dlq/stats", tok)
			r.wantError(t, http.StatusUnauthorized, "unauthorized")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		}
		for _, path := range []string{"/api/dlq/events", "/api/dlq/events/" + f.ids["a2"]} {
			f.do(t, "GET", path, "").wantError(t, http.StatusUnauthorized, "unauthorized")
		}
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry", "").wantError(t, http.StatusUnauthorized, "unauthorized")
		f.do(t, "DELETE", "/api/dlq/events/"+f.ids["a2"], "nope").wantError(t, http.StatusUnauthorized, "unauthorized")
		f.do(t, "POST", "/api/dlq/retry/topic/"+f.topicA, "").wantError(t, http.StatusUnauthorized, "unauthorized")
		// Basic auth is not bearer auth.
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/dlq/stats", nil)
		req.SetBasicAuth("admin", adminToken)
		res, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("basic auth: %d", res.StatusCode)
		}
		// Unknown methods on known paths: the mux's 405.
		if r := f.do(t, "PUT", "/api/dlq/stats", adminToken); r.status != http.StatusMethodNotAllowed {
			t.Fatalf("PUT stats: %d", r.status)
		}
	})

	t.Run("stats", func(t *testing.T) {
		var s deadletter.Stats
		f.do(t, "GET", "/api/dlq/stats", adminToken).want(t, http.StatusOK, &s)
		if s.Total != 4 || s.ByTopic[f.topicA] != 3 || s.ByTopic[f.topicB] != 1 ||
			s.ByStatus["max-retries-exceeded"] != 4 || s.ByStatus["pending"] != 0 || s.ByReason["permanent: ledger rejected the event"] != 4 {
			t.Fatalf("admin stats %+v", s)
		}
		s = deadletter.Stats{} // Unmarshal merges into existing maps
		f.do(t, "GET", "/api/dlq/stats", tokenA).want(t, http.StatusOK, &s)
		if s.Total != 3 || s.ByTopic[f.topicA] != 2 || s.ByTopic[f.topicB] != 1 || s.ByStatus["max-retries-exceeded"] != 3 || len(s.ByStatus) != 4 {
			t.Fatalf("tenant A stats %+v", s)
		}
		s = deadletter.Stats{}
		f.do(t, "GET", "/api/dlq/stats", tokenB).want(t, http.StatusOK, &s)
		if s.Total != 1 || s.ByTopic[f.topicA] != 1 || len(s.ByTopic) != 1 {
			t.Fatalf("tenant B stats %+v", s)
		}
		s = deadletter.Stats{}
		f.do(t, "GET", "/api/dlq/stats?tenantId="+f.tenantB, adminToken).want(t, http.StatusOK, &s)
		if s.Total != 1 {
			t.Fatalf("admin stats of tenant B %+v", s)
		}
		f.do(t, "GET", "/api/dlq/stats?tenantId="+f.tenantB, tokenA).wantError(t, http.StatusForbidden, "forbidden")
	})

	t.Run("list", func(t *testing.T) {
		p := f.list(t, "", adminToken)
		if p.Total != 4 || len(p.Items) != 4 || p.Page != 1 || p.PageSize != 20 || p.TotalPages != 1 {
			t.Fatalf("list %+v", p)
		}
		for i := 1; i < len(p.Items); i++ {
			if p.Items[i].FailedAt.After(p.Items[i-1].FailedAt) {
				t.Fatalf("not newest first: %v", p.Items)
			}
		}
		asc := f.list(t, "?sort=failedAt", adminToken)
		for i := 1; i < len(asc.Items); i++ {
			if asc.Items[i].FailedAt.Before(asc.Items[i-1].FailedAt) {
				t.Fatalf("not oldest first: %v", asc.Items)
			}
		}
		if desc := f.list(t, "?sort=-failedAt", adminToken); desc.Items[0].ID != p.Items[0].ID {
			t.Fatalf("sort=-failedAt differs from the default")
		}

		if p := f.list(t, "?topic="+f.topicA, adminToken); p.Total != 3 {
			t.Fatalf("topic A: %+v", p)
		}
		if p := f.list(t, "?topic="+f.topicB+"&tenantId="+f.tenantA, adminToken); p.Total != 1 || p.Items[0].ID != f.ids["a3"] {
			t.Fatalf("topic B, tenant A: %+v", p)
		}
		if p := f.list(t, "?status=max-retries-exceeded", adminToken); p.Total != 4 {
			t.Fatalf("status filter: %+v", p)
		}
		if p := f.list(t, "?status=pending", adminToken); p.Total != 0 || p.Items == nil || p.TotalPages != 0 {
			t.Fatalf("empty list: %+v", p)
		}

		// Paging.
		seen := map[string]bool{}
		for n := 1; n <= 2; n++ {
			p := f.list(t, fmt.Sprintf("?pageSize=3&page=%d", n), adminToken)
			if p.Total != 4 || p.TotalPages != 2 || p.Page != n || p.PageSize != 3 {
				t.Fatalf("page %d: %+v", n, p)
			}
			if want := []int{3, 1}[n-1]; len(p.Items) != want {
				t.Fatalf("page %d has %d items, want %d", n, len(p.Items), want)
			}
			for _, e := range p.Items {
				if seen[e.ID] {
					t.Fatalf("entry %s on two pages", e.ID)
				}
				seen[e.ID] = true
			}
		}
		if p := f.list(t, "?pageSize=3&page=3", adminToken); len(p.Items) != 0 || p.Total != 4 {
			t.Fatalf("past the last page: %+v", p)
		}
		if p := f.list(t, "?pageSize=100&page=9223372036854775807", adminToken); len(p.Items) != 0 {
			t.Fatalf("huge page: %+v", p)
		}

		// Tenant tokens see their tenant only.
		a := f.list(t, "", tokenA)
		if a.Total != 3 || !ids(a)[f.ids["secret"]] || !ids(a)[f.ids["a2"]] || !ids(a)[f.ids["a3"]] {
			t.Fatalf("tenant A list %+v", a)
		}
		for _, e := range a.Items {
			if e.TenantID != f.tenantA {
				t.Fatalf("tenant A sees %+v", e)
			}
		}
		if b := f.list(t, "?topic="+f.topicA, tokenB); b.Total != 1 || b.Items[0].ID != f.ids["b1"] {
			t.Fatalf("tenant B list %+v", b)
		}
		if a := f.list(t, "?tenantId="+f.tenantA, tokenA); a.Total != 3 {
			t.Fatalf("tenant A asking for itself: %+v", a)
		}
		f.do(t, "GET", "/api/dlq/events?tenantId="+f.tenantB, tokenA).wantError(t, http.StatusForbidden, "forbidden")
	})

	t.Run("bad input", func(t *testing.T) {
		for _, q := range []string{
			"page=0", "page=-1", "page=x", "page=1.5", "pageSize=0", "pageSize=101", "pageSize=x",
			"status=broken", "status=PENDING", "topic=orders", "topic=core.user.create", "topic=dlq." + f.topicA,
			"sort=name", "sort=failedat",
		} {
			f.do(t, "GET", "/api/dlq/events?"+q, adminToken).wantError(t, http.StatusBadRequest, "bad_request")
		}
		for _, topic := range []string{"orders", "core.user.create", "dlq." + f.topicA} {
			f.do(t, "POST", "/api/dlq/retry/topic/"+topic, adminToken).wantError(t, http.StatusBadRequest, "bad_request")
			f.do(t, "POST", "/api/dlq/retry/topic/"+topic, tokenA).wantError(t, http.StatusBadRequest, "bad_request")
		}
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry?manual=maybe", adminToken).wantError(t, http.StatusBadRequest, "bad_request")
	})

	t.Run("get", func(t *testing.T) {
		var e deadletter.Entry
		f.do(t, "GET", "/api/dlq/events/"+f.ids["a2"], adminToken).want(t, http.StatusOK, &e)
		if e.ID != f.ids["a2"] || e.EventID != f.events["a2"] || e.TenantID != f.tenantA || e.OriginalTopic != f.topicA ||
			e.ConsumerGroup != f.group || e.Status != deadletter.StatusMaxRetriesExceeded || !e.Permanent {
			t.Fatalf("entry %+v", e)
		}
		f.do(t, "GET", "/api/dlq/events/"+f.ids["a2"], tokenA).want(t, http.StatusOK, &e)
		f.do(t, "GET", "/api/dlq/events/"+f.ids["b1"], tokenB).want(t, http.StatusOK, &e)
		f.do(t, "GET", "/api/dlq/events/"+f.ids["b1"], tokenA).wantError(t, http.StatusNotFound, "not_found")
		f.do(t, "GET", "/api/dlq/events/"+f.ids["a2"], tokenB).wantError(t, http.StatusNotFound, "not_found")
	})

	t.Run("unknown id", func(t *testing.T) {
		for _, tok := range []string{adminToken, tokenA} {
			f.do(t, "GET", "/api/dlq/events/nope", tok).wantError(t, http.StatusNotFound, "not_found")
			f.do(t, "POST", "/api/dlq/events/nope/retry", tok).wantError(t, http.StatusNotFound, "not_found")
			f.do(t, "POST", "/api/dlq/events/nope/retry?manual=false", tok).wantError(t, http.StatusNotFound, "not_found")
			f.do(t, "DELETE", "/api/dlq/events/nope", tok).wantError(t, http.StatusNotFound, "not_found")
		}
	})

	t.Run("redaction", func(t *testing.T) {
		// Every response above went through do, which fails on the secret;
		// here the redacted entry itself is checked.
		var e deadletter.Entry
		f.do(t, "GET", "/api/dlq/events/"+f.ids["secret"], tokenA).want(t, http.StatusOK, &e)
		var ev struct {
			Data struct {
				Password string
				Profile  struct{ APIKey, Name string }
			}
		}
		if err := json.Unmarshal(e.OriginalEvent, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.Password != dlqhttp.Redacted || ev.Data.Profile.APIKey != dlqhttp.Redacted || ev.Data.Profile.Name != "Ann" {
			t.Fatalf("original event shown as %s", e.OriginalEvent)
		}
		var header string
		for _, h := range e.OriginalHeaders {
			if h.Key == "x-api-key" {
				header = h.Value
			}
		}
		if header != dlqhttp.Redacted {
			t.Fatalf("headers shown as %+v", e.OriginalHeaders)
		}
		// The stored entry keeps the secret (a retry sends the original).
		stored, err := f.q.Get(context.Background(), f.ids["secret"])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(stored.OriginalEvent), `"password":"`+secret+`"`) || !strings.Contains(string(stored.OriginalEvent), `"apiKey":"k"`) {
			t.Fatalf("stored entry changed: %s", stored.OriginalEvent)
		}
		found := false
		for _, h := range stored.OriginalHeaders {
			found = found || (h.Key == "x-api-key" && h.Value == secret+"-header")
		}
		if !found {
			t.Fatalf("stored headers changed: %+v", stored.OriginalHeaders)
		}
		// Lists are redacted too.
		f.list(t, "?topic="+f.topicA, adminToken)
	})

	// The rest changes entries.

	t.Run("retry", func(t *testing.T) {
		// An automatic-rule retry of an entry out of retries conflicts.
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry?manual=false", adminToken).wantError(t, http.StatusConflict, "conflict")
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry?manual=false", tokenA).wantError(t, http.StatusConflict, "conflict")
		// Another tenant's entry is not found (as if it did not exist), and is not retried.
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry", tokenB).wantError(t, http.StatusNotFound, "not_found")
		if e, _ := f.q.Get(context.Background(), f.ids["a2"]); e.RetryCount != 0 {
			t.Fatalf("forbidden retry was sent: %+v", e)
		}
		// A manual retry reaches the handler, which now succeeds.
		f.healed.Store(f.events["a2"], true)
		var body map[string]string
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry", tokenA).want(t, http.StatusAccepted, &body)
		if body["id"] != f.ids["a2"] || body["status"] != "retrying" || len(body) != 2 {
			t.Fatalf("retry body %v", body)
		}
		e := f.waitEntry(t, "a2", func(e deadletter.Entry) bool { return e.Status == deadletter.StatusResolved })
		if e.RetryCount != 1 {
			t.Fatalf("resolved entry %+v", e)
		}
		// A resolved entry also refuses an automatic-rule retry.
		f.do(t, "POST", "/api/dlq/events/"+f.ids["a2"]+"/retry?manual=false", adminToken).wantError(t, http.StatusConflict, "conflict")
	})

	t.Run("retry topic", func(t *testing.T) {
		// Tenant B retries its entries of topic A only: b1, not A's secret.
		var got struct{ Succeeded, Failed int }
		f.do(t, "POST", "/api/dlq/retry/topic/"+f.topicA, tokenB).want(t, http.StatusOK, &got)
		if got.Succeeded != 1 || got.Failed != 0 {
			t.Fatalf("tenant B topic retry %+v", got)
		}
		if e, _ := f.q.Get(context.Background(), f.ids["b1"]); e.RetryCount != 1 {
			t.Fatalf("b1 not retried: %+v", e)
		}
		if e, _ := f.q.Get(context.Background(), f.ids["secret"]); e.RetryCount != 0 {
			t.Fatalf("tenant B retried tenant A's entry: %+v", e)
		}
		// A tenant without entries on a topic retries nothing.
		f.do(t, "POST", "/api/dlq/retry/topic/"+f.topicB, tokenB).want(t, http.StatusOK, &got)
		if got.Succeeded != 0 || got.Failed != 0 {
			t.Fatalf("tenant B on topic B %+v", got)
		}
		// Admin retries every unresolved entry of a topic (a2 is resolved).
		f.do(t, "POST", "/api/dlq/retry/topic/"+f.topicA, adminToken).want(t, http.StatusOK, &got)
		if got.Succeeded != 2 || got.Failed != 0 {
			t.Fatalf("admin topic retry %+v", got)
		}
		if e, _ := f.q.Get(context.Background(), f.ids["secret"]); e.RetryCount != 1 {
			t.Fatalf("admin retry skipped an entry: %+v", e)
		}
	})

	t.Run("delete", func(t *testing.T) {
		f.do(t, "DELETE", "/api/dlq/events/"+f.ids["a3"], tokenB).wantError(t, http.StatusNotFound, "not_found")
		r := f.do(t, "DELETE", "/api/dlq/events/"+f.ids["a3"], tokenA).want(t, http.StatusNoContent, nil)
		if len(r.body) != 0 {
			t.Fatalf("204 with a body: %s", r.body)
		}
		if _, err := f.q.Get(context.Background(), f.ids["a3"]); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("deleted entry: %v", err)
		}
		f.do(t, "GET", "/api/dlq/events/"+f.ids["a3"], adminToken).wantError(t, http.StatusNotFound, "not_found")
		f.do(t, "DELETE", "/api/dlq/events/"+f.ids["a3"], adminToken).wantError(t, http.StatusNotFound, "not_found")
		f.do(t, "DELETE", "/api/dlq/events/"+f.ids["b1"], adminToken).want(t, http.StatusNoContent, nil)
		var s deadletter.Stats
		f.do(t, "GET", "/api/dlq/stats", adminToken).want(t, http.StatusOK, &s)
		if s.Total != 2 {
			t.Fatalf("stats after two deletes %+v", s)
		}
	})

	t.Run("shut down", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
		defer cancel()
		if err := f.bus.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		r := f.do(t, "GET", "/api/dlq/stats", adminToken)
		r.wantError(t, http.StatusServiceUnavailable, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	})
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	quiet := slog.New(slog.DiscardHandler)
	if _, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{Logger: quiet}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("no tokens: %v", err)
	}
	if _, err := dlqhttp.New(nil, dlqhttp.Options{AdminTokens: []string{adminToken}}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("nil queue: %v", err)
	}
	admin, tenants, err := dlqhttp.ParseTokens(adminToken + "," + tokenA + "=tenant:acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{AdminTokens: admin, TenantTokens: tenants, Logger: quiet}); err != nil {
		t.Fatal(err)
	}

	// Local development: no tokens at all.
	h, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{AllowUnauthenticated: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/dlq/stats", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("unauthenticated stats: %d %s", rec.Code, rec.Body)
	}

	// Custom topic rules: an action the default rules refuse, allowed by
	// the rules of the queue's bus.
	rules, err := topic.NewRules("sync")
	if err != nil {
		t.Fatal(err)
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: eventbustest.Brokers(t), TopicRules: rules})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	for _, tc := range []struct {
		bus  *eventbus.Bus
		want int
	}{{bus, http.StatusBadRequest}, {eventbustest.NewBusOn(t, client, eventbus.Config{}), http.StatusOK}} {
		h, err := dlqhttp.New(tc.bus.DLQ(), dlqhttp.Options{AdminTokens: []string{adminToken}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/dlq/events?topic=core.crm.sync", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Fatalf("topic rules of the bus: %d %s, want %d", rec.Code, rec.Body, tc.want)
		}
	}
}
