package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/wire"
)

// Entries written by the TypeScript @plexica/event-bus.
//
// On a cluster shared with services that use the TypeScript package, its
// dead-letter records land on the same dlq.<topic> topics: its own
// FailedEvent JSON (offset as a string, failureTimestamp, no status), keyed
// by tenant. The view lists them with Origin deadletter.OriginTypeScript, their status
// derived from their retry count. They are never retried automatically
// (the TypeScript package keeps its own schedule in memory); an operator
// may retry or delete them. Their records cannot be changed (they are
// keyed by tenant, and deleting one would delete its tenant's others), so
// a retry or delete is written as an overlay: a record of ours, keyed by
// overlayKey(entry ID), that holds the entry as it now stands. Of an entry
// and its overlays, the latest change wins, so a newer failure that the
// TypeScript package records under the same ID shows again.

// typeScriptFailedEvent is the TypeScript package's dead-letter record.
type typeScriptFailedEvent struct {
	ID                 string          `json:"id"`
	OriginalEvent      json.RawMessage `json:"originalEvent"`
	OriginalTopic      string          `json:"originalTopic"`
	FailureReason      string          `json:"failureReason"`
	FailureTimestamp   time.Time       `json:"failureTimestamp"`
	RetryCount         int             `json:"retryCount"`
	MaxRetries         int             `json:"maxRetries"`
	LastRetryTimestamp *time.Time      `json:"lastRetryTimestamp"`
	StackTrace         string          `json:"stackTrace"`
	ConsumerGroup      string          `json:"consumerGroup"`
	Partition          int32           `json:"partition"`
	Offset             string          `json:"offset"`
}

// fromTypeScript reads a TypeScript dead-letter record as an entry.
func fromTypeScript(value []byte) (Entry, error) {
	var t typeScriptFailedEvent
	if err := json.Unmarshal(value, &t); err != nil {
		return Entry{}, fmt.Errorf("a TypeScript dead-letter record: %w", err)
	}
	if t.ID == "" || t.OriginalTopic == "" {
		return Entry{}, fmt.Errorf("a TypeScript dead-letter record without id or originalTopic")
	}
	e := Entry{
		ID:            t.ID,
		Origin:        deadletter.OriginTypeScript,
		OriginalEvent: t.OriginalEvent,
		OriginalTopic: t.OriginalTopic,
		FailureReason: t.FailureReason,
		FailedAt:      t.FailureTimestamp.UTC(),
		RetryCount:    t.RetryCount,
		MaxRetries:    t.MaxRetries,
		StackTrace:    t.StackTrace,
		ConsumerGroup: t.ConsumerGroup,
		Partition:     t.Partition,
		Offset:        -1,
		Status:        deadletter.StatusPending,
		UpdatedAt:     t.FailureTimestamp.UTC(),
		Attempts:      []Attempt{{At: t.FailureTimestamp.UTC(), Kind: "failed", Error: t.FailureReason}},
	}
	if o, err := strconv.ParseInt(t.Offset, 10, 64); err == nil {
		e.Offset = o
	}
	if t.LastRetryTimestamp != nil && t.LastRetryTimestamp.After(e.UpdatedAt) {
		e.UpdatedAt = t.LastRetryTimestamp.UTC()
	}
	if t.RetryCount >= t.MaxRetries {
		e.Status = deadletter.StatusMaxRetriesExceeded
	}
	if env, err := wire.Decode(t.OriginalEvent); err == nil {
		e.EventID, e.EventType, e.TenantID, e.WorkspaceID = env.ID, env.Type, env.TenantID, env.WorkspaceID
	}
	return e, nil
}

// legacyOverlay is the record of ours that holds a TypeScript entry as an
// operator's retry or delete left it.
type legacyOverlay struct {
	Entry   Entry `json:"entry"`
	Deleted bool  `json:"deleted,omitempty"`
}

// overlayKey is the record key of the overlays of TypeScript entry id. It
// is LegacyEntryID(deadletter.OriginTypeScript, id), the ID that one of our own
// entries had before EntryID took the tenant and topic in: when a group
// named "typescript" failed an event whose ID is id. EntryID's IDs never
// coincide with it. (Nor did that happen in practice before: the
// TypeScript package names its entries dlq-<event ID>-<milliseconds>, not
// an event ID.) The key stays as it is: overlays written with it exist on
// clusters.
func overlayKey(id string) string { return LegacyEntryID(deadletter.OriginTypeScript, id) }

// writeOverlay stores e, a TypeScript entry found on dlqTopic, as an
// operator left it.
func (q *Queue) writeOverlay(ctx context.Context, dlqTopic string, e Entry, deleted bool) error {
	e.UpdatedAt = q.cfg.Now().UTC()
	v, err := json.Marshal(struct {
		Overlay legacyOverlay `json:"typescriptOverlay"`
	}{legacyOverlay{Entry: e, Deleted: deleted}})
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: dlqTopic, Key: []byte(overlayKey(e.ID)), Value: v}
	return q.produceEntryRecord(ctx, rec, e.ID)
}

// retryTypeScript sends a TypeScript entry's event back to its topic the
// way the TypeScript package retries (its x-retry-attempt and x-dlq-id
// headers), so that every group reads it again, and marks the entry
// resolved: the event is back with the TypeScript service, whose own bus
// records a new entry if it fails again.
func (q *Queue) retryTypeScript(ctx context.Context, dlqTopic string, e Entry) error {
	env, err := wire.Decode(e.OriginalEvent)
	if err != nil {
		return fmt.Errorf("%w: entry %s holds no event to send again (%v)", deadletter.ErrRetryNotAllowed, e.ID, err)
	}
	rec := &kgo.Record{
		Topic: e.OriginalTopic,
		Key:   []byte(env.TenantID),
		Value: []byte(e.OriginalEvent),
		Headers: []kgo.RecordHeader{
			{Key: "x-retry-attempt", Value: []byte(strconv.Itoa(e.RetryCount + 1))},
			{Key: "x-dlq-id", Value: []byte(e.ID)},
		},
	}
	if err := q.host.Produce(ctx, rec); err != nil {
		return fmt.Errorf("send retry of %s to %s: %w", e.ID, e.OriginalTopic, err)
	}
	now := q.cfg.Now().UTC()
	e.RetryCount++
	e.Status, e.NextRetryAt, e.ResolvedAt = deadletter.StatusResolved, nil, &now
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: "manual-retry"})
	q.host.RetrySent(e.OriginalTopic, true)
	return q.writeOverlay(ctx, dlqTopic, e, false)
}

// warnIfCompacted warns, once per topic and process, when a dlq.* topic that holds
// entries of the TypeScript package is compacted: it keys its entries by
// tenant, so compaction keeps only each tenant's newest one.
func (v *view) warnIfCompacted(topic string) {
	if _, warned := v.q.warnedCompacted.LoadOrStore(topic, true); warned {
		return
	}
	go func() {
		adm, err := v.q.host.Admin()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		configs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return
		}
		rc, err := configs.On(topic, nil)
		if err != nil {
			return
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && compacts(*c.Value) {
				v.q.cfg.Logger.Warn("eventbus: a compacted dead-letter topic holds entries of the TypeScript package, which keys them by tenant: compaction keeps only each tenant's newest. Set cleanup.policy=delete on it (see the README, TypeScript services on the same cluster)",
					"topic", topic, "cleanup.policy", *c.Value)
			}
		}
	}()
}

func compacts(policy string) bool {
	for _, p := range strings.Split(policy, ",") {
		if p == "compact" {
			return true
		}
	}
	return false
}
