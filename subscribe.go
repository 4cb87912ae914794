package eventbus

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/plexica/eventbus/internal/dlq"
	"github.com/plexica/eventbus/topic"
)

// Handler handles one event. Returning nil means the event is done and its
// offset may be committed; returning an error (or panicking) means it failed.
type Handler func(ctx context.Context, event RawEvent) error

// Ordering says which events of a subscription are handled one at a time.
type Ordering int

const (
	// OrderPerKey, the default, handles the events of one record key (the
	// partition key, else the tenant ID) one at a time in the order they
	// were published, and events of different keys concurrently.
	OrderPerKey Ordering = iota
	// OrderPerPartition handles each partition's events one at a time in
	// offset order, partitions concurrently: the order of the whole topic
	// per partition, with as much concurrency as partitions.
	OrderPerPartition
	// OrderNone handles events as soon as a handler is free, in no order.
	OrderNone
)

// String returns the ordering's name.
func (o Ordering) String() string {
	switch o {
	case OrderPerKey:
		return "per-key"
	case OrderPerPartition:
		return "per-partition"
	case OrderNone:
		return "none"
	}
	return fmt.Sprintf("Ordering(%d)", int(o))
}

// subscribeOptions are a Bus subscription's group, filters and delivery,
// as the options of a HandlerSpec set them.
type subscribeOptions struct {
	// GroupID is the consumer group; default "<ClientID>.<topic>".
	GroupID string
	// TenantID and WorkspaceID filter the events; both are part of the
	// group's identity (see GroupID).
	TenantID, WorkspaceID string
	Delivery
}

// FailurePolicy is what a subscription does with an event its handler
// failed to handle.
type FailurePolicy int

const (
	// DeadLetter, the default, stores the event in the dead letter queue,
	// which retries it for this group only, and moves on.
	DeadLetter FailurePolicy = iota
	// RetryInPlace calls the handler again, backing off from
	// ConsumerConfig.RetryBackoff up to MaxRetryBackoff, until it succeeds
	// or the partition is released; the event's key waits meanwhile (its
	// partition, with OrderPerPartition), so events are handled strictly
	// in order. What can never succeed (a Permanent error, a record that
	// is not an event) still goes to the dead letter queue.
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

// subscribe subscribes handler to the topic eventType (see Subscribe),
// with a bus-internal tenant filter: when accept is
// not nil, events of a tenant it rejects are skipped by header, before
// decoding, and committed (a PluginHost passes the set of tenants it
// serves, which changes at run time without touching the group).
func (b *Bus) subscribe(ctx context.Context, eventType string, handler Handler, opts subscribeOptions, accept func(tenant []byte) bool) (string, error) {
	if b.closing.Load() {
		return "", shuttingDown()
	}
	parsed, err := b.client.cfg.TopicRules.Parse(eventType)
	if err != nil {
		return "", err
	}
	if parsed.Kind == topic.KindDLQ {
		return "", fmt.Errorf("%w: %q is a dead-letter topic; read failed events through the DeadLetterQueue instead", ErrInvalidTopic, eventType)
	}
	if handler == nil {
		return "", fmt.Errorf("%w: Subscribe(%q) was given a nil handler", ErrInvalidConfig, eventType)
	}
	if opts.WorkspaceID != "" && opts.TenantID == "" {
		return "", fmt.Errorf("%w: ForWorkspace(%q) on a Bus needs ForTenant too (workspaces belong to tenants)", ErrInvalidConfig, opts.WorkspaceID)
	}
	if opts.TenantID != "" {
		if err := ValidateTenantID(opts.TenantID); err != nil {
			return "", fmt.Errorf("subscribe %s: ForTenant: %w", eventType, err)
		}
	}
	if err := ValidateWorkspaceID(opts.WorkspaceID); err != nil {
		return "", fmt.Errorf("subscribe %s: ForWorkspace: %w", eventType, err)
	}
	opts.Delivery = opts.Delivery.withDefaults()
	if err := opts.Delivery.validate(); err != nil {
		return "", err
	}
	opts.GroupID = b.defaultGroup(opts.GroupID, eventType)
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
	var startAt map[int32]int64
	if !opts.FromBeginning {
		if startAt, err = b.endOffsets(ctx, eventType); err != nil {
			return "", fmt.Errorf("subscribe %s: %w", eventType, err)
		}
	}
	groupID := filteredGroup(opts.GroupID, opts.TenantID, opts.WorkspaceID)
	var retryTopic string
	var retryStartAt map[int32]int64
	// The group's own retry topic, where the dead letter queue sends its
	// retries (internal/dlq/topics.go); a subscription that skips its
	// failures has none.
	if opts.Delivery.OnFailure != Skip {
		retryTopic = dlq.RetryTopicFor(groupID, eventType)
		if err := b.ensureRetryTopic(ctx, retryTopic); err != nil {
			return "", fmt.Errorf("subscribe %s: the group's retry topic: %w", eventType, err)
		}
		if !opts.FromBeginning {
			if retryStartAt, err = b.endOffsets(ctx, retryTopic); err != nil {
				return "", fmt.Errorf("subscribe %s: the group's retry topic: %w", eventType, err)
			}
		}
	}
	sub := &subscription{
		bus:          b,
		id:           uuid.NewString(),
		topic:        eventType,
		retryTopic:   retryTopic,
		groupID:      groupID,
		groupLabel:   opts.GroupID,
		handler:      handler,
		tenantID:     opts.TenantID,
		workspaceID:  opts.WorkspaceID,
		accept:       accept,
		delivery:     opts.Delivery,
		startAt:      startAt,
		retryStartAt: retryStartAt,
	}
	g, err := b.subs.add(sub)
	if err != nil {
		return "", err
	}
	if err := g.engine.WaitAssigned(ctx, eventType); err != nil {
		_ = b.Unsubscribe(context.WithoutCancel(ctx), sub.id)
		return "", fmt.Errorf("subscribe %s in group %s: the group did not assign partitions in time: %w", eventType, g.id, err)
	}
	return sub.id, nil
}

// Unsubscribe stops a subscription: its handler is not called again, its
// running handlers are waited for (bounded by ctx and
// ConsumerConfig.RevokeTimeout), what it finished is committed, and when
// it was its group's last subscription in this process the group is left.
// Leaving the group is bounded as Shutdown is: by ctx's deadline, or
// Config.ShutdownTimeout when ctx has none, with the same grace period for
// running handlers.
func (b *Bus) Unsubscribe(ctx context.Context, id string) error {
	return b.subs.remove(ctx, id)
}

// ensureRetryTopic creates a group's retry topic (dlq.RetryTopicPartitions
// partitions) unless it exists or topic creation is off.
func (b *Bus) ensureRetryTopic(ctx context.Context, retryTopic string) error {
	if b.cfg.DisableTopicCreation {
		return nil
	}
	return b.client.topics.Ensure(ctx, retryTopic, topic.WithCreationTimeout(b.cfg.DeliveryTimeout), topic.WithPartitions(dlq.RetryTopicPartitions))
}
