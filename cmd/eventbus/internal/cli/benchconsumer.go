package cli

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
)

// benchConsumerCmd is the hidden command that `eventbus bench` runs in a
// child process for its crash phase, and kills with SIGKILL halfway through
// the backlog: a subscription printing "handled <event ID>" for each event
// its handler handled (bench.RunCrashConsumer). It stops when its standard
// input ends, so that it does not outlive a bench that died.
func (a *app) benchConsumerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:    bench.CrashConsumerCommand,
		Short:  "Consume a topic for the bench's crash phase (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			var cfg bench.CrashConsumerConfig
			cfg.Brokers = splitList(a.stringSetting(cmd, "brokers", EnvBrokers))
			cfg.Topic, _ = f.GetString("topic")
			cfg.Group, _ = f.GetString("group")
			cfg.InstanceID, _ = f.GetString("instance-id")
			cfg.HandlerDelay, _ = f.GetDuration("handler-delay")
			cfg.Logger = a.libLog
			switch {
			case len(cfg.Brokers) == 0:
				return usageErrorf("--brokers is required")
			case cfg.Topic == "":
				return usageErrorf("--topic is required")
			case cfg.Group == "":
				return usageErrorf("--group is required")
			case cfg.HandlerDelay < 0:
				return usageErrorf("--handler-delay %s is negative", cfg.HandlerDelay)
			}
			conn := brokerSettings{Brokers: cfg.Brokers}
			if err := a.resolveSecurity(cmd, &conn); err != nil {
				return err
			}
			cfg.SASL, cfg.TLS = conn.SASL, conn.TLS
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go func() {
				_, _ = io.Copy(io.Discard, os.Stdin)
				cancel()
			}()
			return bench.RunCrashConsumer(ctx, cfg, a.stdout)
		},
	}
	f := cmd.Flags()
	f.String("brokers", "", "brokers, host:port,... (env "+EnvBrokers+")")
	f.String("topic", "", "topic to consume from the beginning")
	f.String("group", "", "consumer group")
	f.String("instance-id", "", "static member ID in the group (none: dynamic membership)")
	f.Duration("handler-delay", bench.CrashHandlerTime, "the handler's mean time per event (each call ± 50%, at random)")
	addSecurityFlags(cmd)
	return cmd
}
