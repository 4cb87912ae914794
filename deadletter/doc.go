// Package deadletter is the vocabulary of the event bus's dead letter
// queue: an Entry (one event a consumer group failed to handle) with its
// Status and Attempts, the Query that selects entries, the Stats that
// count them, the RetryOption of a retry, the queue's Config with its
// defaults, and the errors its calls return.
//
// It holds types and rules only, and imports nothing else of the bus, so
// every package speaks it alike: eventbus.DeadLetterQueue (bus.DLQ()) in
// the process that runs the bus, and dlqhttp's REST API and its Client
// elsewhere, with the same verbs (Get, List, Stats, Retry, RetryAll,
// Delete):
//
//	items, total, err := bus.DLQ().List(ctx, deadletter.Query{
//		Topic:  "core.user.created",
//		Status: deadletter.StatusMaxRetriesExceeded,
//		Limit:  20,
//	})
//	...
//	err = bus.DLQ().Retry(ctx, items[0].ID)
//	if errors.Is(err, deadletter.ErrNotFound) { ... }
//
// An Entry's JSON form is the one the dlq.* topics hold and the REST API
// answers; the TypeScript package's entries are read into the same form
// (Origin OriginTypeScript).
package deadletter
