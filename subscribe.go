package eventbus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/internal/wire"
)

// Handler handles one event. Returning nil means the event is done and its
// offset may be committed; returning an error (or panicking) means it failed.
type Handler func(ctx context.Context, event RawEvent) error

// SubscribeOptions say which consumer group a subscription joins and which
// events it wants.
type SubscribeOptions struct {
	// GroupID is the consumer group. Instances with the same GroupID (and the
	// same filter) share the work; different groups each get every event.
	// Default "<ClientID>.<eventType>".
	GroupID string
	// TenantID, when set, delivers only that tenant's events.
	//
	// The filter is part of the group's identity: the group actually joined
	// is "<GroupID>.tenant.<TenantID>" (see EffectiveGroupID), so instances
	// that share a GroupID but filter different tenants never skip and
	// commit an event another instance needed.
	TenantID string
	// WorkspaceID, when set, delivers only that workspace's events; it needs
	// TenantID. It too is part of the group's identity.
	WorkspaceID string
	// FromBeginning makes a group with no committed offsets on this topic
	// start at the oldest retained event; otherwise it starts exactly after
	// the events published before Subscribe was called. (Where committed
	// offsets fell out of retention, consuming resumes at the oldest
	// retained event: nothing retained is skipped.)
	FromBeginning bool
	// AutoCommit commits handled offsets in the background every
	// ConsumerConfig.AutoCommitInterval: fewer round trips, more redelivery
	// after a crash. Without it (the default) a commit starts as soon as a
	// fetched batch's handlers returned, without holding up the next fetch,
	// and at most once per ConsumerConfig.CommitInterval. Either way only
	// handled events are ever committed, and everything handled is
	// committed when partitions are revoked or the subscription stops.
	AutoCommit bool
	// OnFailure decides what happens to an event whose handler failed (or
	// a record that is not an event). Default DeadLetter.
	OnFailure FailurePolicy
}

// FailurePolicy is what a subscription does with an event its handler
// failed to handle.
type FailurePolicy int

const (
	// DeadLetter, the default, stores the event in the dead letter queue,
	// which retries it for this group only, and moves on.
	DeadLetter FailurePolicy = iota
	// RetryInPlace calls the handler again, backing off from
	// ConsumerConfig.RetryBackoff up to RetryBackoffMax, until it succeeds
	// or the subscription stops; the partition waits meanwhile, so events
	// are handled strictly in order. What can never succeed (a Permanent
	// error, a record that is not an event) still goes to the dead letter
	// queue.
	RetryInPlace
	// Skip logs the failure and moves on: the event is committed without
	// having been handled. For throwaway readers such as `eventbus tail`.
	Skip
)

// String returns the policy's name.
func (p FailurePolicy) String() string {
	switch p {
	case DeadLetter:
		return "dead-letter"
	case RetryInPlace:
		return "retry-in-place"
	case Skip:
		return "skip"
	}
	return fmt.Sprintf("FailurePolicy(%d)", int(p))
}

// EffectiveGroupID is the consumer group a subscription with these options
// joins: the GroupID plus its tenant and workspace filter.
func EffectiveGroupID(groupID, tenantID, workspaceID string) string {
	g := groupID
	if tenantID != "" {
		g += ".tenant." + tenantID
	}
	if workspaceID != "" {
		g += ".workspace." + workspaceID
	}
	return g
}

