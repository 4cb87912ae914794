package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	samples := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted on purpose
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	got := summarize(samples)
	want := Latency{Count: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Latency{}) {
		t.Fatal("no samples must summarize to zeros")
	}
}

func TestSentAtOf(t *testing.T) {
	src := newEventSource(time.Now())
	rec := src.rawRecord("core.order.placed", 7, 123456789)
	if at, ok := sentAtOf(rec.Value); !ok || at != 123456789 {
		t.Fatalf("sentAtOf(envelope) = %d, %t", at, ok)
	}
	if _, ok := sentAtOf([]byte(`{"orderId":"x"}`)); ok {
		t.Fatal("no sentAt must not be found")
	}
	if src.valueBytes < 300 || src.valueBytes > 360 {
		t.Fatalf("events are %d bytes; the bench promises about 330", src.valueBytes)
	}
}

func TestLimit(t *testing.T) {
	l := &limit{max: 250}
	n := 0
	for l.take(100) {
		n++
	}
	if n != 2 {
		t.Fatalf("took %d batches of 100 under a cap of 250, want 2", n)
	}
	if unlimited := (&limit{}); !unlimited.take(1 << 30) {
		t.Fatal("a zero cap must not limit")
	}
}

func TestRecorderWaitFor(t *testing.T) {
	r := newRecorder(4)
	go func() {
		for range 3 {
			r.add(time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := r.waitFor(ctx, 3); got != 3 {
		t.Fatalf("waitFor(3) = %d", got)
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if got := r.waitFor(short, 10); got != 3 {
		t.Fatalf("waitFor(10) after the context ended = %d, want 3", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no brokers"},
		{Config{Brokers: []string{"b:1"}, Duration: -time.Second}, "negative"},
		{Config{Brokers: []string{"b:1"}, Rates: []int{0}}, "must be positive"},
		{Config{Brokers: []string{"b:1"}, MaxEvents: -1}, "negative"},
		{Config{Brokers: []string{"b:1"}, Backlog: -1}, "negative"},
		{Config{Brokers: []string{"b:1"}, Phases: []string{"slow", "warp"}}, `no phase "warp"`},
	} {
		if err := tc.cfg.setDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("setDefaults(%+v) = %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
	quick := Config{Brokers: []string{"b:1"}, Quick: true}
	if err := quick.setDefaults(); err != nil || quick.Duration != QuickDuration || quick.Publishers != DefaultPublishers ||
		quick.Backlog != QuickBacklog || len(quick.Phases) != len(DefaultPhases) {
		t.Fatalf("quick defaults: %+v, %v", quick, err)
	}
}
