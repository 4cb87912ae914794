// Package backoff computes the delays between retries: exponential, capped,
// and with jitter, so that clients that failed together do not retry
// together.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exponential returns base·2^n, capped at limit (n counts from 0).
func Exponential(base, limit time.Duration, n int) time.Duration {
	d := base
	for range n {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// Jitter returns d less a random part of up to a fifth of it: never longer
// than d, never shorter than four fifths of it.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - rand.N(d/5+1)
}

// Delays hands out the delays of one retry loop: Base, then doubling up to
// Max, each with Jitter. The zero value is not useful; set Base and Max.
type Delays struct {
	Base, Max time.Duration
	n         int
}

// Next returns the delay before the next retry.
func (d *Delays) Next() time.Duration {
	next := Jitter(Exponential(d.Base, d.Max, d.n))
	d.n++
	return next
}

// Sleep waits d and reports true, or false as soon as ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
