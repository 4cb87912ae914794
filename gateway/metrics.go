package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics (see Gateway.Collector).
type metrics struct {
	published *prometheus.CounterVec   // route, status
	answers   *prometheus.CounterVec   // subscription, class
	latency   *prometheus.HistogramVec // subscription
}

func newMetrics() *metrics {
	return &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_gateway_publish_requests_total",
			Help: "HTTP publish requests, by route and answer status.",
		}, []string{"route", "status"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventbus_gateway_push_answers_total",
			Help: "Push requests by subscription and outcome: 2xx, retry (429 and 503, tried again in place), 4xx (dead-lettered, permanent), 5xx (and other answers), timeout, error (connection).",
		}, []string{"subscription", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventbus_gateway_push_duration_seconds",
			Help:    "Time from sending a push request to its answer, by subscription.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"subscription"}),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.published.Describe(ch)
	m.answers.Describe(ch)
	m.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.published.Collect(ch)
	m.answers.Collect(ch)
	m.latency.Collect(ch)
}

// Collector returns the gateway's metrics, to register with a Prometheus
// registry: eventbus_gateway_publish_requests_total{route,status},
// eventbus_gateway_push_answers_total{subscription,class} and
// eventbus_gateway_push_duration_seconds{subscription}. A push
// subscription's delivery rate, failures and lag are also the bus's own
// metrics of its consumer group (gateway.<name>).
func (g *Gateway) Collector() prometheus.Collector { return g.metrics }

func (m *metrics) observePublish(route string, status int) {
	m.published.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

func (m *metrics) observePush(sub string, class string, start time.Time) {
	m.answers.WithLabelValues(sub, class).Inc()
	m.latency.WithLabelValues(sub).Observe(time.Since(start).Seconds())
}

// answerClass is the class label of a push answer.
func answerClass(status int, err error, timedOut bool) string {
	switch {
	case timedOut:
		return "timeout"
	case err != nil:
		return "error"
	case status >= 200 && status < 300:
		return "2xx"
	case status == 429 || status == 503:
		return "retry"
	case status >= 400 && status < 500:
		return "4xx"
	default:
		return "5xx"
	}
}
