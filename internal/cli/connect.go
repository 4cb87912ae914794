package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
)

// clientStopTimeout bounds how long a short-lived command (publish, tail,
// topics) waits for its bus to stop cleanly.
const clientStopTimeout = 15 * time.Second

// addBrokerFlags adds the flags of the commands that talk to brokers:
// --brokers and --connect-timeout.
func addBrokerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("brokers", DefaultBrokerAddr, "Kafka-protocol brokers, host:port,... (env "+EnvBrokers+"; eventbus serve prints its own as "+BrokersLinePrefix+"...)")
	f.Duration("connect-timeout", DefaultConnectTimeout, "how long to wait for a broker to answer")
}

// brokerSettings are the resolved --brokers and --connect-timeout.
type brokerSettings struct {
	Brokers        []string
	ConnectTimeout time.Duration
}

// resolveBrokers reads and checks --brokers (or EVENTBUS_BROKERS) and
// --connect-timeout; mistakes are usage errors.
func (a *app) resolveBrokers(cmd *cobra.Command) (brokerSettings, error) {
	s := brokerSettings{Brokers: splitList(a.stringSetting(cmd, "brokers", EnvBrokers))}
	s.ConnectTimeout, _ = cmd.Flags().GetDuration("connect-timeout")
	if len(s.Brokers) == 0 {
		return s, usageErrorf("--brokers is empty; give host:port of a broker (e.g. %s), or run `eventbus serve` and use the %s line it prints", DefaultBrokerAddr, BrokersLinePrefix)
	}
	for _, b := range s.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return s, usageErrorf("broker %q is not host:port (e.g. %s)", b, DefaultBrokerAddr)
		}
	}
	if s.ConnectTimeout <= 0 {
		return s, usageErrorf("--connect-timeout must be positive, e.g. 10s")
	}
	return s, nil
}

// connect returns a connected client named clientID, or one line saying
// what to do when no broker answers.
func (a *app) connect(ctx context.Context, s brokerSettings, clientID string) (*eventbus.Client, error) {
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers:        s.Brokers,
		ClientID:       clientID,
		Logger:         a.libLog,
		ConnectTimeout: s.ConnectTimeout,
	})
	if err != nil {
		return nil, err
	}
	if err := client.Connect(ctx); err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		if errors.Is(err, eventbus.ErrBrokerUnavailable) {
			return nil, fmt.Errorf("no broker answered at %s within %s: start one with `eventbus serve` (it prints %s...), or point --brokers or %s at your cluster (raise --connect-timeout if it is slow)",
				strings.Join(s.Brokers, ","), s.ConnectTimeout, BrokersLinePrefix, EnvBrokers)
		}
		return nil, err
	}
	return client, nil
}

// errInterrupted is what a command returns when a signal stopped it
// before it finished its work.
var errInterrupted = errors.New("interrupted")

// stopBus shuts bus down and closes client (when not nil), bounded by
// clientStopTimeout, logging what went wrong.
func (a *app) stopBus(ctx context.Context, bus *eventbus.Bus, client *eventbus.Client) {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clientStopTimeout)
	defer cancel()
	if bus != nil {
		if err := bus.Shutdown(stopCtx); err != nil {
			a.log.Warn("eventbus: could not stop cleanly", "err", err)
		}
	}
	if client != nil {
		client.Close()
	}
}

// argsUsage checks the number of positional arguments and explains a
// mismatch with an example.
func argsUsage(minArgs, maxArgs int, what, example string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		if len(args) < minArgs {
			return usageErrorf("%s needs %s, e.g. %s", name, what, example)
		}
		if maxArgs >= 0 && len(args) > maxArgs {
			return usageErrorf("%s takes %s, but got %d arguments (%s); e.g. %s", name, what, len(args), strings.Join(args, " "), example)
		}
		return nil
	}
}

// fresh returns a context whose metadata requests (listing and describing
// topics) reach a broker instead of being answered from the client's
// metadata cache, which may be up to 5 s old (franz-go's MetadataMinAge):
// a topic created a moment ago by another process is seen at once. It does
// so by asking for the authorized operations too, which the cache does not
// hold.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }
