package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

func TestJittered(t *testing.T) {
	for _, tc := range []struct {
		u    float64
		want time.Duration
	}{{0, 500 * time.Microsecond}, {0.5, time.Millisecond}, {0.999, 1499 * time.Microsecond}} {
		if got := jittered(time.Millisecond, tc.u); got != tc.want {
			t.Errorf("jittered(1ms, %g) = %s, want %s", tc.u, got, tc.want)
		}
	}
	if got := jittered(0, 0.7); got != 0 {
		t.Errorf("jittered(0, 0.7) = %s, want 0", got)
	}
}

func TestParseHandledLine(t *testing.T) {
	for _, tc := range []struct {
		line, id string
		ok       bool
	}{
		{"handled 0190a1b2-c3d4", "0190a1b2-c3d4", true},
		{"handled 0190a1b2-c3d4\r", "0190a1b2-c3d4", true},
		{"handled ", "", false},
		{subscribedLine, "", false},
		{"eventbus: no brokers", "", false},
	} {
		id, ok := parseHandledLine(tc.line)
		if id != tc.id || ok != tc.ok {
			t.Errorf("parseHandledLine(%q) = %q, %t; want %q, %t", tc.line, id, ok, tc.id, tc.ok)
		}
	}
}

// TestCrashTally counts the lost and duplicated events of a backlog of
// four handled by two consumers.
func TestCrashTally(t *testing.T) {
	tally := newCrashTally([]string{"a", "b", "c", "d"})
	for _, id := range []string{"a", "b", "b"} {
		tally.add(killedSide, id)
	}
	if seen := tally.add(restartedSide, "a"); seen != 2 {
		t.Fatalf("seen %d after a, b, b, a; want 2", seen)
	}
	tally.add(restartedSide, "zz") // not of the backlog: counted as a call, not seen
	lost, dups, handled := tally.result()
	if lost != 2 || dups != 2 || handled != [2]int{3, 2} {
		t.Fatalf("lost %d, duplicates %d, handled %v; want 2, 2, [3 2]", lost, dups, handled)
	}
	select {
	case <-tally.allSeen:
		t.Fatal("allSeen closed with c and d never handled")
	default:
	}
	tally.add(restartedSide, "c")
	if seen := tally.add(restartedSide, "d"); seen != 4 {
		t.Fatalf("seen %d, want 4", seen)
	}
	<-tally.allSeen
	tally.add(restartedSide, "d") // after allSeen: must not close it again
	if lost, dups, _ := tally.result(); lost != 0 || dups != 3 {
		t.Fatalf("lost %d, duplicates %d; want 0, 3", lost, dups)
	}
	<-newCrashTally(nil).allSeen // nothing to see: seen at once
}

func TestCaughtUp(t *testing.T) {
	ends := map[int32]int64{0: 10, 1: 0, 2: 7}
	for _, tc := range []struct {
		committed map[int32]int64
		want      bool
	}{
		{map[int32]int64{0: 10, 2: 7}, true}, // an empty partition needs no commit
		{map[int32]int64{0: 10, 1: 0, 2: 7}, true},
		{map[int32]int64{0: 10, 2: 6}, false},
		{map[int32]int64{0: 10}, false},
		{nil, false},
	} {
		if got := caughtUp(ends, tc.committed); got != tc.want {
			t.Errorf("caughtUp(%v, %v) = %t, want %t", ends, tc.committed, got, tc.want)
		}
	}
}

