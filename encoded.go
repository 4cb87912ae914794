package eventbus

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// EncodedEvent is an event validated and encoded exactly as Publish would
// send it, but not sent: its topic, record key, value (the wire format)
// and headers. It is what a transactional outbox stores (see the outbox
// package) so that the event, sent later with PublishEncoded, carries the
// ID chosen when it was written.
type EncodedEvent struct {
	// ID is the event's ID (the envelope's and the event-id header's).
	ID string
	// Topic is the event type, which is its topic.
	Topic string
	// Key is the record key: the partition key, else the tenant ID.
	Key []byte
	// Value is the event in the wire format.
	Value []byte
	// Headers are the record headers, the bus's own first.
	Headers []kgo.RecordHeader
	// Compression is the codec the event asked for with WithCompression
	// ("" for Config.Compression).
	Compression Compression
}

// EncodeEvent validates one event and encodes it as Publish does, without
// sending it: the same checks (topic name, tenant, scope, headers, JSON,
// timestamp, Config.MaxEventBytes) fail with the same sentinels
// (ErrInvalidTopic, ErrTenantRequired, ErrEventTooLarge, ErrInvalidEvent),
// and the event ID is chosen now (a new UUIDv7 unless WithEventID gives
// one). It neither needs the brokers nor starts a trace span.
func (b *Bus) EncodeEvent(eventType string, data any, meta PublishMetadata, opts ...PublishOption) (EncodedEvent, error) {
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	p, err := b.prepare(eventType, data, meta, opts)
	if err != nil {
		return EncodedEvent{}, err
	}
	return EncodedEvent{
		ID: p.id, Topic: p.record.Topic, Key: p.record.Key, Value: p.record.Value,
		Headers: p.record.Headers, Compression: o.compression,
	}, nil
}

// PublishEncoded publishes events made by EncodeEvent (possibly by another
// process, and stored meanwhile) under their own IDs, as PublishBatch
// publishes: up to MaxBatchSize events, through the circuit breaker, in
// order per topic and key; results[i] is event i's outcome and a non-nil
// error (a *BatchError) says how many failed. The topic and size are
// checked again (an event too large for this bus's Config.MaxEventBytes
// fails the call with ErrEventTooLarge and nothing sent); the rest of the
// record is sent as it is.
func (b *Bus) PublishEncoded(ctx context.Context, events []EncodedEvent) ([]PublishResult, error) {
	if ok, err := b.enterBatch(ctx, len(events)); !ok {
		return nil, err
	}
	defer b.leavePublish()
	ps := make([]prepared, len(events))
	topics := make([]string, 0, 1)
	for i, ev := range events {
		if err := b.client.valid.validate(ev.Topic); err != nil {
			return nil, fmt.Errorf("encoded event %d of %d (nothing was sent): %w", i, len(events), err)
		}
		if strings.HasPrefix(ev.Topic, "dlq.") || ev.ID == "" {
			return nil, fmt.Errorf("%w: encoded event %d of %d (nothing was sent) has topic %q and ID %q; make encoded events with EncodeEvent",
				ErrInvalidEvent, i, len(events), ev.Topic, ev.ID)
		}
		producer, err := b.producer(ev.Compression)
		if err != nil {
			return nil, fmt.Errorf("%w: encoded event %d of %d (nothing was sent): %v", ErrInvalidEvent, i, len(events), err)
		}
		record := &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: ev.Value, Headers: slices.Clip(slices.Clone(ev.Headers))}
		if err := b.checkSize(record); err != nil {
			return nil, fmt.Errorf("encoded event %d of %d (nothing was sent): %w", i, len(events), err)
		}
		ps[i] = prepared{id: ev.ID, record: record, producer: producer}
		if !slices.Contains(topics, ev.Topic) {
			topics = append(topics, ev.Topic)
		}
	}
	return b.publishPrepared(ctx, ps, topics)
}
