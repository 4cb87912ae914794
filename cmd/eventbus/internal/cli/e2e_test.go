package cli

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// startBinary runs the built eventbus binary with args and returns its
// stdout lines; the process is killed with the test if still running.
func startBinary(t *testing.T, args ...string) (*exec.Cmd, <-chan string, *eventbustest.LogBuffer) {
	t.Helper()
	return startBinaryEnv(t, nil, args...)
}

// startBinaryEnv is startBinary with env ("KEY=value") added to the
// environment, whose EVENTBUS_* variables are dropped first.
func startBinaryEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, <-chan string, *eventbustest.LogBuffer) {
	t.Helper()
	cmd := exec.Command(eventbusBinary(t), args...)
	cmd.Env = append(withoutEventbusEnv(cmd.Environ()), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &eventbustest.LogBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, lineReader(stdout), stderr
}

// waitExit reads the rest of the process's stdout, waits (bounded) for it
// to exit, and returns its exit code and that output.
func waitExit(t *testing.T, cmd *exec.Cmd, lines <-chan string) (int, string) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	var out strings.Builder
	for open := true; open; {
		select {
		case line, ok := <-lines:
			if ok {
				out.WriteString(line + "\n")
			}
			open = ok
		case <-timer.C:
			_ = cmd.Process.Kill()
			t.Fatalf("the process did not exit within %s; output so far:\n%s", waitTimeout, out.String())
		}
	}
	// Stdout is at EOF, so Wait may close it now.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0, out.String()
	case <-timer.C:
		_ = cmd.Process.Kill()
		t.Fatalf("the process did not exit within %s", waitTimeout)
		return -1, ""
	}
}

// TestServeBinaryEndToEnd builds the binary, runs serve on a free port,
// publishes and consumes one event through it with the library, and stops
// it with SIGTERM.
func TestServeBinaryEndToEnd(t *testing.T) {
	t.Parallel()
	cmd, lines, stderr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory")
	brokers := waitForBrokersLine(t, lines)

	bus := eventbustest.NewBus(t, servesQueue(), brokers...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	// FromBeginning: the topic is new, and a group that starts "from now"
	// may miss an event published the moment Subscribe returns (see the
	// report on eventbus.Subscribe).
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(eventbustest.UniqueID("e2e")), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	id := eventbustest.MustPublish(t, bus, topic, map[string]string{"orderId": "o-1"}, eventbus.PublishMetadata{TenantID: "acme"})
	if ev := rec.WaitForID(t, id); ev.TenantID != "acme" || string(ev.Data) != `{"orderId":"o-1"}` {
		t.Fatalf("received %+v", ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := bus.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitExit(t, cmd, lines); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
	}
}

// TestServeBinaryPortInUse runs a second serve on the first one's port.
func TestServeBinaryPortInUse(t *testing.T) {
	t.Parallel()
	first, lines, _ := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory")
	brokers := waitForBrokersLine(t, lines)

	second, lines2, stderr := startBinary(t, "serve", "--broker-addr", brokers[0], "--http-addr", "127.0.0.1:0", "--in-memory")
	if code, _ := waitExit(t, second, lines2); code != ExitError {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitError, stderr.String())
	}
	if msg := strings.TrimSpace(stderr.String()); strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "in use") {
		t.Fatalf("want one line saying the address is in use, got:\n%s", msg)
	}
	_ = first.Process.Signal(syscall.SIGTERM)
	if code, _ := waitExit(t, first, lines); code != 0 {
		t.Fatalf("first serve exit code %d, want 0", code)
	}
}
