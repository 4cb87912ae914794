// Package redact hides secrets in what the dead letter queue shows: values
// under sensitive key names in JSON, headers and key=value text, and
// credentials in free text (failure reasons, stack traces, raw bytes).
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces every secret that would otherwise be shown: by the DLQ
// REST API and console (dlqhttp), and in the reason labels the dead letter
// queue counts failures by (internal/dlq).
const Redacted = "[REDACTED]"

// A key name (a JSON member, a header, the key of a key=value pair in
// text) is matched against the names below after normalising it: split
// into words at separators (anything but a letter or digit: "_", "-", ".",
// blanks, ...) and at case and letter/digit changes ("privateKey",
// "PRIVATE.KEY", "private-key" and "Private Key" are all the words
// private, key), lowercased, and joined again ("privatekey").
//
// A name matches in one of four ways. Long names, unlikely inside an
// innocent word, match anywhere in the joined key. Short ones would
// over-match ("spinner" holds pin, "businessName" holds ssn, "opinion"
// holds pin): they match only as one of the key's words, or also at the
// start or end of the joined key when no common word starts or ends that
// way ("userpwd", "customerssn", but never "shipping" or "possession").
type keyMatch int

const (
	inKey     keyMatch = iota // anywhere in the joined key
	atEdge                    // a word, or the start or end of the joined key
	atStart                   // a word, or the start of the joined key
	wholeWord                 // a word of the key only
)

var sensitiveNames = []struct {
	name string
	how  keyMatch
}{
	{"password", inKey}, {"passwd", inKey}, {"passphrase", inKey},
	{"secret", inKey}, {"token", inKey}, {"jwt", inKey},
	{"apikey", inKey}, {"accesskey", inKey}, {"privatekey", inKey}, {"privkey", inKey},
	{"signingkey", inKey}, {"encryptionkey", inKey}, {"signature", inKey},
	{"authorization", inKey}, {"cookie", inKey}, {"credential", inKey},
	{"creditcard", inKey}, {"cardnumber", inKey},
	{"pwd", atEdge}, {"ssn", atEdge}, {"cvv", atEdge}, {"cvc", atEdge},
	{"pincode", atEdge}, {"pinnumber", atEdge},
	{"session", atStart},
	{"pin", wholeWord}, {"pass", wholeWord}, {"auth", wholeWord}, {"otp", wholeWord},
}

// keyWords splits a key name into its lowercased words (see sensitiveNames).
func keyWords(key string) []string {
	var words []string
	var word []rune
	flush := func() {
		if len(word) > 0 {
			words = append(words, strings.ToLower(string(word)))
			word = word[:0]
		}
	}
	rs := []rune(key)
	for i, c := range rs {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			flush()
			continue
		}
		if len(word) > 0 {
			prev := word[len(word)-1]
			switch {
			case unicode.IsDigit(prev) != unicode.IsDigit(c): // "cvv2", "x509Key"
				flush()
			case unicode.IsUpper(c) && !unicode.IsUpper(prev): // "userPin"
				flush()
			case unicode.IsUpper(c) && unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1]): // "SSNLast", "APIKey"
				flush()
			}
		}
		word = append(word, c)
	}
	flush()
	return words
}

// SensitiveKey reports whether values under key must be redacted: its
// normalised form matches one of sensitiveNames.
func SensitiveKey(key string) bool {
	words := keyWords(key)
	joined := strings.Join(words, "")
	for _, n := range sensitiveNames {
		var match bool
		switch n.how {
		case inKey:
			match = strings.Contains(joined, n.name)
		case atEdge:
			match = strings.HasPrefix(joined, n.name) || strings.HasSuffix(joined, n.name)
		case atStart:
			match = strings.HasPrefix(joined, n.name)
		}
		if match || slices.Contains(words, n.name) {
			return true
		}
	}
	return false
}

// wholeLineKey reports whether the value of key, written "key: value" in
// text, is the rest of its line: an HTTP Authorization or Cookie header,
// whose value holds blanks ("Bearer x", "a=1; b=2").
func wholeLineKey(key string) bool {
	joined := strings.Join(keyWords(key), "")
	return strings.Contains(joined, "authorization") || strings.Contains(joined, "cookie")
}

// JSON returns raw with the value of every object member whose key is
// sensitive, at any depth and inside arrays, replaced by the string
// Redacted, whatever that value was (a string, number, object, ...), and
// every other string (such as the JSON string that holds a malformed
// record's bytes) scrubbed by Text. Keys keep their order. When nothing is
// redacted, raw itself is returned unchanged. raw is never modified; the
// result is a new slice whenever it differs. Invalid JSON, which a stored
// entry never holds, is replaced as a whole: it cannot be inspected, so it
// is not shown.
func JSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	if !json.Valid(raw) {
		return json.RawMessage(`"` + Redacted + `"`)
	}
	r := redactor{dec: json.NewDecoder(bytes.NewReader(raw))}
	r.dec.UseNumber()
	if err := r.value(); err != nil {
		return json.RawMessage(`"` + Redacted + `"`)
	}
	if !r.changed {
		return raw
	}
	return json.RawMessage(r.out.Bytes())
}

