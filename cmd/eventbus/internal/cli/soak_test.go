package cli

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
)

// TestSoakShortRun runs the built binary's `soak` for a few seconds with a
// cap of 1 MiB, which 4,000 events/s reach within a second or two, and
// checks that the report has every figure. It asserts no memory figure:
// those belong to real runs (docs/benchmarks.md).
func TestSoakShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("soak reads the broker's memory from /proc (Linux)")
	}
	cmd, lines, stderr := startBinary(t, "soak", "--duration", "4s", "--sample", "500ms", "--rate", "4000", "--broker-max-bytes", "1MiB", "--json")
	code, out := waitExit(t, cmd, lines)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	var s bench.Soak
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	switch {
	case s.Published == 0 || s.Handled == 0:
		t.Fatalf("published %d, handled %d: no load", s.Published, s.Handled)
	case s.StartRSS <= 0 || s.PeakRSS < s.StartRSS || s.EndRSS <= 0:
		t.Fatalf("RSS start %d, peak %d, end %d", s.StartRSS, s.PeakRSS, s.EndRSS)
	case s.MaxBytes != 1<<20 || s.CapReachedSeconds < 0 || s.RSSAtCap <= 0 || s.PeakAfterCap < s.RSSAtCap:
		t.Fatalf("cap %d reached at %g s, RSS then %d, highest after %d", s.MaxBytes, s.CapReachedSeconds, s.RSSAtCap, s.PeakAfterCap)
	case len(s.Samples) < 2:
		t.Fatalf("%d samples of the broker's memory", len(s.Samples))
	}
	if !strings.Contains(stderr.String(), "soak: starting the embedded broker") {
		t.Fatalf("stderr does not say how the broker runs:\n%s", stderr.String())
	}
}

// TestSoakRejectsBadFlags: each bad flag is a usage error naming it.
func TestSoakRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--duration", "-1s"}, "--duration"},
		{[]string{"--duration", "1s", "--sample", "2s"}, "--sample"},
		{[]string{"--broker-max-bytes", "lots"}, "--broker-max-bytes"},
	} {
		code, _, stderr := runCLI(context.Background(), append([]string{"soak"}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("soak %v: exit %d, stderr %q; want a usage error naming %s", tc.args, code, stderr, tc.want)
		}
	}
}

// TestProcessRSS reads this process's resident memory.
func TestProcessRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read from /proc (Linux)")
	}
	rss, err := processRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("processRSS(self) = %d, %v", rss, err)
	}
	if _, err := processRSS(-1); err == nil {
		t.Fatal("processRSS(-1) did not fail")
	}
}
