package eventbus_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestConsumerErrorsReportsFailingFetches: every fetch of a subscribed
// topic fails with an authorization error (a plugin whose grants were
// revoked). The bus says so (Bus.ConsumerErrors, the fetch-failing gauge)
// while it lasts, and stops saying so once fetches deliver again.
func TestConsumerErrorsReportsFailingFetches(t *testing.T) {
	t.Parallel()
	broker := faultBroker(t)
	reg := prometheus.NewRegistry()
	m, err := eventbus.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	bus := eventbustest.NewBus(t, eventbus.Config{Metrics: m}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup("revoked"))
	c := broker.Cluster()
	var failing atomic.Bool
	failing.Store(true)
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		if !failing.Load() {
			c.DropControl()
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	gauge := `eventbus_consumer_fetch_failing{group="revoked",topic="` + topic + `"}`
	eventbustest.Eventually(t, "the bus to report the failing fetches", func() error {
		err := bus.ConsumerErrors()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) || !strings.Contains(err.Error(), topic) {
			return errors.New("ConsumerErrors() = " + errString(err))
		}
		if v := scrape(t, reg)[gauge]; v != 1 {
			return errors.New("the fetch-failing gauge is not 1")
		}
		return nil
	})
	failing.Store(false)
	eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	rec.WaitFor(t, 1)
	eventbustest.Eventually(t, "the bus to stop reporting failing fetches", func() error {
		if err := bus.ConsumerErrors(); err != nil {
			return err
		}
		return nil
	})
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
