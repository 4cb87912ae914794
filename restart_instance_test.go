package eventbus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestCrashRestartResumeTime kills a consumer (SIGKILL: it never leaves its
// group) and starts it again, with and without an instance ID, and
// measures how long the restarted process takes, from its start, to handle
// an event published once it has subscribed. A static member (ConsumerConfig.InstanceID,
// EVENTBUS_INSTANCE_ID in serve and the examples) takes its partitions back
// at once; a dynamic one waits until the group drops the dead member
// (the crash helper's 6 s session timeout; 45 s by default).
func TestCrashRestartResumeTime(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	for _, tc := range []struct {
		name     string
		instance string
		within   time.Duration
		atLeast  time.Duration
	}{
		{"with instance ID", eventbustest.UniqueID("pod"), 3 * time.Second, 0},
		{"without", "", time.Minute, 3 * time.Second},
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
			if resumed > tc.within {
				t.Errorf("after the crash the restarted consumer took %s, want at most %s", resumed, tc.within)
			}
			if resumed < tc.atLeast {
				t.Errorf("without an instance ID the restarted consumer took only %s: the dead member should hold its partitions for its session timeout", resumed)
			}
		})
	}
}
