package eventbus_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/plexica/eventbus"
)

// A handler that waits on a database handles many tenants at once: events
// of one tenant (the record key) stay in order, different tenants run
// concurrently, up to Delivery.MaxConcurrency handlers.
func ExampleDelivery() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()

	var mu sync.Mutex
	seen := map[string][]int{} // tenant -> order numbers, as handled
	var wg sync.WaitGroup
	wg.Add(3 * 4)
	_, err := eventbus.Subscribe(ctx, bus, "core.order.placed", func(_ context.Context, ev eventbus.Event[int]) error {
		defer wg.Done()
		time.Sleep(10 * time.Millisecond) // the database write
		mu.Lock()
		defer mu.Unlock()
		seen[ev.TenantID] = append(seen[ev.TenantID], ev.Data)
		return nil
	}, eventbus.InGroup("fulfilment"), eventbus.WithDelivery(eventbus.Delivery{
		Ordering:       eventbus.OrderPerKey, // the default
		MaxConcurrency: 16,
	}))
	if err != nil {
		panic(err)
	}
	for n := 1; n <= 4; n++ {
		for _, tenant := range []string{"acme", "globex", "initech"} {
			if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: tenant}), bus, "core.order.placed", n); err != nil {
				panic(err)
			}
		}
	}
	wg.Wait()
	tenants := make([]string, 0, len(seen))
	for t := range seen {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		fmt.Println(t, seen[t])
	}
	// Output:
	// acme [1 2 3 4]
	// globex [1 2 3 4]
	// initech [1 2 3 4]
}