// Subscribe calls handler for each event of eventType (a core or plugin
// topic) that passes the options' tenant and workspace filters, with
// at-least-once delivery: an event's offset is committed only after its
// handler returned nil or its failure was stored in the dead letter queue
// (from where it is retried, for this group only), and order is kept per
// partition. SubscribeOptions.OnFailure can instead retry a failure in
// place or skip it.
//
// Subscribe returns the subscription's ID once the group has joined and
// its partitions are assigned, so events published after it returns are
// delivered.
func (b *Bus) Subscribe(ctx context.Context, eventType string, handler Handler, opts SubscribeOptions) (string, error) {
	if b.closing.Load() {
		return "", shuttingDown()
	}
	topic, err := b.client.cfg.TopicRules.ParseTopic(eventType)
	if err != nil {
		return "", err
	}
	if topic.Kind == TopicKindDLQ {
		return "", fmt.Errorf("%w: %q is a dead-letter topic; read failed events through the DeadLetterQueue instead", ErrInvalidTopic, eventType)
	}
	if handler == nil {
		return "", fmt.Errorf("%w: Subscribe(%q) was given a nil handler", ErrInvalidConfig, eventType)
	}
	if opts.WorkspaceID != "" && opts.TenantID == "" {
		return "", fmt.Errorf("%w: SubscribeOptions.WorkspaceID %q needs a TenantID too (workspaces belong to tenants)", ErrInvalidConfig, opts.WorkspaceID)
	}
	if opts.OnFailure < DeadLetter || opts.OnFailure > Skip {
		return "", fmt.Errorf("%w: SubscribeOptions.OnFailure %d is not DeadLetter, RetryInPlace or Skip", ErrInvalidConfig, opts.OnFailure)
	}
	if opts.GroupID == "" {
		opts.GroupID = b.client.cfg.ClientID + "." + eventType
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.Consumer.SessionTimeout+30*time.Second)
		defer cancel()
	}
	if err := b.ensureTopics(ctx, eventType); err != nil {
		return "", err
	}
	// Failed events go to the dead letter queue, which must be running.
	if err := b.dlq.Start(ctx); err != nil {
		return "", err
	}
	var startAt map[int32]int64
	if !opts.FromBeginning {
		if startAt, err = b.endOffsets(ctx, eventType); err != nil {
			return "", fmt.Errorf("subscribe %s: %w", eventType, err)
		}
	}
	sub := &subscription{
		startAt:     startAt,
		id:          uuid.NewString(),
		topic:       eventType,
		groupLabel:  opts.GroupID,
		handler:     handler,
		tenantID:    opts.TenantID,
		workspaceID: opts.WorkspaceID,
		onFailure:   opts.OnFailure,
	}
	g, err := b.subs.add(ctx, b, sub, opts)
	if err != nil {
		return "", err
	}
	if err := g.waitAssigned(ctx, eventType); err != nil {
		_ = b.Unsubscribe(context.WithoutCancel(ctx), sub.id)
		return "", fmt.Errorf("subscribe %s in group %s: the group did not assign partitions in time: %w", eventType, g.id, err)
	}
	return sub.id, nil
}

// Subscribe subscribes a handler of typed events; see Bus.Subscribe. An event
// whose data does not decode into T is a handler failure.
func Subscribe[T any](ctx context.Context, b *Bus, eventType string, handler func(context.Context, Event[T]) error, opts SubscribeOptions) (string, error) {
	if handler == nil {
		return b.Subscribe(ctx, eventType, nil, opts)
	}
	return b.Subscribe(ctx, eventType, func(ctx context.Context, raw RawEvent) error {
		ev, err := Decode[T](raw)
		if err != nil {
			return err
		}
		return handler(ctx, ev)
	}, opts)
}

// Unsubscribe stops a subscription: its handler is not called again, what
// it handled is committed, and when it was its group's last subscription in
// this process the group is left.
func (b *Bus) Unsubscribe(ctx context.Context, id string) error {
	return b.subs.remove(ctx, id)
}

// subscription is one Subscribe call.
type subscription struct {
	id    string
	topic string
	// startAt is where the group starts on each partition that has no
	// committed offset: the end offsets when Subscribe was called. Nil with
	// FromBeginning.
	startAt     map[int32]int64
	groupLabel  string // the GroupID as given: a bounded metrics label
	handler     Handler
	tenantID    string
	workspaceID string
	onFailure   FailurePolicy
	group       *groupConsumer
}

