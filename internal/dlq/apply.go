package dlq

import (
	"fmt"
	"slices"
	"time"

	"github.com/plexica/eventbus/deadletter"
)

// change is what the owner writes for one command, or for one entry that
// is due: the entry's next version (or its tombstone), maybe a retry sent
// in the same transaction, and the command's result.
type change struct {
	id string
	// next is the entry's next version; nil writes nothing for the entry.
	next *Entry
	// remove writes the entry's tombstone.
	remove bool
	// retry sends a retry of next (attempt next.RetryCount).
	retry, manual bool
	// result is the command's ("ok", "not-found: …", "not-allowed: …").
	result string
	// cmdKey is the command's key (nil for a due entry): its tombstone,
	// with result, marks it applied.
	cmdKey []byte
	// prior is the entry as it stood before the change (nil: none).
	prior *Entry
}

// AttemptRetryNotSent is the Kind of an Attempt that records a retry whose
// send failed (its retry topic could not be made): it spent no attempt.
const AttemptRetryNotSent = "retry-not-sent"

// AttemptLateFailed is the Kind of an Attempt that records a failure
// answering an older retry than the entry's latest one: it changes
// nothing else.
const AttemptLateFailed = "late-failed"

// decide is the owner's answer to command c on cur, the entry as it stands
// (nil when there is none: never written, or deleted). It is pure: the
// owner writes what it returns, in one transaction.
//
//   - A failure of an ordinary delivery creates the entry (replacing an
//     earlier one of the same event), unless it is the failure of the
//     record the entry was made of, stored again while the entry is being
//     retried: that changes nothing.
//   - A failure or success answers retry c.Attempt. The answer to the
//     entry's outstanding retry moves it on (a failure to pending or out of
//     retries, a success to resolved). A late answer, to an older retry,
//     is recorded against that retry: a success still resolves the entry
//     (the event was handled), a failure changes nothing else. An answer
//     for an entry that is gone (deleted) changes nothing: a delete is
//     never undone.
//   - A retry is sent unless the entry is gone, or it is an automatic one
//     the schedule does not allow.
//   - A delete removes the entry.
func (q *Queue) decide(cur *Entry, c *command, now time.Time) change {
	ch := change{id: c.ID, result: resultOK}
	if cur != nil && !q.keeps(cur) {
		// Another scheduler group's owner writes this entry: one writer
		// per entry holds only within a group, so this one leaves it.
		ch.result = fmt.Sprintf("%s: entry %s is kept by scheduler group %q, not %q", resultNotAllowed, cur.ID, orDefaultGroup(cur.SchedulerGroup), q.cfg.SchedulerGroup)
		q.cfg.Logger.Warn("eventbus: a dead-letter command reached the owner of another scheduler group than its entry's; left unapplied (give every bus of a deployment the same Config.DLQ.SchedulerGroup)",
			"dlq_id", cur.ID, "entry_group", orDefaultGroup(cur.SchedulerGroup), "owner_group", q.cfg.SchedulerGroup, "command", c.Kind)
		return ch
	}
	if c.Kind == CommandFailed && c.Attempt == 0 {
		if c.Entry == nil || c.Failure == nil || c.Entry.ID != c.ID {
			ch.result = "invalid: a failure command without its entry"
			return ch
		}
		if sameDelivery(cur, c.Entry) {
			// The failure stored again (a write retried, or the event
			// delivered again before its offset was committed) while its
			// entry is being retried: starting the entry over would send
			// its retries' attempt numbers a second time.
			return ch
		}
		e := *c.Entry
		e.Attempts = slices.Clip(e.Attempts)
		q.applyFailure(&e, *c.Failure, now)
		fromFailure(&e, c, now)
		ch.next = &e
		return ch
	}
	if cur == nil {
		ch.result = resultNotFound + ": no dead-letter entry " + c.ID
		return ch
	}
	e := *cur
	e.Attempts = slices.Clip(e.Attempts) // appends below must not share cur's array
	outstanding := e.Status == deadletter.StatusRetrying && e.RetryCount == c.Attempt
	if (c.Kind == CommandFailed || c.Kind == CommandResolved) && answered(&e, c.Attempt) {
		return ch // a redelivered answer: recorded already
	}
	switch c.Kind {
	case CommandFailed:
		if c.Failure == nil {
			ch.result = "invalid: a failure command without its failure"
			return ch
		}
		if outstanding {
			q.applyFailure(&e, *c.Failure, now)
			fromFailure(&e, c, now)
		} else {
			e.Attempts = append(e.Attempts, Attempt{At: now, Kind: AttemptLateFailed, Number: c.Attempt, Error: c.Failure.Reason})
			e.UpdatedAt = now
		}
		e.Attempts[len(e.Attempts)-1].Number = c.Attempt
		ch.next = &e
	case CommandResolved:
		if e.Status != deadletter.StatusResolved {
			e.Status, e.NextRetryAt, e.ResolvedAt = deadletter.StatusResolved, nil, &now
		}
		// Resolved already (by an answer to another retry): the success
		// is recorded against its retry all the same.
		e.UpdatedAt = now
		e.Attempts = append(e.Attempts, Attempt{At: now, Kind: "resolved", Number: c.Attempt})
		ch.next = &e
	case CommandRetry:
		if e.Origin != "" {
			ch.result = resultNotAllowed + ": entry " + e.ID + " was written by the TypeScript package"
			return ch
		}
		if !c.Manual && (e.Status == deadletter.StatusResolved || e.Status == deadletter.StatusMaxRetriesExceeded || e.RetryCount >= e.MaxRetries) {
			ch.result = fmt.Sprintf("%s: entry %s is %s after %d of %d retries; retry it manually", resultNotAllowed, e.ID, e.Status, e.RetryCount, e.MaxRetries)
			return ch
		}
		q.prepareRetry(&e, c.Manual, now)
		ch.next, ch.retry, ch.manual = &e, true, c.Manual
	case CommandDelete:
		ch.remove = true
	default:
		ch.result = "invalid: unknown command " + c.Kind
	}
	return ch
}

