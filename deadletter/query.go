package deadletter

// Query selects dead-letter entries: the filter of List, Stats and
// RetryAll, and, for List, the order and the page. Empty fields match all.
type Query struct {
	// Topic is an original topic (not its dlq.* topic).
	Topic    string
	TenantID string
	Status   Status
	// VerifiedTenant keeps only the entries whose tenant is known (see
	// Entry.VerifiedTenant): what access scoped to a tenant may see.
	VerifiedTenant bool

	// Oldest sorts by failure time, oldest first; the default is newest
	// first. List only.
	Oldest bool
	// Offset skips that many matching entries; Limit returns at most that
	// many (0: all the rest). List only: Stats and RetryAll refuse a query
	// that sets Oldest, Offset or Limit, rather than ignore them.
	Offset, Limit int
}

// Stats counts the entries that match a Query: in all, and by status,
// original topic and reason. The reasons that label ByReason are the
// first line of each failure reason, secrets scrubbed, at most 80 bytes.
type Stats struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"byStatus"`
	ByTopic  map[string]int `json:"byTopic"`
	ByReason map[string]int `json:"byReason"`
}

// RetryOption changes how Retry (eventbus.DeadLetterQueue's and dlqhttp
// Client's) sends an entry again. The zero RetryOption changes nothing.
type RetryOption struct{ ifAllowed bool }

// RetryIfAllowed makes Retry send the entry's event again as an automatic
// retry would: it counts toward the entry's MaxRetries and fails with
// ErrRetryNotAllowed when the entry is resolved, out of retries, or was
// written by the TypeScript package. Without it a retry is manual: it
// works in any status.
func RetryIfAllowed() RetryOption { return RetryOption{ifAllowed: true} }
