package eventbus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/internal/dlq"
)

// TestRetryTopicStartsAtItsOwnEnd: a plugin group that fails on a foreign
// topic reads its retries from the plugin's retry topic of that topic,
// which the plugin's other groups share. A new group starts that topic
// where it stood when the group subscribed, as it starts the topic itself;
// it used to take the topic's end offsets for the retry topic's too, and
// so started past the retry topic's end or inside its history.
func TestRetryTopicStartsAtItsOwnEnd(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	for i := range 30 {
		eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	group := "plugin.crm.sync"
	retryTopic := dlq.RetryTopicFor(group, topic)
	if retryTopic == topic {
		t.Fatalf("group %s has no retry topic for %s", group, topic)
	}
	if err := bus.Client().Topics().Ensure(ctxT(t), retryTopic); err != nil {
		t.Fatal(err)
	}
	// Another group of the plugin left 3 records on the retry topic.
	raw, err := kgo.NewClient(kgo.SeedBrokers(bus.Client().Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for range 3 {
		if err := raw.ProduceSync(ctxT(t), &kgo.Record{Topic: retryTopic, Key: []byte("acme"), Value: []byte("{}")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	retryEnds := endOffsets(t, bus, retryTopic)
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error { return nil }, eventbus.InGroup("plugin.crm.sync"))
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the group's start on the retry topic to be the retry topic's end", func() error {
		offs, err := adm.FetchOffsets(ctxT(t), group)
		if err != nil {
			return err
		}
		for p, end := range retryEnds {
			o, ok := offs.Lookup(retryTopic, p)
			if !ok || o.At != end {
				return fmt.Errorf("partition %d of %s: committed %v (found %v), want its end offset %d", p, retryTopic, o.At, ok, end)
			}
		}
		return nil
	})
}
