package dlqhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

// TestAPIMalformedAndTextSecrets checks the entries a tenant token cannot
// be trusted with and the secrets hidden in free text:
//
//	failing    tenant A  a handler error whose text holds the secret
//	truncated  header tenant-id: A, bytes {"password":"hunter2","user":"bob"
//	form       no headers, bytes user=bob&password=hunter2
//	notevent   header tenant-id: A, valid JSON that is no event
//
// The three malformed records have no known tenant (a header is only a
// claim, unchecked against bytes that are not an event): tenant tokens
// never see them, not even that they exist; admins see them redacted.
// Every response goes through fixture.do, which fails on the secret.
func TestAPIMalformedAndTextSecrets(t *testing.T) {
	t.Parallel()
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	f := serveFixture(t, broker.Addrs()...)

	handler := func(context.Context, eventbus.RawEvent) error {
		return eventbus.Permanent(fmt.Errorf("POST https://bob:%s@auth.example.com/login?client_secret=%s failed: Authorization: Bearer %s", secret, secret, secret))
	}
	eventbustest.MustSubscribe(t, f.bus, f.topicA, handler, eventbus.InGroup(f.group))
	id := eventbustest.MustPublish(t, f.bus, f.topicA, map[string]int{"n": 1}, eventbus.PublishMetadata{TenantID: f.tenantA})
	f.ids["failing"] = deadletter.ID(f.group, f.topicA, f.tenantA, id)

	raw, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	claimA := []kgo.RecordHeader{{Key: "tenant-id", Value: []byte(f.tenantA)}}
	records := map[string]*kgo.Record{
		"truncated": {Value: []byte(`{"password":"` + secret + `","user":"bob"`), Headers: claimA},
		"form":      {Value: []byte("user=bob&password=" + secret)},
		"notevent":  {Value: []byte(`{"tenantId":"` + f.tenantA + `","password":"` + secret + `"}`), Headers: claimA},
	}
	for _, r := range records {
		r.Topic = f.topicA
		if err := raw.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the four entries, and name the malformed ones by their bytes.
	eventbustest.Eventually(t, "the four entries", func() error {
		all, _, err := f.q.List(context.Background(), deadletter.Query{Topic: f.topicA, Status: deadletter.StatusMaxRetriesExceeded})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			for name, r := range records {
				var s string
				if string(e.OriginalEvent) == string(r.Value) || (json.Unmarshal(e.OriginalEvent, &s) == nil && s == string(r.Value)) {
					f.ids[name] = e.ID
				}
			}
		}
		if len(all) == 4 && len(f.ids) == 4 {
			return nil
		}
		return fmt.Errorf("entries %+v, named %v", all, f.ids)
	})
	if e, _ := f.q.Get(context.Background(), f.ids["truncated"]); e.TenantID != f.tenantA {
		t.Fatalf("the malformed record's claimed tenant is not kept: %+v", e)
	}

	t.Run("admin sees every entry, redacted", func(t *testing.T) {
		if p := f.list(t, "", adminToken); p.Total != 4 {
			t.Fatalf("admin list %+v", p)
		}
		want := map[string]string{
			"truncated": `{"password":"[REDACTED]","user":"bob"`,
			"form":      "user=bob&password=[REDACTED]",
		}
		for name, text := range want {
			var e deadletter.Entry
			f.do(t, "GET", "/api/dlq/events/"+f.ids[name], adminToken).want(t, http.StatusOK, &e)
			var s string
			if err := json.Unmarshal(e.OriginalEvent, &s); err != nil || s != text {
				t.Fatalf("%s shown as %s, want the string %s", name, e.OriginalEvent, text)
			}
			if !strings.HasPrefix(e.FailureReason, deadletter.ReasonMalformed) {
				t.Fatalf("%s: reason %q", name, e.FailureReason)
			}
		}
		var e deadletter.Entry
		f.do(t, "GET", "/api/dlq/events/"+f.ids["notevent"], adminToken).want(t, http.StatusOK, &e)
		if !strings.Contains(string(e.OriginalEvent), `"password":"[REDACTED]"`) {
			t.Fatalf("notevent shown as %s", e.OriginalEvent)
		}
		f.do(t, "GET", "/api/dlq/events/"+f.ids["failing"], adminToken).want(t, http.StatusOK, &e)
		want0 := "permanent: POST https://[REDACTED]@auth.example.com/login?client_secret=[REDACTED] failed: Authorization: [REDACTED]"
		if e.FailureReason != want0 || len(e.Attempts) == 0 || e.Attempts[0].Error != want0 {
			t.Fatalf("failure shown as %q, attempts %+v", e.FailureReason, e.Attempts)
		}
		var s deadletter.Stats
		f.do(t, "GET", "/api/dlq/stats", adminToken).want(t, http.StatusOK, &s)
		if s.Total != 4 || s.ByTopic[f.topicA] != 4 {
			t.Fatalf("admin stats %+v", s)
		}
		// The stored entries keep their bytes: a manual retry sends the original.
		stored, err := f.q.Get(context.Background(), f.ids["form"])
		if err != nil || !strings.Contains(string(stored.OriginalEvent), secret) {
			t.Fatalf("stored entry %s (%v)", stored.OriginalEvent, err)
		}
	})

	t.Run("tenant tokens never see an entry without a known tenant", func(t *testing.T) {
		a := f.list(t, "", tokenA)
		if a.Total != 1 || len(a.Items) != 1 || a.Items[0].ID != f.ids["failing"] {
			t.Fatalf("tenant A list %+v", a)
		}
		if a := f.list(t, "?topic="+f.topicA+"&tenantId="+f.tenantA, tokenA); a.Total != 1 {
			t.Fatalf("tenant A list of its topic %+v", a)
		}
		if b := f.list(t, "", tokenB); b.Total != 0 {
			t.Fatalf("tenant B list %+v", b)
		}
		var s deadletter.Stats
		f.do(t, "GET", "/api/dlq/stats", tokenA).want(t, http.StatusOK, &s)
		if s.Total != 1 || s.ByTopic[f.topicA] != 1 || s.ByStatus["max-retries-exceeded"] != 1 || len(s.ByReason) != 1 {
			t.Fatalf("tenant A stats %+v", s)
		}
		for _, name := range []string{"truncated", "form", "notevent"} {
			for _, tok := range []string{tokenA, tokenB} {
				// Exactly the answer to an ID that does not exist.
				f.do(t, "GET", "/api/dlq/events/"+f.ids[name], tok).wantError(t, http.StatusNotFound, "not_found")
				f.do(t, "POST", "/api/dlq/events/"+f.ids[name]+"/retry", tok).wantError(t, http.StatusNotFound, "not_found")
				f.do(t, "DELETE", "/api/dlq/events/"+f.ids[name], tok).wantError(t, http.StatusNotFound, "not_found")
			}
		}
		// Another tenant's entry is not found either.
		f.do(t, "GET", "/api/dlq/events/"+f.ids["failing"], tokenB).wantError(t, http.StatusNotFound, "not_found")
		f.do(t, "POST", "/api/dlq/events/"+f.ids["failing"]+"/retry", tokenB).wantError(t, http.StatusNotFound, "not_found")
		f.do(t, "DELETE", "/api/dlq/events/"+f.ids["failing"], tokenB).wantError(t, http.StatusNotFound, "not_found")
		// A topic retry by tenant A retries its own entry only.
		var got struct{ Succeeded, Failed int }
		f.do(t, "POST", "/api/dlq/retry/topic/"+f.topicA, tokenA).want(t, http.StatusOK, &got)
		if got.Succeeded != 1 || got.Failed != 0 {
			t.Fatalf("tenant A topic retry %+v", got)
		}
		for _, name := range []string{"truncated", "form", "notevent"} {
			e, err := f.q.Get(context.Background(), f.ids[name])
			if err != nil || e.RetryCount != 0 {
				t.Fatalf("%s after the tenant's requests: %+v (%v)", name, e, err)
			}
		}
		if e, _ := f.q.Get(context.Background(), f.ids["failing"]); e.RetryCount != 1 {
			t.Fatalf("failing not retried: %+v", e)
		}
		// An admin still deletes a malformed entry.
		f.do(t, "DELETE", "/api/dlq/events/"+f.ids["form"], adminToken).want(t, http.StatusNoContent, nil)
		if _, err := f.q.Get(context.Background(), f.ids["form"]); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("deleted entry: %v", err)
		}
	})
}
