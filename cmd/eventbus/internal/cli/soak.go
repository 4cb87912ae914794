package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
)

// DefaultSoakMaxBytes is soak's --broker-max-bytes: low, so that a soak of
// minutes reaches it.
const DefaultSoakMaxBytes = "64MiB"

func (a *app) soakCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Load an embedded broker for minutes and report its memory (start, peak, end)",
		Long: `Start the embedded broker in a separate process (this binary's "serve", storing
under a temporary directory, its size cap set by --broker-max-bytes), publish
--rate events per second to a new topic with the default retention (7 days)
through a Bus, with one subscriber handling them, for --duration, and read the
broker's resident memory (RSS) every --sample: its start, peak and end, and what
it does once the bytes published pass the cap. With the cap honoured, RSS stays
flat from then on however long the load goes on.

It lasts minutes (10 by default) and is not part of "bench". RSS is read from
/proc: Linux only.`,
		Example: `  eventbus soak
  eventbus soak --duration 2m --rate 5000 --broker-max-bytes 32MiB --json > soak.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			rate, _ := f.GetInt("rate")
			duration, _ := f.GetDuration("duration")
			sample, _ := f.GetDuration("sample")
			asJSON, _ := f.GetBool("json")
			capText, _ := f.GetString("broker-max-bytes")
			maxBytes, err := parseByteSize(capText)
			switch {
			case err != nil:
				return usageErrorf("--broker-max-bytes: %v", err)
			case rate <= 0:
				return usageErrorf("--rate %d is not a positive rate (events per second)", rate)
			case duration <= 0:
				return usageErrorf("--duration %s is not positive; give e.g. 10m", duration)
			case sample <= 0 || sample > duration:
				return usageErrorf("--sample %s must be positive and at most --duration (%s)", sample, duration)
			}
			return a.soak(cmd.Context(), bench.SoakConfig{Rate: rate, Duration: duration, Sample: sample, MaxBytes: maxBytes}, capText, asJSON)
		},
	}
	f := cmd.Flags()
	f.Int("rate", bench.DefaultSoakRate, "events published per second")
	f.Duration("duration", bench.DefaultSoakDuration, "how long the load lasts")
	f.Duration("sample", bench.DefaultSoakSample, "how often the broker's memory is read")
	f.String("broker-max-bytes", DefaultSoakMaxBytes, "the embedded broker's size cap (serve --broker-max-bytes), e.g. 64MiB")
	f.Bool("json", false, "write the report as JSON instead of text")
	return cmd
}

// soak runs the soak on a child broker it starts and stops.
func (a *app) soak(ctx context.Context, cfg bench.SoakConfig, capText string, asJSON bool) error {
	exe, err := a.executable()
	if err != nil {
		return fmt.Errorf("find this program to start the embedded broker: %w", err)
	}
	dir, err := os.MkdirTemp("", "eventbus-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(a.stderr, "soak: starting the embedded broker: %s serve --data %s --broker-max-bytes %s\n", exe, dir, capText)
	child, err := startChildBrokerWith(ctx, exe, a.stderr, "--data", dir, "--broker-max-bytes", capText)
	if err != nil {
		return err
	}
	defer func() {
		if err := child.Stop(); err != nil {
			a.log.Warn("soak: " + err.Error())
		}
	}()
	cfg.Brokers = child.Brokers()
	cfg.RSS = func() (int64, error) { return processRSS(child.Pid()) }
	cfg.Progress = a.stderr
	cfg.Logger = a.libLog
	start := time.Now()
	report, err := bench.RunSoak(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("soak interrupted after %s", time.Since(start).Round(time.Second))
		}
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return report.WriteTable(a.stdout)
}
