package dlq

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/dlqindex"
)

// scheduler sends the automatic retries of the DLQ partitions this
// process owns in Config.SchedulerGroup: group membership makes each
// partition's owner its only scheduler, however many instances run.
type scheduler struct {
	q  *Queue
	cl *kgo.Client

	mu    sync.Mutex
	owned map[topicPartition]int64 // owned partition -> end offset the view must reach first

	// sending is held while retries of a partition are being sent; a
	// revocation waits for it, so that everything the old owner wrote is
	// acknowledged (and below the end offset the next owner waits for)
	// before the partition changes hands.
	sending sync.Mutex

	cancel context.CancelFunc
	done   chan struct{}
}

func newScheduler(q *Queue) *scheduler {
	return &scheduler{q: q, owned: map[topicPartition]int64{}, done: make(chan struct{})}
}

func (s *scheduler) start() error {
	cl, err := s.q.host.NewClient(
		kgo.ConsumerGroup(s.q.cfg.SchedulerGroup),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(dlqTopicPattern),
		kgo.DisableAutoCommit(),
		kgo.MetadataMaxAge(3*time.Second),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.SessionTimeout(s.q.cfg.SessionTimeout),
		kgo.HeartbeatInterval(s.q.cfg.HeartbeatInterval),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		// The view reads the records; the group is only for ownership
		// (onAssigned pauses fetching).
		kgo.FetchMaxBytes(1<<20),
	)
	if err != nil {
		return err
	}
	s.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.drain(ctx)
	go s.loop(ctx)
	return nil
}

func (s *scheduler) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	// The group only decides ownership; the view reads the records. Pausing
	// spares the brokers a second read of every DLQ topic per process.
	cl.PauseFetchTopics(slices.Collect(maps.Keys(assigned))...)
	s.mu.Lock()
	for t, ps := range assigned {
		for _, p := range ps {
			s.owned[topicPartition{t, p}] = -1 // end offset not known yet
		}
	}
	s.mu.Unlock()
	s.learnEnds(ctx)
}

// learnEnds lists the end offsets of owned partitions whose end is not
// known yet. A partition is scheduled only once its end is known and the
// view has read up to it, so that nothing the previous owner wrote is
// missed; a listing that fails (a topic just created) is tried again at
// the next tick.
func (s *scheduler) learnEnds(ctx context.Context) {
	s.mu.Lock()
	var topics []string
	for tp, end := range s.owned {
		if end < 0 && !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	s.mu.Unlock()
	if len(topics) == 0 {
		return
	}
	adm, err := s.q.host.Admin()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	listed, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	listed.Each(func(o kadm.ListedOffset) {
		tp := topicPartition{o.Topic, o.Partition}
		if end, owned := s.owned[tp]; owned && end < 0 && o.Err == nil {
			s.owned[tp] = o.Offset
		}
	})
}

func (s *scheduler) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.sending.Lock()
	defer s.sending.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range revoked {
		for _, p := range ps {
			delete(s.owned, topicPartition{t, p})
		}
	}
}

// drain polls until the client closes. The assigned topics are paused, so
// it returns nothing but a record fetched before a pause took effect, which
// it drops: the view already holds the records.
func (s *scheduler) drain(ctx context.Context) {
	for {
		fetches := s.cl.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
	}
}

// loop checks the owned partitions for due retries several times a second.
func (s *scheduler) loop(ctx context.Context) {
	defer close(s.done)
	interval := min(max(s.q.cfg.RetryBackoff/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick(ctx)
		}
	}
}

func (s *scheduler) tick(ctx context.Context) {
	s.learnEnds(ctx)
	s.mu.Lock()
	ready := map[topicPartition]bool{}
	for tp, end := range s.owned {
		if end >= 0 && s.q.view.caughtUp(tp, end) {
			ready[tp] = true
		}
	}
	s.mu.Unlock()
	if len(ready) == 0 {
		return
	}
	now := s.q.cfg.Now()
	due := s.q.view.due(now, func(tp topicPartition, schedulerGroup string) bool {
		return ready[tp] && s.schedules(schedulerGroup)
	})
	for tp, ids := range due {
		s.sendDue(ctx, tp, ids, now)
	}
}

// schedules reports whether this scheduler's group schedules an entry of
// schedulerGroup: the group of the bus that recorded its last failure.
func (s *scheduler) schedules(group string) bool {
	if group == "" {
		group = DefaultSchedulerGroup
	}
	return group == s.q.cfg.SchedulerGroup
}

// sendDue sends the due retries of one owned partition. The entries are
// read again under the sending lock (in one read, from where the index
// holds their newest versions), so a newer version (a retry just answered)
// is never overwritten by the one the scan saw.
func (s *scheduler) sendDue(ctx context.Context, tp topicPartition, ids []string, now time.Time) {
	s.sending.Lock()
	defer s.sending.Unlock()
	if !s.stillOwned(tp) {
		return
	}
	refs := make([]dlqindex.Ref, 0, len(ids))
	for _, id := range ids {
		if ref, ok := s.q.view.ref(id); ok {
			refs = append(refs, ref)
		}
	}
	entries, err := s.q.view.read(ctx, refs)
	if err != nil {
		s.q.cfg.Logger.Warn("eventbus: could not read the due dead-letter entries; will try again",
			"topic", tp.topic, "partition", tp.partition, "entries", len(refs), "err", err)
		return
	}
	read := make(map[string]dlqindex.Position, len(refs))
	for _, ref := range refs {
		read[ref.ID] = ref.Pos
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		// Retries sent for the entries before this one take time: a version
		// of it written meanwhile (and seen by the view) wins.
		if cur, ok := s.q.view.ref(e.ID); !ok || cur.Pos != read[e.ID] {
			continue
		}
		if e.Origin == "" && isDue(&e, now) {
			s.schedule(ctx, e, now)
		}
	}
}

func (s *scheduler) stillOwned(tp topicPartition) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.owned[tp]
	return ok
}

// isDue reports whether e waits for an automatic retry (pending) or for
// the answer to a retry (retrying), and its time (the backoff, or the
// retry timeout) has come. A retrying entry is due at its timeout whatever
// its failure was, permanent or not: schedule then moves it to a state
// that can be retried. Permanent does not hold back a pending entry: a
// pending entry's latest failure was not permanent (applyFailure), or it
// was written before Permanent followed the latest failure.
func isDue(e *Entry, now time.Time) bool {
	if e.NextRetryAt == nil || e.NextRetryAt.After(now) {
		return false
	}
	return e.Status == StatusPending || e.Status == StatusRetrying
}

// schedule sends e's retry, or gives up on it when it is out of retries.
// e is due. A retry of a permanent failure (a manual one) that timed out
// is out of retries too: only a manual retry sends it again.
func (s *scheduler) schedule(ctx context.Context, e Entry, now time.Time) {
	if e.RetryCount >= e.MaxRetries || (e.Permanent && e.Status == StatusRetrying) {
		// The last retry was sent and never answered: out of retries.
		e.Status, e.NextRetryAt, e.UpdatedAt = StatusMaxRetriesExceeded, nil, now.UTC()
		if _, err := s.q.write(ctx, &e, false); err != nil {
			s.q.cfg.Logger.Warn("eventbus: could not mark dead-letter entry as out of retries", "dlq_id", e.ID, "err", err)
		}
		return
	}
	if err := s.q.sendRetry(ctx, e, false); err != nil {
		s.q.cfg.Logger.Warn("eventbus: automatic retry failed; will try again", "dlq_id", e.ID, "err", err)
	}
}

func (s *scheduler) stop(ctx context.Context) {
	s.cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	s.cl.Close()
}
