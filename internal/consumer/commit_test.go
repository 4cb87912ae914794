package consumer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetSet is a set of partition offsets, safe for concurrent use.
type offsetSet struct {
	mu sync.Mutex
	at map[int32]map[int64]bool
}

func (s *offsetSet) add(p int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[int32]map[int64]bool{}
	}
	if s.at[p] == nil {
		s.at[p] = map[int64]bool{}
	}
	s.at[p][offset] = true
}

func (s *offsetSet) has(p int32, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[p][offset]
}

func (s *offsetSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.at {
		n += len(o)
	}
	return n
}

// each calls f for every offset in the set.
func (s *offsetSet) each(f func(p int32, offset int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, offs := range s.at {
		for o := range offs {
			f(p, o)
		}
	}
}

// crashGroup starts a group of topic on addrs with the given commit
// interval, waits until it is assigned, and stops it when the test ends
// (holdGroup with nothing held and no hooks).
func crashGroup(t *testing.T, addrs []string, group string, topic Topic, interval time.Duration) *Group {
	t.Helper()
	g, _ := holdGroup(t, addrs, group, topic, interval, nil, hooks{})
	return g
}

// TestCrashRedeliversABoundedCount: a member handles 3,000 of 6,000
// records as fast as it can, then its handlers hang and it is killed (its
// commits fail from then on, as a dead process's would never be sent). The
// member that takes over may handle again only what finished after the
// last commit: fewer than commitEvery records, whatever the time between
// commits (here an hour, so only the count of finished records can make
// a commit due). Nothing is lost.
func TestCrashRedeliversABoundedCount(t *testing.T) {
	const (
		partitions   = 3
		perPartition = 2000
		killAt       = 3000
		group        = "crash-bound"
	)
	c, addrs := testCluster(t, partitions, perPartition)
	var killed atomic.Bool
	c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !killed.Load() {
			return nil, nil, false
		}
		return commitRefused(kreq.(*kmsg.OffsetCommitRequest), kerr.GroupAuthorizationFailed.Code), nil, true
	})

	var first offsetSet
	hung := make(chan struct{})
	topic := Topic{Name: testTopic, Ordering: Unordered, MaxConcurrency: 8, MaxPending: 1000, FromBeginning: true}
	topic.Handle = crashHandler(&first, killAt, hung, nil, nil)
	g := crashGroup(t, addrs, group, topic, time.Hour)
	<-hung

	// What the group committed (offsets and finished offsets above them)
	// covers all but fewer than commitEvery of the records handled.
	bound := commitEvery(topic)
	uncovered := func() int {
		offs, err := g.adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return -1
		}
		n := 0
		first.each(func(p int32, offset int64) {
			o, ok := offs.Lookup(testTopic, p)
			if !ok || o.Err != nil || offset >= o.At && !inSpans(decodeFinished(o.At, o.Metadata), offset) {
				n++
			}
		})
		return n
	}
	waitFor(t, fmt.Sprintf("the commits cover all but fewer than %d of the %d records handled", bound, killAt), func() bool {
		n := uncovered()
		return n >= 0 && n < bound
	})

	killed.Store(true) // from now on, nothing the member commits arrives
	dups, handledAfter, lost := stopAndResume(t, g, addrs, group, topic, &first, &killed, partitions, perPartition)
	t.Logf("handled %d before the kill, %d after; %d handled twice (bound %d)", first.len(), handledAfter, dups, bound)
	if lost > 0 {
		t.Errorf("%d records lost", lost)
	}
	if dups >= bound {
		t.Errorf("%d records handled twice after the kill; want fewer than %d (commitEvery)", dups, bound)
	}
}

// stopAndResume stops g as a crash would (killed is set, so its final
// commit is refused; it is cleared after), lets a second member of group
// drain every partition from what was committed, and returns how many
// records that member handled again (dups: handled before, in first), how
// many it handled in all, and how many records neither member handled.
func stopAndResume(t *testing.T, g *Group, addrs []string, group string, topic Topic, first *offsetSet, killed *atomic.Bool, partitions int32, perPartition int64) (dups, handledAfter, lost int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = g.Stop(ctx) // its final commit fails: as good as a kill
	killed.Store(false)

	var second offsetSet
	var again atomic.Int32
	topic.Handle = func(_, _ context.Context, r *kgo.Record) bool {
		if first.has(r.Partition, r.Offset) {
			again.Add(1)
		}
		second.add(r.Partition, r.Offset)
		return true
	}
	g2 := crashGroup(t, addrs, group, topic, 10*time.Millisecond)
	waitFor(t, "the second member commits the end of every partition", func() bool {
		for p := range partitions {
			if o, ok := committed(g2, group, p); !ok || o.At != perPartition {
				return false
			}
		}
		return true
	})
	for p := range partitions {
		for o := range perPartition {
			if !first.has(p, o) && !second.has(p, o) {
				lost++
			}
		}
	}
	return int(again.Load()), second.len(), lost
}

