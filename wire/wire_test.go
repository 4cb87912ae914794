package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func sample() Envelope {
	return Envelope{
		ID: "0192f3c4-1111-7000-8000-000000000001", Type: "core.user.created",
		TenantID: "acme", WorkspaceID: "ws1",
		Timestamp: time.Date(2026, 11, 27, 17, 6, 55, 916_400_000, time.FixedZone("CET", 3600)),
		Data:      json.RawMessage(`{"userId":"u1","note":"<a&b> \u2028 \"q\""}`),
		Source:    "core", UserID: "admin", CorrelationID: "corr-1", CausationID: "cause-1", Version: "1.0",
	}
}

func TestAppendMatchesTheTypeScriptShape(t *testing.T) {
	e := sample()
	got := string(Append(nil, &e))
	want := `{"id":"0192f3c4-1111-7000-8000-000000000001","type":"core.user.created","tenantId":"acme","workspaceId":"ws1",` +
		`"timestamp":"2026-11-27T16:06:55.916Z","data":{"userId":"u1","note":"<a&b> \u2028 \"q\""},` +
		`"metadata":{"source":"core","userId":"admin","correlationId":"corr-1","causationId":"cause-1","version":"1.0"}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestAppendOmitsAbsentOptionals(t *testing.T) {
	e := sample()
	e.WorkspaceID, e.UserID, e.CausationID, e.Data = "", "", "", nil
	got := string(Append(nil, &e))
	for _, absent := range []string{"workspaceId", "userId", "causationId"} {
		if bytes.Contains([]byte(got), []byte(absent)) {
			t.Errorf("%s present in %s", absent, got)
		}
	}
	if !bytes.Contains([]byte(got), []byte(`"data":null`)) {
		t.Errorf("nil data not written as null: %s", got)
	}
}

func TestStringsAreEscapedLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "quote\"back\\slash", "ctl\x00\x1f\n\r\t", "<html>&", "bad\xffutf8", "line\u2028sep\u2029", "日本語"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	e := sample()
	got, err := Decode(Append(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Timestamp.Equal(e.Timestamp.Truncate(time.Millisecond)) {
		t.Fatalf("timestamp %v", got.Timestamp)
	}
	got.Timestamp, e.Timestamp = time.Time{}, time.Time{}
	if got.ID != e.ID || got.Type != e.Type || got.TenantID != e.TenantID || got.WorkspaceID != e.WorkspaceID ||
		got.Source != e.Source || got.UserID != e.UserID || got.CorrelationID != e.CorrelationID ||
		got.CausationID != e.CausationID || got.Version != e.Version || !bytes.Equal(got.Data, e.Data) {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestDecodeAcceptsAnyRFC3339Time(t *testing.T) {
	v := `{"id":"1","type":"core.user.created","tenantId":"t","timestamp":"2026-11-27T18:06:55+01:00","data":{},"metadata":{"source":"core","correlationId":"c","version":"1.0"}}`
	e, err := Decode([]byte(v))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 27, 17, 6, 55, 0, time.UTC); !e.Timestamp.Equal(want) {
		t.Fatalf("timestamp %v", e.Timestamp)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, v := range []string{
		``, `not json`, `[]`, `{}`, `{"id":"1","type":"t","tenantId":"x"}`,
		`{"id":"1","type":"t","tenantId":"x","timestamp":"yesterday"}`,
		`{"id":1,"type":"t","tenantId":"x","timestamp":"2026-11-27T17:06:55.916Z"}`,
	} {
		if _, err := Decode([]byte(v)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", v, err)
		}
	}
}

func TestHeadersInWireOrder(t *testing.T) {
	e := sample()
	e.WorkspaceID = ""
	hs := AppendHeaders(nil, &e)
	want := []string{"event-id", e.ID, "event-type", e.Type, "tenant-id", "acme", "workspace-id", "", "correlation-id", "corr-1", "timestamp", "2026-11-27T16:06:55.916Z"}
	if len(hs) != 6 {
		t.Fatalf("%d headers", len(hs))
	}
	for i, h := range hs {
		if h.Key != want[2*i] || string(h.Value) != want[2*i+1] {
			t.Errorf("header %d = %s:%s, want %s:%s", i, h.Key, h.Value, want[2*i], want[2*i+1])
		}
	}
	s := ScopeOf(hs)
	if !s.Known || !s.Matches("acme", "") || s.Matches("acme", "ws1") || s.Matches("globex", "") {
		t.Fatalf("scope %+v", s)
	}
}

func FuzzDecode(f *testing.F) {
	e := sample()
	f.Add(Append(nil, &e))
	f.Add([]byte(`{"id":"1","type":"t","tenantId":"x","timestamp":"2026-11-27T17:06:55Z","data":null}`))
	f.Add([]byte(`{`))
	// In range as written, outside it in UTC: it would re-encode as
	// "+10000-..." (and "0000-...+01:00" as year -1), which no decoder reads.
	f.Add([]byte(`{"id":"1","type":"t","tenantId":"x","timestamp":"9999-12-31T23:00:00-05:00","data":null}`))
	f.Add([]byte(`{"id":"1","type":"t","tenantId":"x","timestamp":"0000-01-01T00:30:00+01:00","data":null}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		env, err := Decode(value)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to valid JSON that decodes to the same event.
		out := Append(nil, &env)
		if !json.Valid(out) {
			t.Fatalf("re-encoded event is not JSON: %s", out)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, out)
		}
		if again.ID != env.ID || again.TenantID != env.TenantID || again.Type != env.Type ||
			!again.Timestamp.Equal(env.Timestamp.Truncate(time.Millisecond)) {
			t.Fatalf("round trip changed the event: %+v vs %+v", again, env)
		}
	})
}

