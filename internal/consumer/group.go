// Package consumer is the engine under the bus's subscriptions: one
// consumer group client per group, records dispatched to handlers
// concurrently by key (or partition) while fetching goes on, commits of the
// finished prefix of each partition, durable start positions, and bounded
// revocation and shutdown.
//
// Its parts, each in its own file:
//   - group.go: the group (fetch loop, assignment, revocation, stop);
//   - start.go: where a partition without committed offsets starts, made
//     durable at the group's first join;
//   - commit.go: committing each partition's finished prefix;
//   - dispatch.go: per-key queues, workers, back-pressure;
//   - window.go: one partition's finished and unfinished offsets.
//
// What a record means (decoding, filters, the handler, failure policies)
// is the caller's: Topic.Handle.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/backoff"
)

// Ordering says which records of a topic are handled one at a time.
type Ordering int

const (
	// PerKey handles the records of one key (of one partition) one at a
	// time in offset order, different keys concurrently.
	PerKey Ordering = iota
	// PerPartition handles each partition's records one at a time in
	// offset order, partitions concurrently.
	PerPartition
	// Unordered handles every record as soon as a worker is free.
	Unordered
)

// HandleFunc finishes one record and reports whether it is finished
// (handled, or its failure dealt with) and may be committed. ctx is the
// handler's context: it is cancelled when the record's partition is taken
// away after its revoke bound, or when a Stop's grace period ends.
// stopping is done as soon as the partition is being released: work that
// could wait long (retries) should give up and return false, and the record
// then comes again to the partition's next owner.
type HandleFunc func(ctx, stopping context.Context, r *kgo.Record) bool

// Topic is one topic a group reads, with how its records are handled.
type Topic struct {
	Name   string
	Handle HandleFunc
	// Ordering, MaxConcurrency (handlers running at once) and MaxPending
	// (unfinished records held: waiting or running) must be set
	// (positive).
	Ordering       Ordering
	MaxConcurrency int
	MaxPending     int
	// FromBeginning starts partitions without committed offsets, on a
	// topic where the group has none, at the oldest retained record;
	// otherwise they start at StartAt.
	FromBeginning bool
	// StartAt is, per partition, where to start without FromBeginning: the
	// end offsets when the subscription was made. A partition missing from
	// it (created later) starts at its oldest retained record.
	StartAt map[int32]int64
}

// Config configures a group.
type Config struct {
	// Group is the consumer group ID.
	Group string
	// NewClient builds the group's client from the caller's connection
	// options plus the given ones.
	NewClient func(opts ...kgo.Opt) (*kgo.Client, error)
	// SessionTimeout, HeartbeatInterval: the group membership's.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	// InstanceID, when set, makes this member static: a restart with the
	// same ID takes its partitions back without waiting for the session
	// timeout.
	InstanceID string
	// MaxPollRecords caps the records taken from the client at once.
	MaxPollRecords int
	// CommitInterval is the least time between two commits, unless a
	// topic finished commitEvery records since its last commit (its
	// MaxConcurrency, at least 64): then it commits at once, so that what a
	// crash hands again is bounded by a count of records, not by a time.
	CommitInterval time.Duration
	// RevokeTimeout bounds how long a revoked partition waits for its
	// running handlers before their context is cancelled.
	RevokeTimeout time.Duration
	// ShutdownTimeout is the bound Stop applies when its context has no
	// deadline (0: none, Stop then waits as long as its context lets it).
	ShutdownTimeout time.Duration
	// Logger gets warnings.
	Logger *slog.Logger

	hooks hooks // tests only
}