func TestCrashConsumerConfig(t *testing.T) {
	cfg := CrashConsumerConfig{Brokers: []string{"a:1", "b:2"}, Topic: "t", Group: "g", InstanceID: "i", HandlerDelay: 1500 * time.Microsecond}
	want := []string{CrashConsumerCommand, "--log-level", "warn", "--brokers", "a:1,b:2", "--topic", "t", "--group", "g",
		"--handler-delay", "1.5ms", "--instance-id", "i"}
	if got := cfg.args(); !slices.Equal(got, want) {
		t.Fatalf("args = %q, want %q", got, want)
	}
	cfg.InstanceID = ""
	if got := cfg.args(); slices.Contains(got, "--instance-id") {
		t.Fatalf("args without an instance ID = %q", got)
	}
	for _, tc := range []struct {
		cfg  CrashConsumerConfig
		want string
	}{
		{CrashConsumerConfig{Topic: "t", Group: "g"}, "no brokers"},
		{CrashConsumerConfig{Brokers: []string{"a:1"}, Group: "g"}, "no topic"},
		{CrashConsumerConfig{Brokers: []string{"a:1"}, Topic: "t"}, "no group"},
		{CrashConsumerConfig{Brokers: []string{"a:1"}, Topic: "t", Group: "g", HandlerDelay: -1}, "negative"},
	} {
		if err := RunCrashConsumer(context.Background(), tc.cfg, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RunCrashConsumer(%+v) = %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	fmt.Fprint(b, "0123456789")
	fmt.Fprint(b, "ab")
	if got := b.String(); got != "456789ab" {
		t.Fatalf("tail = %q, want %q", got, "456789ab")
	}
}

// TestRunCrashConsumer runs the crash consumer on a broker and checks that
// it prints subscribed, then one handled line per event, and stops when
// its context ends.
func TestRunCrashConsumer(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.bench.crashed")
	want := map[string]bool{}
	for i := range 20 {
		want[eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", i%7)})] = true
	}
	r, w := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunCrashConsumer(ctx, CrashConsumerConfig{
			Brokers: brokers, Topic: topic, Group: eventbustest.UniqueID("crash"), HandlerDelay: time.Millisecond,
		}, w)
		w.Close()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.NewTimer(eventbustest.WaitTimeout)
	defer timeout.Stop()
	var got []string
	for len(want) > 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended after %q: %v", got, <-done)
			}
			if len(got) == 0 && line != subscribedLine {
				t.Fatalf("first line %q, want %q", line, subscribedLine)
			}
			got = append(got, line)
			if id, ok := parseHandledLine(line); ok {
				if !want[id] {
					t.Fatalf("handled %s twice or unknown", id)
				}
				delete(want, id)
			}
		case <-timeout.C:
			t.Fatalf("%d events not handled; output: %q", len(want), got)
		}
	}
	cancel()
	go func() {
		for range lines { // let it write while it stops
		}
	}()
	if err := <-done; err != nil {
		t.Fatalf("RunCrashConsumer after its context ended: %v", err)
	}
}

// TestCrashTopicAndRows checks that the crash phase has its topic and its
// figures reach the table and the checks.
func TestCrashTopicAndRows(t *testing.T) {
	tp := topics{prefix: "core.bench_x", phases: []string{PhaseCrash}}
	if got := tp.all(); !slices.Equal(got, []string{"core.bench_x_crash_ours.recorded"}) {
		t.Fatalf("topics = %q", got)
	}
	rep := &Report{Brokers: []string{"b:1"}, Crash: &Crash{Workload: Workload{HandlerMs: 1, Keys: 1000, Backlog: 20_000, MaxConcurrency: 64, MaxPending: 10_000},
		KilledAt: 10_000, HandledByKilled: 10_006, HandledByRestarted: 12_000,
		Lost: 1, Duplicates: 2_006, DuplicateShare: 0.1003, ResumeMs: 27, Settled: true}}
	rep.evaluate()
	if len(rep.Checks) != 2 || rep.Checks[0].OK || rep.Checks[0].Value != 1 || rep.Checks[1].OK || rep.Checks[1].Value != 0.1003 {
		t.Fatalf("checks = %+v; want failed checks of 1 lost and 10.03%% duplicates", rep.Checks)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kill -9 mid-backlog (20000 events, 1000 keys): lost", "0 lost  MISS", "2006", "10.03%", "≤ 1%    MISS",
		"10006 / 12000", "killed with SIGKILL once it had handled 10000 events"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, b.String())
		}
	}
}
