package consoleapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/eventbustest"
)

// sse is one server-sent event.
type sse struct {
	event string
	data  string
}

// tailStream is an open GET /api/tail.
type tailStream struct {
	events chan sse
	cancel context.CancelFunc
}

// openTail opens a tail and waits for its ready event; it fails the test
// unless the answer is 200.
func openTail(t *testing.T, srv *httptest.Server, token string, q url.Values) *tailStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/tail?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &tailStream{events: make(chan sse, 100), cancel: cancel}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.event != "":
				s.events <- ev
				ev = sse{}
			}
		}
	}()
	if first := s.next(t); first.event != "ready" {
		t.Fatalf("first event %+v, want ready", first)
	}
	return s
}

func (s *tailStream) next(t *testing.T) sse {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the tail ended")
		}
		return ev
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("no event from the tail")
	}
	return sse{}
}

// record waits for the next record event.
func (s *tailStream) record(t *testing.T) consoleapi.TailRecord {
	t.Helper()
	for {
		ev := s.next(t)
		if ev.event != "record" {
			continue
		}
		var r consoleapi.TailRecord
		if err := json.Unmarshal([]byte(ev.data), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// TestTail: a tail shows the events published after it started, redacted;
// a tenant token sees its tenant's only; the key, header and text filters
// are applied on the server. Each tail's last expected event is published
// after events it must not show, so receiving it proves those were left out.
func TestTail(t *testing.T) {
	f := newFixture(t)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	other := eventbustest.UniqueTopic(t, "core.user.deleted")
	eventbustest.MustPublish(t, f.bus, topic, 0, eventbus.PublishMetadata{TenantID: "acme"}) // the topic exists; this one is before the tail
	eventbustest.MustPublish(t, f.bus, other, 0, eventbus.PublishMetadata{TenantID: "acme"})

	all := openTail(t, f.srv, adminSec, url.Values{"type": {topic}})
	acme := openTail(t, f.srv, acmeSec, url.Values{"type": {"core."}}) // the fixture's own broker: no other test's events
	byKey := openTail(t, f.srv, adminSec, url.Values{"type": {topic}, "key": {"order-7"}})
	byHeader := openTail(t, f.srv, adminSec, url.Values{"type": {topic}, "header": {"x-source=crm"}})
	byText := openTail(t, f.srv, adminSec, url.Values{"type": {topic}, "text": {"NEEDLE"}})
	probe := openTail(t, f.srv, adminSec, url.Values{"type": {topic}, "text": {"hunter2"}})

	globexID := eventbustest.MustPublish(t, f.bus, topic, map[string]any{"password": "hunter2", "note": "needle"}, eventbus.PublishMetadata{TenantID: "globex"},
		eventbus.WithHeader("x-source", "crm"))
	acmeID := eventbustest.MustPublish(t, f.bus, topic, map[string]any{"n": 1}, eventbus.PublishMetadata{TenantID: "acme"},
		eventbus.WithPartitionKey("order-7"))
	otherID := eventbustest.MustPublish(t, f.bus, other, map[string]any{"n": 2}, eventbus.PublishMetadata{TenantID: "acme"})

	id := func(r consoleapi.TailRecord) string {
		var ev eventbus.RawEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		return ev.ID
	}
	r := all.record(t)
	if id(r) != globexID || r.TenantID != "globex" || strings.Contains(string(r.Value), "hunter2") || !strings.Contains(string(r.Value), "[REDACTED]") {
		t.Errorf("admin's first record %+v, want globex's event with its password redacted", r)
	}
	if r = all.record(t); id(r) != acmeID || r.Key != "order-7" {
		t.Errorf("admin's second record %+v, want acme's", r)
	}
	if r = acme.record(t); id(r) != acmeID {
		t.Errorf("the tenant token's first record is %s, want acme's %s (globex's is not its own)", id(r), acmeID)
	}
	if r = acme.record(t); id(r) != otherID {
		t.Errorf("the tenant token's second record is %s, want %s of the prefix's other topic", id(r), otherID)
	}
	if r = byKey.record(t); id(r) != acmeID {
		t.Errorf("key filter: %s, want %s", id(r), acmeID)
	}
	if r = byHeader.record(t); id(r) != globexID {
		t.Errorf("header filter: %s, want %s", id(r), globexID)
	}
	if r = byText.record(t); id(r) != globexID {
		t.Errorf("text filter: %s, want %s", id(r), globexID)
	}
	// A secret cannot be searched for: the filter sees what is shown.
	marker := eventbustest.MustPublish(t, f.bus, topic, map[string]any{"note": "hunter2 is not shown, but this text is"}, eventbus.PublishMetadata{TenantID: "acme"})
	if r = probe.record(t); id(r) != marker {
		t.Errorf("text filter on a redacted secret matched %s; want only %s, whose text holds it in the open", id(r), marker)
	}
}

func TestTailErrorsAndLimits(t *testing.T) {
	f := newFixture(t)
	for q, want := range map[string]int{
		"type=core.user.create": 400, // not past tense
		"type=dlq.":             400,
		"tenantId=globex":       403,
	} {
		token := adminSec
		if want == 403 {
			token = acmeSec
		}
		if code, _ := f.call(t, "GET", "/api/tail?"+q, token, nil, nil); code != want {
			t.Errorf("?%s: %d, want %d", q, code, want)
		}
	}
	if code, _ := f.call(t, "GET", "/api/tail", "", nil, nil); code != 401 {
		t.Errorf("no token: %d", code)
	}

	// One stream at most: the second is 503 until the first ends.
	tokens, _ := dlqhttp.ParseNamedTokens(adminToken)
	auth, _ := dlqhttp.NewAuthenticator(dlqhttp.Options{Tokens: tokens})
	log, err := audit.Open(context.Background(), f.bus.Client(), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	h, err := consoleapi.New(consoleapi.Options{Auth: auth, Admin: f.adm, Audit: log, KafkaOpts: f.bus.Client().KafkaOpts(), MaxTailStreams: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the tails' cancel (cleanups run last first)
	g := &fixture{srv: srv}
	first := openTail(t, srv, adminSec, nil)
	if code, c := g.call(t, "GET", "/api/tail", adminSec, nil, nil); code != 503 || c != "unavailable" {
		t.Errorf("a second tail: %d %s, want 503", code, c)
	}
	first.cancel()
	eventbustest.Eventually(t, "the first tail's slot to be free", func() error {
		req, _ := http.NewRequest("GET", srv.URL+"/api/tail", nil)
		req.Header.Set("Authorization", "Bearer "+adminSec)
		res, err := srv.Client().Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return &consoleapi.Error{Status: res.StatusCode}
		}
		return nil
	})
}

// TestTailRate: past TailRate events a second, events are counted and
// reported, not sent.
func TestTailRate(t *testing.T) {
	f := newFixture(t)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	eventbustest.MustPublish(t, f.bus, topic, 0, eventbus.PublishMetadata{TenantID: "acme"})
	tokens, _ := dlqhttp.ParseNamedTokens(adminToken)
	auth, _ := dlqhttp.NewAuthenticator(dlqhttp.Options{Tokens: tokens})
	h, err := consoleapi.New(consoleapi.Options{Auth: auth, Admin: f.adm, Audit: f.audit, KafkaOpts: f.bus.Client().KafkaOpts(), TailRate: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the tail's cancel (cleanups run last first)
	s := openTail(t, srv, adminSec, url.Values{"type": {topic}})
	for i := range 4 {
		eventbustest.MustPublish(t, f.bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	records, dropped := 0, 0
	for records+dropped < 4 {
		ev := s.next(t)
		switch ev.event {
		case "record":
			records++
		case "dropped":
			var d struct{ Dropped int }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
				t.Fatal(err)
			}
			dropped += d.Dropped
		}
	}
	if records < 1 || dropped < 1 || records+dropped != 4 {
		t.Errorf("%d sent and %d reported dropped of 4 at 1 a second; want both, adding up to 4", records, dropped)
	}
}
