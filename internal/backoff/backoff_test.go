package backoff

import (
	"context"
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {12, time.Hour}, {1000, time.Hour}} {
		if got := Exponential(time.Second, time.Hour, tt.n); got != tt.want {
			t.Errorf("Exponential(1s, 1h, %d) = %s, want %s", tt.n, got, tt.want)
		}
	}
	if got := Exponential(time.Second, 1500*time.Millisecond, 1); got != 1500*time.Millisecond {
		t.Errorf("capped: %s", got)
	}
}

func TestJitterStaysWithinAFifthBelow(t *testing.T) {
	d := 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 1000 {
		j := Jitter(d)
		if j > d || j < d*4/5 {
			t.Fatalf("Jitter(%s) = %s, outside [%s, %s]", d, j, d*4/5, d)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Fatalf("Jitter gave %d distinct delays in 1000 draws: not random", len(seen))
	}
	if Jitter(0) != 0 {
		t.Fatal("Jitter(0) != 0")
	}
}

func TestDelaysDoubleUpToMax(t *testing.T) {
	d := Delays{Base: 10 * time.Millisecond, Max: 35 * time.Millisecond}
	for i, want := range []time.Duration{10, 20, 35, 35} {
		want *= time.Millisecond
		if got := d.Next(); got > want || got < want*4/5 {
			t.Fatalf("delay %d = %s, want within a fifth below %s", i, got, want)
		}
	}
}

func TestSleepStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported a full wait on a cancelled context")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep reported a cancellation")
	}
}