// Group is one consumer group's member in this process: one client, one
// fetch loop, one dispatcher per topic.
type Group struct {
	cfg     Config
	cl      *kgo.Client
	adm     *kadm.Client
	started chan struct{} // closed once cl and adm are set: callbacks wait for it
	// fetching pauses and resumes partitions: the client (a fake in tests).
	fetching interface {
		PauseFetchPartitions(map[string][]int32) map[string][]int32
		ResumeFetchPartitions(map[string][]int32)
	}

	mu     sync.RWMutex
	topics map[string]*dispatcher
	// retired are removed topics' dispatchers whose handlers still ran:
	// the topic added back waits for them (dispatcher.inherit).
	retired map[string]*dispatcher

	commitMu  sync.Mutex    // serializes commits, with revocations' too
	commitSig chan struct{} // something finished: commit soon
	// commitNowSig: a topic finished commitEvery records since its last
	// commit: commit without waiting for CommitInterval.
	commitNowSig chan struct{}
	starts       startOffsets

	assignMu    sync.Mutex
	assignCount int
	assignSig   chan struct{} // closed and replaced at every assignment

	stopping      atomic.Bool
	pollCtx       context.Context // cancelled to stop fetching and committing
	stopPolling   context.CancelFunc
	handlerCtx    context.Context // parent of every partition's handler context
	stopHandlers  context.CancelFunc
	pollDone      chan struct{}
	committerDone chan struct{}
	// stopDue is closed when Stop's time for handlers is over: a
	// revocation under way waits no longer for its handlers either (Stop
	// waits for it, through the poll loop).
	stopDue     chan struct{}
	stopDueOnce sync.Once

	failMu  sync.Mutex
	failing map[string]error // topic -> last fetch error, while failing

	// metadataLimit caps the finished offsets carried in a commit's
	// metadata: maxFinishedBytes, lowered when a broker rejects it.
	metadataLimit atomic.Int64
}

// hooks let tests hold the engine's goroutines at the points where they
// meet the client, to force the orders that the goroutines allow.
type hooks struct {
	// handedOver runs in the poll loop after a polled batch was handed
	// to the dispatchers, before rebalances are allowed again.
	handedOver func()
	// drainTick and maxDrainWait, when set, replace the bounds of the
	// poll loop's wait for a topic at its cap (waitDrain).
	drainTick, maxDrainWait time.Duration
	// rebalancing runs as partitions are revoked or lost, before they are
	// released.
	rebalancing func()
	// removing runs in RemoveTopic once the topic's handlers are settled,
	// between its last two steps (the client's purge of the topic and
	// dropping its dispatcher).
	removing func()
	// committing runs in the committer before each round of commits is
	// taken (commitParts), once the round is due.
	committing func()
}

// Start joins the group, reading first.
func Start(cfg Config, first Topic) (*Group, error) {
	if err := first.check(); err != nil {
		return nil, err
	}
	g := &Group{
		cfg:           cfg,
		topics:        map[string]*dispatcher{},
		retired:       map[string]*dispatcher{},
		failing:       map[string]error{},
		commitSig:     make(chan struct{}, 1),
		commitNowSig:  make(chan struct{}, 1),
		assignSig:     make(chan struct{}),
		pollDone:      make(chan struct{}),
		committerDone: make(chan struct{}),
		stopDue:       make(chan struct{}),
		started:       make(chan struct{}),
	}
	g.starts.init()
	g.metadataLimit.Store(maxFinishedBytes)
	g.pollCtx, g.stopPolling = context.WithCancel(context.Background())
	g.handlerCtx, g.stopHandlers = context.WithCancel(context.Background())
	g.topics[first.Name] = newDispatcher(g, first)
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(first.Name),
		kgo.DisableAutoCommit(),
		// A paused partition, once resumed, is fetched only after the
		// fetch in flight returns; franz-go's default 5 s long poll
		// would stall it that long. (A topic whose handlers keep up is
		// not paused at its cap: the poll loop waits for them instead,
		// waitDrain.) Shorter, an idle group would send more fetches.
		kgo.FetchMaxWait(time.Second),
		// Only committed records: a retry the dead letter queue's owner
		// sent in a transaction that was then aborted (a fenced owner)
		// was never sent.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Partitions without a committed offset get one at assignment
		// (start.go); where a committed offset fell out of retention,
		// reading resumes at the oldest retained record.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(g.adjustStart),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(max(60*time.Second, cfg.RevokeTimeout+30*time.Second)),
		// Records are handed over with rebalances held off, and
		// AllowRebalance follows at once: no batch fetched for one
		// assignment of a partition can reach the dispatcher after the
		// partition was revoked or lost (the client drops what it
		// buffered for the old assignment when the assignment changes).
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(g.onAssigned),
		kgo.OnPartitionsRevoked(g.onRevoked),
		kgo.OnPartitionsLost(g.onLost),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := cfg.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	g.cl = cl
	g.adm = kadm.NewClient(cl)
	g.fetching = cl
	close(g.started)
	go g.poll()
	go g.committer()
	return g, nil
}