// redactor rewrites one JSON value token by token.
type redactor struct {
	dec     *json.Decoder
	out     bytes.Buffer
	changed bool
}

func (r *redactor) value() error {
	tok, err := r.dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return r.object()
		case '[':
			return r.array()
		}
		return &json.SyntaxError{} // a closing delimiter where a value belongs; json.Valid rules it out
	case string:
		scrubbed := Text(t)
		r.changed = r.changed || scrubbed != t
		r.writeString(scrubbed)
	case json.Number:
		r.out.WriteString(t.String())
	case bool:
		if t {
			r.out.WriteString("true")
		} else {
			r.out.WriteString("false")
		}
	case nil:
		r.out.WriteString("null")
	}
	return nil
}

// object copies the members of an object whose '{' was just read.
func (r *redactor) object() error {
	r.out.WriteByte('{')
	for i := 0; r.dec.More(); i++ {
		tok, err := r.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if i > 0 {
			r.out.WriteByte(',')
		}
		r.writeString(key)
		r.out.WriteByte(':')
		if SensitiveKey(key) {
			var skip json.RawMessage
			if err := r.dec.Decode(&skip); err != nil {
				return err
			}
			r.writeString(Redacted)
			r.changed = true
			continue
		}
		if err := r.value(); err != nil {
			return err
		}
	}
	if _, err := r.dec.Token(); err != nil { // '}'
		return err
	}
	r.out.WriteByte('}')
	return nil
}

// array copies the elements of an array whose '[' was just read.
func (r *redactor) array() error {
	r.out.WriteByte('[')
	for i := 0; r.dec.More(); i++ {
		if i > 0 {
			r.out.WriteByte(',')
		}
		if err := r.value(); err != nil {
			return err
		}
	}
	if _, err := r.dec.Token(); err != nil { // ']'
		return err
	}
	r.out.WriteByte(']')
	return nil
}

func (r *redactor) writeString(s string) {
	b, _ := json.Marshal(s) // a string always encodes
	r.out.Write(b)
}

