// Package breaker holds the settings and states of the bus's publish
// circuit breaker: eventbus.Config.Breaker is a Config, and
// eventbus.Bus.BreakerState returns a State.
//
// After Config.FailureThreshold (DefaultFailureThreshold, 5) publishes in a
// row failed because the cluster is unavailable, the breaker opens
// (State Open) and publishing fails fast with eventbus.ErrCircuitOpen.
// After Config.OpenTimeout (DefaultOpenTimeout, 60 s) it half-opens
// (HalfOpen) and lets Config.HalfOpenSuccesses (DefaultHalfOpenSuccesses,
// 2) publishes through; if they all succeed it closes (Closed), and any
// such failure opens it again. Only failures that say the whole cluster is
// unreachable count: see Config.
package breaker
