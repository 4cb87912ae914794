package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/plexica/eventbus"
)

// The soak: a steady load on an embedded broker for minutes, to see
// whether its memory stays flat once its size cap is reached (issue 24).
// It is not a phase of Run: it lasts minutes, and it needs a broker
// process whose size cap and memory the caller knows (`eventbus soak`
// starts one).

// Defaults of SoakConfig.
const (
	DefaultSoakRate     = 5_000
	DefaultSoakDuration = 10 * time.Minute
	DefaultSoakSample   = 10 * time.Second
)

// SoakCapReached is the share of SoakConfig.MaxBytes at which the cap
// counts as reached: the embedded broker trims to 90 % of its cap once it
// is passed.
const SoakCapReached = 0.9

// SoakConfig says how long and how hard to load a broker, and how to read
// its memory.
type SoakConfig struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string
	// Rate is the events published per second. Default DefaultSoakRate.
	Rate int
	// Duration is how long the load lasts. Default DefaultSoakDuration.
	Duration time.Duration
	// Sample is how often the broker's memory is read (and a progress line
	// written). Default DefaultSoakSample.
	Sample time.Duration
	// MaxBytes is the broker's size cap, for the report: the load reached
	// it once the records the broker retains (DescribeLogDirs) came to
	// SoakCapReached of it. 0: no cap.
	MaxBytes int64
	// RSS reads the broker process's resident set size, bytes. Required.
	RSS func() (int64, error)
	// Progress receives one line per sample. Default: none.
	Progress io.Writer
	// Logger receives the client's and bus's logs. Default: none.
	Logger *slog.Logger
}

// SoakSample is one reading of the broker's memory during a soak.
type SoakSample struct {
	// Seconds since the load began.
	Seconds float64 `json:"seconds"`
	// RSS is the broker process's resident set size, bytes.
	RSS int64 `json:"rss"`
	// Retained is the bytes of records the broker holds, all topics
	// (DescribeLogDirs; -1: not known).
	Retained int64 `json:"retained"`
	// Published and Handled are the events published and handled so far.
	Published int64 `json:"published"`
	Handled   int64 `json:"handled"`
}

// Soak is what a steady load cost a broker's memory.
type Soak struct {
	Rate            int     `json:"rate"`
	DurationSeconds float64 `json:"durationSeconds"`
	MaxBytes        int64   `json:"maxBytes"`
	// RecordBytes is one event's size as the broker keeps it (value plus
	// headers, before compression).
	RecordBytes int `json:"recordBytes"`
	// Published and Handled count the events published and handled by one
	// subscriber (default options) during the load; Failed the publishes
	// that failed.
	Published int64 `json:"published"`
	Handled   int64 `json:"handled"`
	Failed    int64 `json:"failed"`
	// StartRSS is the broker's RSS before the load; PeakRSS the highest
	// reading; EndRSS the last, when the load ended.
	StartRSS int64 `json:"startRss"`
	PeakRSS  int64 `json:"peakRss"`
	EndRSS   int64 `json:"endRss"`
	// PeakRetained is the most bytes of records the broker held at a
	// sample.
	PeakRetained int64 `json:"peakRetained"`
	// CapReachedSeconds is when the records the broker retains first came
	// to SoakCapReached of MaxBytes (-1: never). RSSAtCap is the first reading from then on, and
	// PeakAfterCap the highest: flat memory means PeakAfterCap stays near
	// RSSAtCap however long the load goes on.
	CapReachedSeconds float64      `json:"capReachedSeconds"`
	RSSAtCap          int64        `json:"rssAtCap"`
	PeakAfterCap      int64        `json:"peakAfterCap"`
	Samples           []SoakSample `json:"samples"`
}

