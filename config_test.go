package eventbus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

// TestConfigInvalidValuesFailAtConstruction: values that cannot be right
// fail in NewClient and NewBus with ErrInvalidConfig, and the error names
// the field and how to fix it.
func TestConfigInvalidValuesFailAtConstruction(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  eventbus.ClientConfig
		want string
	}{
		{"no brokers", eventbus.ClientConfig{}, "ClientConfig.Brokers is empty"},
		{"blank broker", eventbus.ClientConfig{Brokers: []string{" "}}, "ClientConfig.Brokers has an empty address"},
		{"negative connect timeout", eventbus.ClientConfig{Brokers: []string{"127.0.0.1:9092"}, ConnectTimeout: -time.Second}, "DefaultConnectTimeout"},
		{"SASL without password", eventbus.ClientConfig{Brokers: []string{"127.0.0.1:9092"}, SASL: &eventbus.SASLConfig{Mechanism: eventbus.SASLPlain, Username: "u"}}, "Password"},
	} {
		_, err := eventbus.NewClient(tc.cfg)
		if !errors.Is(err, eventbus.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewClient, %s: %v; want ErrInvalidConfig saying %q", tc.name, err, tc.want)
		}
	}

	client := eventbustest.NewClient(t)
	for _, tc := range []struct {
		name string
		cfg  eventbus.Config
		want string
	}{
		{"unknown compression", eventbus.Config{Compression: "brotli"}, "compression \"brotli\" is unknown"},
		{"negative linger", eventbus.Config{Linger: -time.Millisecond}, "Config.Linger"},
		{"negative buffered records", eventbus.Config{MaxBufferedRecords: -1}, "DefaultMaxBufferedRecords"},
		{"negative event size", eventbus.Config{MaxEventBytes: -1}, "DefaultMaxEventBytes"},
		{"short delivery timeout", eventbus.Config{DeliveryTimeout: time.Millisecond}, "1s minimum"},
		{"negative shutdown timeout", eventbus.Config{ShutdownTimeout: -time.Second}, "DefaultShutdownTimeout"},
		{"negative breaker open timeout", eventbus.Config{Breaker: breaker.Config{OpenTimeout: -time.Second}}, "Breaker.OpenTimeout"},
		{"negative session timeout", eventbus.Config{Consumer: eventbus.ConsumerConfig{SessionTimeout: -time.Second}}, "DefaultSessionTimeout"},
		{"heartbeat not under session", eventbus.Config{Consumer: eventbus.ConsumerConfig{HeartbeatInterval: time.Minute}}, "must be shorter than Consumer.SessionTimeout"},
		{"negative poll records", eventbus.Config{Consumer: eventbus.ConsumerConfig{MaxPollRecords: -1}}, "DefaultMaxPollRecords"},
		{"revoke timeout over the limit", eventbus.Config{Consumer: eventbus.ConsumerConfig{RevokeTimeout: time.Hour}}, "5m0s limit"},
		{"negative commit interval", eventbus.Config{Consumer: eventbus.ConsumerConfig{CommitInterval: -time.Second}}, "CommitEveryBatch"},
		{"consumer backoff over its cap", eventbus.Config{Consumer: eventbus.ConsumerConfig{RetryBackoff: time.Minute}}, "Consumer.RetryBackoff (1m0s) is over Consumer.MaxRetryBackoff (30s)"},
		{"negative consumer cap", eventbus.Config{Consumer: eventbus.ConsumerConfig{MaxRetryBackoff: -time.Second}}, "DefaultConsumerMaxRetryBackoff"},
		{"negative max retries", eventbus.Config{DLQ: deadletter.Config{MaxRetries: -2}}, "NoRetries"},
		{"DLQ backoff over its cap", eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 2 * time.Hour}}, "Config.DLQ: invalid dead letter queue configuration: RetryBackoff (2h0m0s) is over MaxRetryBackoff (1h0m0s)"},
		{"negative retry timeout", eventbus.Config{DLQ: deadletter.Config{RetryTimeout: -time.Second}}, "DefaultRetryTimeout"},
		{"unknown cleanup policy", eventbus.Config{DLQ: deadletter.Config{TopicCleanupPolicy: "compact"}}, "CleanupCompactDelete"},
	} {
		bus, err := eventbus.NewBus(client, tc.cfg)
		if err == nil {
			_ = bus.Shutdown(ctxT(t))
		}
		if !errors.Is(err, eventbus.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewBus, %s: %v; want ErrInvalidConfig saying %q", tc.name, err, tc.want)
		}
		if dlq := tc.cfg.DLQ != (deadletter.Config{}); dlq != errors.Is(err, deadletter.ErrInvalidConfig) {
			t.Errorf("NewBus, %s: %v; want deadletter.ErrInvalidConfig found %v", tc.name, err, dlq)
		}
	}
}