// crashHandler is the handler of a member about to crash: it records each
// record it handles in first and, once it handled killAt, hangs until the
// member is stopped (closing hung), where the crash comes. With killed
// set, it handles nothing (a dead process). onHandled, if not nil, is
// called with the count after each record, under the handler's lock.
func crashHandler(first *offsetSet, killAt int, hung chan struct{}, killed *atomic.Bool, onHandled func(handled int)) func(_, stopping context.Context, r *kgo.Record) bool {
	var (
		mu       sync.Mutex
		handled  int
		hangOnce sync.Once
	)
	return func(_, stopping context.Context, r *kgo.Record) bool {
		mu.Lock()
		if killed != nil && killed.Load() {
			mu.Unlock()
			return false // a dead process handles nothing
		}
		if handled == killAt {
			mu.Unlock()
			hangOnce.Do(func() { close(hung) })
			<-stopping.Done() // hangs until the member is stopped
			return false
		}
		handled++
		first.add(r.Partition, r.Offset)
		if onHandled != nil {
			onHandled(handled)
		}
		mu.Unlock()
		return true
	}
}

// commitRefused answers a commit refusing every partition with code; with
// kerr.GroupAuthorizationFailed, what a killed member would have committed
// never arrives.
func commitRefused(req *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// inSpans says whether offset is in one of spans.
func inSpans(spans []span, offset int64) bool {
	for _, s := range spans {
		if s.first <= offset && offset <= s.last {
			return true
		}
	}
	return false
}

// TestCrashWithACommitUnansweredRedeliversABoundedCount: the broker holds
// a commit without answering it (a loaded or paused broker) while the
// member's handlers go on; then the member is killed, and the held commit
// lands after all, as a request already on the wire does. Whatever
// finished after that commit was taken comes again to the next member: a
// count bounded by the engine (twice commitEvery, plus the handlers
// running), not everything the member handled while the broker was slow.
// Nothing is lost.
func TestCrashWithACommitUnansweredRedeliversABoundedCount(t *testing.T) {
	const (
		partitions   = 3
		perPartition = 2000
		holdAfter    = 500  // records handled when the next commit is held
		killAt       = 3000 // the member hangs here if nothing held it back
		group        = "crash-unanswered"
	)
	c, addrs := testCluster(t, partitions, perPartition)
	var (
		holdNext, killed atomic.Bool
		holding          = make(chan struct{})
		release          = make(chan struct{})
	)
	c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if holdNext.CompareAndSwap(true, false) {
			close(holding)
			c.SleepControl(func() { <-release })
			return nil, nil, false // then answered as usual: the commit lands
		}
		if !killed.Load() {
			return nil, nil, false
		}
		return commitRefused(kreq.(*kmsg.OffsetCommitRequest), kerr.GroupAuthorizationFailed.Code), nil, true
	})

	var first offsetSet
	hung := make(chan struct{})
	topic := Topic{Name: testTopic, Ordering: Unordered, MaxConcurrency: 8, MaxPending: 1000, FromBeginning: true}
	topic.Handle = crashHandler(&first, killAt, hung, &killed, func(handled int) {
		if handled == holdAfter {
			holdNext.Store(true)
		}
	})
	g := crashGroup(t, addrs, group, topic, time.Hour)
	<-holding
	waitFor(t, "the member hangs at the kill point, or its workers wait for the held commit", func() bool {
		select {
		case <-hung: // the handlers ran on while the commit went unanswered
			return true
		default:
		}
		d := g.dispatcher(testTopic)
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.active == 0 && d.uncommitted >= 2*commitEvery(topic)
	})

	killed.Store(true) // from now on the member handles and commits nothing
	close(release)     // the held commit, already sent, lands
	dups, handledAfter, lost := stopAndResume(t, g, addrs, group, topic, &first, &killed, partitions, perPartition)
	bound := 2*commitEvery(topic) + topic.MaxConcurrency
	t.Logf("handled %d before the kill, %d after; %d handled twice (bound %d)", first.len(), handledAfter, dups, bound)
	if lost > 0 {
		t.Errorf("%d records lost", lost)
	}
	if dups > bound {
		t.Errorf("%d records handled twice after the kill; want at most %d (twice commitEvery, plus the handlers running)", dups, bound)
	}
}