// Patterns of secrets in free text, which Text hides.
var (
	// A PEM private key block, to its end or, cut short, to the text's end.
	pemPrivateKey = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
	// The userinfo of a URL, "user:password" or a token, before its host;
	// a password may hold "@", so the userinfo runs to the last "@" before
	// the path.
	urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#"'<>\\]+@`)
	// A JSON Web Token: a bearer credential wherever it appears.
	jwtToken = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	// "Bearer <token>" or "Basic <credentials>" outside a key: value pair.
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)[ \t]+([A-Za-z0-9\-._~+/]+=*)`)
	// The key and separator of a pair: key=value, key: value, "key":"value",
	// \"key\":\"value\" (JSON inside a quoted string), key%3Dvalue (URL
	// encoded, the key perhaps after an encoded "?" or "&"). A key may be
	// two words ("private key: ..."). Group 1 is the key.
	pairKey = regexp.MustCompile(`(?:%[0-9A-Fa-f]{2})?(?:\\?["'])?([A-Za-z0-9_.\-]+(?: [A-Za-z0-9_.\-]+)?)(?:\\?["'])?[ \t]*(?:=|:|%3[Dd]|%3[Aa])[ \t]*`)
	// Authentication schemes a value may start with, before its credentials.
	valueSchemes = []string{"bearer", "basic", "digest", "token", "negotiate", "ntlm", "apikey", "aws4-hmac-sha256"}
)

// Text returns s with the secrets it shows in free text replaced by
// Redacted: the values of key=value, key: value, "key":"value" and
// key%3Dvalue pairs whose key is sensitive (query strings, form bodies, log
// lines, Go maps and structs, JSON fragments that do not parse), "Bearer"
// and "Basic" credentials, the userinfo of URLs
// (https://[REDACTED]@host), JSON Web Tokens and PEM private keys. A quoted
// value keeps its quotes; the value of an Authorization or Cookie header
// line ("Authorization: Bearer x") is hidden to the end of its line.
// Anything else is kept.
func Text(s string) string {
	if s == "" {
		return s
	}
	s = pemPrivateKey.ReplaceAllLiteralString(s, Redacted)
	s = urlUserinfo.ReplaceAllString(s, "${1}"+Redacted+"@")
	s = jwtToken.ReplaceAllLiteralString(s, Redacted)
	s = scrubPairs(s)
	return authScheme.ReplaceAllStringFunc(s, func(m string) string {
		sub := authScheme.FindStringSubmatchIndex(m)
		scheme, cred := m[sub[2]:sub[3]], m[sub[4]:sub[5]]
		if strings.EqualFold(scheme, "basic") && !basicCredentials(cred) {
			return m // "basic validation": a word, not credentials
		}
		return m[:sub[4]] + Redacted
	})
}

// scrubPairs hides the values of the pairs in s whose key is sensitive.
// A pair whose key is not sensitive is stepped into, not over, so that a
// pair inside its value (msg="retry with token=x") is found too.
func scrubPairs(s string) string {
	var out strings.Builder
	done, pos := 0, 0 // s[:done] is in out; the search goes on at pos
	for pos < len(s) {
		m := pairKey.FindStringSubmatchIndex(s[pos:])
		if m == nil {
			break
		}
		keyEnd, valStart := pos+m[3], pos+m[1]
		key := s[pos+m[2] : keyEnd]
		if !SensitiveKey(key) {
			pos = keyEnd
			continue
		}
		sep := strings.TrimSpace(s[keyEnd:valStart])
		lineScoped := wholeLineKey(key) && (strings.HasSuffix(sep, ":") || strings.HasSuffix(strings.ToUpper(sep), "%3A"))
		from, to, next := valueSpan(s, valStart, lineScoped)
		if to > from && s[from:to] != Redacted {
			out.WriteString(s[done:from])
			out.WriteString(Redacted)
			done = to
		}
		pos = max(next, keyEnd)
	}
	if done == 0 {
		return s
	}
	out.WriteString(s[done:])
	return out.String()
}

// valueSpan finds the value that starts at s[i]: it is s[from:to], and the
// search for pairs goes on at next. A quoted value (", ', `, or \" inside
// a quoted string) runs to its closing quote, which is kept; an object or
// array to its closing bracket; a line-scoped value to the end of the line;
// any other to the first blank, &, ;, comma, quote, closing bracket, angle
// bracket or backslash (or URL-encoded & or blank), after an
// authentication scheme ("Bearer ") if it starts with one. A value cut
// short by the text's end runs to the end.
func valueSpan(s string, i int, lineScoped bool) (from, to, next int) {
	rest := s[i:]
	switch {
	case rest == "":
		return i, i, i
	case strings.HasPrefix(rest, `\"`) || strings.HasPrefix(rest, `\'`):
		q := rest[:2]
		end := strings.Index(rest[2:], q)
		if end < 0 {
			return i + 2, len(s), len(s)
		}
		return i + 2, i + 2 + end, i + 2 + end + 2
	case rest[0] == '"' || rest[0] == '\'' || rest[0] == '`':
		for j := 1; j < len(rest); j++ {
			switch rest[j] {
			case '\\':
				j++
			case rest[0]:
				return i + 1, i + j, i + j + 1
			}
		}
		return i + 1, len(s), len(s)
	case rest[0] == '{' || rest[0] == '[':
		end := closingBracket(rest)
		return i, i + end, i + end
	case lineScoped:
		end := strings.IndexAny(rest, "\r\n")
		if end < 0 {
			end = len(rest)
		}
		return i, i + end, i + end
	}
	j := 0
	for _, scheme := range valueSchemes {
		if len(rest) > len(scheme) && strings.EqualFold(rest[:len(scheme)], scheme) && (rest[len(scheme)] == ' ' || rest[len(scheme)] == '\t') {
			j = len(scheme)
			for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
				j++
			}
			break
		}
	}
	for ; j < len(rest); j++ {
		c := rest[j]
		if strings.IndexByte(" \t\r\n&;,\"'`)]}<>\\", c) >= 0 {
			break
		}
		if c == '%' && len(rest) >= j+3 && (strings.EqualFold(rest[j:j+3], "%26") || strings.EqualFold(rest[j:j+3], "%20")) {
			break
		}
	}
	return i, i + j, i + j
}

// closingBracket returns the length of the object or array that starts s,
// through its closing bracket, skipping brackets inside strings; or len(s)
// when it is not closed.
func closingBracket(s string) int {
	depth := 0
	inString := false
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case inString && c == '\\':
			j++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// basicCredentials reports whether cred, the word after "Basic", is
// base64 of printable "user:password": so that "Basic Ym9iOmh1bnRlcjI="
// is hidden and "basic validation" is not.
func basicCredentials(cred string) bool {
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(cred, "="))
	if err != nil || !utf8.Valid(b) || !bytes.ContainsRune(b, ':') {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
