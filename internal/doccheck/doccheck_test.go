package doccheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/plexica/eventbus"

// preludes declares, per document, the names its blocks use without declaring
// them, with their real types. A block that starts using a new one fails with
// "undefined: name": declare that name here.
var preludes = map[string]string{
	"README.md": `
var (
	ctx         context.Context
	bus         *eventbus.Bus
	pool        *pgxpool.Pool
	id          string
	meta        eventbus.PublishMetadata
	orderPlaced eventbus.Name[OrderPlaced] = "core.order.placed"
)

type OrderPlaced struct{ ID string }

func bill(ctx context.Context, tx pgx.Tx, ev eventbus.Event[OrderPlaced]) error { return nil }
`,
	"docs/dlq.md": `
var (
	ctx context.Context
	bus *eventbus.Bus
)
`,
	"docs/outbox.md": `
var (
	ctx  context.Context
	pool *pgxpool.Pool
)
`,
	"docs/plugins.md": `
var (
	ctx       context.Context
	bus       *eventbus.Bus
	client    *eventbus.Client
	crm       *CRM
	crmClient *eventbus.PluginClient
	secret    string
)

type ContactCreated struct{ ContactID, UserID string }

type DealUpdated struct{ DealID string }

type CRM struct{}

func (*CRM) onUserCreated(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error { return nil }

func (*CRM) onDealUpdated(ctx context.Context, ev eventbus.Event[DealUpdated]) error { return nil }

func onUser(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error { return nil }
`,
}

// importPaths maps the package names blocks and preludes use to their import
// paths; the module's own packages (eventbus/outbox, ...) are found by
// directory, and a block's own import lines are honoured.
var importPaths = map[string]string{
	"context":  "context",
	"errors":   "errors",
	"eventbus": module,
	"fmt":      "fmt",
	"http":     "net/http",
	"json":     "encoding/json",
	"log":      "log",
	"pgx":      "github.com/jackc/pgx/v5",
	"pgxpool":  "github.com/jackc/pgx/v5/pgxpool",
	"time":     "time",
}

// chunk is consecutive lines of a document, line being the first one's number.
type chunk struct {
	line int
	text []string
}

// block is one ```go block, split into top-level funcs and statements.
type block struct {
	line    int // first line of code
	funcs   []chunk
	stmts   []chunk
	imports map[string]string // from its import lines: name -> path
}

// TestDocBlocksCompile builds every ```go block of README.md and docs/*.md:
// one generated package per document (in a go build overlay, nothing is
// written to the repository), each block's statements wrapped in
// func blockN() error, with the document's prelude.
func TestDocBlocksCompile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)

	tmp := t.TempDir()
	overlay := map[string]string{}
	var pkgs []string
	blocks := map[string][]block{} // by document, relative to root
	for _, abs := range docs {
		rel, _ := filepath.Rel(root, abs)
		rel = filepath.ToSlash(rel)
		src, err := os.ReadFile(abs)
		if err != nil {
			t.Fatal(err)
		}
		bs := extract(string(src))
		if len(bs) == 0 {
			if _, ok := preludes[rel]; ok {
				t.Errorf("preludes has %s, which has no go block: remove it", rel)
			}
			continue
		}
		blocks[rel] = bs
		name := "doc" + strings.NewReplacer(".md", "", "-", "", "_", "").Replace(strings.ToLower(filepath.Base(rel)))
		gen, err := generate(root, abs, name, preludes[rel], bs)
		var syntax scanner.ErrorList
		if errors.As(err, &syntax) {
			var out strings.Builder
			for _, e := range syntax {
				fmt.Fprintln(&out, e)
			}
			report(t, root, map[string][]block{rel: bs}, out.String())
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(tmp, name+".go")
		if err := os.WriteFile(file, gen, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "internal", "doccheck", "generated", name)
		overlay[filepath.Join(dir, name+".go")] = file
		pkgs = append(pkgs, module+"/internal/doccheck/generated/"+name)
	}
	if len(blocks) == 0 {
		t.Fatal("no ```go block found in README.md or docs/*.md")
	}
	if len(pkgs) == 0 {
		return // every document failed to parse, reported above
	}

	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	// -gcflags=-e: every error of a package, not the first ten.
	cmd := exec.Command("go", append([]string{"build", "-gcflags=-e", "-overlay", ovFile}, pkgs...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		n := 0
		for _, bs := range blocks {
			n += len(bs)
		}
		t.Logf("%d go blocks of %d documents compile", n, len(blocks))
		return
	}
	if !report(t, root, blocks, string(out)) {
		for _, f := range overlay {
			src, _ := os.ReadFile(f)
			t.Logf("generated %s:\n%s", filepath.Base(f), numbered(string(src)))
		}
	}
	if !t.Failed() {
		t.Errorf("go build of the documents' go blocks: %v\n%s", err, out)
	}
}

var fence = regexp.MustCompile("^( *)```go\\s*$")

// extract returns the ```go blocks of a markdown document, split.
func extract(doc string) []block {
	var out []block
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) != "```" {
			j++
		}
		var code []string
		for _, l := range lines[i+1 : j] {
			code = append(code, strings.TrimPrefix(l, m[1]))
		}
		out = append(out, split(i+2, code))
		i = j
	}
	return out
}

