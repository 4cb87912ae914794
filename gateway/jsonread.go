package gateway

import (
	"encoding/json"
	"fmt"
)

// maxJSONDepth bounds how deeply a body's JSON may nest, as
// encoding/json bounds it.
const maxJSONDepth = 10000

// jsonReader reads a request body's JSON in one pass, without building
// maps or intermediate values: it hands out each object member as it is
// reached, converts the strings the gateway needs, and keeps everything
// else (event data) as a slice of the body, validated as encoding/json's
// Valid validates and marked when it is already written as encoding/json
// writes a value (see canonical), so that it is neither decoded nor
// re-encoded.
type jsonReader struct {
	b   []byte
	pos int
}

// ws skips whitespace and reports whether there was any.
func (r *jsonReader) ws() bool {
	start := r.pos
	for r.pos < len(r.b) {
		switch r.b[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return r.pos != start
		}
	}
	return r.pos != start
}

// peek returns the byte at the reading position, 0 at the end.
func (r *jsonReader) peek() byte {
	if r.pos < len(r.b) {
		return r.b[r.pos]
	}
	return 0
}

// syntaxError says what was found at the reading position and what was
// expected there.
func (r *jsonReader) syntaxError(expected string) error {
	if r.pos >= len(r.b) {
		return fmt.Errorf("unexpected end of JSON input, looking for %s", expected)
	}
	c := r.b[r.pos]
	found := fmt.Sprintf("byte 0x%02x", c)
	if c >= 0x20 && c < 0x7f {
		found = fmt.Sprintf("character %q", c)
	}
	return fmt.Errorf("invalid JSON: %s at offset %d, looking for %s", found, r.pos, expected)
}

// end checks that nothing but whitespace follows the value read.
func (r *jsonReader) end() error {
	r.ws()
	if r.pos != len(r.b) {
		return r.syntaxError("the end of the body (one JSON value)")
	}
	return nil
}

// value reads one JSON value at the reading position and returns it. It
// is canonical when encoding/json's Compact and HTMLEscape leave it as it
// is: no whitespace between tokens, and no <, >, &, U+2028 or U+2029 in
// its strings.
func (r *jsonReader) value(depth int) (raw []byte, canonical bool, err error) {
	start := r.pos
	switch c := r.peek(); {
	case c == '{' || c == '[':
		canonical, err = r.container(depth)
	case c == '"':
		_, _, canonical, err = r.str()
	case c == '-' || c >= '0' && c <= '9':
		canonical, err = true, r.number()
	case c == 't':
		canonical, err = true, r.literal("true")
	case c == 'f':
		canonical, err = true, r.literal("false")
	case c == 'n':
		canonical, err = true, r.literal("null")
	default:
		err = r.syntaxError("the beginning of a value")
	}
	if err != nil {
		return nil, false, err
	}
	return r.b[start:r.pos], canonical, nil
}

// container reads an object or an array.
func (r *jsonReader) container(depth int) (canonical bool, err error) {
	if depth >= maxJSONDepth {
		return false, fmt.Errorf("invalid JSON: nested deeper than %d levels at offset %d", maxJSONDepth, r.pos)
	}
	object := r.b[r.pos] == '{'
	end := byte(']')
	if object {
		end = '}'
	}
	r.pos++
	canonical = !r.ws()
	if r.peek() == end {
		r.pos++
		return canonical, nil
	}
	for {
		if object {
			if r.peek() != '"' {
				return false, r.syntaxError("a member name (a string)")
			}
			_, _, c, err := r.str()
			if err != nil {
				return false, err
			}
			canonical = !r.ws() && canonical && c
			if r.peek() != ':' {
				return false, r.syntaxError("':' after a member name")
			}
			r.pos++
			canonical = !r.ws() && canonical
		}
		_, c, err := r.value(depth + 1)
		if err != nil {
			return false, err
		}
		canonical = !r.ws() && canonical && c
		switch r.peek() {
		case ',':
			r.pos++
			canonical = !r.ws() && canonical
		case end:
			r.pos++
			return canonical, nil
		default:
			return false, r.syntaxError(fmt.Sprintf("',' or '%c'", end))
		}
	}
}

