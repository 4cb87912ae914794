// Package dlqindex is the dead letter queue's index in memory: for each
// entry, what it takes to filter, count, sort and schedule it, and where
// its newest version lies on the dlq.* topics. The entries themselves stay
// on the topics and are read from there when asked for, so the index grows
// by about 330 bytes of heap per entry, map included, whatever the events
// weigh (eventbus bench --phases dlq). A deleted entry costs nothing once
// its tombstone is read, and entries whose records retention removed are
// dropped (DropBelow).
package dlqindex

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/plexica/eventbus/deadletter"
)

// Len is how many entries the index holds, tombstones it still keeps
// included.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.entries)
}

// Position is where one record lies.
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Entry is what the index keeps of one version of an entry.
type Entry struct {
	Pos Position
	// Deleted: a tombstone (or an overlay that deletes). The index drops
	// the bus's own entries (no Origin) when it applies their tombstone,
	// and keeps nothing of them, unless Unread.
	Deleted bool
	// Unread marks a tombstone this process wrote that the view's reader
	// has not read yet: the index keeps it until then, so that older
	// versions the reader still brings do not show the entry again; the
	// reader's copy of it (not Unread) drops the entry.
	Unread bool
	// Origin is "" for the bus's own entries; for those another
	// implementation wrote (and the overlays that answer them) it names it.
	Origin string
	// Overlay: a record of the bus that overlays an entry another
	// implementation wrote (its retry or delete).
	Overlay bool
	Status  string
	// Few distinct values across many entries: the index keeps one copy.
	Topic, Tenant, SchedulerGroup, ReasonLabel string
	// TenantKnown: the record is an event of Tenant (access scoped to a
	// tenant sees only those).
	TenantKnown bool
	// Permanent: the entry's latest failure was permanent. Due does not
	// look at it: a permanent entry is due only while retrying (its manual
	// retry's timeout), and its scheduler then marks it out of retries.
	Permanent bool
	// Unix nanoseconds; NextRetryAt 0 is none.
	FailedAt, NextRetryAt, ChangedAt int64
}

// supersedes reports whether version next of an entry replaces version
// cur. Versions of one of the bus's entries share a key, hence a
// partition, and the later offset wins. An entry another implementation
// wrote and the overlays that answer it have different keys: there the
// later change wins, and an overlay wins a tie with the failure it
// answers.
func supersedes(next, cur *Entry) bool {
	if next.Origin == "" && cur.Origin == "" {
		return cur.Pos.Topic != next.Pos.Topic || cur.Pos.Partition != next.Pos.Partition || next.Pos.Offset >= cur.Pos.Offset
	}
	if next.ChangedAt != cur.ChangedAt {
		return next.ChangedAt > cur.ChangedAt
	}
	return next.Overlay
}

// Index is the index of every entry, by ID. It is safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	entries map[string]*Entry
	strs    map[string]string
	// totals counts the live entries as Count(Filter{}) would, kept as
	// entries come and go, so that unfiltered counts cost no scan.
	totals Counts
	// nextDue is at most the earliest NextRetryAt of the entries Due may
	// return (math.MaxInt64: none): Due scans nothing before it.
	nextDue atomic.Int64
}

// New returns an empty index.
func New() *Index {
	x := &Index{entries: map[string]*Entry{}, strs: map[string]string{},
		totals: Counts{ByStatus: map[string]int{}, ByTopic: map[string]int{}, ByReason: map[string]int{}}}
	x.nextDue.Store(math.MaxInt64)
	return x
}

// account adds (sign 1) or removes (sign -1) e from the totals, and lowers
// nextDue to e's NextRetryAt. Called with x.mu held.
func (x *Index) account(e *Entry, sign int) {
	if e.Deleted {
		return
	}
	if sign > 0 && e.Origin == "" && e.NextRetryAt != 0 && e.NextRetryAt < x.nextDue.Load() {
		x.nextDue.Store(e.NextRetryAt)
	}
	x.totals.Total += sign
	for _, c := range []struct {
		m map[string]int
		k string
	}{{x.totals.ByStatus, e.Status}, {x.totals.ByTopic, e.Topic}, {x.totals.ByReason, e.ReasonLabel}} {
		if c.m[c.k] += sign; c.m[c.k] == 0 {
			delete(c.m, c.k)
		}
	}
}

