package eventbustest

import (
	"errors"
	"strings"
	"testing"
)

// TestPostgresBinMissingSaysHowToInstall: without the server binaries the
// error is the one Postgres skips on, naming the install command.
func TestPostgresBinMissingSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := postgresBinGlob
	postgresBinGlob = t.TempDir() + "/*/bin"
	defer func() { postgresBinGlob = old }()
	_, err := postgresBin()
	var missing *postgresMissingError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), PostgresInstall) {
		t.Fatalf("postgresBin without binaries: %v, want the install command", err)
	}
}
