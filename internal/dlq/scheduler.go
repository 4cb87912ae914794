package dlq

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
)

// scheduler makes this process the owner of the dlq.* partitions it is
// assigned in Config.SchedulerGroup: the one writer of their entries
// (command.go). Group membership decides who owns a partition; a
// transactional producer of the partition's own (owner.go) fences the
// previous owner, so that nothing it still tries to write lands once this
// process took over.
type scheduler struct {
	q  *Queue
	cl *kgo.Client

	mu    sync.Mutex
	owned map[topicPartition]*owner

	// sending is held while an owner writes; a revocation waits for it,
	// so that the partition changes hands between two transactions.
	sending sync.Mutex

	cancel context.CancelFunc
	done   chan struct{}
}

func newScheduler(q *Queue) *scheduler {
	return &scheduler{q: q, owned: map[topicPartition]*owner{}, done: make(chan struct{})}
}

func (s *scheduler) start() error {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(s.q.cfg.SchedulerGroup),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(entryTopicPattern),
		kgo.DisableAutoCommit(),
		kgo.MetadataMaxAge(newTopicNotice),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.SessionTimeout(s.q.cfg.SessionTimeout),
		kgo.HeartbeatInterval(s.q.cfg.HeartbeatInterval),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		// The view reads the records; the group is only for ownership
		// (onAssigned pauses fetching).
		kgo.FetchMaxBytes(1 << 20),
	}
	if s.q.cfg.InstanceID != "" {
		// A static member: a restart takes its partitions back at once,
		// with no rebalance. Its owners start anew in the new process
		// and take each partition over as any new owner does (owner.ready
		// fences the dead process's producer, aborting a transaction it
		// left open, and reads up to the partition's end first).
		opts = append(opts, kgo.InstanceID(s.q.cfg.InstanceID))
	}
	cl, err := s.q.host.NewClient(opts...)
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

func (s *scheduler) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	// The group only decides ownership; the view reads the records. Pausing
	// spares the brokers a second read of every DLQ topic per process.
	cl.PauseFetchTopics(slices.Collect(maps.Keys(assigned))...)
	s.mu.Lock()
	for t, ps := range assigned {
		for _, p := range ps {
			tp := topicPartition{t, p}
			if s.owned[tp] == nil {
				s.owned[tp] = newOwner(s.q, tp)
			}
		}
	}
	s.mu.Unlock()
	s.q.poke()
}

// onRevoked gives partitions up: it waits for a transaction in flight to
// end, then closes their owners' producers.
func (s *scheduler) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.sending.Lock()
	defer s.sending.Unlock()
	s.mu.Lock()
	var gone []*owner
	for t, ps := range revoked {
		for _, p := range ps {
			tp := topicPartition{t, p}
			if o := s.owned[tp]; o != nil {
				gone = append(gone, o)
			}
			delete(s.owned, tp)
		}
	}
	s.mu.Unlock()
	for _, o := range gone {
		o.close()
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

// loop applies commands as they arrive, and checks for due retries
// several times a second.
func (s *scheduler) loop(ctx context.Context) {
	defer close(s.done)
	interval := min(max(s.q.cfg.RetryBackoff/4, 10*time.Millisecond), time.Second)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.q.wake:
		}
		s.tick(ctx)
		t.Reset(s.nextWait(interval))
	}
}

// nextWait is how long the loop may sleep: interval, or less when an entry
// falls due sooner (so that a retry goes out at its time, not up to an
// interval later).
func (s *scheduler) nextWait(interval time.Duration) time.Duration {
	until := time.Duration(s.q.view.index.NextDue() - s.q.cfg.Now().UnixNano())
	if until > 0 && until < interval {
		return until + time.Millisecond
	}
	return interval
}

func (s *scheduler) tick(ctx context.Context) {
	s.mu.Lock()
	owners := slices.Collect(maps.Values(s.owned))
	s.mu.Unlock()
	s.findOpenTransactions(ctx, owners)
	for _, o := range owners {
		if ctx.Err() != nil {
			return
		}
		s.step(ctx, o)
	}
}