// subscriptions is the bus's registry of groups and subscriptions.
type subscriptions struct {
	mu     sync.Mutex
	groups map[string]*groupConsumer // effective group ID -> consumer
	byID   map[string]*subscription
}

func (s *subscriptions) init() {
	s.groups = map[string]*groupConsumer{}
	s.byID = map[string]*subscription{}
}

// add registers sub in its group, starting the group's consumer or adding
// the topic to it.
func (s *subscriptions) add(ctx context.Context, b *Bus, sub *subscription, opts SubscribeOptions) (*groupConsumer, error) {
	gid := EffectiveGroupID(opts.GroupID, opts.TenantID, opts.WorkspaceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.closing.Load() {
		return nil, shuttingDown()
	}
	g := s.groups[gid]
	if g == nil {
		g, err := startGroup(b, gid, sub, opts)
		if err != nil {
			return nil, err
		}
		s.groups[gid] = g
		s.byID[sub.id] = sub
		return g, nil
	}
	if err := g.addTopic(ctx, sub, opts); err != nil {
		return nil, err
	}
	s.byID[sub.id] = sub
	return g, nil
}

func (s *subscriptions) remove(ctx context.Context, id string) error {
	s.mu.Lock()
	sub, ok := s.byID[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: no subscription %q in this bus (already unsubscribed?)", ErrSubscriptionNotFound, id)
	}
	delete(s.byID, id)
	g := sub.group
	last := g.removeTopic(sub.topic)
	if last {
		delete(s.groups, g.id)
	}
	s.mu.Unlock()
	if last {
		return g.stop(ctx)
	}
	return nil
}

func (s *subscriptions) closeAll(ctx context.Context) error {
	s.mu.Lock()
	groups := make([]*groupConsumer, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	s.groups = map[string]*groupConsumer{}
	s.byID = map[string]*subscription{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.stop(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// groupConsumer is the one consumer client of a group in this process; the
// group's subscriptions (one per topic) share it.
type groupConsumer struct {
	bus        *Bus
	id         string
	autoCommit bool
	cl         *kgo.Client
	committing atomic.Bool  // an asynchronous commit is in flight
	recommit   atomic.Bool  // a commit was asked for while one was in flight
	deferred   atomic.Bool  // a commit is scheduled for when CommitInterval has passed
	lastCommit atomic.Int64 // when the last asynchronous commit started, Unix ns

	mu     sync.RWMutex
	topics map[string]*subscription

	assignMu    sync.Mutex
	assigned    map[string]map[int32]bool
	assignCount int
	assignSig   chan struct{} // closed and replaced at every assignment

	pollCtx       context.Context // cancelled to stop fetching
	stopPolling   context.CancelFunc
	handlerCtx    context.Context // cancelled only when a stop runs out of time
	cancelHandler context.CancelFunc
	done          chan struct{} // closed when the poll loop has returned
}

func startGroup(b *Bus, gid string, sub *subscription, opts SubscribeOptions) (*groupConsumer, error) {
	g := &groupConsumer{
		bus:        b,
		id:         gid,
		autoCommit: opts.AutoCommit,
		topics:     map[string]*subscription{sub.topic: sub},
		assigned:   map[string]map[int32]bool{},
		assignSig:  make(chan struct{}),
		done:       make(chan struct{}),
	}
	sub.group = g
	cc := b.cfg.Consumer
	cl, err := b.client.newKgo(
		kgo.ConsumerGroup(gid),
		kgo.ConsumeTopics(sub.topic),
		// Partitions without a committed offset start at the start, and
		// adjustStart moves those of subscriptions without FromBeginning
		// to where they subscribed.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(g.adjustStart),
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(cc.AutoCommitInterval),
		kgo.SessionTimeout(cc.SessionTimeout),
		kgo.HeartbeatInterval(cc.HeartbeatInterval),
		kgo.OnPartitionsAssigned(g.onAssigned),
		kgo.OnPartitionsRevoked(g.onRevoked),
		kgo.OnPartitionsLost(g.onLost),
	)
	if err != nil {
		return nil, err
	}
	g.cl = cl
	g.pollCtx, g.stopPolling = context.WithCancel(context.Background())
	g.handlerCtx, g.cancelHandler = context.WithCancel(context.Background())
	go g.run()
	return g, nil
}

func (g *groupConsumer) addTopic(ctx context.Context, sub *subscription, opts SubscribeOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := g.topics[sub.topic]; dup {
		return fmt.Errorf("%w: %s is already subscribed in group %s in this process; use one handler per topic and group, or another GroupID",
			ErrDuplicateSubscription, sub.topic, g.id)
	}
	if opts.AutoCommit != g.autoCommit {
		return fmt.Errorf("%w: group %s already runs with AutoCommit=%t; give %s the same AutoCommit or another GroupID",
			ErrConflictingSubscription, g.id, g.autoCommit, sub.topic)
	}
	sub.group = g
	g.topics[sub.topic] = sub
	g.cl.AddConsumeTopics(sub.topic)
	return nil
}

// removeTopic forgets a topic and reports whether it was the group's last.
func (g *groupConsumer) removeTopic(topic string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.topics, topic)
	if len(g.topics) == 0 {
		return true
	}
	g.cl.PurgeTopicsFromConsuming(topic)
	return false
}

func (g *groupConsumer) subscriptionFor(topic string) *subscription {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.topics[topic]
}

// adjustStart runs once the group's committed offsets are fetched: a
// partition with none (offset -2, the reset "at start") of a subscription
// without FromBeginning starts at the end offset listed when Subscribe was
// called, so exactly the events published after that are delivered.
func (g *groupConsumer) adjustStart(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for topic, parts := range offsets {
		sub := g.topics[topic]
		if sub == nil || sub.startAt == nil {
			continue
		}
		for p, o := range parts {
			if end, ok := sub.startAt[p]; ok && o.EpochOffset().Offset < 0 {
				parts[p] = kgo.NewOffset().At(end)
			}
		}
	}
	return offsets, nil
}

func (g *groupConsumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	g.assignMu.Lock()
	defer g.assignMu.Unlock()
	for t, ps := range assigned {
		if g.assigned[t] == nil {
			g.assigned[t] = map[int32]bool{}
		}
		for _, p := range ps {
			g.assigned[t][p] = true
		}
	}
	g.assignCount++
	close(g.assignSig)
	g.assignSig = make(chan struct{})
}

func (g *groupConsumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	g.forget(revoked)
	// Handlers have returned for everything marked (polls block rebalances
	// until AllowRebalance), so commit it before another member takes over.
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		g.bus.logger.Warn("eventbus: commit on revoke failed; the next owner may see those events again",
			"group", g.id, "err", err)
	}
}

func (g *groupConsumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	g.forget(lost)
}

func (g *groupConsumer) forget(parts map[string][]int32) {
	g.assignMu.Lock()
	defer g.assignMu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(g.assigned[t], p)
		}
	}
}

// waitAssigned returns once the group has joined and topic's partitions are
// assigned, to this member or (in a group spread over processes) to others.
func (g *groupConsumer) waitAssigned(ctx context.Context, topic string) error {
	recheck := time.NewTicker(100 * time.Millisecond)
	defer recheck.Stop()
	for {
		g.assignMu.Lock()
		sig, count, mine := g.assignSig, g.assignCount, len(g.assigned[topic]) > 0
		g.assignMu.Unlock()
		if count > 0 && (mine || g.groupCovers(ctx, topic)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.done:
			return fmt.Errorf("%w: the group's consumer stopped", ErrShuttingDown)
		case <-sig:
		case <-recheck.C:
		}
	}
}

// groupCovers asks the broker whether every partition of topic is assigned
// to some member of the group.
func (g *groupConsumer) groupCovers(ctx context.Context, topic string) bool {
	adm, err := g.bus.client.Admin()
	if err != nil {
		return false
	}
	groups, err := adm.DescribeGroups(ctx, g.id)
	if err != nil {
		return false
	}
	d, ok := groups[g.id]
	if !ok || d.Err != nil || d.State != "Stable" {
		return false
	}
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false
	}
	td, ok := topics[topic]
	if !ok || td.Err != nil {
		return false
	}
	return len(d.AssignedPartitions()[topic]) == len(td.Partitions)
}