// keeps reports whether e belongs to this queue's scheduler group (whose
// owners alone write it).
func (q *Queue) keeps(e *Entry) bool {
	return orDefaultGroup(e.SchedulerGroup) == q.cfg.SchedulerGroup
}

// orDefaultGroup is group, or deadletter.DefaultSchedulerGroup for "".
func orDefaultGroup(group string) string {
	if group == "" {
		return deadletter.DefaultSchedulerGroup
	}
	return group
}

// answered reports whether e's history holds an answer to retry n.
func answered(e *Entry, n int) bool {
	if n < 1 {
		return false
	}
	for _, a := range e.Attempts {
		if a.Number == n && (a.Kind == "failed" || a.Kind == AttemptLateFailed || a.Kind == "resolved") {
			return true
		}
	}
	return false
}

// sameDelivery reports whether failed, the entry a failure of an ordinary
// delivery creates, is the failure of the very record cur was made of, and
// cur, whose retries have begun, still waits for a retry or its answer.
// Before its first retry, the copy may replace it: no attempt number was
// sent, and Permanent follows the latest failure.
func sameDelivery(cur, failed *Entry) bool {
	return cur != nil && cur.RetryCount > 0 && (cur.Status == deadletter.StatusPending || cur.Status == deadletter.StatusRetrying) &&
		failed.Offset >= 0 && cur.Partition == failed.Partition && cur.Offset == failed.Offset
}

// fromFailure counts e's next retry time, which applyFailure counted from
// now, from when the failure happened instead (c.At, when earlier): an
// owner that applies a failure late (it had to notice a new dlq.* topic,
// or was catching up) does not delay its retry by as much.
func fromFailure(e *Entry, c *command, now time.Time) {
	if e.NextRetryAt == nil || c.At.IsZero() || !c.At.Before(now) {
		return
	}
	next := e.NextRetryAt.Add(-now.Sub(c.At))
	e.NextRetryAt = &next
}

// decideDue is the owner's step for entry e, due (isDue): its next
// automatic retry, or out of retries when it has none left. A retry of a
// permanent failure (a manual one) that timed out is out of retries too:
// only a manual retry sends it again.
func (q *Queue) decideDue(e Entry, now time.Time) change {
	e.Attempts = slices.Clip(e.Attempts)
	if e.RetryCount >= e.MaxRetries || (e.Permanent && e.Status == deadletter.StatusRetrying) {
		e.Status, e.NextRetryAt, e.UpdatedAt = deadletter.StatusMaxRetriesExceeded, nil, now
		return change{id: e.ID, next: &e}
	}
	// Sent automatically: its latest failure was not permanent (an entry
	// written before Permanent followed the latest failure may say so).
	e.Permanent = false
	q.prepareRetry(&e, false, now)
	return change{id: e.ID, next: &e, retry: true}
}

// prepareRetry makes e the version a retry of it is sent as: one more
// attempt, retrying until the retry timeout.
func (q *Queue) prepareRetry(e *Entry, manual bool, now time.Time) {
	e.RetryCount++
	e.Status = deadletter.StatusRetrying
	next := now.Add(q.cfg.RetryTimeout)
	e.NextRetryAt = &next
	e.ResolvedAt = nil
	kind := "retry"
	if manual {
		kind = "manual-retry"
	}
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: kind, Number: e.RetryCount})
	e.UpdatedAt = now
}

// notSent is the version of e, the entry as it stood before a retry of it
// that could not be sent (cause), that records that: its retry count
// unchanged, an entry that waits for automatic retries due again after a
// backoff that grows with the sends that failed in a row (1 s · 2^n,
// capped like the retries'), or at the time it was due anyway if later.
func (q *Queue) notSent(e Entry, cause error, now time.Time) *Entry {
	e.Attempts = append(slices.Clip(e.Attempts), Attempt{At: now, Kind: AttemptRetryNotSent, Error: cause.Error()})
	e.UpdatedAt = now
	if e.Status == deadletter.StatusPending || e.Status == deadletter.StatusRetrying {
		failed := 0
		for i := len(e.Attempts) - 1; i >= 0 && e.Attempts[i].Kind == AttemptRetryNotSent; i-- {
			failed++
		}
		next := now.Add(q.cfg.backoff(failed - 1))
		if e.NextRetryAt == nil || e.NextRetryAt.Before(next) {
			e.NextRetryAt = &next
		}
	}
	return &e
}
