package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/consumer"
)

// subscription is one Subscribe call.
type subscription struct {
	bus   *Bus
	id    string
	topic string
	// retryTopic, when set, is the topic this plugin group's retries of
	// this topic's events arrive on (internal/dlq/topics.go); the group reads it too.
	retryTopic string
	groupID    string // the effective group ID (with the tenant filter)
	// groupLabel is the GroupID as given: a bounded metrics label.
	groupLabel  string
	handler     Handler
	tenantID    string
	workspaceID string
	// accept, when set, is a further tenant filter applied by header (see
	// Bus.subscribe): a PluginHost's set of served tenants.
	accept   func(tenant []byte) bool
	delivery Delivery
	// startAt is where the group starts on each partition that has no
	// committed offset: the end offsets when Subscribe was called. Nil with
	// FromBeginning.
	startAt map[int32]int64
	// retryStartAt is the same for the retry topic: its own end offsets,
	// not the topic's.
	retryStartAt map[int32]int64
	group        *groupConsumer
}

// engineTopic is the subscription's topic (or its retry topic) as the
// consumer engine reads it.
func (s *subscription) engineTopic(name string) consumer.Topic {
	startAt := s.startAt
	if name == s.retryTopic {
		startAt = s.retryStartAt
	}
	return consumer.Topic{
		Name: name,
		Handle: func(ctx, stopping context.Context, r *kgo.Record) bool {
			// Marked so that the handler may publish while Shutdown drains.
			return s.handleRecord(s.bus.handlerContext(ctx), stopping, r)
		},
		Ordering:       consumer.Ordering(s.delivery.Ordering),
		MaxConcurrency: s.delivery.MaxConcurrency,
		MaxPending:     s.delivery.MaxPending,
		FromBeginning:  s.delivery.FromBeginning,
		StartAt:        startAt,
	}
}

// groupConsumer is a group's one consumer in this process; the group's
// subscriptions (one per topic) share it.
type groupConsumer struct {
	id     string
	engine *consumer.Group
	topics map[string]*subscription // guarded by subscriptions.mu
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
func (s *subscriptions) add(sub *subscription) (*groupConsumer, error) {
	b := sub.bus
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.closing.Load() {
		return nil, shuttingDown()
	}
	g := s.groups[sub.groupID]
	if g == nil {
		engine, err := consumer.Start(b.consumerConfig(sub.groupID), sub.engineTopic(sub.topic))
		if err != nil {
			return nil, err
		}
		g = &groupConsumer{id: sub.groupID, engine: engine, topics: map[string]*subscription{}}
		s.groups[sub.groupID] = g
	} else {
		if _, dup := g.topics[sub.topic]; dup {
			return nil, fmt.Errorf("%w: %s is already subscribed in group %s in this process; use one handler per topic and group, or another GroupID",
				ErrDuplicateSubscription, sub.topic, g.id)
		}
		if err := g.engine.AddTopic(sub.engineTopic(sub.topic)); err != nil {
			return nil, err
		}
	}
	sub.group = g
	g.topics[sub.topic] = sub
	if sub.retryTopic != "" {
		if err := g.engine.AddTopic(sub.engineTopic(sub.retryTopic)); err != nil {
			b.logger.Warn("eventbus: cannot read the retry topic; this subscription's dead-letter retries wait", "topic", sub.retryTopic, "err", err)
		} else {
			g.topics[sub.retryTopic] = sub
		}
	}
	s.byID[sub.id] = sub
	return g, nil
}

// consumerConfig is the engine's configuration for a group.
func (b *Bus) consumerConfig(groupID string) consumer.Config {
	cc := b.cfg.Consumer
	return consumer.Config{
		Group:             groupID,
		NewClient:         b.client.newKgo,
		SessionTimeout:    cc.SessionTimeout,
		HeartbeatInterval: cc.HeartbeatInterval,
		InstanceID:        cc.InstanceID,
		MaxPollRecords:    cc.MaxPollRecords,
		CommitInterval:    cc.commitInterval(),
		RevokeTimeout:     cc.RevokeTimeout,
		ShutdownTimeout:   b.cfg.ShutdownTimeout,
		Logger:            b.logger,
	}
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
	topics := []string{sub.topic}
	if g.topics[sub.retryTopic] == sub {
		topics = append(topics, sub.retryTopic)
	}
	for _, t := range topics {
		delete(g.topics, t)
	}
	last := len(g.topics) == 0
	if last {
		delete(s.groups, g.id)
	}
	s.mu.Unlock()
	if last {
		return g.engine.Stop(ctx)
	}
	for _, t := range topics {
		g.engine.RemoveTopic(ctx, t)
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
			errs[i] = g.engine.Stop(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// consumerPending sums, per GroupID and topic, the events this process's
// subscriptions hold between fetch and commit.
func (b *Bus) consumerPending() map[lagKey]int64 {
	b.subs.mu.Lock()
	defer b.subs.mu.Unlock()
	out := map[lagKey]int64{}
	for _, sub := range b.subs.byID {
		out[lagKey{sub.groupLabel, sub.topic}] += int64(sub.group.engine.Pending(sub.topic))
	}
	return out
}

// fetchFailing lists, per GroupID and topic, the groups of this process
// whose fetches keep failing, with their last error.
func (b *Bus) fetchFailing() map[lagKey]error {
	b.subs.mu.Lock()
	defer b.subs.mu.Unlock()
	out := map[lagKey]error{}
	for _, sub := range b.subs.byID {
		errs := sub.group.engine.FetchErrors()
		for _, topic := range []string{sub.topic, sub.retryTopic} {
			if err := errs[topic]; err != nil && topic != "" {
				out[lagKey{sub.groupLabel, topic}] = fmt.Errorf("group %s: %w", sub.groupID, err)
			}
		}
	}
	return out
}

// ConsumerErrors reports this bus's subscriptions whose fetches keep
// failing (a plugin whose read permission was revoked, a deleted topic):
// nil while every group fetches, else one error naming each group and
// topic and wrapping its last fetch error. The groups keep polling, with
// backoff, and recover by themselves once the cause is mended. A process's
// readiness check can include it; eventbus serve's /readyz does, and the
// eventbus_consumer_fetch_failing gauge reports the same.
func (b *Bus) ConsumerErrors() error {
	var errs []error
	for _, err := range b.fetchFailing() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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
		if labels[sub.groupID] == nil {
			labels[sub.groupID] = map[string]string{}
		}
		labels[sub.groupID][sub.topic] = sub.groupLabel
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
