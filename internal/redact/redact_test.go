package redact

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSensitiveKey(t *testing.T) {
	for _, k := range []string{
		"password", "Password", "userPassword", "PASSWD", "clientSecret", "access_token",
		"refreshToken", "apiKey", "API_KEY", "x-api-key", "Authorization", "credentials",
		"private_key", "Private-Key", "ssn", "customerSSN",
	} {
		if !SensitiveKey(k) {
			t.Errorf("SensitiveKey(%q) = false", k)
		}
	}
	for _, k := range []string{"name", "email", "profile", "amount", "key", "private", "id", "tenantId", "api"} {
		if SensitiveKey(k) {
			t.Errorf("SensitiveKey(%q) = true", k)
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
			got := JSON(in)
			if string(got) != tt.want {
				t.Fatalf("JSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
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
		got := JSON(json.RawMessage(in))
		if string(got) != in {
			t.Errorf("JSON(%s) = %s, want it untouched", in, got)
		}
	}
	if got := JSON(nil); got != nil {
		t.Errorf("JSON(nil) = %q", got)
	}
}

func TestRedactJSONInvalidIsHidden(t *testing.T) {
	for _, in := range []string{`{"password":"hunter2"`, `not json`, `{"a":1} {"b":2}`} {
		if got := string(JSON(json.RawMessage(in))); got != `"[REDACTED]"` {
			t.Errorf("JSON(%s) = %s", in, got)
		}
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
		if !SensitiveKey(k) {
			t.Errorf("SensitiveKey(%q) = false", k)
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
		if SensitiveKey(k) {
			t.Errorf("SensitiveKey(%q) = true", k)
		}
	}
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
			if got := Text(tt.in); got != tt.want {
				t.Fatalf("scrub(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// Every text field of an entry is scrubbed: the failure reason, the stack
// trace, the attempts' errors, header values, and a malformed record's
// bytes (kept as a JSON string) or string values inside an event.
