package pluginrun

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/plexica/eventbus"
)

// EnvInstanceID is the environment variable FlagConfig reads the default
// of -instance-id from: set it to the pod name.
const EnvInstanceID = "EVENTBUS_INSTANCE_ID"

// FlagConfig defines the flags of a plugin command on fs and returns the
// function that builds the Config from them once fs is parsed:
//
//	-brokers      comma-separated brokers (default 127.0.0.1:9092)
//	-tenants      comma-separated tenants served from the start (default acme)
//	-follow       follow the platform's installs and uninstalls of the plugin
//	-instance-id  the static member ID of this instance (default $EVENTBUS_INSTANCE_ID)
func FlagConfig(fs *flag.FlagSet, pluginID string) func() Config {
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated brokers")
	tenants := fs.String("tenants", "acme", "comma-separated tenants to serve from the start")
	follow := fs.Bool("follow", false, "follow the platform's installs and uninstalls of the plugin")
	instance := fs.String("instance-id", os.Getenv(EnvInstanceID),
		"stable ID of this instance in its consumer groups, for restarts without waiting out the session timeout; set it to the pod name (env "+EnvInstanceID+")")
	return func() Config {
		cfg := Config{PluginID: pluginID, Tenants: splitList(*tenants), Follow: *follow}
		cfg.Client.Brokers = splitList(*brokers)
		cfg.Bus.Consumer.InstanceID = *instance
		return cfg
	}
}

// Main runs a plugin deployment as a command: it reads the flags of
// FlagConfig (and any the caller defined before) from the command line,
// runs the deployment (see Run) until SIGINT or SIGTERM, and exits with
// status 1, logging why, when it fails.
//
//	func main() { pluginrun.Main(crm.PluginID, crm.NewCRM, crm.Handlers) }
func Main[S any](pluginID string, newState func(*eventbus.PluginClient) *S, handlers func(*Deployment[S]) []eventbus.HandlerSpec) {
	cfg := FlagConfig(flag.CommandLine, pluginID)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := cfg()
	err := Run(ctx, c, newState, handlers, func(*Deployment[S]) {
		slog.Info("plugin running", "plugin", pluginID, "tenants", c.Tenants, "follow", c.Follow)
	})
	if err != nil {
		slog.Error("plugin failed", "plugin", pluginID, "err", err)
		stop()
		os.Exit(1)
	}
}

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
