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
			`[{"token":"[REDACTED]"},[{"auth":"[REDACTED]"}],1,"password"]`},
		{"deep", `[{"meta":[{"headers":{"authorization":"Bearer x","accept":"*/*"}}]}]`,
			`[{"meta":[{"headers":{"authorization":"[REDACTED]","accept":"*/*"}}]}]`},
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
	malformed, _ := json.Marshal("not an event: nothing secret {\"n\":1}")
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

// Key names are matched whatever their case and separators, and short
// names (pwd, pin, ssn, cvv, auth, ...) only where they stand as a word or
// at an end of the key, never inside another word.
func TestSensitiveKeyNormalised(t *testing.T) {
	for _, k := range []string{
		"privateKey", "private_key", "private-key", "PRIVATE.KEY", "Private Key", "privkey",
		"accessKey", "access_key", "AWS_SECRET_ACCESS_KEY", "secretKey", "signingKey",
		"pwd", "PWD", "userPwd", "db_pwd", "pwdHash",
		"passphrase", "keyPassphrase", "pass", "db.pass",
		"cookie", "Cookie", "Set-Cookie", "cookies",
		"session", "sessionId", "session_id", "SESSIONID", "userSession",
		"credential", "credentials", "x-amz-credential",
		"ssn", "customer_ssn", "customerssn", "SSNLast4",
		"creditCard", "credit_card_number", "cardNumber", "card-number", "CARDNUMBER",
		"cvv", "CVV2", "card_cvv", "cvc",
		"pin", "PIN", "userPin", "pin_code", "pinCode", "pincode",
		"auth", "x-auth", "basic_auth", "authCode", "Proxy-Authorization",
		"clientSecret", "client-secret", "apiKey", "api.key", "API KEY",
		"otp", "jwt", "idToken", "X-Amz-Signature",
	} {
		if !sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = false", k)
		}
	}
	// False positives guarded against: a short name inside another word.
	for _, k := range []string{
		"spinner", "opinion", "pinned", "mapping", "shipping", "pinyin", "topping",
		"businessName", "addressNumber", "classNames", "businessname", "classnames", // "ssn" across words
		"possession", "author", "authorName", "authenticated",
		"passport", "passenger", "bypass", "compass",
		"cookbook", "keyboard", "sessile",
	} {
		if sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = true", k)
		}
	}
}

// scrubbed returns the failure reason of an entry after redactEntry: the
// free-text scrubbing every text field goes through.
func scrubbed(s string) string {
	return redactEntry(eventbus.FailedEvent{FailureReason: s}).FailureReason
}