func (t Topic) check() error {
	if t.Handle == nil || t.MaxConcurrency <= 0 || t.MaxPending <= 0 || t.Ordering < PerKey || t.Ordering > Unordered {
		return fmt.Errorf("consumer: topic %s: Handle, a positive MaxConcurrency and MaxPending and a known Ordering are required", t.Name)
	}
	return nil
}

// ErrDuplicateTopic is returned by AddTopic for a topic the group reads.
var ErrDuplicateTopic = errors.New("topic already read by this group")

// AddTopic makes the group read another topic too.
func (g *Group) AddTopic(t Topic) error {
	if err := t.check(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.topics[t.Name] != nil {
		return ErrDuplicateTopic
	}
	d := newDispatcher(g, t)
	d.inherit(g.retired[t.Name])
	delete(g.retired, t.Name)
	g.topics[t.Name] = d
	g.cl.AddConsumeTopics(t.Name)
	return nil
}

// RemoveTopic stops reading a topic: its queued records are dropped, its
// running handlers are waited for (bounded by RevokeTimeout and ctx), what
// they finished is committed, and the topic is purged from the client.
// Until it returns, an AddTopic of the same topic fails with
// ErrDuplicateTopic; added back later, the topic's keys wait for the
// handlers the removal left running (as a partition assigned back does).
// It reports whether no topic is left (the caller then stops the group).
func (g *Group) RemoveTopic(ctx context.Context, name string) (last bool) {
	g.mu.Lock()
	d := g.topics[name]
	last = len(g.topics) == 1 && d != nil
	g.mu.Unlock()
	if d == nil || last {
		return last
	}
	idle, parts := d.close()
	g.settle(ctx, name, d, idle, parts, true)
	// The client stops reading the topic before its dispatcher is
	// dropped: an AddTopic of the same topic meanwhile is refused as a
	// duplicate, instead of being undone by this purge.
	g.cl.PurgeTopicsFromConsuming(name)
	if h := g.cfg.hooks.removing; h != nil {
		h()
	}
	g.mu.Lock()
	delete(g.topics, name)
	if d.leftRunning() {
		g.retired[name] = d
	}
	g.mu.Unlock()
	return false
}

func (g *Group) dispatcher(topic string) *dispatcher {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.topics[topic]
}

// ID is the group's ID.
func (g *Group) ID() string { return g.cfg.Group }

// Client is the group's client (for lag and descriptions).
func (g *Group) Client() *kgo.Client { return g.cl }

// poll fetches and hands records to the dispatchers, never waiting for
// handlers below a topic's cap: at the cap it waits a moment for the
// topic's workers (waitAtCap: at most maxDrainWait, however many topics
// reached their cap), and the partitions still behind are paused. Rebalances wait while a polled batch is being
// handed over (BlockRebalanceOnPoll), so the records handed over always
// belong to the partitions' current assignment.
func (g *Group) poll() {
	defer close(g.pollDone)
	defer g.cl.AllowRebalance() // a poll ended by Stop holds rebalances too
	var failing fetchFailures
	for {
		fetches := g.cl.PollRecords(g.pollCtx, g.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || g.pollCtx.Err() != nil {
			return
		}
		records := false
		var atCap []*dispatcher
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			records = true
			g.fetchFailed(p.Topic, nil)
			if d := g.dispatcher(p.Topic); d != nil { // else unsubscribed meanwhile
				if d.enqueue(p.Partition, p.Records) && !slices.Contains(atCap, d) {
					atCap = append(atCap, d)
				}
			}
		})
		if h := g.cfg.hooks.handedOver; h != nil {
			h()
		}
		g.cl.AllowRebalance()
		g.waitAtCap(atCap)
		var errs []error
		fetches.EachError(func(topic string, partition int32, err error) {
			err = fmt.Errorf("topic %s partition %d: %w", topic, partition, err)
			errs = append(errs, err)
			g.fetchFailed(topic, err)
		})
		if len(errs) == 0 {
			g.fetchFailed("", nil)
		}
		if wait := failing.next(g, records, errs); wait > 0 && !backoff.Sleep(g.pollCtx, wait) {
			return
		}
	}
}

