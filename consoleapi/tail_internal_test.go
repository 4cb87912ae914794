package consoleapi

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	now := time.Unix(0, 0)
	r := newRate(3, func() time.Time { return now })
	got := 0
	for range 10 {
		if r.take() {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("a burst took %d, want 3", got)
	}
	now = now.Add(time.Second/3 + time.Millisecond)
	if !r.take() || r.take() {
		t.Fatal("a third of a second later: want exactly one more")
	}
	now = now.Add(time.Hour)
	got = 0
	for range 10 {
		if r.take() {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("after an hour idle a burst took %d, want 3 (the bucket holds one second)", got)
	}
}