// split sorts a block's lines into top-level funcs (a "func" at column 0 up
// to the "}" at column 0) and statements, dropping import lines.
func split(first int, code []string) block {
	b := block{line: first, imports: map[string]string{}}
	inFunc, inImport := false, false
	prev, prevFunc := -1, false
	for i, l := range code {
		n := first + i
		switch {
		case inImport:
			inImport = strings.TrimSpace(l) != ")"
			b.addImport(l)
			continue
		case strings.HasPrefix(l, "import ("):
			inImport = true
			continue
		case strings.HasPrefix(l, "import "):
			b.addImport(strings.TrimPrefix(l, "import "))
			continue
		case !inFunc && strings.HasPrefix(l, "func "):
			inFunc = true
			prev = -1 // a new chunk
		}
		dst := &b.stmts
		if inFunc {
			dst = &b.funcs
		}
		if prev == n-1 && prevFunc == inFunc {
			c := &(*dst)[len(*dst)-1]
			c.text = append(c.text, l)
		} else {
			*dst = append(*dst, chunk{line: n, text: []string{l}})
		}
		prev, prevFunc = n, inFunc
		if inFunc && strings.HasPrefix(l, "}") {
			inFunc = false
		}
	}
	return b
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

func (b *block) addImport(spec string) {
	f := strings.Fields(strings.TrimSpace(spec))
	if len(f) == 0 {
		return
	}
	p, err := strconv.Unquote(f[len(f)-1])
	if err != nil {
		return
	}
	name := path.Base(p)
	if len(f) > 1 {
		name = f[0]
	} else if majorVersion.MatchString(name) {
		name = path.Base(path.Dir(p))
	}
	b.imports[name] = p
}

// generate returns the Go file of one document: its imports, prelude, the
// blocks' funcs, and one func per block's statements with "_ = v" for each
// variable the block declares. Line directives make the compiler name the
// document and its lines.
func generate(root, doc, pkg, prelude string, bs []block) ([]byte, error) {
	src := render(doc, pkg, prelude, bs, nil, nil)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		return nil, err
	}
	declared := map[string][]string{} // by func name
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "block") {
			declared[fn.Name.Name] = declaredVars(fn.Body.List)
		}
	}
	imports := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || id.Obj != nil { // a declared name, not a package
			return true
		}
		if p := importPath(root, id.Name, bs); p != "" {
			imports[p] = true
		}
		return true
	})
	var paths []string
	for p := range imports {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return render(doc, pkg, prelude, bs, paths, declared), nil
}