// waitAtCap gives the workers of the topics a hand-over brought to their
// cap a little time to drain them (waitDrain), then pauses their
// partitions that are still behind (pauseBehind). The wait is bounded by
// maxDrainWait for all of them together: their workers drain meanwhile
// whichever topic is being waited for, and the group's other topics wait
// for the poll loop no longer than that.
func (g *Group) waitAtCap(atCap []*dispatcher) {
	if len(atCap) == 0 {
		return
	}
	bound := maxDrainWait
	if h := g.cfg.hooks; h.drainTick > 0 {
		bound = h.maxDrainWait
	}
	deadline := time.Now().Add(bound)
	for _, d := range atCap {
		d.waitDrain(g.pollCtx, deadline)
		d.pauseBehind()
	}
}

// fetchFailed records that fetching topic failed with err, or works again
// (err nil); topic "" with a nil err: every topic works.
func (g *Group) fetchFailed(topic string, err error) {
	g.failMu.Lock()
	defer g.failMu.Unlock()
	switch {
	case err != nil:
		g.failing[topic] = err
	case topic == "":
		clear(g.failing)
	default:
		delete(g.failing, topic)
	}
}

// FetchErrors returns, per topic, the last error of fetches that keep
// failing (a revoked permission, a deleted topic): empty while the group
// fetches. A topic leaves it once a fetch of it delivers again.
func (g *Group) FetchErrors() map[string]error {
	g.failMu.Lock()
	defer g.failMu.Unlock()
	out := make(map[string]error, len(g.failing))
	maps.Copy(out, g.failing)
	return out
}

// fetchFailures paces a poll loop whose fetches keep failing (a revoked
// permission, a deleted topic): it waits longer after each failed poll
// that brought no records, up to maxFetchBackoff, and logs a failure once,
// then at most every fetchFailureLogEvery while it lasts.
type fetchFailures struct {
	polls   int // failed polls in a row
	logged  time.Time
	delays  backoff.Delays
	skipped int // failures not logged since the last log
}

const (
	maxFetchBackoff      = 5 * time.Second
	fetchFailureLogEvery = 30 * time.Second
)

// next takes one poll's outcome and returns how long to wait before the
// next poll.
func (f *fetchFailures) next(g *Group, records bool, errs []error) time.Duration {
	if len(errs) == 0 {
		if f.polls > 0 {
			g.cfg.Logger.Info("eventbus: fetching works again", "group", g.cfg.Group, "failed_polls", f.polls)
		}
		*f = fetchFailures{}
		return 0
	}
	f.polls++
	if f.polls == 1 {
		f.delays = backoff.Delays{Base: 50 * time.Millisecond, Max: maxFetchBackoff}
	}
	if now := time.Now(); now.Sub(f.logged) >= fetchFailureLogEvery {
		g.cfg.Logger.Warn("eventbus: fetch failed; polling again with backoff", "group", g.cfg.Group,
			"err", errors.Join(errs...), "failed_polls", f.polls, "not_logged_since_last", f.skipped)
		f.logged, f.skipped = now, 0
	} else {
		f.skipped++
	}
	if records {
		return 0 // other partitions deliver: keep them going
	}
	return f.delays.Next()
}