// run is the poll loop: fetch, handle each partition's records in order
// (partitions in parallel), commit, let a pending rebalance through.
func (g *groupConsumer) run() {
	defer close(g.done)
	for {
		fetches := g.cl.PollRecords(g.pollCtx, g.bus.cfg.Consumer.MaxPollRecords)
		if fetches.IsClientClosed() || g.pollCtx.Err() != nil {
			g.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			g.bus.logger.Warn("eventbus: fetch failed", "group", g.id, "topic", topic, "partition", partition, "err", err)
		})
		var wg sync.WaitGroup
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.handlePartition(p.Records)
			}()
		})
		wg.Wait()
		if !g.autoCommit {
			g.commitSoon()
		}
		g.cl.AllowRebalance()
	}
}

// commitSoon commits what was handled: now, or once CommitInterval has
// passed since the previous commit started. Batches handled meanwhile ride
// with that commit, so a group that receives a trickle of events commits a
// few times a second rather than once per event.
func (g *groupConsumer) commitSoon() {
	if interval := g.bus.cfg.Consumer.CommitInterval; interval > 0 {
		wait := time.Duration(g.lastCommit.Load() + int64(interval) - time.Now().UnixNano())
		if wait > 0 {
			if g.deferred.CompareAndSwap(false, true) {
				time.AfterFunc(wait, func() {
					g.deferred.Store(false)
					g.commitAsync()
				})
			}
			return
		}
	}
	g.commitAsync()
}

