package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/internal/wire"
)

// Claim is a record's retry headers once checked against the entry they
// name (see VerifyRetry).
type Claim struct {
	// ID is the entry's; Group the consumer group the retry is for.
	ID, Group string
	// Outstanding: the entry still waits for this attempt (no newer
	// version of it exists). Only then may the group's handling change the
	// entry; a retry already answered (or headers replayed by another
	// writer) is an ordinary event to that group.
	Outstanding bool

	attempt int
	// entry is the entry as the retry's sender wrote it.
	entry *Entry
	// at is where that version lies (unsigned retries): the outcome is
	// checked against it again just before it is written.
	at *dlqindex.Position
	// seen is the offset of the newest version of the entry that a check
	// found outstanding (at's, or a later copy of it): the next check reads
	// only what follows it.
	seen int64
}

// maxOutstandingScan bounds how much of a DLQ partition is read after a
// retry's entry to learn whether a newer version of it was written.
const maxOutstandingScan = 8 << 20

// ErrEntryUnreadable is what VerifyRetry (and the checks of a retry's
// outcome) return when the entry a retry names could not be read: a
// connection, leadership or other transient broker error. Whether the
// retry is genuine is then unknown; the caller checks again later, and
// must neither skip nor handle the record meanwhile.
var ErrEntryUnreadable = errors.New("the retry's dead-letter entry could not be read")

// VerifyRetry checks the retry headers of r (dlq-id, retry-group,
// retry-attempt) against the entry they name: one with that ID, on r's
// topic, for r's event and value, of the group they name, sent as that
// attempt. Other groups skip such a retry; the named group lets it change
// the entry only while that attempt is outstanding (Claim.Outstanding).
// Anything else, such as headers that some writer to the topic set itself,
// leaves the record an ordinary event that changes no entry (ok false,
// err nil): so do headers naming a partition the cluster says does not
// exist, or a topic this process may not read.
//
// A read that failed for another reason (see unreadable) is not an
// answer: VerifyRetry then returns an error wrapping ErrEntryUnreadable,
// and the caller checks again.
// topic is the topic the retry is for: r's own, or the one a plugin's
// retry topic stands for. For a reader of another group than the retry's,
// whether the attempt is outstanding does not matter (it skips the retry
// either way) and is not looked up.
//
// With a signing key the record carries the entry and its signature
// (signing.go). Without one it carries where the entry version it was
// sent as lies (dlq-position): the subscriber reads that record, and the
// ones after it for a newer version, from the entry's dlq.* topic, whose
// name it derives itself: nobody but the writers of that topic can place
// an entry there.
func (q *Queue) VerifyRetry(ctx context.Context, r *kgo.Record, topic, readerGroup string) (Claim, bool, error) {
	id, hasID := wire.HeaderValue(r.Headers, wire.HeaderDLQID)
	group, hasGroup := wire.HeaderValue(r.Headers, wire.HeaderRetryGroup)
	a, hasAttempt := wire.HeaderValue(r.Headers, wire.HeaderRetryAttempt)
	attempt, err := strconv.Atoi(string(a))
	if !hasID || !hasGroup || !hasAttempt || err != nil || attempt < 1 {
		return Claim{}, false, nil
	}
	if len(q.cfg.SigningKey) > 0 {
		c, ok := q.verifySigned(r, topic, id, group, attempt)
		return c, ok, nil
	}
	pos, _ := wire.HeaderValue(r.Headers, wire.HeaderDLQPosition)
	ps, os, ok := strings.Cut(string(pos), ":")
	partition, perr := strconv.ParseInt(ps, 10, 32)
	offset, oerr := strconv.ParseInt(os, 10, 64)
	if !ok || perr != nil || oerr != nil || partition < 0 || offset < 0 {
		return Claim{}, false, nil
	}
	reader, err := q.recordReader()
	if err != nil {
		return Claim{}, false, fmt.Errorf("%w: %w", ErrEntryUnreadable, err)
	}
	dlqTopic := TopicFor(string(group), topic)
	got, err := map[int64]*kgo.Record(nil), q.injectedFault()
	if err == nil {
		got, err = reader.Read(ctx, dlqTopic, int32(partition), []int64{offset})
	}
	if err != nil {
		if unreadable(err) {
			return Claim{}, false, fmt.Errorf("%w: entry %s at %s/%d@%d: %w", ErrEntryUnreadable, id, dlqTopic, partition, offset, err)
		}
		return Claim{}, false, nil
	}
	rec := got[offset]
	if rec == nil || string(rec.Key) != string(id) || rec.Value == nil {
		return Claim{}, false, nil
	}
	var e Entry
	if json.Unmarshal(rec.Value, &e) != nil || e.ID != string(id) || e.Origin != "" || e.OriginalTopic != topic ||
		RetryTopicFor(e.ConsumerGroup, e.OriginalTopic) != r.Topic || e.ConsumerGroup != string(group) ||
		e.EventID != wire.EventIDOf(r) || e.RetryCount != attempt || e.Status != StatusRetrying || !bytes.Equal(retryValue(&e), r.Value) {
		return Claim{}, false, nil
	}
	if e.ConsumerGroup != readerGroup {
		return Claim{ID: e.ID, Group: e.ConsumerGroup, attempt: attempt}, true, nil
	}
	at := &dlqindex.Position{Topic: dlqTopic, Partition: int32(partition), Offset: offset}
	claim := Claim{ID: e.ID, Group: e.ConsumerGroup, attempt: attempt, entry: &e, at: at, seen: at.Offset}
	if claim.Outstanding, err = q.awaits(ctx, &claim); err != nil {
		return Claim{}, false, err
	}
	return claim, true, nil
}

