package dlq

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/redact"
	"github.com/plexica/eventbus/wire"
)

// The entry's types are the public deadletter package's: a record on a
// dlq.* topic holds an Entry's JSON form, and the root package hands the
// entries out as they are.
type (
	Entry   = deadletter.Entry
	Header  = deadletter.Header
	Attempt = deadletter.Attempt
	Status  = deadletter.Status
)

// Statuses lists the four statuses.
var Statuses = [...]Status{deadletter.StatusPending, deadletter.StatusRetrying, deadletter.StatusResolved, deadletter.StatusMaxRetriesExceeded}

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

// LegacyEntryID is the ID that entries written before EntryID took the
// tenant and topic into account have: a hash of group and event ID only.
// Such entries keep it (see deadletter.ID).
func LegacyEntryID(group, eventID string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + eventID))
	return hex.EncodeToString(sum[:16])
}

// isEntryID reports whether key has the shape of deadletter.ID's IDs: the keys
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
		MaxRetries:     max(q.cfg.MaxRetries, 0), // NoRetries: none
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
		e.OriginalHeaders = append(e.OriginalHeaders, Header{Key: h.Key, Value: string(h.Value)})
	}
	if _, ok := wire.HeaderValue(r.Headers, wire.HeaderTenantID); !ok {
		if env, err := wire.Decode(r.Value); err == nil {
			e.TenantID, e.WorkspaceID = env.TenantID, env.WorkspaceID
			if e.EventType == "" {
				e.EventType = env.Type
			}
		}
	}
	e.ID = deadletter.ID(group, e.OriginalTopic, e.TenantID, eventID)
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
		e.Status, e.NextRetryAt = deadletter.StatusMaxRetriesExceeded, nil
	case e.RetryCount >= e.MaxRetries:
		e.Status, e.NextRetryAt = deadletter.StatusMaxRetriesExceeded, nil
	case f.HasRetryAfter:
		next := now.Add(f.RetryAfter)
		e.Status, e.NextRetryAt = deadletter.StatusPending, &next
	default:
		next := now.Add(q.cfg.backoff(e.RetryCount))
		e.Status, e.NextRetryAt = deadletter.StatusPending, &next
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
		if string(r.Key) != overlayKey(o.Entry.ID) || o.Entry.Origin != deadletter.OriginTypeScript {
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
