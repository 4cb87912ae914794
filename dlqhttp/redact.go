package dlqhttp

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/plexica/eventbus"
)

// Redacted replaces every secret the API would otherwise show.
const Redacted = "[REDACTED]"

// sensitiveKeyParts are the substrings that make a (lowercased) JSON key or
// header name sensitive. Before matching, "-" is read as "_", so "api-key"
// and "private-key" count like "api_key" and "private_key".
var sensitiveKeyParts = []string{
	"password", "passwd", "secret", "token", "apikey", "api_key",
	"authorization", "credential", "private_key", "ssn",
}

// sensitiveKey reports whether values under key must be redacted.
func sensitiveKey(key string) bool {
	k := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	for _, part := range sensitiveKeyParts {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

// redactEntry returns a copy of e fit to show: secrets in its original
// event and headers replaced by Redacted. e, and the slices it shares with
// the DLQ's view, are not modified.
func redactEntry(e eventbus.FailedEvent) eventbus.FailedEvent {
	e.OriginalEvent = redactJSON(e.OriginalEvent)
	e.OriginalHeaders = redactHeaders(e.OriginalHeaders)
	return e
}

// redactHeaders returns a copy of hs with the values of sensitive headers
// replaced by Redacted.
func redactHeaders(hs []eventbus.RecordHeader) []eventbus.RecordHeader {
	if hs == nil {
		return nil
	}
	out := make([]eventbus.RecordHeader, len(hs))
	for i, h := range hs {
		if sensitiveKey(h.Key) {
			h.Value = Redacted
		}
		out[i] = h
	}
	return out
}

// redactJSON returns raw with the value of every object member whose key is
// sensitive, at any depth and inside arrays, replaced by the string
// Redacted, whatever that value was (a string, number, object, ...). Keys
// keep their order. When nothing is sensitive, raw itself is returned
// unchanged (a scalar or a string, such as the JSON string that holds a
// malformed record, never is). raw is never modified; the result is a new
// slice whenever it differs. Invalid JSON, which a stored entry never holds,
// is replaced as a whole: it cannot be inspected, so it is not shown.
func redactJSON(raw json.RawMessage) json.RawMessage {
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
		r.writeString(t)
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
		if sensitiveKey(key) {
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