func importPath(root, name string, bs []block) string {
	if p, ok := importPaths[name]; ok {
		return p
	}
	for _, b := range bs {
		if p, ok := b.imports[name]; ok {
			return p
		}
	}
	if fi, err := os.Stat(filepath.Join(root, name)); err == nil && fi.IsDir() {
		return module + "/" + name
	}
	return "" // the compiler says "undefined: name"
}

// declaredVars returns the variables a block's top-level statements declare.
func declaredVars(stmts []ast.Stmt) []string {
	var names []string
	seen := map[string]bool{"_": true}
	add := func(id *ast.Ident) {
		if !seen[id.Name] {
			seen[id.Name] = true
			names = append(names, id.Name)
		}
	}
	for _, s := range stmts {
		switch s := s.(type) {
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				for _, e := range s.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						add(id)
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := s.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, sp := range g.Specs {
					for _, id := range sp.(*ast.ValueSpec).Names {
						add(id)
					}
				}
			}
		}
	}
	return names
}

func render(doc, pkg, prelude string, bs []block, imports []string, declared map[string][]string) []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "package %s\n\n", pkg)
	for _, p := range imports {
		fmt.Fprintf(&w, "import %q\n", p)
	}
	fmt.Fprintf(&w, "\n// prelude\n%s\n", prelude)
	emit := func(c chunk) {
		fmt.Fprintf(&w, "\n//line %s:%d:1\n%s\n", doc, c.line, strings.Join(c.text, "\n"))
	}
	for _, b := range bs {
		for _, c := range b.funcs {
			emit(c)
		}
		name := fmt.Sprintf("block%d", b.line)
		fmt.Fprintf(&w, "\nfunc %s() error {", name)
		for _, c := range b.stmts {
			emit(c)
		}
		for _, v := range declared[name] {
			fmt.Fprintf(&w, "_ = %s\n", v)
		}
		w.WriteString("return nil\n}\n")
	}
	return w.Bytes()
}

var diag = regexp.MustCompile(`^(.+?):(\d+):(?:\d+:)? (.*)$`)

// report fails the test once per block that does not compile, naming the
// document, the block's first line and the compiler's messages. It returns
// false when some message is not in a block (a prelude, an import).
func report(t *testing.T, root string, blocks map[string][]block, out string) bool {
	t.Helper()
	type key struct {
		doc  string
		line int
	}
	msgs := map[key][]string{}
	var keys []key
	var other []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "# ") {
			continue
		}
		k, ok := key{}, false
		if m := diag.FindStringSubmatch(l); m != nil {
			p := m[1]
			if !filepath.IsAbs(p) {
				p = filepath.Join(root, p)
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			n, _ := strconv.Atoi(m[2])
			for _, b := range blocks[rel] { // the last block starting before n
				if b.line <= n {
					k, ok = key{rel, b.line}, true
				}
			}
			if ok {
				l = rel + strings.TrimPrefix(l, m[1])
			}
		}
		if !ok {
			other = append(other, l)
			continue
		}
		if msgs[k] == nil {
			keys = append(keys, k)
		}
		msgs[k] = append(msgs[k], strings.TrimSpace(l))
	}
	for _, k := range keys {
		var hint string
		for _, m := range msgs[k] {
			if u := undefined.FindStringSubmatch(m); u != nil {
				hint += fmt.Sprintf("\n\t(if %s is a name the document leaves to the reader, declare it in preludes[%q] in internal/doccheck/doccheck_test.go)", u[1], k.doc)
			}
		}
		t.Errorf("%s: the go block at line %d does not compile:\n\t%s%s", k.doc, k.line, strings.Join(msgs[k], "\n\t"), hint)
	}
	if len(other) > 0 {
		t.Errorf("building the documents' go blocks failed outside a block (see preludes and importPaths in internal/doccheck/doccheck_test.go):\n\t%s",
			strings.Join(other, "\n\t"))
	}
	return len(other) == 0
}

var undefined = regexp.MustCompile(`undefined: (\w+)$`)

func numbered(src string) string {
	var w strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&w, "%4d  %s\n", i+1, l)
	}
	return w.String()
}
