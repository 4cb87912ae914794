package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// BenchmarkPublish compares publishing through the gateway (HTTP on
// loopback) with the library's Publish and PublishBatch, on the same bus
// in the same run: events/s and p95 per call. The figure that matters is
// http/library.
//
//	go test -run '^$' -bench Publish -benchtime 2000x ./gateway
func BenchmarkPublish(b *testing.B) {
	brokers := eventbustest.Brokers(b)
	bus := eventbustest.NewBus(b, eventbus.Config{}, brokers...)
	gw, err := gateway.New(gateway.Config{Bus: bus, AdminTokens: []string{adminToken}})
	if err != nil {
		b.Fatal(err)
	}
	srv := newBenchServer(b, gw)
	topic := eventbustest.UniqueTopic(b, "core.order.placed")
	data := orderData{A: 1, B: "x"}
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	envelope := fmt.Sprintf(`{"type":%q,"tenantId":"acme","data":{"a":1,"b":"x"}}`, topic)
	batchBody := "[" + strings.TrimSuffix(strings.Repeat(envelope+",", eventbus.MaxBatchSize), ",") + "]"
	batch := make([]eventbus.BatchEvent, eventbus.MaxBatchSize)
	for i := range batch {
		batch[i] = eventbus.BatchEvent{EventType: topic, Data: data, Metadata: meta}
	}
	ctx := context.Background()
	if _, err := bus.Publish(ctx, topic, data, meta); err != nil { // creates the topic
		b.Fatal(err)
	}
	run := func(name string, perCall int, call func() error) {
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			start := time.Now()
			for b.Loop() {
				t0 := time.Now()
				if err := call(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat)*perCall)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
	run("library/single", 1, func() error { _, err := bus.Publish(ctx, topic, data, meta); return err })
	run("http/single", 1, func() error { return srv.post("/api/events", envelope) })
	run("library/batch100", eventbus.MaxBatchSize, func() error { _, err := bus.PublishBatch(ctx, batch); return err })
	run("http/batch100", eventbus.MaxBatchSize, func() error { return srv.post("/api/events/batch", batchBody) })
}

// BenchmarkPushDelivery drains a backlog of 20,000 events over 1,000 keys
// to an endpoint that takes 10 ms, with a subscription's default
// settings, against the library's subscriber with a 10 ms handler on the
// same backlog.
//
//	go test -run '^$' -bench PushDelivery -benchtime 1x ./gateway
func BenchmarkPushDelivery(b *testing.B) {
	const backlog, keys, work = 20_000, 1_000, 10 * time.Millisecond
	brokers := eventbustest.Brokers(b)
	bus := eventbustest.NewBus(b, eventbus.Config{}, brokers...)
	gw, err := gateway.New(gateway.Config{Bus: bus, AdminTokens: []string{adminToken}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close(context.Background()) })
	topic := eventbustest.UniqueTopic(b, "core.order.placed")
	ctx := context.Background()
	for i := 0; i < backlog; i += eventbus.MaxBatchSize {
		batch := make([]eventbus.BatchEvent, eventbus.MaxBatchSize)
		for j := range batch {
			key := fmt.Sprintf("k%d", (i+j)%keys)
			batch[j] = eventbus.BatchEvent{EventType: topic, Data: keyed{key, i + j},
				Metadata: eventbus.PublishMetadata{TenantID: "acme"}, Options: []eventbus.PublishOption{eventbus.WithPartitionKey(key)}}
		}
		if _, err := bus.PublishBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	drain := func(b *testing.B, subscribe func(handle func()) error) {
		var n atomic.Int64
		done := make(chan struct{})
		start := time.Now()
		handle := func() {
			time.Sleep(work)
			if n.Add(1) == backlog {
				close(done)
			}
		}
		if err := subscribe(handle); err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Minute):
			b.Fatalf("%d of %d delivered", n.Load(), backlog)
		}
		b.ReportMetric(float64(backlog)/time.Since(start).Seconds(), "events/s")
	}
	for b.Loop() {
		b.Run("library", func(b *testing.B) {
			drain(b, func(handle func()) error {
				_, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error { handle(); return nil },
					eventbus.InGroup(eventbustest.UniqueID("bench-lib")), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
				return err
			})
		})
		b.Run("push", func(b *testing.B) {
			drain(b, func(handle func()) error {
				srv := endpointServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { handle() }))
				return gw.Subscribe(ctx, gateway.Subscription{Name: eventbustest.UniqueID("bench"), Events: []string{topic}, Endpoint: srv, FromBeginning: true})
			})
		})
	}
}

// BenchmarkPushLatency publishes 1,000 events/s for 3 s over 1,000 keys
// and measures publish-to-handler time: at the push endpoint (which then
// takes 10 ms) against the library's subscriber with a 10 ms handler, on
// the same bus in the same run. It reports the p95 of each.
//
//	go test -run '^$' -bench PushLatency -benchtime 1x ./gateway
func BenchmarkPushLatency(b *testing.B) {
	const rate, seconds, keys, work = 1000, 3, 1000, 10 * time.Millisecond
	brokers := eventbustest.Brokers(b)
	bus := eventbustest.NewBus(b, eventbus.Config{}, brokers...)
	gw, err := gateway.New(gateway.Config{Bus: bus, AdminTokens: []string{adminToken}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close(context.Background()) })
	ctx := context.Background()
	type stamped struct {
		Key  string `json:"key"`
		Sent int64  `json:"sent"` // UnixNano
	}
	measure := func(b *testing.B, topic string, subscribe func(record func(sent int64)) error) {
		var mu sync.Mutex
		lat := make([]time.Duration, 0, rate*seconds)
		all := make(chan struct{})
		record := func(sent int64) {
			d := time.Since(time.Unix(0, sent))
			mu.Lock()
			lat = append(lat, d)
			if len(lat) == rate*seconds {
				close(all)
			}
			mu.Unlock()
			time.Sleep(work)
		}
		if err := subscribe(record); err != nil {
			b.Fatal(err)
		}
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := range rate * seconds {
			<-tick.C
			key := fmt.Sprintf("k%d", i%keys)
			if err := bus.PublishAsync(ctx, topic, stamped{key, time.Now().UnixNano()}, eventbus.PublishMetadata{TenantID: "acme"},
				func(string, error) {}, eventbus.WithPartitionKey(key)); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatal("not every event arrived")
		}
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
	for b.Loop() {
		b.Run("library", func(b *testing.B) {
			topic := eventbustest.UniqueTopic(b, "core.order.placed")
			measure(b, topic, func(record func(int64)) error {
				_, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](topic), func(_ context.Context, ev eventbus.RawEvent) error {
					var s stamped
					_ = json.Unmarshal(ev.Data, &s)
					record(s.Sent)
					return nil
				}, eventbus.InGroup(eventbustest.UniqueID("lat-lib")))
				return err
			})
		})
		b.Run("push", func(b *testing.B) {
			topic := eventbustest.UniqueTopic(b, "core.order.placed")
			measure(b, topic, func(record func(int64)) error {
				srv := endpointServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var ev eventbus.Event[stamped]
					_ = json.NewDecoder(r.Body).Decode(&ev)
					record(ev.Data.Sent)
				}))
				return gw.Subscribe(ctx, gateway.Subscription{Name: eventbustest.UniqueID("lat"), Events: []string{topic}, Endpoint: srv})
			})
		})
	}
}
