package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlog is what waits in an outbox table.
type Backlog struct {
	// Rows is how many events wait to be sent.
	Rows int64
	// OldestAge is how long the oldest of them has waited (0 when none).
	OldestAge time.Duration
	// Dead is how many rows were set aside (dead_at), refused for good.
	Dead int64
}

// Backlog reads the outbox table's backlog (one query, a count: cheap while
// the relay keeps up, as the table then holds only what is in flight). An
// error means the database is unreachable or the table missing.
func (r *Relay) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldest float64
	err := r.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE dead_at IS NULL),
		coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE dead_at IS NULL)), 0)::float8,
		count(*) FILTER (WHERE dead_at IS NOT NULL) FROM `+r.table.sql()).Scan(&b.Rows, &oldest, &b.Dead)
	if err != nil {
		return Backlog{}, fmt.Errorf("outbox: backlog of %s: %w", r.table.plain(), err)
	}
	b.OldestAge = time.Duration(oldest * float64(time.Second))
	return b, nil
}

// Collector returns a Prometheus collector of the relay: the counters of
// RelayStats and, read on each scrape (Backlog, bounded by 2 s), the
// backlog. Register it once per relay:
//
//	registry.MustRegister(relay.Collector())
//
// Metrics (label table): eventbus_outbox_sent_total,
// eventbus_outbox_dead_total, eventbus_outbox_shards_held,
// eventbus_outbox_backlog_rows, eventbus_outbox_backlog_oldest_seconds,
// eventbus_outbox_dead_rows and eventbus_outbox_up (1 when the backlog
// query answered).
func (r *Relay) Collector() prometheus.Collector { return relayCollector{r} }

type relayCollector struct{ r *Relay }

var (
	descSent   = prometheus.NewDesc("eventbus_outbox_sent_total", "Events the relay sent and deleted from the outbox.", []string{"table"}, nil)
	descDead   = prometheus.NewDesc("eventbus_outbox_dead_total", "Rows the relay set aside as refused for good.", []string{"table"}, nil)
	descShards = prometheus.NewDesc("eventbus_outbox_shards_held", "Shards of the outbox this relay holds.", []string{"table"}, nil)
	descRows   = prometheus.NewDesc("eventbus_outbox_backlog_rows", "Events waiting in the outbox.", []string{"table"}, nil)
	descOldest = prometheus.NewDesc("eventbus_outbox_backlog_oldest_seconds", "Age of the oldest event waiting in the outbox.", []string{"table"}, nil)
	descDeadR  = prometheus.NewDesc("eventbus_outbox_dead_rows", "Rows set aside in the outbox (dead_at).", []string{"table"}, nil)
	descUp     = prometheus.NewDesc("eventbus_outbox_up", "1 when the outbox table answered the backlog query.", []string{"table"}, nil)
)

func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSent, descDead, descShards, descRows, descOldest, descDeadR, descUp} {
		ch <- d
	}
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.r.table.plain()
	s := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(s.Sent), t)
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(s.Dead), t)
	ch <- prometheus.MustNewConstMetric(descShards, prometheus.GaugeValue, float64(s.Shards), t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := c.r.Backlog(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0, t)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1, t)
	ch <- prometheus.MustNewConstMetric(descRows, prometheus.GaugeValue, float64(b.Rows), t)
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, b.OldestAge.Seconds(), t)
	ch <- prometheus.MustNewConstMetric(descDeadR, prometheus.GaugeValue, float64(b.Dead), t)
}
