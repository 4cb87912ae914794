package dlq

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/redact"
	"github.com/plexica/eventbus/wire"
)

// Status is where an entry stands.
type Status string

// The statuses of an entry.
const (
	StatusPending            Status = "pending"
	StatusRetrying           Status = "retrying"
	StatusResolved           Status = "resolved"
	StatusMaxRetriesExceeded Status = "max-retries-exceeded"
)

// Statuses lists the four statuses.
var Statuses = [...]Status{StatusPending, StatusRetrying, StatusResolved, StatusMaxRetriesExceeded}

// ReasonMalformed is the failure reason of a record whose value is not an event.
const ReasonMalformed = "malformed"

// OriginTypeScript is the Origin of an entry written by the TypeScript
// @plexica/event-bus on a shared cluster (legacy.go).
const OriginTypeScript = "typescript"

// Entry is one dead-letter entry as its record holds it (JSON). The
// public eventbus.FailedEvent documents each field.
type Entry struct {
	ID              string          `json:"id"`
	Origin          string          `json:"origin,omitempty"`
	OriginalEvent   json.RawMessage `json:"originalEvent"`
	OriginalTopic   string          `json:"originalTopic"`
	OriginalKey     []byte          `json:"originalKey,omitempty"`
	OriginalHeaders []Header        `json:"originalHeaders,omitempty"`
	EventID         string          `json:"eventId"`
	EventType       string          `json:"eventType,omitempty"`
	TenantID        string          `json:"tenantId,omitempty"`
	WorkspaceID     string          `json:"workspaceId,omitempty"`
	FailureReason   string          `json:"failureReason"`
	FailedAt        time.Time       `json:"failedAt"`
	RetryCount      int             `json:"retryCount"`
	MaxRetries      int             `json:"maxRetries"`
	StackTrace      string          `json:"stackTrace,omitempty"`
	ConsumerGroup   string          `json:"consumerGroup"`
	Partition       int32           `json:"partition"`
	Offset          int64           `json:"offset"`
	Status          Status          `json:"status"`
	Permanent       bool            `json:"permanent,omitempty"`
	NextRetryAt     *time.Time      `json:"nextRetryAt,omitempty"`
	ResolvedAt      *time.Time      `json:"resolvedAt,omitempty"`
	Attempts        []Attempt       `json:"attempts"`
	UpdatedAt       time.Time       `json:"updatedAt"`
	SchedulerGroup  string          `json:"schedulerGroup,omitempty"`
}

