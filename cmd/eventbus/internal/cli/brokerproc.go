package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// childStartTimeout bounds the wait for a child broker's ready line.
	childStartTimeout = 30 * time.Second
	// childStopTimeout bounds a child broker's clean stop; then it is killed.
	childStopTimeout = 15 * time.Second
)

// childBroker is an embedded broker run by this binary in a separate
// process, `eventbus serve --broker-addr 127.0.0.1:0 --in-memory`, so that a
// benchmark does not share its Go runtime (CPU, GC) with the broker.
type childBroker struct {
	cmd     *exec.Cmd
	brokers []string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
}

// startChildBroker runs exe serve and returns once it printed its
// EVENTBUS_BROKERS line. Its standard error goes to stderr.
func startChildBroker(ctx context.Context, exe string, stderr io.Writer) (*childBroker, error) {
	return startChildBrokerWith(ctx, exe, stderr, "--in-memory")
}

// startChildBrokerWith is startChildBroker with serve's storage flags
// given: "--in-memory", or "--data", dir, with any other serve flags.
func startChildBrokerWith(ctx context.Context, exe string, stderr io.Writer, storage ...string) (*childBroker, error) {
	ready := newReadyWatcher()
	args := append([]string{"serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn"}, storage...)
	cmd := exec.Command(exe, args...)
	cmd.Env = withoutEventbusEnv(os.Environ())
	cmd.Stdout = ready
	cmd.Stderr = stderr
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the embedded broker (%s serve): %w", exe, err)
	}
	c := &childBroker{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	timer := time.NewTimer(childStartTimeout)
	defer timer.Stop()
	select {
	case brokers := <-ready.brokers:
		c.brokers = brokers
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("the embedded broker process (%s serve) exited before it was ready: %v; see its messages above", exe, c.waitErr)
	case <-timer.C:
		_ = c.Stop()
		return nil, fmt.Errorf("the embedded broker process (%s serve) printed no %s line within %s", exe, BrokersLinePrefix, childStartTimeout)
	case <-ctx.Done():
		_ = c.Stop()
		return nil, ctx.Err()
	}
}

// Pid is the child broker's process ID.
func (c *childBroker) Pid() int { return c.cmd.Process.Pid }

// Brokers returns the child broker's addresses.
func (c *childBroker) Brokers() []string { return c.brokers }

// Stop asks the child to stop (SIGTERM), waits for it, and kills it if it
// does not stop in time. Stopping twice is a no-op.
func (c *childBroker) Stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := terminate(c.cmd.Process); err != nil {
		_ = c.cmd.Process.Kill()
	}
	timer := time.NewTimer(childStopTimeout)
	defer timer.Stop()
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("the embedded broker process did not stop cleanly: %w", c.waitErr)
		}
		return nil
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("the embedded broker process did not stop within %s and was killed", childStopTimeout)
	}
}

// withoutEventbusEnv drops EVENTBUS_* variables, so that the child serves
// exactly what its flags say.
func withoutEventbusEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "EVENTBUS_") {
			out = append(out, kv)
		}
	}
	return out
}

// readyWatcher is a child's standard output: it looks for the
// EVENTBUS_BROKERS= line and sends its brokers, once; everything else is
// dropped.
type readyWatcher struct {
	mu      sync.Mutex
	partial []byte
	found   bool
	brokers chan []string
}

func newReadyWatcher() *readyWatcher {
	return &readyWatcher{brokers: make(chan []string, 1)}
}

func (w *readyWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.found {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		if brokers, ok := parseBrokersLine(line); ok {
			w.found, w.partial = true, nil
			w.brokers <- brokers
			break
		}
	}
	return len(p), nil
}

// parseBrokersLine reads an "EVENTBUS_BROKERS=host:port,..." line.
func parseBrokersLine(line string) ([]string, bool) {
	rest, ok := strings.CutPrefix(line, BrokersLinePrefix)
	if !ok {
		return nil, false
	}
	brokers := splitList(rest)
	return brokers, len(brokers) > 0
}

// terminate asks p to stop cleanly. Where SIGTERM cannot be sent (Windows)
// it fails and the caller kills p.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
