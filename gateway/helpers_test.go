package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

const (
	adminToken = "admin-token-0123456789abcdef"
	acmeToken  = "acme-token-0123456789abcdef"
	// crmToken is plugin crm's for tenant acme; anyCRMToken plugin crm's
	// for any tenant.
	crmToken    = "crm-acme-token-0123456789abcdef"
	anyCRMToken = "crm-any-token-0123456789abcdef"
)

// fixture is a bus on its own brokers (or the shared real cluster) with a
// gateway served by an httptest server.
type fixture struct {
	t       *testing.T
	brokers []string
	bus     *eventbus.Bus
	gw      *gateway.Gateway
	srv     *httptest.Server
}

func newFixture(t *testing.T, cfg gateway.Config, busCfg eventbus.Config) *fixture {
	t.Helper()
	brokers := eventbustest.Brokers(t)
	if busCfg.TracerProvider == nil {
		busCfg.TracerProvider = noop.NewTracerProvider()
	}
	bus := eventbustest.NewBus(t, busCfg, brokers...)
	cfg.Bus = bus
	if cfg.AdminTokens == nil {
		cfg.AdminTokens = []string{adminToken}
	}
	if cfg.TenantTokens == nil {
		cfg.TenantTokens = map[string]string{acmeToken: "acme"}
	}
	if cfg.PluginTokens == nil {
		cfg.PluginTokens = map[string]gateway.PluginScope{crmToken: {PluginID: "crm", TenantID: "acme"}, anyCRMToken: {PluginID: "crm"}}
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
		defer cancel()
		_ = gw.Close(ctx)
	})
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &fixture{t: t, brokers: brokers, bus: bus, gw: gw, srv: srv}
}

// answer is a decoded HTTP answer.
type answer struct {
	Status int
	Body   map[string]any
	Raw    string
}

// post sends body to path with the headers (a Content-Type among them)
// and the admin token unless headers set Authorization ("" drops it).
func (f *fixture) post(path string, body string, headers map[string]string) answer {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewBufferString(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

// records reads n records of topic from the start, or fails the test.
func records(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records before the deadline", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// endOffsets is how many records topic holds, all partitions together.
func endOffsets(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// metricValue is the value of the gateway's counter name with labels (0
// when it has none yet).
func metricValue(t *testing.T, gw *gateway.Gateway, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(gw.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// benchServer is the gateway on an httptest server, for benchmarks.
type benchServer struct {
	url    string
	client *http.Client
}

func newBenchServer(b testing.TB, gw *gateway.Gateway) *benchServer {
	srv := httptest.NewServer(gw)
	b.Cleanup(srv.Close)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	return &benchServer{url: srv.URL, client: &http.Client{Transport: transport}}
}

func (s *benchServer) post(path, body string) error {
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, raw)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// endpointServer serves h until the test or benchmark ends, and returns
// its URL.
func endpointServer(b testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}
