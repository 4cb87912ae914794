package bench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Latency summarises latency samples, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

// summarize sorts samples and returns their percentiles (nearest rank).
func summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	at := func(q float64) float64 {
		i := int(q*float64(len(samples))+0.5) - 1
		i = min(max(i, 0), len(samples)-1)
		return ms(samples[i])
	}
	return Latency{
		Count: len(samples),
		P50:   at(0.50),
		P95:   at(0.95),
		P99:   at(0.99),
		Max:   ms(samples[len(samples)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// recorder collects delivery latencies from concurrent handlers and lets the
// phase wait until a number of events arrived.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	want    int
	reached chan struct{} // closed when len(samples) reaches want (if > 0)
}

func newRecorder(capacity int) *recorder {
	return &recorder{samples: make([]time.Duration, 0, capacity)}
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, d)
	if r.want > 0 && len(r.samples) >= r.want {
		close(r.reached)
		r.want = 0
	}
}

// waitFor waits until n samples were recorded or ctx ends, and returns how
// many there are.
func (r *recorder) waitFor(ctx context.Context, n int) int {
	r.mu.Lock()
	if len(r.samples) >= n {
		got := len(r.samples)
		r.mu.Unlock()
		return got
	}
	r.want = n
	reached := make(chan struct{})
	r.reached = reached
	r.mu.Unlock()
	select {
	case <-reached:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// take returns the samples; call it once the producers of samples stopped.
func (r *recorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.samples
	r.samples = nil
	return s
}
