// Command analytics runs the analytics example plugin (package
// github.com/plexica/eventbus/examples/analytics) next to `eventbus serve`:
//
//	go run ./examples/analytics/cmd/analytics -brokers 127.0.0.1:9092 -tenants acme,globex -follow
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/plexica/eventbus/examples/analytics"
	"github.com/plexica/eventbus/pluginrun"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated brokers")
	tenants := flag.String("tenants", "acme", "comma-separated tenants to serve from the start")
	follow := flag.Bool("follow", false, "follow the platform's installs and uninstalls of the plugin")
	instance := flag.String("instance-id", os.Getenv(EnvInstanceID), "stable ID of this instance in its consumer groups, for restarts without waiting out the session timeout; set it to the pod name (env "+EnvInstanceID+")")
	every := flag.Int("summary-every", 100, "publish a summary every this many events of a tenant")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := pluginrun.Run(ctx, analytics.Deployment(strings.Split(*brokers, ","), splitList(*tenants), *follow, *instance), analytics.New(*every), analytics.Handlers,
		func(*pluginrun.Deployment[analytics.Analytics]) {
			slog.Info("sample-analytics plugin running", "tenants", *tenants, "follow", *follow)
		})
	if err != nil {
		slog.Error("sample-analytics plugin failed", "err", err)
		os.Exit(1)
	}
}

// EnvInstanceID names the instance ID main passes to analytics.Deployment.
const EnvInstanceID = "EVENTBUS_INSTANCE_ID"

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
