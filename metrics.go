package eventbus

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plexica/eventbus/internal/dlq"
)

// Metrics are the bus's Prometheus series. Labels are bounded on purpose:
// topic and consumer group (the GroupID given to Subscribe, without the
// tenant filter), never a tenant ID or error text.
//
//	m, _ := eventbus.NewMetrics(prometheus.DefaultRegisterer)
//	bus, _ := eventbus.NewBus(client, eventbus.Config{Metrics: m})
type Metrics struct {
	published       *prometheus.CounterVec
	publishFailed   *prometheus.CounterVec
	publishDuration *prometheus.HistogramVec
	consumed        *prometheus.CounterVec
	failed          *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
	handleDuration  *prometheus.HistogramVec
	retriesSent     *prometheus.CounterVec

	mu  sync.Mutex
	bus *Bus // the first bus using these metrics: its gauges are reported
}

// NewMetrics creates the series and registers them, with the gauges that
// are read when scraped (breaker state, DLQ entries by status), on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_events_published_total", Help: "Events the broker acknowledged.",
		}, []string{"topic"}),
		publishFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_publish_failures_total", Help: "Events that could not be published (broker errors, open breaker).",
		}, []string{"topic"}),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eventbus_publish_duration_seconds", Help: "Time from Publish (or PublishBatch) to the broker's acknowledgement.", Buckets: latency,
		}, []string{"topic"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_events_consumed_total", Help: "Events a handler handled successfully.",
		}, []string{"topic", "group"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_events_failed_total", Help: "Handler failures (errors, panics, malformed records).",
		}, []string{"topic", "group"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_events_dead_lettered_total", Help: "Failures written to the dead letter queue.",
		}, []string{"topic", "group"}),
		handleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eventbus_handle_duration_seconds", Help: "Handler run time.", Buckets: latency,
		}, []string{"topic", "group"}),
		retriesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_dlq_retries_sent_total", Help: "Dead-letter retries sent to their consumer group.",
		}, []string{"topic", "kind"}),
	}
	collectors := []prometheus.Collector{
		m.published, m.publishFailed, m.publishDuration, m.consumed, m.failed,
		m.deadLettered, m.handleDuration, m.retriesSent, gaugeCollector{m},
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var (
	breakerDesc = prometheus.NewDesc("eventbus_breaker_state",
		"Publish circuit breaker state: 0 closed, 1 half-open, 2 open.", nil, nil)
	dlqEntriesDesc = prometheus.NewDesc("eventbus_dlq_entries",
		"Dead-letter entries by status, as this instance's view holds them.", []string{"status"}, nil)
	lagDesc = prometheus.NewDesc("eventbus_consumer_lag",
		"Events not yet committed by this process's consumer groups, summed per GroupID (over its tenant filters) and topic.",
		[]string{"group", "topic"}, nil)
	pendingDesc = prometheus.NewDesc("eventbus_consumer_pending_events",
		"Unfinished events this process holds (waiting for their key or a handler, or running), per GroupID and topic; capped by Delivery.MaxPending per subscription.",
		[]string{"group", "topic"}, nil)
	fetchFailingDesc = prometheus.NewDesc("eventbus_consumer_fetch_failing",
		"1 while this process's fetches of a topic keep failing (a revoked permission, a deleted topic), per GroupID and topic; see Bus.ConsumerErrors.",
		[]string{"group", "topic"}, nil)
)

// gaugeCollector reports the gauges read at scrape time.
type gaugeCollector struct{ m *Metrics }

func (g gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- breakerDesc
	ch <- dlqEntriesDesc
	ch <- lagDesc
	ch <- pendingDesc
	ch <- fetchFailingDesc
}

func (g gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	g.m.mu.Lock()
	b := g.m.bus
	g.m.mu.Unlock()
	if b == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, float64(b.breaker.state()))
	counts := b.dlq.q.Counts() // zeros before the DLQ starts
	for _, s := range dlq.Statuses {
		ch <- prometheus.MustNewConstMetric(dlqEntriesDesc, prometheus.GaugeValue, float64(counts[string(s)]), string(s))
	}
	for key, lag := range b.consumerLag() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag), key.group, key.topic)
	}
	for key, n := range b.consumerPending() {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), key.group, key.topic)
	}
	for key := range b.fetchFailing() {
		ch <- prometheus.MustNewConstMetric(fetchFailingDesc, prometheus.GaugeValue, 1, key.group, key.topic)
	}
}

// attach makes b the bus whose gauges are reported, if none is yet.
func (m *Metrics) attach(b *Bus) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bus == nil {
		m.bus = b
	}
}

// The recording methods are nil-safe: a bus without Metrics records nothing.

func (m *Metrics) observePublish(topic string, n int, start time.Time, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.publishFailed.WithLabelValues(topic).Add(float64(n))
		return
	}
	m.published.WithLabelValues(topic).Add(float64(n))
	m.publishDuration.WithLabelValues(topic).Observe(time.Since(start).Seconds())
}

func (m *Metrics) observeHandled(topic, group string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.handleDuration.WithLabelValues(topic, group).Observe(time.Since(start).Seconds())
	if err != nil {
		m.failed.WithLabelValues(topic, group).Inc()
		return
	}
	m.consumed.WithLabelValues(topic, group).Inc()
}

func (m *Metrics) observeDeadLettered(topic, group string) {
	if m != nil {
		m.deadLettered.WithLabelValues(topic, group).Inc()
	}
}

func (m *Metrics) observeRetrySent(topic string, manual bool) {
	if m == nil {
		return
	}
	kind := "automatic"
	if manual {
		kind = "manual"
	}
	m.retriesSent.WithLabelValues(topic, kind).Inc()
}
