package eventbus

import (
	"errors"

	"github.com/plexica/eventbus/internal/names"
)

// Sentinel errors. Every error the bus returns for one of these conditions
// wraps the sentinel with the detail (what was wrong and how to fix it), so
// callers test with errors.Is:
//
//	if errors.Is(err, eventbus.ErrTenantRequired) { ... }
var (
	// ErrInvalidTopic: a topic or event type breaks the naming rules
	// (core.<domain>.<action>, plugin.<pluginId>.<entity>.<action>,
	// dlq.<topic>; lowercase; past-tense actions). The message names the
	// rule and shows a valid example. Nothing was sent.
	ErrInvalidTopic = names.ErrInvalidTopic

	// ErrInvalidPluginID: a plugin ID is not kebab-case ([a-z0-9]+(-[a-z0-9]+)*).
	ErrInvalidPluginID = names.ErrInvalidPluginID

	// ErrTenantRequired: an event was published, or a plugin client built,
	// without a tenant ID. Every event belongs to a tenant. Nothing was sent.
	ErrTenantRequired = errors.New("tenant ID required")

	// ErrEventTooLarge: an encoded event (value, key and headers) exceeds
	// Config.MaxEventBytes (1,000,000 bytes by default). Nothing was sent.
	ErrEventTooLarge = errors.New("event too large")

	// ErrBatchTooLarge: PublishBatch was given more than MaxBatchSize (100)
	// events. Nothing was sent; split the batch.
	ErrBatchTooLarge = errors.New("batch too large")

	// ErrInvalidEvent: an event's payload or options cannot be published
	// (for example the data does not encode to JSON, or a caller header
	// tries to replace one the bus writes). Nothing was sent.
	ErrInvalidEvent = errors.New("invalid event")

	// ErrCircuitOpen: the publish circuit breaker is open after repeated
	// broker failures; Publish fails fast until it half-opens
	// (Config.Breaker.OpenTimeout, 60 s by default).
	ErrCircuitOpen = errors.New("circuit breaker open")

	// ErrShuttingDown: the bus (or client) was shut down; no more publishing
	// or subscribing.
	ErrShuttingDown = errors.New("event bus shutting down")

	// ErrDuplicateSubscription: the same topic was subscribed twice in one
	// consumer group of this process. Use another GroupID, or one handler.
	ErrDuplicateSubscription = errors.New("duplicate subscription")

	// ErrConflictingSubscription: a subscription disagrees with the consumer
	// group it joins in this process (AutoCommit differs from the group's
	// first subscription).
	ErrConflictingSubscription = errors.New("conflicting subscription")

	// ErrSubscriptionNotFound: Unsubscribe was given an unknown ID.
	ErrSubscriptionNotFound = errors.New("subscription not found")

	// ErrNotConnected: the client has not connected (call Connect) or was closed.
	ErrNotConnected = errors.New("client not connected")

	// ErrBrokerUnavailable: no broker answered in time. The message names
	// the brokers that were tried.
	ErrBrokerUnavailable = errors.New("broker unavailable")

	// ErrInvalidConfig: a configuration value is missing, out of range or
	// conflicts with another. Returned by constructors.
	ErrInvalidConfig = errors.New("invalid configuration")
)
