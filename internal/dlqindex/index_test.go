package dlqindex

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"unsafe"
)

func pos(p int32, off int64) Position {
	return Position{Topic: "dlq.core.user.created", Partition: p, Offset: off}
}

func TestLaterOffsetWinsForTheBusOwnEntries(t *testing.T) {
	x := New()
	x.Apply("a", Entry{Pos: pos(0, 5), Status: "retrying"})
	if x.Apply("a", Entry{Pos: pos(0, 3), Status: "pending"}) {
		t.Fatal("an older version replaced a newer one (the reader reaches records this process applied already)")
	}
	if !x.Apply("a", Entry{Pos: pos(0, 9), Status: "resolved"}) {
		t.Fatal("a newer version was refused")
	}
	if e, ok := x.Get("a"); !ok || e.Status != "resolved" {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	x.Apply("a", Entry{Pos: pos(0, 10), Deleted: true, Unread: true})
	if _, ok := x.Get("a"); ok {
		t.Fatal("a tombstone left the entry live")
	}
	if x.Apply("a", Entry{Pos: pos(0, 9), Status: "resolved"}) {
		t.Fatal("a version older than the tombstone brought the entry back")
	}
}

func TestLaterChangeWinsBetweenAForeignEntryAndItsOverlays(t *testing.T) {
	x := New()
	// Different keys, different partitions: read in any order.
	overlay := Entry{Pos: pos(2, 1), Origin: "typescript", Overlay: true, Status: "resolved", ChangedAt: 200}
	failure := Entry{Pos: pos(0, 7), Origin: "typescript", Status: "pending", ChangedAt: 100}
	x.Apply("dlq-e-1", overlay)
	if x.Apply("dlq-e-1", failure) {
		t.Fatal("the failure an overlay answered replaced the overlay")
	}
	if !x.Apply("dlq-e-1", Entry{Pos: pos(0, 8), Origin: "typescript", Status: "pending", ChangedAt: 300}) {
		t.Fatal("a newer failure did not show again")
	}
	y := New()
	y.Apply("dlq-e-1", Entry{Pos: pos(0, 7), Origin: "typescript", Status: "pending", ChangedAt: 100})
	if !y.Apply("dlq-e-1", Entry{Pos: pos(2, 1), Origin: "typescript", Overlay: true, Deleted: true, ChangedAt: 100}) {
		t.Fatal("an overlay lost a tie with the failure it answers")
	}
	if _, ok := y.Get("dlq-e-1"); ok {
		t.Fatal("a deleting overlay left the entry live")
	}
}

func TestQuerySortsAndFilters(t *testing.T) {
	x := New()
	x.Apply("b", Entry{Pos: pos(0, 1), Topic: "core.user.created", Tenant: "acme", TenantKnown: true, Status: "pending", FailedAt: 20})
	x.Apply("a", Entry{Pos: pos(1, 1), Topic: "core.user.created", Tenant: "acme", Status: "pending", FailedAt: 20})
	x.Apply("c", Entry{Pos: pos(2, 1), Topic: "core.user.updated", Tenant: "globex", TenantKnown: true, Status: "resolved", FailedAt: 30})
	x.Apply("d", Entry{Pos: pos(2, 2), Deleted: true})
	ids := func(refs []Ref) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tt := range []struct {
		f      Filter
		oldest bool
		want   []string
	}{
		{Filter{}, false, []string{"c", "a", "b"}},
		{Filter{}, true, []string{"a", "b", "c"}},
		{Filter{Topic: "core.user.created"}, false, []string{"a", "b"}},
		{Filter{Tenant: "acme", TenantKnown: true}, false, []string{"b"}},
		{Filter{Status: "resolved"}, false, []string{"c"}},
	} {
		if got := ids(x.Query(tt.f, tt.oldest)); !slices.Equal(got, tt.want) {
			t.Errorf("Query(%+v, oldest %v) = %v, want %v", tt.f, tt.oldest, got, tt.want)
		}
	}
	c := x.Count(Filter{}, []string{"pending", "retrying", "resolved"})
	if c.Total != 3 || c.ByStatus["pending"] != 2 || c.ByStatus["retrying"] != 0 || c.ByTopic["core.user.updated"] != 1 {
		t.Fatalf("Count = %+v", c)
	}
	if _, listed := c.ByStatus["retrying"]; !listed {
		t.Fatal("a status with no entry is not listed")
	}
}

// TestDueSkipsForeignSettledAndFutureEntries: a permanent entry out of
// retries is not due; one whose manual retry timed out is (its scheduler
// marks it out of retries).
func TestDueSkipsForeignSettledAndFutureEntries(t *testing.T) {
	x := New()
	waiting := []string{"pending", "retrying"}
	x.Apply("due", Entry{Pos: pos(0, 1), Status: "pending", NextRetryAt: 100, SchedulerGroup: "ours"})
	x.Apply("later", Entry{Pos: pos(0, 2), Status: "pending", NextRetryAt: 500, SchedulerGroup: "ours"})
	x.Apply("permanent", Entry{Pos: pos(0, 3), Status: "max-retries-exceeded", Permanent: true})
	x.Apply("permanent-timed-out", Entry{Pos: pos(0, 6), Status: "retrying", NextRetryAt: 100, Permanent: true, SchedulerGroup: "ours"})
	x.Apply("foreign", Entry{Pos: pos(0, 4), Origin: "typescript", Status: "pending", NextRetryAt: 100})
	x.Apply("resolved", Entry{Pos: pos(0, 5), Status: "resolved", NextRetryAt: 100})
	x.Apply("theirs", Entry{Pos: pos(1, 1), Status: "retrying", NextRetryAt: 100, SchedulerGroup: "theirs"})
	got := x.Due(200, waiting, func(_ string, _ int32, group string) bool { return group == "ours" })
	for _, ids := range got {
		slices.Sort(ids)
	}
	if len(got) != 1 || !slices.Equal(got[Position{Topic: "dlq.core.user.created", Partition: 0}], []string{"due", "permanent-timed-out"}) {
		t.Fatalf("Due = %v", got)
	}
}

func TestInternSharesRepeatedStrings(t *testing.T) {
	x := New()
	topic := func() string { return string([]byte("core.user.created")) } // a fresh copy each time
	x.Apply("a", Entry{Pos: pos(0, 1), Topic: topic()})
	x.Apply("b", Entry{Pos: pos(0, 2), Topic: topic()})
	a, _ := x.Get("a")
	b, _ := x.Get("b")
	if unsafe.StringData(a.Topic) != unsafe.StringData(b.Topic) || len(x.strs) != 1 {
		t.Fatalf("the two entries' topics do not share their bytes (%d strings kept)", len(x.strs))
	}
}

// TestDeletedEntriesCostNothing: once the view's reader has read an
// entry's tombstone, the index keeps nothing of the entry.
func TestDeletedEntriesCostNothing(t *testing.T) {
	x := New()
	const n = 1000
	id := func(i int) string { return "entry-" + strconv.Itoa(i) }
	for i := range n {
		x.Apply(id(i), Entry{Pos: pos(0, int64(i)), Status: "pending", Topic: "core.user.created"})
	}
	for i := range n {
		x.Apply(id(i), Entry{Pos: pos(0, int64(n+i)), Deleted: true})
	}
	if len(x.entries) != 0 {
		t.Fatalf("%d deleted entries are still held in the index", len(x.entries))
	}
}

// TestUnreadTombstoneIsKeptUntilRead: a tombstone this process wrote is
// applied before the view's reader reaches it; older versions the reader
// brings meanwhile do not show the entry again, and the reader's copy of
// the tombstone leaves nothing behind.
func TestUnreadTombstoneIsKeptUntilRead(t *testing.T) {
	x := New()
	x.Apply("a", Entry{Pos: pos(0, 5), Status: "pending"})
	x.Apply("a", Entry{Pos: pos(0, 7), Deleted: true, Unread: true})
	if x.Apply("a", Entry{Pos: pos(0, 6), Status: "retrying"}) {
		t.Fatal("a version older than an unread tombstone showed the entry again")
	}
	if _, ok := x.Get("a"); ok {
		t.Fatal("an unread tombstone left the entry live")
	}
	x.Apply("a", Entry{Pos: pos(0, 7), Deleted: true})
	if x.Len() != 0 {
		t.Fatalf("the index holds %d entries after the reader read the tombstone", x.Len())
	}
}

// TestPageTotalsAndNextDueAgreeWithAScan: Page picks the same refs as a
// full Query sliced, the unfiltered counts kept as entries come and go
// equal a scan's, and Due finds an entry at its time after NextDue.
func TestPageTotalsAndNextDueAgreeWithAScan(t *testing.T) {
	x := New()
	statuses := []string{"pending", "retrying", "resolved", "max-retries-exceeded"}
	for i := range 500 {
		id := "e" + strconv.Itoa(i%300) // some replaced
		e := Entry{Pos: pos(int32(i%3), int64(i)), Topic: "core.t" + strconv.Itoa(i%4), Status: statuses[i%4],
			ReasonLabel: "r" + strconv.Itoa(i%5), FailedAt: int64(i % 37)}
		if i%11 == 0 {
			e.Deleted = true
		}
		x.Apply(id, e)
	}
	for _, oldest := range []bool{false, true} {
		all := x.Query(Filter{}, oldest)
		for _, pg := range [][2]int{{0, 20}, {20, 20}, {250, 100}, {0, 0}, {400, 50}, {math.MaxInt, 100}, {100, math.MaxInt}} {
			got, total := x.Page(Filter{}, oldest, pg[0], pg[1])
			want := all[min(pg[0], len(all)):]
			if pg[1] > 0 {
				want = want[:min(pg[1], len(want))]
			}
			if total != len(all) || !slices.Equal(got, want) {
				t.Fatalf("Page(oldest %v, %d, %d) = %d refs of %d, want %d of %d", oldest, pg[0], pg[1], len(got), total, len(want), len(all))
			}
		}
	}
	kept := x.Count(Filter{}, statuses)
	scanned := x.Count(Filter{Status: "pending"}, statuses)
	scanned.Total += x.Count(Filter{Status: "retrying"}, statuses).Total
	scanned.Total += x.Count(Filter{Status: "resolved"}, statuses).Total
	scanned.Total += x.Count(Filter{Status: "max-retries-exceeded"}, statuses).Total
	x.mu.RLock()
	var n int
	for _, e := range x.entries {
		if !e.Deleted {
			n++
		}
	}
	x.mu.RUnlock()
	if kept.Total != n || scanned.Total != n {
		t.Fatalf("totals %d, scan %d, live %d", kept.Total, scanned.Total, n)
	}
	x.DropBelow(func(string, int32) int64 { return 250 })
	kept = x.Count(Filter{}, statuses)
	if live := len(x.Query(Filter{}, false)); kept.Total != live {
		t.Fatalf("after DropBelow: totals %d, live %d", kept.Total, live)
	}
	waiting := []string{"pending"}
	if got := x.Due(1_000, waiting, func(string, int32, string) bool { return true }); len(got) != 0 {
		t.Fatalf("Due before any retry time = %v", got)
	}
	x.Apply("late", Entry{Pos: pos(0, 1_000), Status: "pending", NextRetryAt: 2_000})
	if x.NextDue() > 2_000 {
		t.Fatalf("NextDue = %d after an entry due at 2000", x.NextDue())
	}
	if got := x.Due(1_999, waiting, func(string, int32, string) bool { return true }); len(got) != 0 {
		t.Fatalf("Due before its time = %v", got)
	}
	if got := x.Due(2_000, waiting, func(string, int32, string) bool { return true }); len(got) != 1 {
		t.Fatalf("Due at its time = %v", got)
	}
}
