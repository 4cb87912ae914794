package dlqhttp

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/plexica/eventbus"
)

func TestSensitiveKey(t *testing.T) {
	for _, k := range []string{
		"password", "Password", "userPassword", "PASSWD", "clientSecret", "access_token",
		"refreshToken", "apiKey", "API_KEY", "x-api-key", "Authorization", "credentials",
		"private_key", "Private-Key", "ssn", "customerSSN",
	} {
		if !sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = false", k)
		}
	}
	for _, k := range []string{"name", "email", "profile", "amount", "key", "private", "id", "tenantId", "api"} {
		if sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = true", k)
		}
	}
}

func TestRedactJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"flat", `{"user":"bob","password":"hunter2"}`, `{"user":"bob","password":"[REDACTED]"}`},
		{"key case", `{"PassWord":"x","X-Api-Key":"y"}`, `{"PassWord":"[REDACTED]","X-Api-Key":"[REDACTED]"}`},
		{"nested", `{"data":{"profile":{"apiKey":"k","name":"n"}}}`, `{"data":{"profile":{"apiKey":"[REDACTED]","name":"n"}}}`},
		{"whole value of any type", `{"secret":{"a":1,"b":[1,2]},"token":42,"credential":null,"ssn":true}`,
			`{"secret":"[REDACTED]","token":"[REDACTED]","credential":"[REDACTED]","ssn":"[REDACTED]"}`},
		{"arrays", `[{"token":"t"},[{"auth":{"authorization":"Bearer x"}}],1,"password"]`,
			`[{"token":"[REDACTED]"},[{"auth":{"authorization":"[REDACTED]"}}],1,"password"]`},
		{"array under key", `{"users":[{"name":"a","passwd":"p"},{"name":"b"}]}`,
			`{"users":[{"name":"a","passwd":"[REDACTED]"},{"name":"b"}]}`},
		{"duplicate keys", `{"password":"a","password":"b"}`, `{"password":"[REDACTED]","password":"[REDACTED]"}`},
		{"keeps order, numbers and escapes", "{ \"z\" : 1.50e3, \"a\" : \"<\\u00e9>\" , \"token\" : \"t\", \"m\": 12345678901234567890 }",
			`{"z":1.50e3,"a":"\u003cé\u003e","token":"[REDACTED]","m":12345678901234567890}`},
		{"empty containers", `{"a":{},"b":[],"secret":[]}`, `{"a":{},"b":[],"secret":"[REDACTED]"}`},
		{"a value that looks sensitive is kept", `{"note":"my password is hunter2"}`, `{"note":"my password is hunter2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			orig := bytes.Clone(in)
			got := redactJSON(in)
			if string(got) != tt.want {
				t.Fatalf("redactJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON out: %s", got)
			}
			if !bytes.Equal(in, orig) {
				t.Fatalf("input modified: %s", in)
			}
		})
	}
}

func TestRedactJSONUntouched(t *testing.T) {
	malformed, _ := json.Marshal("not an event: password=hunter2 {\"token\":1}")
	for _, in := range []string{
		string(malformed), // a malformed record kept as a JSON string
		`"password"`, `42`, `-0.5e-3`, `true`, `null`, `[1,"a",null]`,
		`{"id":"e1","data":{"amount":42}}`,
		"{\n  \"spaced\" : [ 1 , 2 ]\n}", // unchanged input is returned byte for byte
	} {
		got := redactJSON(json.RawMessage(in))
		if string(got) != in {
			t.Errorf("redactJSON(%s) = %s, want it untouched", in, got)
		}
	}
	if got := redactJSON(nil); got != nil {
		t.Errorf("redactJSON(nil) = %q", got)
	}
}

func TestRedactJSONInvalidIsHidden(t *testing.T) {
	for _, in := range []string{`{"password":"hunter2"`, `not json`, `{"a":1} {"b":2}`} {
		if got := string(redactJSON(json.RawMessage(in))); got != `"[REDACTED]"` {
			t.Errorf("redactJSON(%s) = %s", in, got)
		}
	}
}

func TestRedactEntryCopies(t *testing.T) {
	e := eventbus.FailedEvent{
		ID:            "x",
		OriginalEvent: json.RawMessage(`{"data":{"password":"hunter2"}}`),
		OriginalHeaders: []eventbus.RecordHeader{
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
	want := []eventbus.RecordHeader{
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
