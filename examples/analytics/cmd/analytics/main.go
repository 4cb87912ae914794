// Command analytics runs the sample-analytics example plugin (package
// github.com/plexica/eventbus/examples/analytics) next to `eventbus serve`:
//
//	go run ./examples/analytics/cmd/analytics -brokers 127.0.0.1:9092 -tenants acme,globex -follow
//
// Set EVENTBUS_INSTANCE_ID (or -instance-id) to the pod name for restarts
// that take the partitions back at once.
package main

import (
	"flag"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/examples/analytics"
	"github.com/plexica/eventbus/pluginrun"
)

func main() {
	every := flag.Int("summary-every", 100, "publish a summary every this many events of a tenant")
	pluginrun.Main(analytics.PluginID, func(events *eventbus.PluginClient) *analytics.Analytics {
		return analytics.NewAnalytics(events, *every) // called once the flags are parsed
	}, analytics.Handlers)
}
