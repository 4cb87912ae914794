package catalog_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/topic"
)

// sourceConstants returns the string constants declared in the package's
// non-test files, and the paths the package imports.
func sourceConstants(t *testing.T) (consts, imports []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports = append(imports, p)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						consts = append(consts, s)
					}
				}
			}
		}
	}
	return consts, imports
}

func TestEveryTypeIsAValidCoreTopicAndListed(t *testing.T) {
	types := catalog.Types()
	consts, imports := sourceConstants(t)
	slices.Sort(consts)
	sorted := slices.Sorted(slices.Values(types))
	if !slices.Equal(consts, sorted) {
		t.Fatalf("constants %v\nand Types() %v differ: register every constant in the catalog", consts, sorted)
	}
	if len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		t.Fatalf("duplicate event types in %v", sorted)
	}
	for _, typ := range types {
		parsed, err := topic.Parse(typ)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if parsed.Kind != topic.KindCore {
			t.Errorf("%s is a %s topic, want core", typ, parsed.Kind)
		}
	}
	for _, imp := range imports {
		if strings.HasPrefix(imp, "github.com/plexica/") && imp != "github.com/plexica/eventbus" {
			t.Errorf("package catalog imports %s; it must import only the bus's root package (for eventbus.Name)", imp)
		}
	}
	if _, ok := catalog.NewData("core.user.unknown_thing_happened"); ok {
		t.Error("NewData knows an unknown type")
	}
}

// fill sets every field of the struct v points to to a non-zero value.
func fill(v reflect.Value) {
	v = v.Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x-" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(100 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"name": "New name", "seats": 12.0}))
		case reflect.Struct:
			if f.Type() == reflect.TypeFor[time.Time]() {
				f.Set(reflect.ValueOf(time.Date(2026, 11, 27, 17, 6, 55, 916e6, time.UTC)))
				continue
			}
			panic("unexpected struct field " + v.Type().Field(i).Name)
		default:
			panic("unexpected field kind " + f.Kind().String())
		}
	}
}

func TestEveryDataTypeRoundTripsWithCamelCaseFields(t *testing.T) {
	for _, typ := range catalog.Types() {
		data, ok := catalog.NewData(typ)
		if !ok {
			t.Fatalf("NewData(%s) unknown", typ)
		}
		rv := reflect.ValueOf(data)
		fill(rv)
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		if len(fields) != rv.Elem().NumField() {
			t.Errorf("%s: %s has %d JSON fields, want %d (a field without a JSON name?)", typ, b, len(fields), rv.Elem().NumField())
		}
		for name := range fields {
			if !unicode.IsLower(rune(name[0])) || strings.ContainsAny(name, "_-") {
				t.Errorf("%s: JSON field %q is not camelCase", typ, name)
			}
		}
		back, _ := catalog.NewData(typ)
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !reflect.DeepEqual(back, data) {
			t.Errorf("%s: round trip changed the data:\n got %+v\nwant %+v", typ, back, data)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(again, b) {
			t.Errorf("%s: re-encoded as %s, first %s", typ, again, b)
		}
	}
}

// The JSON the TypeScript services send decodes into the catalog's types.
func TestDecodesTypeScriptPayloads(t *testing.T) {
	var u catalog.UserCreatedData
	if err := json.Unmarshal([]byte(`{"userId":"123","email":"user@example.com","role":"member"}`), &u); err != nil || u != (catalog.UserCreatedData{UserID: "123", Email: "user@example.com", Role: "member"}) {
		t.Fatalf("%+v, %v", u, err)
	}
	var m catalog.MemberAddedData
	if err := json.Unmarshal([]byte(`{"workspaceId":"ws-1","userId":"u-1","role":"ADMIN","invitedBy":"u-0"}`), &m); err != nil || m.InvitedBy != "u-0" || m.Role != "ADMIN" {
		t.Fatalf("%+v, %v", m, err)
	}
	var tok catalog.TokenIssuedData
	if err := json.Unmarshal([]byte(`{"userId":"u-1","expiresAt":"2026-11-27T17:06:55.916Z"}`), &tok); err != nil || tok.ExpiresAt.UnixMilli() != 1795799215916 {
		t.Fatalf("%+v, %v", tok, err)
	}
	if got := (catalog.UserLogoutData{SessionDuration: 1500}).SessionLength(); got != 1500*time.Millisecond {
		t.Fatalf("SessionLength = %s", got)
	}
	// Optional fields are left out when empty, as the TypeScript side does.
	b, _ := json.Marshal(catalog.UserLoginData{UserID: "u-1"})
	if string(b) != `{"userId":"u-1"}` {
		t.Fatalf("%s", b)
	}
}

// TestMismatchedPayloadDoesNotCompile: a catalog name carries its data
// type, so publishing another type's data under it is a compile error.
// (testdata/mismatch holds such a call; the same call with the right data
// type is in the package example.)
func TestMismatchedPayloadDoesNotCompile(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(goTool, "vet", "./testdata/mismatch").CombinedOutput()
	if err == nil {
		t.Fatalf("publishing core.user.created with UserLoginData compiled:\n%s", out)
	}
	if !strings.Contains(string(out), "UserLoginData") {
		t.Fatalf("go vet failed, but not on the payload type:\n%s", out)
	}
}