// unreadable reports whether a read error leaves the record's existence
// unknown (a connection, leadership or other retriable broker error, or a
// fault a test injected), as opposed to the cluster's answer that it
// cannot be there for this reader: an unknown topic or partition (after
// the reader's own retries), or a refusal such as an authorization error.
// A record that cannot be read for good must not hold a partition forever.
func unreadable(err error) bool {
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		switch ke {
		case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID:
			return false
		}
		return ke.Retriable
	}
	return true
}

// newest returns the newest record of entry id after position from on its
// partition, below offset until if until >= 0 (nil when there is none),
// and whether the read reached the partition's end (within
// maxOutstandingScan) or until. A read error that leaves that unknown
// (see unreadable) is returned, wrapping ErrEntryUnreadable.
func (q *Queue) newest(ctx context.Context, id string, from dlqindex.Position, until int64) (*kgo.Record, bool, error) {
	reader, err := q.recordReader()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrEntryUnreadable, err)
	}
	if err := q.injectedFault(); err != nil {
		return nil, false, fmt.Errorf("%w: entry %s on %s/%d after %d: %w", ErrEntryUnreadable, id, from.Topic, from.Partition, from.Offset, err)
	}
	var last *kgo.Record
	complete, err := reader.Scan(ctx, from.Topic, from.Partition, from.Offset+1, maxOutstandingScan, func(r *kgo.Record) bool {
		if until >= 0 && r.Offset >= until {
			return false
		}
		if string(r.Key) == id {
			last = r
		}
		return true
	})
	if err != nil && unreadable(err) {
		return nil, false, fmt.Errorf("%w: entry %s on %s/%d after %d: %w", ErrEntryUnreadable, id, from.Topic, from.Partition, from.Offset, err)
	}
	return last, err == nil && (complete || until >= 0), nil
}

// awaits reports whether the claim's entry still waits for its attempt:
// its newest version is a retrying one of that attempt (the version the
// retry was sent as, or a copy of it). A retry already answered, retried
// again, deleted, or replayed by another writer awaits nothing.
//
// It reads only the records after claim.seen: at seen lies the version
// the retry was sent as, or a copy of it that an earlier call found
// outstanding, so with nothing newer the entry still waits. That holds
// because seen moves only on a true verdict and awaits is called again
// only while the claim is outstanding: the bus hands RecordFailure and
// Resolve only claims VerifyRetry found outstanding, and they stop at the
// first false. A read that could not tell returns an error wrapping
// ErrEntryUnreadable (and leaves seen as it was).
func (q *Queue) awaits(ctx context.Context, claim *Claim) (bool, error) {
	if claim.at == nil {
		return true, nil // a signed retry: checked by its signature alone
	}
	from := dlqindex.Position{Topic: claim.at.Topic, Partition: claim.at.Partition, Offset: claim.seen}
	last, complete, err := q.newest(ctx, claim.ID, from, -1)
	if err != nil {
		return false, err
	}
	if !complete {
		return false, nil
	}
	if last == nil {
		return true, nil
	}
	var e struct {
		ID         string `json:"id"`
		Status     Status `json:"status"`
		RetryCount int    `json:"retryCount"`
	}
	if last.Value == nil || json.Unmarshal(last.Value, &e) != nil ||
		e.ID != claim.ID || e.Status != StatusRetrying || e.RetryCount != claim.attempt {
		return false, nil
	}
	claim.seen = last.Offset
	return true, nil
}