// RunSoak publishes cfg.Rate events per second to a new topic (default
// settings: a retention of 7 days) through a Bus, with one subscriber
// handling them, for cfg.Duration, and reads the broker's memory every
// cfg.Sample.
func RunSoak(ctx context.Context, cfg SoakConfig) (*Soak, error) {
	if len(cfg.Brokers) == 0 || cfg.RSS == nil {
		return nil, errors.New("bench: soak: brokers and an RSS reader are required")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultSoakRate
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultSoakDuration
	}
	if cfg.Sample <= 0 {
		cfg.Sample = DefaultSoakSample
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: cfg.Brokers, ClientID: "eventbus-soak", Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := client.Connect(cctx); err != nil {
		return nil, err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
		defer cancel()
		_ = bus.Shutdown(sctx)
	}()
	topic := fmt.Sprintf("core.bench_%s_soak.recorded", randomHex(4))
	src := newEventSource(time.Now())
	s := &Soak{Rate: cfg.Rate, MaxBytes: cfg.MaxBytes, RecordBytes: src.valueBytes + src.headerBytes, CapReachedSeconds: -1}

	var published, handled, failed atomic.Int64
	// The topic is created by the first publish, with the broker's
	// defaults.
	if _, err := bus.Publish(cctx, topic, src.data(0, 0), src.meta(0)); err != nil {
		return nil, fmt.Errorf("soak: first publish: %w", err)
	}
	published.Add(1)
	if _, err := eventbus.Subscribe(cctx, bus, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error {
		handled.Add(1)
		return nil
	}, eventbus.InGroup("eventbus-soak-"+randomHex(4))); err != nil {
		return nil, fmt.Errorf("soak: subscribe: %w", err)
	}
	if s.StartRSS, err = cfg.RSS(); err != nil {
		return nil, fmt.Errorf("soak: read the broker's memory: %w", err)
	}
	s.PeakRSS = s.StartRSS

	adm, err := client.Admin()
	if err != nil {
		return nil, err
	}
	retained := func() int64 {
		rctx, cancel := context.WithTimeout(ctx, setupTimeout)
		defer cancel()
		dirs, err := adm.DescribeAllLogDirs(rctx, nil)
		if err != nil {
			return -1
		}
		var total int64
		for _, d := range dirs {
			total += d.Size()
		}
		return total
	}
	start := time.Now()
	read := func() error {
		rss, err := cfg.RSS()
		if err != nil {
			return fmt.Errorf("soak: read the broker's memory: %w", err)
		}
		at := time.Since(start).Seconds()
		pub := published.Load()
		held := retained()
		s.Samples = append(s.Samples, SoakSample{Seconds: at, RSS: rss, Retained: held, Published: pub, Handled: handled.Load()})
		s.PeakRSS = max(s.PeakRSS, rss)
		s.PeakRetained = max(s.PeakRetained, held)
		if cfg.MaxBytes > 0 && (s.CapReachedSeconds >= 0 || float64(held) >= SoakCapReached*float64(cfg.MaxBytes)) {
			if s.CapReachedSeconds < 0 {
				s.CapReachedSeconds, s.RSSAtCap = at, rss
			}
			s.PeakAfterCap = max(s.PeakAfterCap, rss)
		}
		fmt.Fprintf(cfg.Progress, "soak: %5.0f s  RSS %7.1f MiB  retained %7.1f MiB  published %d  handled %d  failed %d\n",
			at, mib(rss), mib(held), pub, handled.Load(), failed.Load())
		return nil
	}
	lctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	samples := time.NewTicker(cfg.Sample)
	defer samples.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	var loadErr error
load:
	for {
		due := int(time.Since(start).Seconds() * float64(cfg.Rate))
		for ; sent < due; sent++ {
			i := sent
			err := bus.PublishAsync(lctx, topic, src.data(i, src.now()), src.meta(i), func(_ string, err error) {
				if err != nil {
					failed.Add(1)
					return
				}
				published.Add(1)
			})
			if err != nil {
				if lctx.Err() != nil {
					break load
				}
				failed.Add(1)
			}
		}
		select {
		case <-lctx.Done():
			break load
		case <-samples.C:
			if loadErr = read(); loadErr != nil {
				break load
			}
		case <-tick.C:
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if loadErr != nil {
		return nil, loadErr
	}
	if err := read(); err != nil {
		return nil, err
	}
	s.DurationSeconds = time.Since(start).Seconds()
	s.EndRSS = s.Samples[len(s.Samples)-1].RSS
	s.Published, s.Handled, s.Failed = published.Load(), handled.Load(), failed.Load()
	return s, nil
}

// mib is bytes in MiB.
func mib[N int64 | uint64](b N) float64 { return float64(b) / (1 << 20) }

// WriteTable writes the soak's figures, one per line.
func (s *Soak) WriteTable(w io.Writer) error {
	capAt := "never"
	if s.CapReachedSeconds >= 0 {
		capAt = fmt.Sprintf("after %.0f s; RSS then %.1f MiB, highest after %.1f MiB", s.CapReachedSeconds, mib(s.RSSAtCap), mib(s.PeakAfterCap))
	}
	_, err := fmt.Fprintf(w, `soak: %d events/s for %.0f s (%d B an event), broker size cap %.0f MiB
published %d, handled %d, failed %d
broker RSS: start %.1f MiB, peak %.1f MiB, end %.1f MiB
records retained by the broker: at most %.1f MiB
cap reached: %s
`, s.Rate, s.DurationSeconds, s.RecordBytes, mib(s.MaxBytes), s.Published, s.Handled, s.Failed,
		mib(s.StartRSS), mib(s.PeakRSS), mib(s.EndRSS), mib(s.PeakRetained), capAt)
	return err
}
