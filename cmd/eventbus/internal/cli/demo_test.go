package cli

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `eventbus demo` and checks its story and its summary.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	start := time.Now()
	code, stdout, stderr := runCLI(ctx, "demo", "--pace", "0")
	if code != ExitOK {
		t.Fatalf("demo exit code %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the demo took %s; it should end well under a minute", d)
	}
	if stderr != "" {
		t.Errorf("the demo wrote to stderr:\n%s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	summary := lines[len(lines)-1]
	m := regexp.MustCompile(`^eventbus demo: published (\d+), delivered (\d+), isolation violations (\d+), dead-lettered (\d+), resolved (\d+) `).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("the last line is not the summary: %q\n%s", summary, stdout)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	// Delivery is at-least-once: a redelivery may add to "delivered".
	if n(1) != 8 || n(2) < 11 || n(3) != 0 || n(4) != 1 || n(5) < 1 {
		t.Fatalf("summary %q: want published 8, delivered >= 11, isolation violations 0, dead-lettered 1, resolved >= 1", summary)
	}
	for _, want := range []string{
		"core service → core.user.created",
		"crm[acme]                  ← core.user.created",
		"crm[globex]                ← core.user.created          u-3 ✗ handler failed",
		"crm[globex]                ← core.user.created          u-3 (retry 1)",
		"status pending",
		"status resolved (failed",
		"0 of another tenant",
		"✓ no plugin instance saw another tenant's event",
		"✓ sample-analytics[globex] handled u-3's core.user.created once",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the demo did not say %q:\n%s", want, stdout)
		}
	}
}

// TestDemoInterrupted stops the demo at once: it exits 1, saying so.
func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, _, stderr := runCLI(ctx, "demo", "--pace", "0")
	if code != ExitError || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}