// Header is a record header kept with an entry.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Attempt is one step in an entry's history: Kind "failed", "retry",
// "manual-retry", "resolved", AttemptRetryNotSent (a retry whose send
// failed, Error saying why: it spent no attempt), or AttemptLateFailed (a
// failure that answered an older retry than the entry's latest).
// Number is the retry the step sent or answered (0: the first delivery).
type Attempt struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Number int       `json:"number,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Failure is one failed handling, as the bus classified its error.
type Failure struct {
	// Reason is the error's text; Stack the stack of a panic.
	Reason string `json:"reason"`
	Stack  string `json:"stack,omitempty"`
	// Permanent: only a manual retry sends the event again (a Permanent
	// error, or a record that is not an event).
	Permanent bool `json:"permanent,omitempty"`
	// RetryAfter, when HasRetryAfter, replaces the backoff before the next
	// automatic retry.
	RetryAfter    time.Duration `json:"retryAfter,omitempty"`
	HasRetryAfter bool          `json:"hasRetryAfter,omitempty"`
}

// EntryID is the ID of the entry for the event eventID of tenantID on
// topic, failed by group: stable, URL-safe, 32 lowercase hex characters.
// The tenant and the topic are part of it because one group may serve many
// tenants (a plugin host's) and read many topics, where event IDs need not
// be unique (a replay, WithEventID): no two of them share an entry.
//
// Entries written before the tenant and topic were part of the ID have
// IDs of LegacyEntryID's form. Nothing recomputes an entry's ID from its
// fields: every entry is found, retried and deleted by the ID stored in it
// (its record's key), so those entries stay usable as they are. A new
// failure of such an event makes a new entry beside the old one.
func EntryID(group, topic, tenantID, eventID string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(entryIDVersion))
	for _, field := range [...]string{group, topic, tenantID, eventID} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(field)))]) // length-prefixed: no two field lists hash the same bytes
		h.Write([]byte(field))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// entryIDVersion starts what EntryID hashes, so its IDs never coincide
// with LegacyEntryID's (nor with overlayKey's, which has that form).
const entryIDVersion = "plexica-eventbus/dlq-entry/v2\x00"

// LegacyEntryID is the ID that entries written before EntryID took the
// tenant and topic into account have: a hash of group and event ID only.
// Such entries keep it (see EntryID).
func LegacyEntryID(group, eventID string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + eventID))
	return hex.EncodeToString(sum[:16])
}

// isEntryID reports whether key has the shape of EntryID's IDs: the keys
// of this bus's entries.
func isEntryID(key string) bool {
	if len(key) != 32 {
		return false
	}
	for _, c := range key {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newEntry builds the entry for a record of topic that group failed; applyFailure
// then records the failure itself. Its tenant is the record's tenant-id
// header, or for a record without one, the tenant of its event when it
// decodes as one.
func (q *Queue) newEntry(r *kgo.Record, topic, group, eventID string) *Entry {
	e := &Entry{
		OriginalTopic:  topic,
		OriginalKey:    r.Key,
		EventID:        eventID,
		ConsumerGroup:  group,
		Partition:      r.Partition,
		Offset:         r.Offset,
		MaxRetries:     q.cfg.MaxRetries,
		FailedAt:       q.cfg.Now().UTC(),
		SchedulerGroup: q.cfg.SchedulerGroup,
	}
	if json.Valid(r.Value) {
		e.OriginalEvent = append(json.RawMessage(nil), r.Value...)
	} else {
		e.OriginalEvent, _ = json.Marshal(string(r.Value))
	}
	for _, h := range r.Headers {
		if wire.IsRetryHeader(h.Key) {
			continue
		}
		switch h.Key {
		case wire.HeaderEventType:
			e.EventType = string(h.Value)
		case wire.HeaderTenantID:
			e.TenantID = string(h.Value)
		case wire.HeaderWorkspaceID:
			e.WorkspaceID = string(h.Value)
		}
		e.OriginalHeaders = append(e.OriginalHeaders, Header{h.Key, string(h.Value)})
	}
	if _, ok := wire.HeaderValue(r.Headers, wire.HeaderTenantID); !ok {
		if env, err := wire.Decode(r.Value); err == nil {
			e.TenantID, e.WorkspaceID = env.TenantID, env.WorkspaceID
			if e.EventType == "" {
				e.EventType = env.Type
			}
		}
	}
	e.ID = EntryID(group, e.OriginalTopic, e.TenantID, eventID)
	return e
}

// applyFailure records a failed handling on e and decides what comes next.
func (q *Queue) applyFailure(e *Entry, f Failure, now time.Time) {
	e.FailureReason, e.StackTrace = f.Reason, f.Stack
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: "failed", Error: e.FailureReason})
	e.UpdatedAt = now
	e.ResolvedAt = nil
	// Permanent follows the latest failure: a permanent entry retried by
	// hand that fails again for a transient reason waits for automatic
	// retries again.
	e.Permanent = f.Permanent
	switch {
	case f.Permanent:
		// A permanent failure (or a record that is not an event, which
		// fails the same way every time) is sent again only by hand.
		e.Status, e.NextRetryAt = StatusMaxRetriesExceeded, nil
	case e.RetryCount >= e.MaxRetries:
		e.Status, e.NextRetryAt = StatusMaxRetriesExceeded, nil
	case f.HasRetryAfter:
		next := now.Add(f.RetryAfter)
		e.Status, e.NextRetryAt = StatusPending, &next
	default:
		next := now.Add(q.cfg.backoff(e.RetryCount))
		e.Status, e.NextRetryAt = StatusPending, &next
	}
}

// retryValue is the record value a retry of e carries: the original
// record's (a malformed record's bytes are kept as a JSON string).
func retryValue(e *Entry) []byte {
	var s string
	if json.Unmarshal(e.OriginalEvent, &s) == nil {
		return []byte(s)
	}
	return []byte(e.OriginalEvent)
}

// VerifiedTenant returns the entry's tenant when it is known: when the
// original record is an event (it decodes as one) and the event's tenant
// is tenantID (the record's tenant-id header). A malformed record has no
// tenant: its tenant-id header, if any, is a claim that nothing checks
// against its bytes. Nor has a record whose header and event disagree.
func VerifiedTenant(tenantID string, originalEvent []byte) (string, bool) {
	if tenantID == "" {
		return "", false
	}
	env, err := wire.Decode(originalEvent)
	if err != nil || env.TenantID != tenantID {
		return "", false
	}
	return tenantID, true
}

// reasonLabel shortens a failure reason to a bounded label for counting:
// its first line, secrets scrubbed, at most 80 bytes.
func reasonLabel(reason string) string {
	r := redact.Text(reason)
	if i := strings.IndexByte(r, '\n'); i >= 0 {
		r = r[:i]
	}
	if len(r) > 80 {
		r = r[:80]
	}
	return r
}

// decodeRecord reads the entry a DLQ record holds: one of this bus's
// (keyed by its ID), one the TypeScript package wrote (keyed by tenant,
// see legacy.go), or one of our overlays of the latter. deleted is set for
// an overlay that deletes the TypeScript entry.
func decodeRecord(r *kgo.Record) (e Entry, overlay, deleted bool, err error) {
	// Nearly every record is one of this bus's entries: one parse, whose
	// result and error the plain-entry path below reuses.
	err = json.Unmarshal(r.Value, &e)
	if err == nil && e.Status != "" && e.Origin == "" && e.ID == string(r.Key) {
		return e, false, false, nil
	}
	var probe struct {
		Status           *string         `json:"status"`
		FailureTimestamp json.RawMessage `json:"failureTimestamp"`
		Overlay          *legacyOverlay  `json:"typescriptOverlay"`
	}
	if err := json.Unmarshal(r.Value, &probe); err != nil {
		return Entry{}, false, false, err
	}
	switch {
	case probe.Overlay != nil:
		o := probe.Overlay
		if string(r.Key) != overlayKey(o.Entry.ID) || o.Entry.Origin != OriginTypeScript {
			return Entry{}, false, false, fmt.Errorf("overlay keyed %q does not match its entry %q", r.Key, o.Entry.ID)
		}
		return o.Entry, true, o.Deleted, nil
	case probe.Status == nil && probe.FailureTimestamp != nil:
		e, err := fromTypeScript(r.Value)
		return e, false, false, err
	}
	if err != nil {
		return e, false, false, err
	}
	if e.ID != string(r.Key) || e.Origin != "" {
		return e, false, false, fmt.Errorf("entry %q keyed %q", e.ID, r.Key)
	}
	return e, false, false, nil
}
