package dlq

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/wire"
)

// testHost is a Host on an embedded broker: a franz-go client that
// produces, reads single records and creates topics. It counts no
// metrics.
type testHost struct {
	seeds  []string
	cl     *kgo.Client
	adm    *kadm.Client
	broker *embedded.Broker

	// produceFault and ensureFault, when set before the queue starts, fail
	// the produce of a record and the creation of a topic when they return
	// an error.
	produceFault func(rec *kgo.Record) error
	ensureFault  func(topic string) error
}

func (h *testHost) Produce(ctx context.Context, rec *kgo.Record) error {
	if h.produceFault != nil {
		if err := h.produceFault(rec); err != nil {
			return err
		}
	}
	return h.cl.ProduceSync(ctx, rec).FirstErr()
}

func (h *testHost) EnsureTopic(ctx context.Context, topic string, configs map[string]string) error {
	if h.ensureFault != nil {
		if err := h.ensureFault(topic); err != nil {
			return err
		}
	}
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := h.adm.CreateTopic(ctx, 3, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}

func (h *testHost) EnsureRetryTopic(ctx context.Context, topic string) error {
	if h.ensureFault != nil {
		if err := h.ensureFault(topic); err != nil {
			return err
		}
	}
	resp, err := h.adm.CreateTopic(ctx, RetryTopicPartitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}

func (h *testHost) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(h.seeds...)}, opts...)...)
}

func (h *testHost) Conn() (*kgo.Client, error)   { return h.cl, nil }
func (h *testHost) Admin() (*kadm.Client, error) { return h.adm, nil }

func (h *testHost) RetrySent(string, bool) {}

// newTestQueue starts an embedded broker and a queue on it (with cfg's
// zero settings defaulted as the bus defaults them); both stop with the
// test. ctx ends a minute after the start.
func newTestQueue(t *testing.T, cfg Config) (*Queue, *testHost, context.Context) {
	t.Helper()
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	host := &testHost{seeds: broker.Addrs(), cl: cl, adm: kadm.NewClient(cl), broker: broker}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	// New fills in the other defaults.
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout, cfg.HeartbeatInterval = 10*time.Second, time.Second
	}
	cfg.SchedulerGroup = "test-scheduler-" + uuid.NewString()
	cfg.Logger = slog.New(slog.DiscardHandler)
	q := New(host, cfg)
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Stop(stopCtx)
	})
	return q, host, ctx
}

// eventRecord is a record of an event of topic for tenant, as the bus
// publishes it.
func eventRecord(topic, tenant string) *kgo.Record {
	env := wire.Envelope{ID: uuid.NewString(), Type: topic, TenantID: tenant, Timestamp: time.Now().UTC(), Data: []byte(`{"n":1}`)}
	return &kgo.Record{Topic: topic, Key: []byte(tenant), Value: wire.Append(nil, &env), Headers: wire.AppendHeaders(nil, &env), Partition: 0, Offset: 7}
}