func TestRedactFreeText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"form body", "login failed: user=bob&password=hunter2&next=/home", "login failed: user=bob&password=[REDACTED]&next=/home"},
		{"query string", "GET https://api.example.com/v1/users?api_key=hunter2&q=1: 401", "GET https://api.example.com/v1/users?api_key=[REDACTED]&q=1: 401"},
		{"url userinfo", "dial https://bob:hunter2@db.example.com:5432/app: refused", "dial https://[REDACTED]@db.example.com:5432/app: refused"},
		{"url userinfo with @ in password", "postgres://bob:p@ss@db/app?sslmode=disable", "postgres://[REDACTED]@db/app?sslmode=disable"},
		{"url user token", "clone https://ghp_hunter2@github.com/x/y.git", "clone https://[REDACTED]@github.com/x/y.git"},
		{"authorization header", "request had Authorization: Bearer hunter2\nnext line", "request had Authorization: [REDACTED]\nnext line"},
		{"bearer alone", "invalid bearer hunter2 for user bob", "invalid bearer [REDACTED] for user bob"},
		{"basic header", "Authorization: Basic Ym9iOmh1bnRlcjI=", "Authorization: [REDACTED]"},
		{"basic alone", "upstream refused Basic Ym9iOmh1bnRlcjI= (401)", "upstream refused Basic [REDACTED] (401)"},
		{"json fragment", `decode {"password":"hunter2","user":"bob"`, `decode {"password":"[REDACTED]","user":"bob"`},
		{"json fragment spaced", `{"private_key" : "hunter2", "n": 1}`, `{"private_key" : "[REDACTED]", "n": 1}`},
		{"escaped json", `body "{\"password\":\"hunter2\",\"user\":\"bob\"}"`, `body "{\"password\":\"[REDACTED]\",\"user\":\"bob\"}"`},
		{"json number and object", `{"pin": 1234, "secret": {"a": "hunter2"}, "x": 2}`, `{"pin": [REDACTED], "secret": [REDACTED], "x": 2}`},
		{"camel key", "privateKey: hunter2", "privateKey: [REDACTED]"},
		{"dotted key", "PRIVATE.KEY=hunter2", "PRIVATE.KEY=[REDACTED]"},
		{"short keys", "pwd=hunter2 opinion=fine spinner=3", "pwd=[REDACTED] opinion=fine spinner=3"},
		{"url encoded", "redirect=%2Flogin%3Fpassword%3Dhunter2%26user%3Dbob", "redirect=%2Flogin%3Fpassword%3D[REDACTED]%26user%3Dbob"},
		{"cookie header", "Cookie: sid=hunter2; theme=dark\nok", "Cookie: [REDACTED]\nok"},
		{"go map", "map[password:hunter2 user:bob]", "map[password:[REDACTED] user:bob]"},
		{"logfmt quoted", `msg="login failed" password="hunter two" user=bob`, `msg="login failed" password="[REDACTED]" user=bob`},
		{"quoted value hides a pair", `msg="retry with token=hunter2" n=1`, `msg="retry with token=[REDACTED]" n=1`},
		{"spaced equals", "passphrase = hunter2", "passphrase = [REDACTED]"},
		{"pem", "key -----BEGIN RSA PRIVATE KEY-----\nMIIEhunter2\n-----END RSA PRIVATE KEY----- loaded", "key [REDACTED] loaded"},
		{"jwt", "token expired: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl", "token expired: [REDACTED]"},
		{"stack trace", "panic: password=hunter2\n\ngoroutine 1 [running]:\nmain.f(0x1)\n\t/app/main.go:12 +0x1d",
			"panic: password=[REDACTED]\n\ngoroutine 1 [running]:\nmain.f(0x1)\n\t/app/main.go:12 +0x1d"},
		// Nothing sensitive: unchanged.
		{"plain", "permanent: ledger rejected the event", "permanent: ledger rejected the event"},
		{"basic in prose", "basic validation failed: token expired", "basic validation failed: token expired"},
		{"words near names", "my password is wrong; the spinner: 3; opinion=meh", "my password is wrong; the spinner: 3; opinion=meh"},
		{"empty value", "password=&user=bob", "password=&user=bob"},
		{"url without userinfo", "see https://example.com/a?b=c and mail bob@example.com", "see https://example.com/a?b=c and mail bob@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubbed(tt.in); got != tt.want {
				t.Fatalf("scrub(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// Every text field of an entry is scrubbed: the failure reason, the stack
// trace, the attempts' errors, header values, and a malformed record's
// bytes (kept as a JSON string) or string values inside an event.
func TestRedactEntryScrubsText(t *testing.T) {
	malformed, _ := json.Marshal(`{"password":"hunter2","user":"bob"`) // truncated JSON: stored as a string
	e := eventbus.FailedEvent{
		OriginalEvent:   malformed,
		FailureReason:   "malformed: user=bob&password=hunter2",
		StackTrace:      "panic: Authorization: Bearer hunter2\ngoroutine 7 [running]:",
		Attempts:        []eventbus.Attempt{{Kind: "failed", Error: "POST https://bob:hunter2@api.example.com/x"}, {Kind: "manual-retry"}},
		OriginalHeaders: []eventbus.RecordHeader{{Key: "x-forwarded-url", Value: "https://api.example.com/?token=hunter2"}, {Key: "traceparent", Value: "00-abc-def-01"}},
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
		if got := string(redactJSON(json.RawMessage(in))); got != want {
			t.Errorf("redactJSON(%s) = %s, want %s", in, got, want)
		}
	}
}