func TestAppendTimeMatchesTheStandardFormatter(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("X", -5*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
	} {
		if got, want := string(AppendTime(nil, tm)), tm.UTC().Format(TimeLayout); got != want {
			t.Errorf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestSizeCoversTheEncoding(t *testing.T) {
	e := sample()
	if n := len(Append(nil, &e)); n > Size(&e) {
		t.Fatalf("encoded %d bytes, Size said %d", n, Size(&e))
	}
}

// FuzzTimestampRoundTrip: every time an event may carry (TimeInRange)
// encodes to what decoding reads back as the same millisecond.
func FuzzTimestampRoundTrip(f *testing.F) {
	for _, ms := range []int64{0, -62167219200000, 253402300799999, 1764435600123, -1} {
		f.Add(ms)
	}
	f.Fuzz(func(t *testing.T, ms int64) {
		tm := time.UnixMilli(ms).UTC()
		if !TimeInRange(tm) {
			return // the bus refuses to publish it
		}
		e := sample()
		e.Timestamp = tm
		got, err := Decode(Append(nil, &e))
		if err != nil {
			t.Fatalf("%v encodes to what does not decode: %v", tm, err)
		}
		if !got.Timestamp.Equal(tm) {
			t.Fatalf("round trip of %v gave %v", tm, got.Timestamp)
		}
	})
}

func TestScopeMismatchAndMatches(t *testing.T) {
	hdr := func(kv ...string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	acmeW1 := &Envelope{TenantID: "acme", WorkspaceID: "w1"}
	for _, c := range []struct {
		name     string
		headers  []kgo.RecordHeader
		mismatch bool
	}{
		{"agree", hdr(HeaderTenantID, "acme", HeaderWorkspaceID, "w1"), false},
		{"no headers", nil, false},
		{"no workspace header", hdr(HeaderTenantID, "acme"), false},
		{"other tenant", hdr(HeaderTenantID, "globex", HeaderWorkspaceID, "w1"), true},
		{"other workspace", hdr(HeaderTenantID, "acme", HeaderWorkspaceID, "w2"), true},
		{"empty workspace header", hdr(HeaderTenantID, "acme", HeaderWorkspaceID, ""), true},
	} {
		if got := ScopeOf(c.headers).Mismatch(acmeW1) != ""; got != c.mismatch {
			t.Errorf("%s: mismatch %v, want %v", c.name, got, c.mismatch)
		}
	}
	// Without a workspace-id header the headers cannot decide a workspace filter.
	if s := ScopeOf(hdr(HeaderTenantID, "acme")); !s.Matches("acme", "w1") || s.Matches("globex", "") {
		t.Error("a record without a workspace-id header: the tenant filter decides, the workspace filter waits for the event")
	}
	if s := ScopeOf(hdr(HeaderTenantID, "acme", HeaderWorkspaceID, "")); s.Matches("acme", "w1") {
		t.Error("an empty workspace-id header (no workspace) passed a workspace filter")
	}
}