// findOpenTransactions looks, once for each owner new to its partition,
// for a transaction that this group's former owner of the partition left
// open: a process killed in the middle of a round. Until that transaction
// ends, the read-committed view reads nothing stored after it, commands
// included, so the owner would see no work, never take the partition
// over, and wait for the brokers to abort the transaction at its timeout
// (30 s). A dynamic member's restart waits out the dead member's session
// first (45 s by default), but a static member (Config.InstanceID) gets
// its partitions back at once. An owner that finds one takes the
// partition over at once (step), which aborts it. When the transactions
// cannot be described (a broker without the API, or an ACL without
// DESCRIBE on the transactional IDs), nothing is fenced early: the
// transaction ends at its timeout, as before.
func (s *scheduler) findOpenTransactions(ctx context.Context, owners []*owner) {
	unchecked := map[string]*owner{}
	for _, o := range owners {
		if !o.checked {
			o.checked = true
			unchecked[o.transactionalID()] = o
		}
	}
	if len(unchecked) == 0 {
		return
	}
	adm, err := s.q.host.Admin()
	if err != nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	described, err := adm.DescribeTransactions(dctx, slices.Collect(maps.Keys(unchecked))...)
	cancel()
	if err != nil && len(described) == 0 {
		s.q.cfg.Logger.Debug("eventbus: could not look for transactions a former dead letter queue owner left open", "err", err)
		return
	}
	for id, o := range unchecked {
		d, ok := described[id]
		if ok && d.Err == nil && d.State == "Ongoing" {
			o.fence = true
		}
	}
}

// step runs one round of o's work under the sending lock, while o still
// owns its partition. An owner with work (pending commands of this
// scheduler group, due entries) takes the partition over first, fencing
// the previous owner and reading up to where it left off; so does an
// owner that found a transaction the previous owner left open
// (findOpenTransactions). A partition without work costs nothing but its
// place in the view.
func (s *scheduler) step(ctx context.Context, o *owner) {
	s.sending.Lock()
	defer s.sending.Unlock()
	s.mu.Lock()
	still := s.owned[o.tp] == o
	s.mu.Unlock()
	if !still {
		return
	}
	now := s.q.cfg.Now()
	work := func() ([]pendingCommand, []string) {
		cmds := s.q.view.pendingCommands(o.tp, s.q.cfg.SchedulerGroup)
		due := s.q.view.due(now, func(tp topicPartition, schedulerGroup string) bool {
			return tp == o.tp && s.schedules(schedulerGroup)
		})[o.tp]
		return cmds, due
	}
	if cmds, due := work(); len(cmds) == 0 && len(due) == 0 && !o.fence {
		return
	}
	ready := o.ready(ctx, now)
	if o.cl != nil {
		o.fence = false // the former owner's transaction is aborted
	}
	if !ready {
		return
	}
	cmds, due := work() // the take-over may have read more
	if len(cmds) == 0 && len(due) == 0 {
		return
	}
	if err := o.round(ctx, cmds, due, now); err != nil {
		s.q.cfg.Logger.Warn("eventbus: the dead letter queue's owner could not apply its partition's changes; will try again",
			"topic", o.tp.topic, "partition", o.tp.partition, "err", err)
	}
}

// schedules reports whether this scheduler's group schedules an entry of
// schedulerGroup: the group of the bus that recorded its last failure.
func (s *scheduler) schedules(group string) bool {
	if group == "" {
		group = deadletter.DefaultSchedulerGroup
	}
	return group == s.q.cfg.SchedulerGroup
}

// isDue reports whether e waits for an automatic retry (pending) or for
// the answer to a retry (retrying), and its time (the backoff, or the
// retry timeout) has come. A retrying entry is due at its timeout whatever
// its failure was, permanent or not: decideDue then moves it to a state
// that can be retried. Permanent does not hold back a pending entry: a
// pending entry's latest failure was not permanent (applyFailure), or it
// was written before Permanent followed the latest failure.
func isDue(e *Entry, now time.Time) bool {
	if e.NextRetryAt == nil || e.NextRetryAt.After(now) {
		return false
	}
	return e.Status == deadletter.StatusPending || e.Status == deadletter.StatusRetrying
}

func (s *scheduler) stop(ctx context.Context) {
	s.cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	s.sending.Lock()
	s.mu.Lock()
	for tp, o := range s.owned {
		o.close()
		delete(s.owned, tp)
	}
	s.mu.Unlock()
	s.sending.Unlock()
	s.cl.Close()
}

// listEnd returns the end offset of tp.
func listEnd(ctx context.Context, adm *kadm.Client, tp topicPartition) (int64, error) {
	listed, err := adm.ListEndOffsets(ctx, tp.topic)
	if err != nil {
		return 0, err
	}
	o, ok := listed.Lookup(tp.topic, tp.partition)
	if !ok {
		return 0, fmt.Errorf("no end offset listed for %s/%d", tp.topic, tp.partition)
	}
	if o.Err != nil {
		return 0, o.Err
	}
	return o.Offset, nil
}
