package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonSamples are bodies the reader must judge as encoding/json does.
var jsonSamples = []string{
	`{"a":1,"b":"x"}`, `{ "a": 1 }`, `[1,2,3]`, `[1, 2]`, `"x<y"`, `"a&b"`, "\"\u2028\"", `"\u2028"`,
	`{"a":[{"b":null,"c":true,"d":false}]}`, `-0.5e+10`, `0`, `-`, `01`, `1.`, `1e`, `.5`, `+1`,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1 "b":2}`, `{1:2}`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"\x01\"",
	`"\"\\\/\b\f\n\r\t\u00e9"`, `tru`, `nul`, `falsey`, `{}`, `[]`, `{ }`, `[ ]`, "\t{}\n", `{"a":{}}`,
	`"unterminated`, `{"a":"b"`, `[`, ``, ` `, `"\`, "\"\xff\xfe\"", `{"<":">"}`, `[[[[]]]]`,
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
}

// TestJSONReaderJudgesAsEncodingJSON: a body is valid for the reader when
// json.Valid says so, and a value is canonical exactly when Compact and
// HTMLEscape leave it unchanged.
func TestJSONReaderJudgesAsEncodingJSON(t *testing.T) {
	for _, s := range jsonSamples {
		checkJSONReader(t, []byte(s))
	}
}

// FuzzJSONReader holds the reader to encoding/json on any input
// (go test -fuzz FuzzJSONReader ./gateway).
func FuzzJSONReader(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(checkJSONReader)
}

// checkJSONReader compares the reader's judgement of b with encoding/json's.
func checkJSONReader(t *testing.T, b []byte) {
	r := jsonReader{b: b}
	r.ws()
	raw, canonical, err := r.value(0)
	if err == nil {
		err = r.end()
	}
	if valid := json.Valid(b); valid != (err == nil) {
		t.Fatalf("%q: json.Valid says %v, the reader %v", b, valid, err)
	}
	if err != nil {
		return
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatal(err)
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	if same := bytes.Equal(escaped.Bytes(), raw); same != canonical {
		t.Fatalf("%q: canonical %v, but encoding/json writes it as %q", raw, canonical, escaped.Bytes())
	}
	if got := dataOf(raw, canonical).(json.RawMessage); !bytes.Equal(got, escaped.Bytes()) {
		t.Fatalf("%q: dataOf gives %q, encoding/json %q", raw, got, escaped.Bytes())
	}
}
