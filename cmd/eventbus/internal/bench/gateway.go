package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/gateway"
)

// Targets of the gateway phase (issue 22).
const (
	// TargetGatewayPublishRatio is batched HTTP publish / PublishBatch, at
	// least.
	TargetGatewayPublishRatio = 0.5
	// TargetGatewayPush is a push subscription's events/s with default
	// settings and a 10 ms endpoint, at least.
	TargetGatewayPush = 1_000
)

// gatewayBodies is how many batch bodies the HTTP publishers cycle
// through; they are built before the clock starts.
const gatewayBodies = 16

// Gateway compares the HTTP gateway (package gateway, as `eventbus serve`
// mounts it) with the library on the same bus in the same run: batched
// publishing (POST /api/events/batch of 100 envelopes against
// PublishBatch, from Config.Publishers goroutines, in alternating turns)
// and a push subscription with default settings draining Backlog events
// over Keys tenants to an endpoint taking HandlerMs, against Bus.Subscribe
// with default options and a handler taking as long.
type Gateway struct {
	HTTPBatch    Rate    `json:"httpBatch"`
	LibraryBatch Rate    `json:"libraryBatch"`
	PublishRatio float64 `json:"publishRatio"` // HTTPBatch/LibraryBatch

	HandlerMs float64 `json:"handlerMs"`
	Backlog   int     `json:"backlog"`
	Keys      int     `json:"keys"`
	Push      Drain   `json:"push"`
	Library   Drain   `json:"library"`
	PushRatio float64 `json:"pushRatio"` // Push/Library
}