// Apply folds one version of entry id into the index, unless the version
// it holds supersedes it. It reports whether e was taken. A tombstone of
// one of the bus's own entries that is not Unread removes the entry: a
// deleted entry costs nothing. Those of entries another implementation
// wrote are kept (their versions have different keys, read in any order).
func (x *Index) Apply(id string, e Entry) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	cur, ok := x.entries[id]
	if ok && !supersedes(&e, cur) {
		return false
	}
	if ok {
		x.account(cur, -1)
	}
	if e.Deleted && e.Origin == "" && !e.Unread {
		delete(x.entries, id)
		return true
	}
	e.Topic, e.Tenant = x.intern(e.Topic), x.intern(e.Tenant)
	e.SchedulerGroup, e.ReasonLabel = x.intern(e.SchedulerGroup), x.intern(e.ReasonLabel)
	x.entries[id] = &e
	x.account(&e, 1)
	return true
}

// intern returns the index's copy of s. Called with x.mu held.
func (x *Index) intern(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := x.strs[s]; ok {
		return c
	}
	x.strs[s] = s
	return s
}

// DropBelow removes the entries whose newest version lies below the start
// offset that start returns for its partition: retention (or
// DeleteRecords) removed their records, so a view read afresh would not
// hold them. It returns how many it removed.
func (x *Index) DropBelow(start func(topic string, partition int32) int64) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for id, e := range x.entries {
		if e.Pos.Offset < start(e.Pos.Topic, e.Pos.Partition) {
			x.account(e, -1)
			delete(x.entries, id)
			n++
		}
	}
	return n
}

// Get returns what the index holds of live entry id.
func (x *Index) Get(id string) (Entry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.entries[id]
	if !ok || e.Deleted {
		return Entry{}, false
	}
	return *e, true
}

// Filter selects entries; empty fields match all.
type Filter struct {
	Topic, Tenant, Status string
	// TenantKnown keeps only entries whose tenant is known.
	TenantKnown bool
}

func (e *Entry) matches(f Filter) bool {
	return !e.Deleted &&
		(f.Topic == "" || e.Topic == f.Topic) &&
		(f.Tenant == "" || e.Tenant == f.Tenant) &&
		(!f.TenantKnown || e.TenantKnown) &&
		(f.Status == "" || e.Status == f.Status)
}

// Ref names one entry and where its newest version lies.
type Ref struct {
	ID  string
	Pos Position
}

// Query returns the live entries that match f, sorted by failure time
// (newest first, or oldest first) then ID.
func (x *Index) Query(f Filter, oldest bool) []Ref {
	type hit struct {
		Ref
		failedAt int64
	}
	x.mu.RLock()
	hits := make([]hit, 0, len(x.entries)/4)
	for id, e := range x.entries {
		if e.matches(f) {
			hits = append(hits, hit{Ref{id, e.Pos}, e.FailedAt})
		}
	}
	x.mu.RUnlock()
	slices.SortFunc(hits, func(a, b hit) int {
		if a.failedAt != b.failedAt {
			if (a.failedAt < b.failedAt) == oldest {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := make([]Ref, len(hits))
	for i, h := range hits {
		out[i] = h.Ref
	}
	return out
}

// Page returns the page of Query(f, oldest) that skips offset refs and
// holds at most limit of them (0: all the rest), and how many match in all.
// A page near the start (offset+limit at most maxTopPage) is picked
// without sorting every match.
func (x *Index) Page(f Filter, oldest bool, offset, limit int) ([]Ref, int) {
	if limit <= 0 || offset < 0 || limit > maxTopPage || offset > maxTopPage-limit { // no overflow
		refs := x.Query(f, oldest)
		total := len(refs)
		refs = refs[min(max(offset, 0), total):]
		if limit > 0 {
			refs = refs[:min(limit, len(refs))]
		}
		return refs, total
	}
	type hit struct {
		Ref
		failedAt int64
	}
	before := func(a, b *hit) bool { // a sorts before b in Query's order
		if a.failedAt != b.failedAt {
			return (a.failedAt < b.failedAt) == oldest
		}
		return a.ID < b.ID
	}
	k := offset + limit
	top := make([]hit, 0, k) // the first k matches so far, in order
	total := 0
	x.mu.RLock()
	for id, e := range x.entries {
		if !e.matches(f) {
			continue
		}
		total++
		h := hit{Ref{id, e.Pos}, e.FailedAt}
		if len(top) == k && !before(&h, &top[k-1]) {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, h, func(a, b hit) int {
			if before(&a, &b) {
				return -1
			}
			return 1
		})
		if len(top) == k {
			top = top[:k-1]
		}
		top = slices.Insert(top, i, h)
	}
	x.mu.RUnlock()
	top = top[min(offset, len(top)):]
	out := make([]Ref, len(top))
	for i, h := range top {
		out[i] = h.Ref
	}
	return out, total
}

// maxTopPage is the deepest page end Page picks without a full sort.
const maxTopPage = 1000

// Counts are the live entries that match a filter, counted: the public
// deadletter.Stats.
type Counts = deadletter.Stats

// Count counts the live entries that match f by status, topic and reason
// label. ByStatus holds every status in statuses, zero or not.
func (x *Index) Count(f Filter, statuses []string) Counts {
	c := Counts{ByStatus: map[string]int{}, ByTopic: map[string]int{}, ByReason: map[string]int{}}
	for _, s := range statuses {
		c.ByStatus[s] = 0
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if f == (Filter{}) {
		c.Total = x.totals.Total
		for _, m := range []struct{ to, from map[string]int }{
			{c.ByStatus, x.totals.ByStatus}, {c.ByTopic, x.totals.ByTopic}, {c.ByReason, x.totals.ByReason},
		} {
			for k, n := range m.from {
				m.to[k] = n
			}
		}
		return c
	}
	for _, e := range x.entries {
		if !e.matches(f) {
			continue
		}
		c.Total++
		c.ByStatus[e.Status]++
		c.ByTopic[e.Topic]++
		c.ByReason[e.ReasonLabel]++
	}
	return c
}

// Due returns, by partition of their newest version, the IDs of the live
// entries of the bus itself (no Origin) that wait for an automatic retry
// or a retry's timeout whose time, now (Unix nanoseconds), has come, in one
// of the statuses waiting, and that keep accepts. Permanent entries are
// among them (see Entry.Permanent).
//
// Before NextDue, it returns nothing without looking at any entry.
func (x *Index) Due(now int64, waiting []string, keep func(topic string, partition int32, schedulerGroup string) bool) map[Position][]string {
	out := map[Position][]string{}
	if now < x.nextDue.Load() {
		return out
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	next := int64(math.MaxInt64)
	for id, e := range x.entries {
		if e.Deleted || e.Origin != "" || e.NextRetryAt == 0 || !slices.Contains(waiting, e.Status) {
			continue
		}
		next = min(next, e.NextRetryAt)
		if e.NextRetryAt > now {
			continue
		}
		if keep(e.Pos.Topic, e.Pos.Partition, e.SchedulerGroup) {
			p := Position{Topic: e.Pos.Topic, Partition: e.Pos.Partition}
			out[p] = append(out[p], id)
		}
	}
	// Applies wait for x.mu, so none lowered nextDue meanwhile. An entry
	// returned but left as it is (not kept, or its owner not ready) keeps
	// it at or below now: the next call scans again.
	x.nextDue.Store(next)
	return out
}

// NextDue is a time (Unix nanoseconds) before which Due returns nothing:
// at most the earliest NextRetryAt of the entries it may return, or
// math.MaxInt64 when there are none.
func (x *Index) NextDue() int64 { return x.nextDue.Load() }
