package cli

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
	"github.com/plexica/eventbus/eventbustest"
)

// waitTimeout bounds every wait of these tests, those of the test kit
// (eventbustest.Eventually among them) too: TestMain sets
// eventbustest.WaitTimeout to it.
const waitTimeout = 60 * time.Second

// TestMain keeps one temporary directory for the binary that the
// end-to-end tests build (once) and run. Called with the bench's hidden
// consumer command, the test binary is that command: the in-process bench
// runs its crash phase's consumer by re-executing its own binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == bench.CrashConsumerCommand {
		os.Exit(Main(os.Args[1:]))
	}
	eventbustest.WaitTimeout = waitTimeout // before any test runs
	dir, err := os.MkdirTemp("", "eventbus-cli-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// eventbusBinary builds cmd/eventbus once per test run and returns its path.
func eventbusBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH to build the binary")
	}
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "eventbus")
		out, err := exec.Command(goTool, "build", "-o", binPath, "github.com/plexica/eventbus/cmd/eventbus").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/eventbus: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// closedAddr returns a local address where nothing listens: a port just
// released.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// runCLI runs the eventbus command in process and returns its exit code and
// output.
func runCLI(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errOut eventbustest.LogBuffer
	code = Run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// lineReader delivers the lines of r on a channel, closed at EOF.
func lineReader(r io.Reader) <-chan string {
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// waitForBrokersLine reads lines until the EVENTBUS_BROKERS= line and
// returns its brokers; it fails the test after waitTimeout or at EOF.
func waitForBrokersLine(t *testing.T, lines <-chan string) []string {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended without a %s line; it was:\n%s", BrokersLinePrefix, strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if brokers, ok := parseBrokersLine(line); ok {
				return brokers
			}
		case <-timer.C:
			t.Fatalf("no %s line within %s; output so far:\n%s", BrokersLinePrefix, waitTimeout, strings.Join(seen, "\n"))
		}
	}
}

// pipeWriter is an io.Writer whose lines can be read as they come.
func pipeWriter(t *testing.T) (io.Writer, <-chan string) {
	r, w := io.Pipe()
	t.Cleanup(func() { _ = w.Close() })
	return w, lineReader(r)
}
