package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := eventbus.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastDLQ()
	cfg.Metrics = m
	cfg.DLQ.MaxRetries = 1
	bus := startDLQ(t, eventbustest.NewBus(t, cfg))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if string(ev.Data) == `"bad"` {
			return errors.New("rejected")
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup("mailer"), eventbus.ForTenant("acme"))
	eventbustest.MustPublish(t, bus, topic, "good", eventbus.PublishMetadata{TenantID: "acme"})
	bad := eventbustest.MustPublish(t, bus, topic, "bad", eventbus.PublishMetadata{TenantID: "acme"})
	waitEntry(t, bus.DLQ(), deadletter.ID(groupOf(t, bus, topic, eventbus.InGroup("mailer"), eventbus.ForTenant("acme")), topic, "acme", bad), hasStatus(deadletter.StatusMaxRetriesExceeded))
	rec.WaitFor(t, 1)

	want := map[string]float64{
		`eventbus_events_published_total{topic="` + topic + `"}`:                    2,
		`eventbus_events_consumed_total{group="mailer",topic="` + topic + `"}`:      1,
		`eventbus_events_failed_total{group="mailer",topic="` + topic + `"}`:        2,
		`eventbus_events_dead_lettered_total{group="mailer",topic="` + topic + `"}`: 2,
		`eventbus_dlq_retries_sent_total{kind="automatic",topic="` + topic + `"}`:   1,
		`eventbus_breaker_state`: 0,
	}
	// The counters of the last steps (dead-lettered, retry sent) are
	// incremented just after the entry's new state is visible, so scrape
	// until they settle (bounded).
	var got map[string]float64
	eventbustest.Eventually(t, "the counters to settle", func() error {
		got = scrape(t, reg)
		// The gauge counts every entry of the cluster's dlq.* topics, as the
		// view holds them (a shared cluster has other tests' entries too).
		stats, err := bus.DLQ().Stats(ctxT(t), deadletter.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if stats.ByStatus["max-retries-exceeded"] < 1 {
			t.Fatalf("stats %+v lack the failed event", stats)
		}
		want[`eventbus_dlq_entries{status="max-retries-exceeded"}`] = float64(stats.ByStatus["max-retries-exceeded"])
		return mismatches(got, want)
	})
	if _, ok := got[`eventbus_consumer_lag{group="mailer",topic="`+topic+`"}`]; !ok {
		t.Errorf("no consumer lag series for the mailer group; have %v", got)
	}
	for series := range got {
		if strings.Contains(series, "acme") {
			t.Errorf("series %s carries a tenant ID", series)
		}
	}
	if n := testutil.CollectAndCount(reg, "eventbus_publish_duration_seconds"); n != 1 {
		t.Errorf("publish duration histograms: %d", n)
	}
}

// mismatches names every series of want whose value in got differs, or
// returns nil.
func mismatches(got, want map[string]float64) error {
	var wrong []string
	for series, v := range want {
		if got[series] != v {
			wrong = append(wrong, fmt.Sprintf("%s = %v, want %v", series, got[series], v))
		}
	}
	if len(wrong) == 0 {
		return nil
	}
	slices.Sort(wrong)
	return errors.New(strings.Join(wrong, "\n"))
}

// scrape flattens a registry into "name{labels}" -> value.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name] = m.Gauge.GetValue()
			}
		}
	}
	return out
}