func (g *Group) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-g.started
	for topic, ps := range assigned {
		if d := g.dispatcher(topic); d != nil {
			d.assign(ps)
		}
	}
	// A topic this assignment leaves out forgets its lost partitions too:
	// only the next assignment may take up what they finished.
	g.mu.RLock()
	var left []*dispatcher
	for name, d := range g.topics {
		if _, ok := assigned[name]; !ok {
			left = append(left, d)
		}
	}
	g.mu.RUnlock()
	for _, d := range left {
		d.assign(nil)
	}
	g.fixStarts(ctx, assigned)
	g.assignMu.Lock()
	defer g.assignMu.Unlock()
	g.assignCount++
	close(g.assignSig)
	g.assignSig = make(chan struct{})
}

// onRevoked releases the revoked partitions: dispatching stops, running
// handlers get RevokeTimeout to finish, what finished is committed, and
// then the partitions go to their next owner.
func (g *Group) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-g.started
	if h := g.cfg.hooks.rebalancing; h != nil {
		h()
	}
	if g.stopping.Load() {
		return // Stop settled everything already
	}
	g.releaseAll(ctx, revoked, true)
}

// onLost forgets partitions that another member may already own: nothing
// can be committed for them any more, so their handlers are cancelled.
// What they finished is kept until the next assignment: a partition
// assigned back to this member (its session ended as its coordinator went
// down, say) skips those records instead of handling them again.
func (g *Group) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-g.started
	if h := g.cfg.hooks.rebalancing; h != nil {
		h()
	}
	g.releaseAll(ctx, lost, false)
}

func (g *Group) releaseAll(ctx context.Context, parts map[string][]int32, commit bool) {
	var wg sync.WaitGroup
	for topic, ids := range parts {
		d := g.dispatcher(topic)
		if d == nil {
			continue
		}
		idle, ps := d.release(ids)
		if !commit {
			idle = nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.settle(ctx, topic, d, idle, ps, commit)
		}()
	}
	wg.Wait()
}

// settle waits (up to RevokeTimeout and ctx) for released partitions'
// running handlers, commits what they finished, and forgets them; without
// commit (lost partitions) it waits for nothing, and what they finished is
// kept for the next assignment (forget).
func (g *Group) settle(ctx context.Context, topic string, d *dispatcher, idle []<-chan struct{}, parts []*partition, commit bool) {
	if len(idle) > 0 {
		bound := time.NewTimer(g.cfg.RevokeTimeout)
		defer bound.Stop()
	wait:
		for _, ch := range idle {
			select {
			case <-ch:
			case <-bound.C:
				g.cfg.Logger.Warn("eventbus: handlers still running when their partitions were revoked; cancelling them (their events come again)",
					"group", g.cfg.Group, "topic", topic, "revoke_timeout", g.cfg.RevokeTimeout)
				break wait
			case <-ctx.Done():
				break wait
			case <-g.stopDue:
				break wait
			}
		}
	}
	if commit {
		// The commit ends with Stop's time for handlers too: Stop waits
		// for this revocation (through the poll loop), and then commits
		// and leaves in the time left to it.
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-g.stopDue:
				cancel()
			case <-cctx.Done():
			}
		}()
		g.commitParts(cctx, topic, d, parts)
		cancel()
	}
	d.forget(parts, !commit)
}

// WaitAssigned returns once the group has joined and topic's partitions are
// assigned, to this member or (in a group spread over processes) to others.
func (g *Group) WaitAssigned(ctx context.Context, topic string) error {
	recheck := time.NewTicker(100 * time.Millisecond)
	defer recheck.Stop()
	for {
		g.assignMu.Lock()
		sig, count := g.assignSig, g.assignCount
		g.assignMu.Unlock()
		d := g.dispatcher(topic)
		mine := d != nil && d.owns()
		if count > 0 && (mine || g.groupCovers(ctx, topic)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.pollDone:
			return errors.New("the group's consumer stopped")
		case <-sig:
		case <-recheck.C:
		}
	}
}

