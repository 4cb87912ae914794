package deadletter

import "errors"

// Errors of the dead letter queue's calls. Each is wrapped with the
// detail (which entry, why), so callers test with errors.Is; dlqhttp's
// Client returns them too, for the answers of the REST API that mean
// them.
var (
	// ErrNotFound: no dead-letter entry has that ID (or, through the REST
	// API with a tenant token, none the token may see).
	ErrNotFound = errors.New("failed event not found")

	// ErrRetryNotAllowed: an automatic retry (RetryIfAllowed) was asked for
	// an entry whose status does not allow one (resolved, or out of
	// retries), or for an entry the TypeScript package wrote. A manual
	// retry works in any status.
	ErrRetryNotAllowed = errors.New("retry not allowed in this state")

	// ErrNotApplied: Retry or Delete stored its command, but the entry's
	// owner (a process running the queue, such as eventbus serve) did not
	// apply it before ctx ended (or within 30 s when ctx has no deadline).
	// The owner applies it when it can; the REST API answers 202 Accepted.
	ErrNotApplied = errors.New("the dead-letter command is stored but not applied yet")

	// ErrInvalidConfig: a Config value is out of range or conflicts with
	// another (Config.Validate). The bus's constructor wraps it in its own
	// eventbus.ErrInvalidConfig as well.
	ErrInvalidConfig = errors.New("invalid dead letter queue configuration")
)
