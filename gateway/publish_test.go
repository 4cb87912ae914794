package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// orderData is the data of the events below, as a Go publisher has it.
type orderData struct {
	A int    `json:"a"`
	B string `json:"b"`
}

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// libraryPublish publishes what the gateway was asked to, from Go, with
// the same trace context.
func libraryPublish(t *testing.T, bus *eventbus.Bus, topic, id string, ts time.Time) {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(http.Header{"Traceparent": {traceparent}}))
	_, err := bus.Publish(ctx, topic, orderData{A: 1, B: "x<y"}, eventbus.PublishMetadata{
		TenantID: "acme", WorkspaceID: "ws-1", Source: "crm", UserID: "u-7",
		CorrelationID: "corr-1", CausationID: "cause-0", Version: "2.0",
	}, eventbus.WithEventID(id), eventbus.WithTimestamp(ts), eventbus.WithPartitionKey("order-9"))
	if err != nil {
		t.Fatalf("library publish: %v", err)
	}
}

// TestPublishWritesWhatTheLibraryWrites publishes the same event through
// the gateway in each accepted form and through the Go library, and
// compares the records read back: key, value and headers byte for byte.
func TestPublishWritesWhatTheLibraryWrites(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	ts := time.Date(2026, 11, 27, 17, 6, 55, 916_000_000, time.UTC)
	data := `{ "a": 1, "b": "x<y" }`
	envelope := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"type":%q,"tenantId":"acme","workspaceId":"ws-1","timestamp":"2026-11-27T17:06:55.916Z","data":%s,
			"metadata":{"source":"crm","userId":"u-7","correlationId":"corr-1","causationId":"cause-0","version":"2.0"},"partitionKey":"order-9"}`, id, topic, data)
	}
	cloudEvent := func(id string) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":%q,"source":"crm","time":"2026-11-27T17:06:55.916Z","datacontenttype":"application/json",
			"tenantid":"acme","workspaceid":"ws-1","userid":"u-7","correlationid":"corr-1","causationid":"cause-0","eventversion":"2.0","partitionkey":"order-9","data":%s}`, id, topic, data)
	}
	cases := []struct {
		name    string
		path    string
		body    func(id string) string
		headers func(id string) map[string]string
	}{
		{"envelope", "/api/events", envelope, func(string) map[string]string {
			return map[string]string{"Content-Type": "application/json"}
		}},
		{"binary CloudEvent", "/api/events", func(string) string { return data }, func(id string) map[string]string {
			return map[string]string{"Content-Type": "application/json; charset=utf-8", "ce-specversion": "1.0", "ce-id": id, "ce-type": topic,
				"ce-source": "crm", "ce-time": "2026-11-27T17:06:55.916Z", "ce-tenantid": "acme", "ce-workspaceid": "ws-1", "ce-userid": "u-7",
				"ce-correlationid": "corr-1", "ce-causationid": "cause-0", "ce-eventversion": "2.0", "ce-partitionkey": "order-9"}
		}},
		{"structured CloudEvent", "/api/events", cloudEvent, func(string) map[string]string {
			return map[string]string{"Content-Type": "application/cloudevents+json"}
		}},
		{"batch of envelopes", "/api/events/batch", func(id string) string { return "[" + envelope(id) + "]" }, func(string) map[string]string {
			return map[string]string{"Content-Type": "application/json"}
		}},
		{"batch of CloudEvents", "/api/events/batch", func(id string) string { return "[" + cloudEvent(id) + "]" }, func(string) map[string]string {
			return map[string]string{"Content-Type": "application/cloudevents-batch+json"}
		}},
	}
	ids := map[string]string{}
	for _, c := range cases {
		id := eventbustest.UniqueID("ev")
		ids[id] = c.name
		h := c.headers(id)
		h["traceparent"] = traceparent
		a := f.post(c.path, c.body(id), h)
		if a.Status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.name, a.Status, a.Raw)
		}
		if !strings.Contains(a.Raw, id) {
			t.Fatalf("%s: the answer %s does not name the event's id %s", c.name, a.Raw, id)
		}
		libraryPublish(t, f.bus, topic, id, ts)
	}
	byID := map[string][]*kgo.Record{}
	for _, r := range records(t, f.brokers, topic, 2*len(cases)) {
		id := header(r, "event-id")
		byID[id] = append(byID[id], r)
	}
	for id, name := range ids {
		rs := byID[id]
		if len(rs) != 2 {
			t.Fatalf("%s: %d records with event id %s, want 2 (the gateway's and the library's)", name, len(rs), id)
		}
		gw, lib := rs[0], rs[1]
		if !bytes.Equal(gw.Key, lib.Key) || !bytes.Equal(gw.Value, lib.Value) || gw.Partition != lib.Partition {
			t.Errorf("%s: the gateway wrote key %q value %s (partition %d)\nthe library wrote key %q value %s (partition %d)",
				name, gw.Key, gw.Value, gw.Partition, lib.Key, lib.Value, lib.Partition)
		}
		if fmt.Sprint(gw.Headers) != fmt.Sprint(lib.Headers) {
			t.Errorf("%s: headers differ:\ngateway %v\nlibrary %v", name, gw.Headers, lib.Headers)
		}
		if got := header(gw, "traceparent"); got != traceparent {
			t.Errorf("%s: traceparent header %q, want the caller's %q", name, got, traceparent)
		}
	}
}

