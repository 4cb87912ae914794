package eventbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/wire"
)

// This file is how a PluginHost follows the platform's lifecycle events
// (FollowLifecycle): a consumer without a consumer group, reading the four
// core.plugin.* topics from offsets it lists itself, so that it knows at
// every moment how far it has applied them.

// topicPartition names one partition of a lifecycle topic.
type topicPartition struct {
	topic     string
	partition int32
}

// lifecycleOffsets maps each partition of the lifecycle topics to an
// offset: an end offset listed, or the offset below which every record
// has been applied.
type lifecycleOffsets map[topicPartition]int64

// reached reports whether pos is at or past to on every partition of to
// that pos reads (a partition added to a lifecycle topic after
// FollowLifecycle started is not read; see FollowLifecycle).
func (pos lifecycleOffsets) reached(to lifecycleOffsets) bool {
	for tp, end := range to {
		if p, ok := pos[tp]; ok && p < end {
			return false
		}
	}
	return true
}

// lifecycleRecord is one lifecycle event of the host's plugin, as read.
type lifecycleRecord struct {
	add    bool      // installed or activated; else deactivated or uninstalled
	tenant string    // the tenant it concerns
	seq    int64     // the platform's sequence (data.sequence), 0 when absent
	stamp  time.Time // the publisher's timestamp: only a replay's last resort
	id     string    // the event ID, for logs
}

// lifecycleFollower reads the lifecycle topics for one FollowLifecycle
// call, applying what it reads to its host.
type lifecycleFollower struct {
	h      *PluginHost
	cl     *kgo.Client
	ctx    context.Context // ends when the follower stops; its cause says why
	cancel context.CancelCauseFunc
	done   chan struct{} // closed once run returned and cl is closed

	mu      sync.Mutex
	applied lifecycleOffsets // per partition, every record below it is applied
	changed chan struct{}    // closed and replaced when applied moves or the follower stops
	stopped bool
	pending *syncRound // the round that callers of sync join; its listing has not started
	rounds  bool       // a goroutine runs rounds (runRounds)
}

// syncRound is one listing of the lifecycle topics' end offsets and the
// wait until the follower applied them, shared by every event waiting for
// it (see sync).
type syncRound struct {
	done chan struct{}
	err  error
}

// listLifecycleOffsets lists the start (or end) offset of every partition
// of the lifecycle topics, retrying until each topic has partitions and
// answers, or until ctx ends.
func (h *PluginHost) listLifecycleOffsets(ctx context.Context, start bool) (lifecycleOffsets, error) {
	adm, err := h.bus.client.Admin()
	if err != nil {
		return nil, err
	}
	which := "end"
	if start {
		which = "start"
	}
	delays := backoff.Delays{Base: 20 * time.Millisecond, Max: time.Second}
	for {
		var listed kadm.ListedOffsets
		if start {
			listed, err = adm.ListStartOffsets(ctx, lifecycleEvents...)
		} else {
			listed, err = adm.ListEndOffsets(ctx, lifecycleEvents...)
		}
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			for _, topic := range lifecycleEvents {
				if len(listed[topic]) == 0 {
					err = fmt.Errorf("topic %s has no partitions yet", topic)
					break
				}
			}
		}
		if err == nil {
			out := lifecycleOffsets{}
			listed.Each(func(o kadm.ListedOffset) { out[topicPartition{o.Topic, o.Partition}] = o.Offset })
			return out, nil
		}
		if !backoff.Sleep(ctx, delays.Next()) {
			return nil, fmt.Errorf("list the %s offsets of the lifecycle topics: %w (last error: %v)", which, context.Cause(ctx), err)
		}
	}
}

