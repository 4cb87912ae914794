package dlqhttp

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/redact"
)

func TestRedactEntryCopies(t *testing.T) {
	e := deadletter.Entry{
		ID:            "x",
		OriginalEvent: json.RawMessage(`{"data":{"password":"hunter2"}}`),
		OriginalHeaders: []deadletter.Header{
			{Key: "event-type", Value: "core.user.created"},
			{Key: "X-Api-Key", Value: "hunter2"},
			{Key: "authorization", Value: "Bearer hunter2"},
		},
	}
	origEvent := bytes.Clone(e.OriginalEvent)
	origHeaders := slices.Clone(e.OriginalHeaders)
	got := redactEntry(e)
	if bytes.Contains(got.OriginalEvent, []byte("hunter2")) {
		t.Fatalf("event not redacted: %s", got.OriginalEvent)
	}
	want := []deadletter.Header{
		{Key: "event-type", Value: "core.user.created"},
		{Key: "X-Api-Key", Value: Redacted},
		{Key: "authorization", Value: Redacted},
	}
	if !slices.Equal(got.OriginalHeaders, want) {
		t.Fatalf("headers %+v", got.OriginalHeaders)
	}
	if !bytes.Equal(e.OriginalEvent, origEvent) || !slices.Equal(e.OriginalHeaders, origHeaders) {
		t.Fatalf("the stored entry was modified: %s %+v", e.OriginalEvent, e.OriginalHeaders)
	}
	if redactHeaders(nil) != nil {
		t.Fatal("nil headers should stay nil (omitted from JSON)")
	}
}

func TestRedactEntryScrubsText(t *testing.T) {
	malformed, _ := json.Marshal(`{"password":"hunter2","user":"bob"`) // truncated JSON: stored as a string
	e := deadletter.Entry{
		OriginalEvent:   malformed,
		FailureReason:   "malformed: user=bob&password=hunter2",
		StackTrace:      "panic: Authorization: Bearer hunter2\ngoroutine 7 [running]:",
		Attempts:        []deadletter.Attempt{{Kind: "failed", Error: "POST https://bob:hunter2@api.example.com/x"}, {Kind: "manual-retry"}},
		OriginalHeaders: []deadletter.Header{{Key: "x-forwarded-url", Value: "https://api.example.com/?token=hunter2"}, {Key: "traceparent", Value: "00-abc-def-01"}},
	}
	orig := e
	origAttempts := slices.Clone(e.Attempts)
	got := redactEntry(e)
	b, _ := json.Marshal(got)
	if bytes.Contains(b, []byte("hunter2")) {
		t.Fatalf("entry shows the secret: %s", b)
	}
	var ev string
	if err := json.Unmarshal(got.OriginalEvent, &ev); err != nil || ev != `{"password":"[REDACTED]","user":"bob"` {
		t.Fatalf("malformed record shown as %s (%v)", got.OriginalEvent, err)
	}
	if got.FailureReason != "malformed: user=bob&password=[REDACTED]" || got.Attempts[1].Kind != "manual-retry" || got.OriginalHeaders[1].Value != "00-abc-def-01" {
		t.Fatalf("redacted entry %+v", got)
	}
	if !slices.Equal(e.Attempts, origAttempts) || e.FailureReason != orig.FailureReason || e.StackTrace != orig.StackTrace {
		t.Fatalf("the stored entry was modified: %+v", e)
	}
	for in, want := range map[string]string{
		`"user=bob&password=hunter2"`:                    `"user=bob\u0026password=[REDACTED]"`,
		`{"callback":"https://bob:hunter2@x.example/y"}`: `{"callback":"https://[REDACTED]@x.example/y"}`,
		`["pwd=hunter2",{"n":"a=1"}]`:                    `["pwd=[REDACTED]",{"n":"a=1"}]`,
	} {
		if got := string(redact.JSON(json.RawMessage(in))); got != want {
			t.Errorf("redact.JSON(%s) = %s, want %s", in, got, want)
		}
	}
}
