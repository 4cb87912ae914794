package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyPublicPackages: the command is a separate module and uses
// the library as any program would, through its public packages only (an
// internal/ import compiles here only because the paths share a prefix).
func TestImportsOnlyPublicPackages(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-f",
		`{{range .Imports}}{{$.ImportPath}} {{.}}{{"\n"}}{{end}}{{range .TestImports}}{{$.ImportPath}} {{.}}{{"\n"}}{{end}}{{range .XTestImports}}{{$.ImportPath}} {{.}}{{"\n"}}{{end}}`,
		"./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const internal = "github.com/plexica/eventbus/internal/"
	var bad []string
	for line := range strings.Lines(string(out)) {
		if pkg, imp, ok := strings.Cut(strings.TrimSpace(line), " "); ok && strings.HasPrefix(imp, internal) {
			bad = append(bad, pkg+" imports "+imp)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("the command imports the library's internal packages; use a public one:\n%s", strings.Join(bad, "\n"))
	}
}
