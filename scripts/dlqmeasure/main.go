// Command dlqmeasure fills a dead letter queue and measures what it costs a
// plain subscriber: the figures for a DLQ of 100,000 entries in the README.
//
//	go run ./scripts/dlqmeasure fill BROKERS TOPIC N        # N entries, as 32 writers route them
//	go run ./scripts/dlqmeasure subscribe BROKERS TOPIC SECS # publish 200/s, 1 in 50 fails; heap and RSS

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexica/eventbus"
)

func rss() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

func heap() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

func main() {
	if len(os.Args) != 5 || (os.Args[1] != "fill" && os.Args[1] != "subscribe") {
		fmt.Fprintln(os.Stderr, "usage: dlqmeasure fill BROKERS TOPIC N | dlqmeasure subscribe BROKERS TOPIC SECONDS")
		os.Exit(2)
	}
	mode, brokers := os.Args[1], strings.Split(os.Args[2], ",")
	ctx := context.Background()
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: brokers})
	if err == nil {
		err = client.Connect(ctx)
	}
	if err != nil {
		panic(err)
	}
	cfg := eventbus.Config{}
	bus, err := eventbus.NewBus(client, cfg)
	if err != nil {
		panic(err)
	}
	switch mode {
	case "fill": // fill TOPIC N
		topic := os.Args[3]
		n, _ := strconv.Atoi(os.Args[4])
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 32 {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					ev := eventbus.RawEvent{ID: fmt.Sprintf("ev-%d", i), Type: topic, TenantID: fmt.Sprintf("t%d", i%100), Timestamp: time.Now(),
						Data: []byte(`{"userId":"u-` + strconv.FormatInt(i, 10) + `","email":"someone@example.test","note":"a realistic payload of a few hundred bytes goes here to make the entry the size of a real one"}`)}
					if _, err := bus.DLQ().RouteToDLQ(ctx, topic, ev, "filler", errors.New("smtp down: connection refused")); err != nil {
						panic(err)
					}
				}
			})
		}
		wg.Wait()
		fmt.Printf("filled %d entries in %s\n", n, time.Since(start).Round(time.Millisecond))
	case "subscribe": // subscribe TOPIC SECONDS: 1 event in 50 fails; publishes 200/s itself
		topic := os.Args[3]
		secs, _ := strconv.Atoi(os.Args[4])
		before := heap()
		var handled atomic.Int64
		_, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](topic), func(_ context.Context, ev eventbus.RawEvent) error {
			if handled.Add(1)%50 == 0 {
				return errors.New("one in 50 fails")
			}
			return nil
		}, eventbus.InGroup("measure-"+strconv.Itoa(os.Getpid())))
		if err != nil {
			panic(err)
		}
		tick := time.NewTicker(5 * time.Millisecond)
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		i := 0
		for time.Now().Before(deadline) {
			<-tick.C
			i++
			if _, err := bus.Publish(ctx, topic, i, eventbus.PublishMetadata{TenantID: "acme"}); err != nil {
				panic(err)
			}
		}
		fmt.Printf("subscriber (key=%t): heap in use %.1f MiB before, %.1f MiB after %ds (%d handled); RSS %s\n",
			os.Getenv("KEY") != "", before, heap(), secs, handled.Load(), rss())
	}
	_ = bus.Shutdown(ctx)
}