// TestPublishRejectsBadInput checks that each bad request gets its status
// and sentinel, and that none publishes anything.
func TestPublishRejectsBadInput(t *testing.T) {
	f := newFixture(t, gateway.Config{MaxBodyBytes: 2 << 20}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	jsonCT := map[string]string{"Content-Type": "application/json"}
	ev := func(tenant string) string {
		return fmt.Sprintf(`{"type":%q,"tenantId":%q,"data":{"n":1}}`, topic, tenant)
	}
	big := strings.Repeat("x", 1_100_000)
	many := make([]string, eventbus.MaxBatchSize+1)
	for i := range many {
		many[i] = ev("acme")
	}
	cases := []struct {
		name, path, body string
		headers          map[string]string
		status           int
		sentinel         string
	}{
		{"bad topic", "/api/events", `{"type":"core.order.place","tenantId":"acme","data":{}}`, jsonCT, 400, "ErrInvalidTopic"},
		{"no tenant", "/api/events", ev(""), jsonCT, 400, "ErrTenantRequired"},
		{"bad tenant", "/api/events", ev("ac.me"), jsonCT, 400, "ErrInvalidTenantID"},
		{"malformed JSON", "/api/events", `{"type":`, jsonCT, 400, "ErrBadRequest"},
		{"misspelt field", "/api/events", fmt.Sprintf(`{"type":%q,"tenantID":"acme","data":{}}`, topic), jsonCT, 400, "ErrBadRequest"},
		{"empty body", "/api/events", ``, jsonCT, 400, "ErrBadRequest"},
		{"wrong content type", "/api/events", ev("acme"), map[string]string{"Content-Type": "text/plain"}, 415, "ErrUnsupportedMediaType"},
		{"no content type", "/api/events", ev("acme"), map[string]string{"Content-Type": ""}, 415, "ErrUnsupportedMediaType"},
		{"event too large", "/api/events", fmt.Sprintf(`{"type":%q,"tenantId":"acme","data":%q}`, topic, big), jsonCT, 413, "ErrEventTooLarge"},
		{"body too large", "/api/events", fmt.Sprintf(`{"type":%q,"tenantId":"acme","data":%q}`, topic, big+big), jsonCT, 413, "ErrBodyTooLarge"},
		{"batch too large", "/api/events/batch", "[" + strings.Join(many, ",") + "]", jsonCT, 413, "ErrBatchTooLarge"},
		{"batch with one bad event", "/api/events/batch", "[" + ev("acme") + "," + ev("") + "]", jsonCT, 400, "ErrTenantRequired"},
		{"batch not an array", "/api/events/batch", ev("acme"), jsonCT, 400, "ErrBadRequest"},
		{"CloudEvent without id", "/api/events", fmt.Sprintf(`{"specversion":"1.0","type":%q,"source":"crm","tenantid":"acme"}`, topic),
			map[string]string{"Content-Type": "application/cloudevents+json"}, 400, "ErrBadRequest"},
		{"CloudEvent of another version", "/api/events", fmt.Sprintf(`{"specversion":"0.3","id":"1","type":%q,"source":"crm","tenantid":"acme"}`, topic),
			map[string]string{"Content-Type": "application/cloudevents+json"}, 400, "ErrBadRequest"},
		{"CloudEvent with base64 data", "/api/events", fmt.Sprintf(`{"specversion":"1.0","id":"1","type":%q,"source":"crm","tenantid":"acme","data_base64":"AA=="}`, topic),
			map[string]string{"Content-Type": "application/cloudevents+json"}, 415, "ErrUnsupportedMediaType"},
		{"binary CloudEvent with XML data", "/api/events", `<a/>`,
			map[string]string{"Content-Type": "application/xml", "ce-specversion": "1.0", "ce-id": "1", "ce-type": topic, "ce-source": "crm", "ce-tenantid": "acme"}, 415, "ErrUnsupportedMediaType"},
		{"binary CloudEvent with bad time", "/api/events", `{}`,
			map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-type": topic, "ce-source": "crm", "ce-tenantid": "acme", "ce-time": "yesterday"}, 400, "ErrBadRequest"},
		{"no token", "/api/events", ev("acme"), map[string]string{"Content-Type": "application/json", "Authorization": ""}, 401, "ErrUnauthorized"},
		{"unknown token", "/api/events", ev("acme"), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer nope-nope-nope-nope"}, 401, "ErrUnauthorized"},
		{"tenant token, other tenant", "/api/events", ev("globex"), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + acmeToken}, 403, "ErrForbidden"},
		{"tenant token, other tenant in a batch", "/api/events/batch", "[" + ev("acme") + "," + ev("globex") + "]",
			map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + acmeToken}, 403, "ErrForbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.post(c.path, c.body, c.headers)
			if a.Status != c.status || a.Body["sentinel"] != c.sentinel {
				t.Fatalf("status %d sentinel %v, want %d %s: %s", a.Status, a.Body["sentinel"], c.status, c.sentinel, a.Raw)
			}
			if msg, _ := a.Body["error"].(string); msg == "" {
				t.Errorf("no error message: %s", a.Raw)
			}
			if fix, _ := a.Body["fix"].(string); fix == "" {
				t.Errorf("no fix: %s", a.Raw)
			}
		})
	}
	// The tenant's own token publishes its own tenant's events; then the
	// topic holds that event only: no bad request published anything.
	a := f.post("/api/events", ev("acme"), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + acmeToken})
	if a.Status != http.StatusOK {
		t.Fatalf("tenant token, own tenant: status %d: %s", a.Status, a.Raw)
	}
	if n := endOffsets(t, f.brokers, topic); n != 1 {
		t.Fatalf("the topic holds %d records, want 1 (only the good event)", n)
	}
	for key, want := range map[[2]string]float64{{"/api/events/batch", "413"}: 1, {"/api/events/batch", "400"}: 2, {"/api/events/batch", "403"}: 1, {"/api/events", "200"}: 1} {
		got := metricValue(t, f.gw, "eventbus_gateway_publish_requests_total", map[string]string{"route": key[0], "status": key[1]})
		if got != want {
			t.Errorf("answers %s %s counted %v, want %v", key[0], key[1], got, want)
		}
	}
}

// TestPublishAfterShutdownIsUnavailable: a stopped bus answers 503
// ErrShuttingDown with Retry-After, not 500.
func TestPublishAfterShutdownIsUnavailable(t *testing.T) {
	f := newFixture(t, gateway.Config{}, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	if err := f.bus.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a := f.post("/api/events", fmt.Sprintf(`{"type":%q,"tenantId":"acme","data":{}}`, topic), map[string]string{"Content-Type": "application/json"})
	if a.Status != http.StatusServiceUnavailable || a.Body["sentinel"] != "ErrShuttingDown" {
		t.Fatalf("status %d: %s; want 503 ErrShuttingDown", a.Status, a.Raw)
	}
}