// newFollower starts reading the lifecycle topics: from their start with
// fromBeginning, else from their end. It returns the follower, not yet
// running, and the end offsets listed first: once they are applied, the
// follower has caught up with the lifecycle as of the call.
func (h *PluginHost) newFollower(ctx context.Context, fromBeginning bool) (*lifecycleFollower, lifecycleOffsets, error) {
	if err := h.bus.ensureTopics(ctx, lifecycleEvents...); err != nil {
		return nil, nil, err
	}
	ends, err := h.listLifecycleOffsets(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	from := ends
	if fromBeginning {
		if from, err = h.listLifecycleOffsets(ctx, true); err != nil {
			return nil, nil, err
		}
	}
	parts := map[string]map[int32]kgo.Offset{}
	for tp, o := range from {
		if parts[tp.topic] == nil {
			parts[tp.topic] = map[int32]kgo.Offset{}
		}
		parts[tp.topic][tp.partition] = kgo.NewOffset().At(o)
	}
	cl, err := h.bus.client.newKgo(kgo.ConsumePartitions(parts))
	if err != nil {
		return nil, nil, err
	}
	fctx, cancel := context.WithCancelCause(h.bus.stoppedCtx())
	return &lifecycleFollower{
		h: h, cl: cl, ctx: fctx, cancel: cancel, done: make(chan struct{}),
		applied: maps.Clone(from), changed: make(chan struct{}),
	}, ends, nil
}

// run reads and applies lifecycle records until the follower stops. The
// records below replayTo (nil: none) are a replay: they are applied at
// once, each tenant taking the state of its last event (see applyReplay),
// before anything after them.
func (f *lifecycleFollower) run(replayTo lifecycleOffsets) {
	defer func() {
		f.cl.Close()
		f.mu.Lock()
		f.stopped = true
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
		close(f.done)
	}()
	pos := maps.Clone(f.applied)
	replaying := replayTo != nil && !pos.reached(replayTo)
	var replay, held []lifecycleRecord
	delays := backoff.Delays{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	lastWarn := time.Time{}
	for {
		fs := f.cl.PollFetches(f.ctx)
		if f.ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			fetchErr = errors.Join(fetchErr, fmt.Errorf("%s[%d]: %w", topic, p, err))
		})
		if fetchErr != nil {
			if time.Since(lastWarn) > 30*time.Second {
				lastWarn = time.Now()
				f.h.bus.logger.Warn("eventbus: plugin host: cannot read the lifecycle topics; backing off (events of tenants it does not serve wait meanwhile)",
					"plugin", f.h.PluginID(), "err", fetchErr)
			}
			if !backoff.Sleep(f.ctx, delays.Next()) {
				return
			}
		} else {
			delays = backoff.Delays{Base: delays.Base, Max: delays.Max}
		}
		var live []lifecycleRecord
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			tp := topicPartition{p.Topic, p.Partition}
			for _, r := range p.Records {
				if lr, ok := f.h.decodeLifecycle(r); ok {
					if replaying && r.Offset < replayTo[tp] {
						replay = append(replay, lr)
					} else {
						live = append(live, lr)
					}
				}
				pos[tp] = r.Offset + 1
			}
		})
		if replaying {
			if !pos.reached(replayTo) {
				held = append(held, live...) // read past the replay on one partition: after it
				continue
			}
			f.h.applyReplay(replay)
			replay, replaying = nil, false
			live = append(held, live...)
			held = nil
		}
		for _, lr := range live {
			f.h.applyLifecycle(lr)
		}
		f.mu.Lock()
		maps.Copy(f.applied, pos)
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

// stop stops the follower for cause and waits until it has.
func (f *lifecycleFollower) stop(cause error) {
	f.cancel(cause)
	<-f.done
}

// waitApplied waits until the follower applied every record below to.
// It fails when ctx ends first, and with the follower's stop cause
// (ErrHostClosed, ErrShuttingDown) once it stopped, caught up or not.
func (f *lifecycleFollower) waitApplied(ctx context.Context, to lifecycleOffsets) error {
	for {
		f.mu.Lock()
		ok, stopped, ch := f.applied.reached(to), f.stopped, f.changed
		f.mu.Unlock()
		switch {
		case stopped:
			return f.stopCause()
		case ok:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for the lifecycle topics to be read: %w", context.Cause(ctx))
		}
	}
}

// stopCause says why a stopped follower stopped.
func (f *lifecycleFollower) stopCause() error {
	cause := context.Cause(f.ctx)
	if errors.Is(cause, ErrHostClosed) {
		return cause
	}
	return fmt.Errorf("%w: the lifecycle consumer stopped with the bus (%v)", ErrShuttingDown, cause)
}

