package breaker

import (
	"fmt"
	"time"
)

// The defaults of Config.
const (
	// DefaultFailureThreshold is Config.FailureThreshold's default.
	DefaultFailureThreshold = 5
	// DefaultOpenTimeout is Config.OpenTimeout's default.
	DefaultOpenTimeout = 60 * time.Second
	// DefaultHalfOpenSuccesses is Config.HalfOpenSuccesses's default.
	DefaultHalfOpenSuccesses = 2
)

// Config tunes the circuit breaker on the publish path. After
// FailureThreshold consecutive publishes failed because the cluster is
// unavailable it opens and Publish fails fast with
// eventbus.ErrCircuitOpen; after
// OpenTimeout it half-opens and lets HalfOpenSuccesses publishes through;
// if they all succeed it closes, and any such failure opens it again.
//
// Only failures that wrap
// eventbus.ErrBrokerUnavailable count: the brokers did not
// answer or acknowledge within eventbus.Config.DeliveryTimeout (the send or the
// topic's creation), could not be reached, or answered that they cannot
// take writes now (no leader, not enough in-sync replicas). And such a
// failure counts only when the brokers acknowledged no other record while
// it was in flight: a partition whose leader fails over makes its own
// publishes fail, not those of the partitions whose leaders are alive, so
// one broker's failover never opens the breaker while the rest of the
// cluster takes writes. Nothing that
// is the caller's counts: validation errors, a broker's rejection of one
// event (too large for its topic, invalid), missing permissions, or the
// caller's own context ending (cancelled or past its deadline).
type Config struct {
	// Disabled turns the breaker off.
	Disabled bool
	// FailureThreshold is the number of consecutive failures that opens the
	// breaker. Default DefaultFailureThreshold (5).
	FailureThreshold uint32
	// OpenTimeout is how long the breaker stays open before half-opening.
	// Default DefaultOpenTimeout (60 s); negative is an error.
	OpenTimeout time.Duration
	// HalfOpenSuccesses is the number of successes in the half-open state
	// that closes the breaker. Default DefaultHalfOpenSuccesses (2).
	HalfOpenSuccesses uint32
	// OnStateChange, if set, is called on every state change.
	OnStateChange func(from, to State)
}

// State is the state of the publish circuit breaker.
type State int

// The breaker states.
const (
	// Closed: publishes go through.
	Closed State = iota
	// HalfOpen: a few publishes go through to test the brokers.
	HalfOpen
	// Open: Publish fails fast with eventbus.ErrCircuitOpen.
	Open
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}
