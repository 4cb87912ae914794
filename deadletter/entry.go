package deadletter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/plexica/eventbus/wire"
)

// Status is where an entry stands.
type Status string

// The statuses of an entry.
const (
	// StatusPending: failed; an automatic retry is scheduled at NextRetryAt.
	StatusPending Status = "pending"
	// StatusRetrying: a retry was sent to the failed group; its outcome is
	// not known yet. Unanswered at NextRetryAt (Config.RetryTimeout), it
	// times out: the next automatic retry is sent, or, after the last one
	// or a retry of a permanent failure, the entry is out of retries.
	StatusRetrying Status = "retrying"
	// StatusResolved: a retry succeeded.
	StatusResolved Status = "resolved"
	// StatusMaxRetriesExceeded: every automatic retry failed (or the handler
	// said the failure is permanent); only a manual retry can resolve it.
	StatusMaxRetriesExceeded Status = "max-retries-exceeded"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusRetrying, StatusResolved, StatusMaxRetriesExceeded:
		return true
	}
	return false
}

// ReasonMalformed is the failure reason of a record whose value is not an event.
const ReasonMalformed = "malformed"

// OriginTypeScript is the Entry.Origin of an entry written by the
// TypeScript @plexica/event-bus on a shared cluster.
const OriginTypeScript = "typescript"

// Entry is one dead-letter entry: an event that one consumer group failed
// to handle, with everything needed to understand and retry it. Its JSON
// form is the record value on its dlq.* topic and the REST API's answer.
type Entry struct {
	// ID is stable per consumer group, topic, tenant and event ID, and
	// URL-safe (see ID); entries stored before the topic and tenant were
	// part of it keep the ID they were stored with.
	ID string `json:"id"`
	// Origin is empty for the entries of this bus, OriginTypeScript for
	// those the TypeScript package wrote on a shared cluster: listed,
	// never retried automatically, retried or deleted by hand.
	Origin string `json:"origin,omitempty"`
	// OriginalEvent is the record value as published: the event's JSON, or
	// for a malformed record a JSON string holding its bytes.
	OriginalEvent json.RawMessage `json:"originalEvent"`
	// OriginalTopic is the topic the event was published to.
	OriginalTopic string `json:"originalTopic"`
	// OriginalKey is the record key (the partition key), kept for retries.
	OriginalKey []byte `json:"originalKey,omitempty"`
	// OriginalHeaders are the record's headers other than the bus's retry
	// headers (see wire.IsRetryHeader).
	OriginalHeaders []Header `json:"originalHeaders,omitempty"`
	// EventID, EventType, TenantID and WorkspaceID are the event's, from
	// the record's headers (from the event itself for a record without
	// them).
	EventID     string `json:"eventId"`
	EventType   string `json:"eventType,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
	WorkspaceID string `json:"workspaceId,omitempty"`
	// FailureReason is the last failure's error text (ReasonMalformed for
	// a record that is not an event).
	FailureReason string `json:"failureReason"`
	// FailedAt is when the first failure was recorded.
	FailedAt time.Time `json:"failedAt"`
	// RetryCount is the number of retries sent so far.
	RetryCount int `json:"retryCount"`
	// MaxRetries is the number of automatic retries the entry may have
	// (Config.MaxRetries when it was recorded).
	MaxRetries int `json:"maxRetries"`
	// StackTrace is set for panics.
	StackTrace string `json:"stackTrace,omitempty"`
	// ConsumerGroup is the group that failed the event: the only one a
	// retry reaches.
	ConsumerGroup string `json:"consumerGroup"`
	// Partition and Offset locate the original record.
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Status    Status `json:"status"`
	// Permanent is set when the latest failure was a Permanent error, or the
	// record was not an event (ReasonMalformed): only a manual retry sends
	// it again. A later failure that is not permanent clears it.
	Permanent bool `json:"permanent,omitempty"`
	// NextRetryAt is when the next automatic retry is due (or, retrying,
	// when the sent one times out); ResolvedAt when a retry succeeded.
	NextRetryAt *time.Time `json:"nextRetryAt,omitempty"`
	ResolvedAt  *time.Time `json:"resolvedAt,omitempty"`
	// Attempts lists every handling that failed or retry that was sent, oldest first.
	Attempts []Attempt `json:"attempts"`
	// UpdatedAt is when the entry last changed.
	UpdatedAt time.Time `json:"updatedAt"`
	// SchedulerGroup is the Config.SchedulerGroup of the bus that recorded
	// the last failure: only that group's members send the entry's
	// automatic retries. Empty (entries written before the field existed)
	// means DefaultSchedulerGroup.
	SchedulerGroup string `json:"schedulerGroup,omitempty"`
}

// VerifiedTenant returns the tenant of e when it is known: when its record
// is an event (it decodes as one) and the event's tenant is the entry's
// (the record's tenant-id header). A malformed record has no tenant: its
// tenant-id header, if any, is a claim that nothing checks against its
// bytes, which may hold anyone's data. Nor has a record whose header and
// event disagree. Access scoped to a tenant uses it.
func (e Entry) VerifiedTenant() (tenant string, known bool) {
	if e.TenantID == "" {
		return "", false
	}
	env, err := wire.Decode(e.OriginalEvent)
	if err != nil || env.TenantID != e.TenantID {
		return "", false
	}
	return e.TenantID, true
}

// Header is a record header kept with an entry.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Attempt is one step in an entry's history.
type Attempt struct {
	At time.Time `json:"at"`
	// Kind is "failed", "retry" (automatic retry sent), "manual-retry",
	// "resolved", "retry-not-sent" (a retry whose send failed, Error
	// saying why: it spent no attempt) or "late-failed" (a failure that
	// answered an older retry than the entry's latest: recorded, it
	// changes nothing else).
	Kind string `json:"kind"`
	// Number is the retry the step sent or answered (0: the first
	// delivery).
	Number int    `json:"number,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ID is the dead-letter ID of the event eventID of tenant tenantID on
// topic, failed by consumer group group: stable, URL-safe, 32 lowercase
// hex characters (never mistaken for a command-line flag). The tenant is
// the event's tenant-id header (its tenantId for a record without one),
// the topic the one it was published to. Tenant and topic are part of it
// because one group may serve many tenants (a plugin host's) and read
// many topics, where event IDs need not be unique (a replay): no two of
// them share an entry.
//
// Entries stored before the tenant and topic were part of the ID keep the
// ID they were stored with (a hash of group and event ID): nothing
// recomputes an entry's ID from its fields, so they are read, retried and
// deleted by that ID as before.
func ID(group, topic, tenantID, eventID string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(idVersion))
	for _, field := range [...]string{group, topic, tenantID, eventID} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(field)))]) // length-prefixed: no two field lists hash the same bytes
		h.Write([]byte(field))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// idVersion starts what ID hashes, so its IDs never coincide with the
// older IDs (a hash of group and event ID), nor with the keys of the
// queue's other records, which have that form.
const idVersion = "plexica-eventbus/dlq-entry/v2\x00"