// commitAsync starts committing what was handled, without waiting: the next
// fetch overlaps the commit's round trip. A later commit supersedes an
// earlier one, and revocation and stop commit synchronously.
//
// While a commit is in flight no other is started (franz-go would make the
// poll loop wait for it): one more follows when it completes.
func (g *groupConsumer) commitAsync() {
	if g.pollCtx.Err() != nil {
		return // stopping: stop commits synchronously
	}
	if !g.committing.CompareAndSwap(false, true) {
		g.recommit.Store(true)
		return
	}
	marked := g.cl.MarkedOffsets()
	if len(marked) == 0 {
		g.committing.Store(false)
		return
	}
	g.lastCommit.Store(time.Now().UnixNano())
	g.cl.CommitOffsets(g.pollCtx, marked, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		g.committing.Store(false)
		if err != nil && g.pollCtx.Err() == nil && !errors.Is(err, context.Canceled) {
			g.bus.logger.Warn("eventbus: commit failed; handled events may be delivered again", "group", g.id, "err", err)
		}
		if g.recommit.Swap(false) {
			go g.commitSoon()
		}
	})
}

// handlePartition handles one partition's records in order. It stops at the
// first record it could not finish (the subscription is stopping), so that
// nothing after it is committed.
func (g *groupConsumer) handlePartition(records []*kgo.Record) {
	for _, r := range records {
		if g.pollCtx.Err() != nil || !g.handleRecord(r) {
			return
		}
		g.cl.MarkCommitRecords(r)
	}
}

