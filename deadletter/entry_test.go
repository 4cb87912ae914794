package deadletter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/plexica/eventbus/deadletter"
)

// TestEntryJSON pins an entry's JSON form: the record value on a dlq.*
// topic, which every version of the bus must read, and the REST API's
// answer. A field renamed, retagged or made non-omitempty breaks it.
func TestEntryJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	next := at.Add(time.Second)
	full := deadletter.Entry{
		ID: "0123456789abcdef0123456789abcdef", Origin: deadletter.OriginTypeScript,
		OriginalEvent: json.RawMessage(`{"id":"ev-1"}`), OriginalTopic: "core.user.created", OriginalKey: []byte("acme"),
		OriginalHeaders: []deadletter.Header{{Key: "tenant-id", Value: "acme"}},
		EventID:         "ev-1", EventType: "core.user.created", TenantID: "acme", WorkspaceID: "ws",
		FailureReason: "boom", FailedAt: at, RetryCount: 1, MaxRetries: 3, StackTrace: "stack",
		ConsumerGroup: "mailer", Partition: 2, Offset: 17, Status: deadletter.StatusPending, Permanent: true,
		NextRetryAt: &next, ResolvedAt: &next,
		Attempts:  []deadletter.Attempt{{At: at, Kind: "failed", Number: 1, Error: "boom"}},
		UpdatedAt: at, SchedulerGroup: "sched",
	}
	for _, tc := range []struct {
		e    deadletter.Entry
		want string
	}{
		{full, `{"id":"0123456789abcdef0123456789abcdef","origin":"typescript","originalEvent":{"id":"ev-1"},"originalTopic":"core.user.created","originalKey":"YWNtZQ==","originalHeaders":[{"key":"tenant-id","value":"acme"}],"eventId":"ev-1","eventType":"core.user.created","tenantId":"acme","workspaceId":"ws","failureReason":"boom","failedAt":"2026-12-07T08:00:00Z","retryCount":1,"maxRetries":3,"stackTrace":"stack","consumerGroup":"mailer","partition":2,"offset":17,"status":"pending","permanent":true,"nextRetryAt":"2026-12-07T08:00:01Z","resolvedAt":"2026-12-07T08:00:01Z","attempts":[{"at":"2026-12-07T08:00:00Z","kind":"failed","number":1,"error":"boom"}],"updatedAt":"2026-12-07T08:00:00Z","schedulerGroup":"sched"}`},
		{deadletter.Entry{}, `{"id":"","originalEvent":null,"originalTopic":"","eventId":"","failureReason":"","failedAt":"0001-01-01T00:00:00Z","retryCount":0,"maxRetries":0,"consumerGroup":"","partition":0,"offset":0,"status":"","attempts":null,"updatedAt":"0001-01-01T00:00:00Z"}`},
	} {
		b, err := json.Marshal(tc.e)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("JSON form changed:\n got %s\nwant %s", b, tc.want)
		}
		var back deadletter.Entry
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(b) {
			t.Errorf("round trip: %s, want %s", again, b)
		}
	}
}

// TestID pins the entry IDs: stored entries are found by them, so a
// change would orphan every entry written before it.
func TestID(t *testing.T) {
	if got, want := deadletter.ID("mailer", "core.user.created", "acme", "ev-1"), "0e296affd0f02adce0927a043c09c471"; got != want {
		t.Fatalf("ID = %s, want %s", got, want)
	}
	if deadletter.ID("a", "bc", "", "") == deadletter.ID("ab", "c", "", "") {
		t.Fatal("fields are not length-prefixed")
	}
}

// TestVerifiedTenant: an entry's tenant is known only when its record is
// an event of that tenant.
func TestVerifiedTenant(t *testing.T) {
	event := json.RawMessage(`{"id":"ev-1","type":"core.user.created","tenantId":"acme","timestamp":"2026-12-07T08:00:00.000Z","data":{},"metadata":{"source":"core","correlationId":"c","version":"1.0"}}`)
	for _, tc := range []struct {
		name   string
		e      deadletter.Entry
		tenant string
		known  bool
	}{
		{"an event of its tenant", deadletter.Entry{TenantID: "acme", OriginalEvent: event}, "acme", true},
		{"another tenant's event", deadletter.Entry{TenantID: "globex", OriginalEvent: event}, "", false},
		{"no tenant", deadletter.Entry{OriginalEvent: event}, "", false},
		{"a malformed record", deadletter.Entry{TenantID: "acme", OriginalEvent: json.RawMessage(`"not an event"`)}, "", false},
	} {
		if tenant, known := tc.e.VerifiedTenant(); tenant != tc.tenant || known != tc.known {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, tenant, known, tc.tenant, tc.known)
		}
	}
}