// groupCovers asks the broker whether every partition of topic is assigned
// to some member of the group.
func (g *Group) groupCovers(ctx context.Context, topic string) bool {
	groups, err := g.adm.DescribeGroups(ctx, g.cfg.Group)
	if err != nil {
		return false
	}
	d, ok := groups[g.cfg.Group]
	if !ok || d.Err != nil || d.State != "Stable" {
		return false
	}
	topics, err := g.adm.ListTopics(ctx, topic)
	if err != nil {
		return false
	}
	td, ok := topics[topic]
	if !ok || td.Err != nil {
		return false
	}
	return len(d.AssignedPartitions()[topic]) == len(td.Partitions)
}

// Stop stops the group by ctx's deadline, or within ShutdownTimeout when
// ctx has none: fetching stops, queued records are dropped, running
// handlers get a grace period (GracePeriod: three quarters of the time
// to the deadline), then their context is cancelled; what finished is
// committed, the group is left (a static member keeps its place for a
// restart) and the client closed, in the last quarter. A handler that
// ignores its context does not hold Stop up; what it was handling is not
// committed and comes again.
func (g *Group) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok && g.cfg.ShutdownTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.ShutdownTimeout)
		defer cancel()
	}
	g.stopping.Store(true)
	g.stopPolling()
	g.mu.RLock()
	ds := make(map[string]*dispatcher, len(g.topics))
	for name, d := range g.topics {
		ds[name] = d
	}
	g.mu.RUnlock()
	type released struct {
		d     *dispatcher
		parts []*partition
	}
	var idle []<-chan struct{}
	rel := map[string]released{}
	for name, d := range ds {
		ch, parts := d.close()
		idle = append(idle, ch...)
		rel[name] = released{d, parts}
	}
	var err error
	handlersCtx, cancel := withGrace(ctx)
	defer cancel()
	// A revocation that began before Stop waits for its handlers until
	// then too: the poll loop, which Stop waits for, returns only after it.
	context.AfterFunc(handlersCtx, func() { g.stopDueOnce.Do(func() { close(g.stopDue) }) })
waitIdle:
	for _, ch := range idle {
		select {
		case <-ch:
		case <-handlersCtx.Done():
			err = fmt.Errorf("group %s: handlers still running when the shutdown grace period ended; they were cancelled and their events not committed: %w",
				g.cfg.Group, handlersCtx.Err())
			break waitIdle
		}
	}
	g.stopHandlers()
	<-g.pollDone
	<-g.committerDone
	commitCtx := ctx
	if ctx.Err() != nil { // cancelled without a deadline: still try, briefly
		var cancelCommit context.CancelFunc
		commitCtx, cancelCommit = context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancelCommit()
	}
	for name, r := range rel {
		if cerr := g.commitParts(commitCtx, name, r.d, r.parts); cerr != nil {
			err = errors.Join(err, fmt.Errorf("group %s: final commit: %w", g.cfg.Group, cerr))
		}
		r.d.forget(r.parts, false)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = g.cl.LeaveGroupContext(commitCtx)
		g.cl.Close()
	}()
	select {
	case <-closed:
	case <-commitCtx.Done():
		err = errors.Join(err, fmt.Errorf("group %s: leaving the group: %w (it finishes in the background)", g.cfg.Group, commitCtx.Err()))
	}
	return err
}

// GracePeriod is the share of the time from the start of a stop to its
// deadline during which running handlers are waited for: three quarters.
// Then their context is cancelled, and the last quarter is kept for the
// final commit and leaving the group (and, in a bus's Shutdown, flushing
// the producers).
func GracePeriod(untilDeadline time.Duration) time.Duration {
	return untilDeadline * 3 / 4
}

// withGrace returns a context that ends when the grace period before
// ctx's deadline ends (GracePeriod), or with ctx when it has no deadline.
func withGrace(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, GracePeriod(time.Until(deadline)))
}

// Pending is how many unfinished records of topic this member holds:
// waiting or running.
func (g *Group) Pending(topic string) int {
	d := g.dispatcher(topic)
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held
}