// handleRecord delivers one record to its subscription and reports whether
// it is done (handled, filtered out, or its failure recorded in the dead
// letter queue) and may be committed.
func (g *groupConsumer) handleRecord(r *kgo.Record) bool {
	sub := g.subscriptionFor(r.Topic)
	if sub == nil {
		return false // unsubscribed while fetched: leave it for the group
	}
	retryGroup, isRetry := wire.HeaderValue(r.Headers, HeaderRetryGroup)
	if isRetry && string(retryGroup) != g.id {
		return true // a retry for another group: never ours to see
	}
	scope := wire.ScopeOf(r.Headers)
	if scope.Known && !scope.Matches(sub.tenantID, sub.workspaceID) {
		return true // another tenant's event: skip without decoding
	}
	ctx, span := g.bus.tracing.startProcess(g.handlerCtx, r, sub.groupLabel)
	env, err := wire.Decode(r.Value)
	if err != nil {
		g.bus.cfg.Metrics.observeHandled(r.Topic, sub.groupLabel, time.Now(), err)
		cause := fmt.Errorf("%s: %w", ReasonMalformed, err)
		endSpan(span, cause)
		if sub.onFailure == Skip {
			return g.skip(r, eventIDOf(r), cause)
		}
		return g.recordFailure(ctx, r, sub, eventIDOf(r), cause)
	}
	if !scope.Known && !matchesFilter(env, sub) {
		endSpan(span, nil)
		return true
	}
	ev := rawEvent(env)
	start := time.Now()
	err = callHandler(ctx, sub.handler, ev)
	g.bus.cfg.Metrics.observeHandled(r.Topic, sub.groupLabel, start, err)
	endSpan(span, err)
	if err != nil {
		var perm *PermanentError
		switch {
		case sub.onFailure == Skip:
			return g.skip(r, env.ID, err)
		case sub.onFailure == RetryInPlace && !errors.As(err, &perm):
			if err = g.retryInPlace(ctx, r, sub, ev, err); err != nil && !errors.As(err, &perm) {
				return false // stopped before it succeeded: not committed
			}
		}
		if err != nil {
			return g.recordFailure(ctx, r, sub, env.ID, err)
		}
	}
	if isRetry {
		return g.untilStored(ctx, r, func(ctx context.Context) error { return g.bus.dlq.resolve(ctx, r) })
	}
	return true
}

// eventIDOf names the event of a record that may not decode: its event-id
// header, else its position.
func eventIDOf(r *kgo.Record) string {
	if id, ok := wire.HeaderValue(r.Headers, wire.HeaderEventID); ok && len(id) > 0 {
		return string(id)
	}
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}

func matchesFilter(env wire.Envelope, sub *subscription) bool {
	return (sub.tenantID == "" || env.TenantID == sub.tenantID) &&
		(sub.workspaceID == "" || env.WorkspaceID == sub.workspaceID)
}