// TestConfigValidSentinels: the named ways to switch something off are
// accepted, as is a cap raised with the backoff it caps.
func TestConfigValidSentinels(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	for _, cfg := range []eventbus.Config{
		{Consumer: eventbus.ConsumerConfig{CommitInterval: eventbus.CommitEveryBatch}},
		{DLQ: deadletter.Config{MaxRetries: deadletter.NoRetries}},
		{DLQ: deadletter.Config{RetryBackoff: 2 * time.Hour, MaxRetryBackoff: 2 * time.Hour}},
		{DLQ: deadletter.Config{TopicCleanupPolicy: deadletter.CleanupDelete}},
	} {
		bus, err := eventbus.NewBus(client, cfg)
		if err != nil {
			t.Errorf("NewBus(%+v): %v", cfg, err)
			continue
		}
		if err := bus.Shutdown(ctxT(t)); err != nil {
			t.Error(err)
		}
	}
}

// TestEnsureTopicInvalidSettings: topic options that cannot be right fail
// before anything is asked of the brokers.
func TestEnsureTopicInvalidSettings(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	name := eventbustest.UniqueTopic(t, "core.user.created")
	for _, opt := range []topic.Option{topic.WithPartitions(-1), topic.WithReplicationFactor(-1), topic.WithRetention(-time.Hour)} {
		if err := client.Topics().Ensure(ctxT(t), name, opt); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("Ensure: %v; want ErrInvalidConfig", err)
		}
	}
	if ok, err := client.Topics().Exists(ctxT(t), name); err != nil || ok {
		t.Fatalf("Exists(%s) = %v, %v; want no topic", name, ok, err)
	}
}

// TestDLQNoRetries: with Config.DLQ.MaxRetries deadletter.NoRetries a failed event is
// dead-lettered as out of retries at once, and never sent again
// automatically.
func TestDLQNoRetries(t *testing.T) {
	t.Parallel()
	cfg := fastDLQ()
	cfg.DLQ.MaxRetries = deadletter.NoRetries
	bus := startDLQ(t, eventbustest.NewBus(t, cfg))
	topic := eventbustest.UniqueTopic(t, "core.payment.captured")
	group := eventbustest.UniqueID("payments")
	var calls atomic.Int64
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		calls.Add(1)
		return errors.New("gateway timeout")
	}, eventbus.InGroup(group))
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	dlqID := deadletter.ID(group, topic, "acme", id)
	e := waitEntry(t, bus.DLQ(), dlqID, hasStatus(deadletter.StatusMaxRetriesExceeded))
	if e.RetryCount != 0 || e.MaxRetries != 0 || e.NextRetryAt != nil {
		t.Fatalf("entry: retry %d of %d, next at %v; want 0 of 0, none next", e.RetryCount, e.MaxRetries, e.NextRetryAt)
	}
	// fastDLQ would have sent a retry within 20 ms; give it many times that.
	time.Sleep(500 * time.Millisecond)
	if got := calls.Load(); got != 1 {
		t.Fatalf("handler called %d times, want once (no automatic retries)", got)
	}
}