// stillOutstanding checks, just before a retry's outcome is written, that
// its entry has not moved on while the handler ran (another retry sent,
// the entry deleted): the outcome of a superseded retry is dropped, since
// writing it would erase the newer version. When the entry could not be
// read it returns the error (ErrEntryUnreadable), for the caller to try
// again.
func (q *Queue) stillOutstanding(ctx context.Context, claim *Claim) (bool, error) {
	ok, err := q.awaits(ctx, claim)
	if ok || err != nil {
		return ok, err
	}
	q.cfg.Logger.Warn("eventbus: a retry's entry moved on while the retry was handled; its outcome is left to the newer attempt",
		"dlq_id", claim.ID, "attempt", claim.attempt)
	return false, nil
}

// writeOutcome writes a retry's outcome, e. Another writer (an operator's
// retry, say) may have written the entry between the check that the retry
// is still outstanding and this write, which then erased that version: it
// is written again, after ours, so that the newer attempt stands.
func (q *Queue) writeOutcome(ctx context.Context, claim *Claim, e *Entry) error {
	if q.hookBeforeOutcome != nil {
		q.hookBeforeOutcome()
	}
	written, err := q.write(ctx, e, false)
	if err != nil || claim.at == nil {
		return err
	}
	from := dlqindex.Position{Topic: claim.at.Topic, Partition: claim.at.Partition, Offset: claim.seen}
	between, _, _ := q.newest(ctx, claim.ID, from, written.Offset)
	if between == nil {
		return nil
	}
	q.cfg.Logger.Warn("eventbus: a retry's outcome crossed a newer write of its entry; the newer version is written again",
		"dlq_id", claim.ID, "attempt", claim.attempt)
	again := &kgo.Record{Topic: between.Topic, Key: between.Key, Value: between.Value}
	return q.produceEntryRecord(ctx, again, claim.ID)
}

// RecordFailure stores that group failed r (the event eventID): the next
// step of the entry an outstanding verified retry (claim non-nil) came
// from, or else a new entry, which replaces an earlier entry of the same
// group, topic, tenant and event (see EntryID), if any. It returns the entry's ID. When the claim's
// entry could not be read to check that it is still outstanding, nothing
// is written and the error wraps ErrEntryUnreadable: call it again.
func (q *Queue) RecordFailure(ctx context.Context, r *kgo.Record, group, eventID string, claim *Claim, f Failure) (string, error) {
	var e Entry
	if claim != nil && claim.entry != nil {
		if ok, err := q.stillOutstanding(ctx, claim); err != nil {
			return "", err
		} else if !ok {
			return claim.ID, nil
		}
		e = *claim.entry
		e.RetryCount = max(e.RetryCount, claim.attempt)
	} else {
		e = *q.newEntry(r, group, eventID)
	}
	e.SchedulerGroup = q.cfg.SchedulerGroup
	q.applyFailure(&e, f, q.cfg.Now().UTC())
	if claim != nil && claim.entry != nil {
		return e.ID, q.writeOutcome(ctx, claim, &e)
	}
	_, err := q.write(ctx, &e, false)
	return e.ID, err
}

// Resolve marks the entry a successful verified retry came from as
// resolved, unless it moved on meanwhile. When the entry could not be read
// to check that, nothing is written and the error wraps
// ErrEntryUnreadable: call it again.
func (q *Queue) Resolve(ctx context.Context, claim Claim) error {
	if claim.entry == nil {
		return nil
	}
	if ok, err := q.stillOutstanding(ctx, &claim); err != nil || !ok {
		return err
	}
	e := *claim.entry
	now := q.cfg.Now().UTC()
	e.Status, e.NextRetryAt, e.ResolvedAt, e.UpdatedAt = StatusResolved, nil, &now, now
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: "resolved"})
	return q.writeOutcome(ctx, &claim, &e)
}