// str reads a string: its content between the quotes, whether it has
// escapes, and whether it is canonical (see value).
func (r *jsonReader) str() (content []byte, escaped, canonical bool, err error) {
	start := r.pos + 1
	canonical = true
	for i := start; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			r.pos = i + 1
			return r.b[start:i], escaped, canonical, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(r.b) {
				r.pos = len(r.b)
				return nil, false, false, r.syntaxError("an escaped character")
			}
			i++
			switch r.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					i++
					if i >= len(r.b) || !isHex(r.b[i]) {
						r.pos = i
						return nil, false, false, r.syntaxError("a hexadecimal digit of a \\u escape")
					}
				}
			default:
				r.pos = i
				return nil, false, false, r.syntaxError("an escaped character")
			}
		case c < 0x20:
			r.pos = i
			return nil, false, false, r.syntaxError("a character of a string (control characters are escaped in JSON)")
		case c == '<' || c == '>' || c == '&':
			canonical = false
		case c == 0xE2 && i+2 < len(r.b) && r.b[i+1] == 0x80 && (r.b[i+2] == 0xA8 || r.b[i+2] == 0xA9):
			canonical = false // U+2028, U+2029
		}
	}
	r.pos = len(r.b)
	return nil, false, false, r.syntaxError("the end of a string")
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number reads a number as JSON writes one.
func (r *jsonReader) number() error {
	if r.peek() == '-' {
		r.pos++
	}
	switch c := r.peek(); {
	case c == '0':
		r.pos++
	case c >= '1' && c <= '9':
		r.digits()
	default:
		return r.syntaxError("a digit")
	}
	if r.peek() == '.' {
		r.pos++
		if c := r.peek(); c < '0' || c > '9' {
			return r.syntaxError("a digit after the decimal point")
		}
		r.digits()
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.pos++
		if c := r.peek(); c == '+' || c == '-' {
			r.pos++
		}
		if c := r.peek(); c < '0' || c > '9' {
			return r.syntaxError("a digit of an exponent")
		}
		r.digits()
	}
	return nil
}

// digits skips decimal digits.
func (r *jsonReader) digits() {
	for r.pos < len(r.b) && r.b[r.pos] >= '0' && r.b[r.pos] <= '9' {
		r.pos++
	}
}

// literal reads the literal word (true, false or null).
func (r *jsonReader) literal(word string) error {
	for i := range len(word) {
		if r.pos >= len(r.b) || r.b[r.pos] != word[i] {
			return r.syntaxError(fmt.Sprintf("the literal %s", word))
		}
		r.pos++
	}
	return nil
}

// object reads an object at the reading position (after whitespace),
// calling member with each member's name, unescaped, positioned at its
// value, which member must read (with value, or stringValue).
func (r *jsonReader) object(depth int, member func(name []byte) error) error {
	r.ws()
	if r.peek() != '{' {
		return r.syntaxError("'{' (a JSON object)")
	}
	if depth >= maxJSONDepth {
		return fmt.Errorf("invalid JSON: nested deeper than %d levels at offset %d", maxJSONDepth, r.pos)
	}
	r.pos++
	r.ws()
	if r.peek() == '}' {
		r.pos++
		return nil
	}
	for {
		if r.peek() != '"' {
			return r.syntaxError("a member name (a string)")
		}
		start := r.pos
		name, escaped, _, err := r.str()
		if err != nil {
			return err
		}
		if escaped {
			var s string
			if err := json.Unmarshal(r.b[start:r.pos], &s); err != nil {
				return fmt.Errorf("invalid JSON: member name at offset %d: %v", start, err)
			}
			name = []byte(s)
		}
		r.ws()
		if r.peek() != ':' {
			return r.syntaxError("':' after a member name")
		}
		r.pos++
		r.ws()
		if err := member(name); err != nil {
			return err
		}
		r.ws()
		switch r.peek() {
		case ',':
			r.pos++
			r.ws()
		case '}':
			r.pos++
			return nil
		default:
			return r.syntaxError("',' or '}'")
		}
	}
}

// stringValue reads a member's value that must be a string (null reads
// as ""). A string equal to prev is returned as prev, so that the events
// of a batch share their type's and tenant's strings.
func (r *jsonReader) stringValue(depth int, prev string) (string, error) {
	if r.peek() != '"' {
		raw, _, err := r.value(depth)
		switch {
		case err != nil:
			return "", err
		case string(raw) == "null":
			return "", nil
		default:
			return "", errNotString(raw)
		}
	}
	start := r.pos
	content, escaped, _, err := r.str()
	if err != nil {
		return "", err
	}
	if escaped {
		var s string
		if err := json.Unmarshal(r.b[start:r.pos], &s); err != nil {
			return "", err
		}
		return s, nil
	}
	if string(content) == prev {
		return prev, nil
	}
	return string(content), nil
}

// notStringError is a member that must be a string and is not.
type notStringError struct{ found string }

// Error says what was found instead of a string.
func (e notStringError) Error() string { return "want a string, found " + e.found }

// errNotString reports raw (its start, when long) as not a string.
func errNotString(raw []byte) error {
	const most = 64
	if len(raw) > most {
		return notStringError{string(raw[:most]) + "..."}
	}
	return notStringError{string(raw)}
}