// gatewayPhase runs the gateway phase.
func (r *runner) gatewayPhase(ctx context.Context) (*Gateway, error) {
	g := &Gateway{HandlerMs: ms(SlowHandlerTime), Backlog: r.cfg.Backlog, Keys: SlowKeys}
	step := r.step(PhaseGateway)
	token := randomHex(16)
	gw, err := gateway.New(gateway.Config{Bus: r.bus, AdminTokens: []string{token}, Logger: r.cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Close(context.WithoutCancel(ctx)) }()
	base, stopHTTP, err := serveHTTP(gw)
	if err != nil {
		return nil, err
	}
	defer stopHTTP()

	// Batched publishing.
	topic := r.topics.name("gw", "pub")
	if err := r.warmUpOurs(ctx, topic); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	bodies, err := r.gatewayBatchBodies(topic)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = r.cfg.Publishers
	client := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()
	turn := r.cfg.Duration / throughputRounds
	libLim, httpLim := r.newLimit(), r.newLimit()
	r.progress("%s gateway: batched publish, PublishBatch and POST /api/events/batch (100 envelopes), %d goroutines each, %s in %d turns",
		step, r.cfg.Publishers, r.cfg.Duration, throughputRounds)
	var libEvents, httpEvents int64
	var libTook, httpTook time.Duration
	for range throughputRounds {
		rate, err := r.oursThroughput(ctx, topic, turn, libLim)
		if err != nil {
			return nil, fmt.Errorf("gateway, library publish: %w", err)
		}
		libEvents, libTook = libEvents+rate.Events, libTook+time.Duration(rate.Seconds*float64(time.Second))
		err = r.profiled("gateway-publish", func() error {
			rate, err = r.httpThroughput(ctx, client, base+"/api/events/batch", token, bodies, turn, httpLim)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("gateway, HTTP publish: %w", err)
		}
		httpEvents, httpTook = httpEvents+rate.Events, httpTook+time.Duration(rate.Seconds*float64(time.Second))
	}
	g.LibraryBatch, g.HTTPBatch = newRate(libEvents, libTook), newRate(httpEvents, httpTook)
	g.PublishRatio = g.HTTPBatch.PerSecond / g.LibraryBatch.PerSecond
	r.progress("      library: %.0f events/s; HTTP: %.0f events/s", g.LibraryBatch.PerSecond, g.HTTPBatch.PerSecond)

	// Push delivery.
	topic = r.topics.name("gw", "push")
	r.progress("%s gateway: push delivery, publishing a backlog of %d events over %d tenants (raw producer)", step, g.Backlog, SlowKeys)
	if _, err := r.fillBacklog(ctx, topic, g.Backlog); err != nil {
		return nil, fmt.Errorf("gateway: backlog: %w", err)
	}
	sides := []struct {
		name, what string
		drain      *Drain
		start      slowSide
	}{
		{"library", "Subscribe, default options", &g.Library, r.oursSlow(eventbus.Delivery{})},
		{"push", "a push subscription, default settings", &g.Push, pushSide(gw)},
	}
	for _, side := range sides {
		r.progress("%s gateway (%s per event), %s: %s, up to %s", step, SlowHandlerTime, side.name, side.what, r.cfg.Duration)
		err := r.profiled("gateway-"+side.name, func() (err error) {
			*side.drain, err = r.runSlowSide(ctx, topic, side.start)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("gateway, %s: %w", side.name, err)
		}
		r.progress("      %s: %.0f events/s (%d events in %.2fs)", side.name, side.drain.PerSecond, side.drain.Handled, side.drain.Seconds)
	}
	g.PushRatio = g.Push.PerSecond / g.Library.PerSecond
	return g, nil
}

// serveHTTP serves h on a free loopback port.
func serveHTTP(h http.Handler) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// gatewayBatchBodies builds the bodies of the HTTP batches: 100 of the
// run's events as the bus's envelopes each.
func (r *runner) gatewayBatchBodies(topic string) ([][]byte, error) {
	type envelope struct {
		Type     string  `json:"type"`
		TenantID string  `json:"tenantId"`
		Data     payload `json:"data"`
	}
	bodies := make([][]byte, gatewayBodies)
	for b := range bodies {
		batch := make([]envelope, eventbus.MaxBatchSize)
		for j := range batch {
			i := b*eventbus.MaxBatchSize + j
			batch[j] = envelope{Type: topic, TenantID: r.events.meta(i).TenantID, Data: r.events.data(i, 0)}
		}
		body, err := json.Marshal(batch)
		if err != nil {
			return nil, err
		}
		bodies[b] = body
	}
	return bodies, nil
}

// httpThroughput posts batch bodies from Config.Publishers goroutines for
// d (or until lim), each waiting for its answer.
func (r *runner) httpThroughput(ctx context.Context, client *http.Client, url, token string, bodies [][]byte, d time.Duration, lim *limit) (Rate, error) {
	var acked atomic.Int64
	errs := make([]error, r.cfg.Publishers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range r.cfg.Publishers {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline) && lim.take(eventbus.MaxBatchSize); i++ {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					errs[w] = err
					return
				}
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", gateway.MediaJSON)
				resp, err := client.Do(req)
				if err != nil {
					errs[w] = err
					return
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs[w] = fmt.Errorf("the gateway answered %d: %s", resp.StatusCode, answer)
					return
				}
				acked.Add(eventbus.MaxBatchSize)
			}
		})
	}
	wg.Wait()
	return newRate(acked.Load(), time.Since(start)), errors.Join(errs...)
}

// pushSide is the side of a push subscription of gw, with default
// settings, to an endpoint that runs the slow handler.
func pushSide(gw *gateway.Gateway) slowSide {
	return func(ctx context.Context, topic string, c *drainCounter) (func(), error) {
		base, stopHTTP, err := serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			slowWork(c)
			w.WriteHeader(http.StatusNoContent)
		}))
		if err != nil {
			return nil, err
		}
		name := "bench-" + randomHex(4)
		sctx, cancel := context.WithTimeout(ctx, setupTimeout)
		defer cancel()
		if err := gw.Subscribe(sctx, gateway.Subscription{Name: name, Events: []string{topic}, Endpoint: base + "/events", FromBeginning: true}); err != nil {
			stopHTTP()
			return nil, err
		}
		return func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
			defer cancel()
			_ = gw.Unsubscribe(uctx, name)
			stopHTTP()
		}, nil
	}
}
