package eventbus_test

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestCrashRestartResumeTime kills a consumer (SIGKILL: it never leaves its
// group) and starts it again, with and without an instance ID, and
// logs how long the restarted process takes, from its start, to handle an
// event published once it has subscribed. A static member
// (ConsumerConfig.InstanceID, EVENTBUS_INSTANCE_ID in serve and the
// examples) takes its partitions back without waiting for the dead
// member's session timeout (crashStaticSessionTimeout, a minute); a dynamic
// one waits its own out (6 s here, 45 s by default: logged, not asserted).
func TestCrashRestartResumeTime(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	for _, tc := range []struct {
		name     string
		instance string
	}{
		{"with instance ID", eventbustest.UniqueID("pod")},
		{"without", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
			group := eventbustest.UniqueID("billing")
			args := []string{strings.Join(brokers, ","), topic, group}
			if tc.instance != "" {
				args = append(args, tc.instance)
			}
			publish := func() string {
				return eventbustest.MustPublish(t, bus, topic, map[string]int{"n": 1}, eventbus.PublishMetadata{TenantID: "acme"})
			}
			// run starts the helper, publishes once it subscribed and
			// returns how long after the start the event was handled;
			// kill, when set, SIGKILLs the helper then.
			run := func(kill bool) time.Duration {
				started := time.Now()
				cmd, sc := startCrashHelper(t, args...)
				var id string
				for sc.Scan() {
					line := sc.Text()
					switch {
					case line == "subscribed":
						id = publish()
					case strings.HasPrefix(line, "error"):
						t.Fatal(line)
					case id != "" && line == "handled "+id:
						took := time.Since(started)
						if kill {
							if err := cmd.Process.Kill(); err != nil {
								t.Fatal(err)
							}
							_ = cmd.Wait()
						}
						return took
					}
				}
				t.Fatalf("the helper ended before it handled %s", id)
				return 0
			}
			first := run(true)
			resumed := run(false)
			t.Logf("%s: the first start handled an event %s after the process started; the restart after a crash, %s", tc.name, first.Round(time.Millisecond), resumed.Round(time.Millisecond))
			// A static member must not wait for the dead member's session
			// timeout: that is the mechanism under test, not a speed.
			if tc.instance != "" && resumed >= crashStaticSessionTimeout {
				t.Errorf("after the crash the restarted static member took %s, as long as the session timeout (%s) it should not wait", resumed, crashStaticSessionTimeout)
			}
		})
	}
}

// TestCrashRestartDLQOwnership kills a process that runs the dead letter
// queue with an instance ID (SIGKILL: it never leaves its scheduler
// group) and starts it again. The restarted process must own its dlq.*
// partition again, and so apply the commands sent to it (Retry, Delete,
// the failures it records), before the dead member's session could have
// ended: a static member of the scheduler group takes its partitions back
// at once. The dead member's session (crashStaticSessionTimeout, a
// minute) was renewed by a heartbeat at most one HeartbeatInterval before
// the kill, so it lasts at least that much less from the kill: a process
// that waits for it to end does not own the partition before then.
// Measured from the kill, logged; asserted only against that bound.
func TestCrashRestartDLQOwnership(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	group := eventbustest.UniqueID("billing")
	args := []string{strings.Join(brokers, ","), topic, group, eventbustest.UniqueID("pod")}
	env := []string{crashHelperDLQEnv + "=1"}
	sessionLeft := crashStaticSessionTimeout - eventbus.DefaultHeartbeatInterval
	// applied reads the helper's output until its queue applied the
	// failure it records at its start, and reports whether it did.
	applied := func(sc *bufio.Scanner) bool {
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "error"):
				t.Fatal(line)
			case strings.HasPrefix(line, "applied "):
				return true
			}
		}
		return false
	}
	cmd, sc := startCrashHelperEnv(t, env, args...)
	if !applied(sc) {
		t.Fatal("the helper ended before its queue applied a failure")
	}
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	var restarted *exec.Cmd
	restarted, sc = startCrashHelperEnv(t, env, args...)
	// Past the least the dead member's session lasts, waiting longer
	// proves nothing more: the helper is stopped and the test fails.
	stop := time.AfterFunc(time.Until(killed.Add(sessionLeft)), func() { _ = restarted.Process.Kill() })
	defer stop.Stop()
	if !applied(sc) {
		t.Fatalf("the restarted process did not own its dlq.* partition within %s of the crash: it waits for the dead member's session (%s, renewed at most %s before the kill) to end",
			sessionLeft, crashStaticSessionTimeout, eventbus.DefaultHeartbeatInterval)
	}
	took := time.Since(killed)
	stop.Stop()
	t.Logf("the restarted process applied a failure on its dlq.* partition %s after the crash", took.Round(time.Millisecond))
	if took >= sessionLeft {
		t.Errorf("the restarted process took %s from the crash to own its dlq.* partition, as long as the dead member's session (%s, renewed at most %s before the kill) it should not wait", took, crashStaticSessionTimeout, eventbus.DefaultHeartbeatInterval)
	}
}