// sync waits until the follower has applied the lifecycle topics up to
// their end offsets listed after sync was called: every lifecycle event
// published before the call is then applied. Callers at the same moment
// share one listing (a round); a round lists only after every caller that
// joined it called.
func (f *lifecycleFollower) sync(ctx context.Context) error {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return f.stopCause()
	}
	r := f.pending
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		f.pending = r
	}
	if !f.rounds {
		f.rounds = true
		go f.runRounds()
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// runRounds runs the pending rounds one after the other until none is left.
func (f *lifecycleFollower) runRounds() {
	for {
		f.mu.Lock()
		r := f.pending
		f.pending = nil
		if r == nil {
			f.rounds = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		ends, err := f.h.listLifecycleOffsets(f.ctx, false)
		if err == nil {
			err = f.waitApplied(f.ctx, ends)
		}
		if err != nil && f.ctx.Err() != nil {
			err = f.stopCause()
		}
		r.err = err
		close(r.done)
	}
}

// lifecycleData is what FollowLifecycle reads of a lifecycle event's data.
type lifecycleData struct {
	PluginID string `json:"pluginId"`
	TenantID string `json:"tenantId"`
	Sequence int64  `json:"sequence,omitempty"`
}

// decodeLifecycle reads a lifecycle record; ok is false for another
// plugin's event and for one that is ignored (logged): undecodable, or
// whose headers, event and data disagree on the tenant.
func (h *PluginHost) decodeLifecycle(r *kgo.Record) (lifecycleRecord, bool) {
	env, err := wire.Decode(r.Value)
	if err != nil {
		return lifecycleRecord{}, false // not an event: nobody's lifecycle
	}
	var d lifecycleData
	if err := json.Unmarshal(env.Data, &d); err != nil || d.PluginID != h.PluginID() {
		return lifecycleRecord{}, false
	}
	warn := func(why string) {
		h.bus.logger.Warn("eventbus: plugin host: lifecycle event ignored: "+why,
			"plugin", h.PluginID(), "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", env.ID)
	}
	if why := wire.ScopeOf(r.Headers).Mismatch(&env); why != "" {
		warn(why)
		return lifecycleRecord{}, false
	}
	tenant := d.TenantID
	switch {
	case tenant == "":
		tenant = env.TenantID
	case env.TenantID != tenant:
		warn(fmt.Sprintf("its data names tenant %q but it was published for tenant %q", tenant, env.TenantID))
		return lifecycleRecord{}, false
	}
	return lifecycleRecord{
		add:    strings.HasSuffix(r.Topic, ".installed") || strings.HasSuffix(r.Topic, ".activated"),
		tenant: tenant, seq: d.Sequence, stamp: env.Timestamp, id: env.ID,
	}, true
}

// applyLifecycle applies one lifecycle event read after the replay: in
// the order read, unless both it and the tenant's last applied event carry
// a sequence and its is lower.
func (h *PluginHost) applyLifecycle(lr lifecycleRecord) {
	if hook := h.hooks.lifecycle; hook != nil {
		hook(lr.tenant)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if last := h.seen[lr.tenant]; lr.seq > 0 && last > 0 && lr.seq < last {
		h.bus.logger.Info("eventbus: plugin host: lifecycle event older than the last applied (by sequence) ignored",
			"plugin", h.PluginID(), "tenant", lr.tenant, "event_id", lr.id, "sequence", lr.seq, "last", last)
		return
	}
	h.setLocked(lr)
}

// applyReplay applies a replay: each tenant takes the state of its last
// event. Last means the highest sequence when all of the tenant's events
// carry one; else the latest timestamp (the four topics have no common
// order), ties going to the later read.
func (h *PluginHost) applyReplay(recs []lifecycleRecord) {
	byTenant := map[string][]lifecycleRecord{}
	for _, lr := range recs {
		byTenant[lr.tenant] = append(byTenant[lr.tenant], lr)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tenant := range slices.Sorted(maps.Keys(byTenant)) {
		list := byTenant[tenant]
		bySeq := !slices.ContainsFunc(list, func(lr lifecycleRecord) bool { return lr.seq <= 0 })
		last := list[0]
		for _, lr := range list[1:] {
			var c int
			if bySeq {
				c = cmp.Compare(lr.seq, last.seq)
			} else {
				c = lr.stamp.Compare(last.stamp)
			}
			if c >= 0 {
				last = lr
			}
		}
		h.setLocked(last)
	}
}

// setLocked adds or removes the tenant of lr and records its sequence.
func (h *PluginHost) setLocked(lr lifecycleRecord) {
	h.seen[lr.tenant] = lr.seq
	if !lr.add {
		h.removeLocked(lr.tenant)
		return
	}
	if err := h.addLocked(lr.tenant); err != nil {
		h.bus.logger.Warn("eventbus: plugin host: lifecycle event names no usable tenant", "plugin", h.PluginID(), "event_id", lr.id, "err", err)
	}
}