// skip logs a failure that the subscription's policy lets pass.
func (g *groupConsumer) skip(r *kgo.Record, eventID string, cause error) bool {
	g.bus.logger.Warn("eventbus: handler failed; event skipped (OnFailure: Skip)",
		"group", g.id, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", eventID, "err", cause)
	return true
}

// retryInPlace calls the handler again, backing off, while it fails with
// an error worth retrying. It returns nil once the handler succeeded, the
// Permanent error that ends the retries, or a non-nil error when the
// subscription stopped first.
func (g *groupConsumer) retryInPlace(ctx context.Context, r *kgo.Record, sub *subscription, ev RawEvent, err error) error {
	backoff := g.bus.cfg.Consumer.RetryBackoff
	for {
		g.bus.logger.Warn("eventbus: handler failed; retrying in place (OnFailure: RetryInPlace)",
			"group", g.id, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", ev.ID, "retry_in", backoff, "err", err)
		if !g.sleep(backoff) {
			return g.pollCtx.Err()
		}
		start := time.Now()
		err = callHandler(ctx, sub.handler, ev)
		g.bus.cfg.Metrics.observeHandled(r.Topic, sub.groupLabel, start, err)
		var perm *PermanentError
		if err == nil || errors.As(err, &perm) {
			return err
		}
		if g.pollCtx.Err() != nil {
			return g.pollCtx.Err()
		}
		backoff = min(backoff*2, g.bus.cfg.Consumer.RetryBackoffMax)
	}
}

// recordFailure stores a failed handling in the dead letter queue; the
// record may be committed once the broker acknowledged that.
func (g *groupConsumer) recordFailure(spanCtx context.Context, r *kgo.Record, sub *subscription, eventID string, cause error) bool {
	g.bus.logger.Warn("eventbus: handler failed; event sent to the dead letter queue",
		"group", g.id, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", eventID, "err", cause)
	stored := g.untilStored(spanCtx, r, func(ctx context.Context) error {
		return g.bus.dlq.recordFailure(ctx, r, g.id, eventID, cause)
	})
	if stored {
		g.bus.cfg.Metrics.observeDeadLettered(r.Topic, sub.groupLabel)
	}
	return stored
}

// untilStored runs a dead-letter write until the broker acknowledged it,
// backing off between failures, and reports false when the subscription
// stopped first (the record is then not committed and will come again).
// The write runs until the subscription stops, as a child of spanCtx's span.
func (g *groupConsumer) untilStored(spanCtx context.Context, r *kgo.Record, write func(context.Context) error) bool {
	ctx := g.pollCtx
	if g.bus.tracing != nil {
		ctx = trace.ContextWithSpan(ctx, trace.SpanFromContext(spanCtx))
	}
	backoff := g.bus.cfg.Consumer.RetryBackoff
	for {
		err := write(ctx)
		if err == nil {
			return true
		}
		if g.pollCtx.Err() != nil {
			return false
		}
		g.bus.logger.Error("eventbus: could not write to the dead letter queue; holding the partition",
			"group", g.id, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "retry_in", backoff, "err", err)
		if !g.sleep(backoff) {
			return false
		}
		backoff = min(backoff*2, g.bus.cfg.Consumer.RetryBackoffMax)
	}
}

// sleep waits d and reports true, or false as soon as the subscription stops.
func (g *groupConsumer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.pollCtx.Done():
		return false
	}
}

// callHandler runs a handler, turning a panic into a *PanicError.
func callHandler(ctx context.Context, h Handler, ev RawEvent) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(withIncomingEvent(ctx, ev), ev)
}

// stop stops fetching, waits for running handlers (bounded by ctx; then
// their context is cancelled), commits what they finished and leaves the
// group.
func (g *groupConsumer) stop(ctx context.Context) error {
	g.stopPolling()
	var err error
	select {
	case <-g.done:
	case <-ctx.Done():
		g.cancelHandler()
		err = fmt.Errorf("group %s: handlers still running when the shutdown deadline passed: %w", g.id, ctx.Err())
	}
	commitCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		commitCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	if cerr := g.cl.CommitMarkedOffsets(commitCtx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("group %s: final commit: %w", g.id, cerr))
	}
	g.cl.Close()
	g.cancelHandler()
	return err
}

// lagKey labels consumer lag: the GroupID as given (bounded) and the topic.
type lagKey struct{ group, topic string }

// consumerLag asks the brokers how far this process's groups are behind,
// summed per GroupID and topic. It is read when metrics are scraped, with a
// short timeout; a group the brokers cannot describe is left out.
func (b *Bus) consumerLag() map[lagKey]int64 {
	b.subs.mu.Lock()
	labels := map[string]map[string]string{} // effective group -> topic -> GroupID
	for _, sub := range b.subs.byID {
		if labels[sub.group.id] == nil {
			labels[sub.group.id] = map[string]string{}
		}
		labels[sub.group.id][sub.topic] = sub.groupLabel
	}
	b.subs.mu.Unlock()
	out := map[lagKey]int64{}
	if len(labels) == 0 {
		return out
	}
	adm, err := b.client.Admin()
	if err != nil {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	groups := make([]string, 0, len(labels))
	for g := range labels {
		groups = append(groups, g)
	}
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return out
	}
	for _, l := range lags {
		if l.DescribeErr != nil || l.FetchErr != nil {
			continue
		}
		for topic, lag := range l.Lag.TotalByTopic() {
			if label, ok := labels[l.Group][topic]; ok {
				out[lagKey{label, topic}] += lag.Lag
			}
		}
	}
	return out
}
