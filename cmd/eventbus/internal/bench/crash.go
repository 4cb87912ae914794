package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
)

// The crash phase: a consumer in a child process is killed with SIGKILL
// halfway through a backlog, and the same group finishes it in this
// process. It counts what the design promises never happens (an event lost)
// and what it allows (an event handled twice).
const (
	// CrashConsumerCommand is the hidden subcommand of the eventbus binary
	// that runs the crash phase's consumer: RunCrashConsumer.
	CrashConsumerCommand = "bench-consumer"
	// CrashHandlerTime is the crash consumers' mean handler time; each call
	// takes between half and one and a half of it, at random, so that the
	// events of different keys finish out of order.
	CrashHandlerTime = time.Millisecond
	// crashWait bounds each wait of the crash phase: for the child to
	// handle half the backlog, then for the restarted consumer to handle
	// the rest and commit the whole backlog.
	crashWait = 60 * time.Second
	// crashPoll is how often the restarted consumer's committed offsets are
	// read once every event was seen.
	crashPoll = 25 * time.Millisecond
	// handledPrefix starts the line the crash consumer prints for each
	// event its handler handled.
	handledPrefix = "handled "
	// subscribedLine is what the crash consumer prints once subscribed.
	subscribedLine = "subscribed"
	// stderrTail is how much of the child's standard error an error quotes.
	stderrTail = 4 << 10
)

// Crash is what a kill -9 of a consumer halfway through a backlog costs:
// the consumer, Subscribe with default Delivery options (plus
// FromBeginning) and a handler of HandlerMs ± 50%, runs in a child process
// (this binary's CrashConsumerCommand) and is killed with SIGKILL once it
// handled KilledAt events; the same group, as the same static member
// (ConsumerConfig.InstanceID, so that no session timeout is waited for),
// then resumes in this process from the committed offsets until every event
// was handled and the whole backlog committed.
type Crash struct {
	// Workload is the backlog the child started on, its handlers' mean
	// time per event, and the default Delivery options both consumers ran
	// with.
	Workload

	// KilledAt is how many events the child had reported handled when it
	// was sent SIGKILL.
	KilledAt int `json:"killedAt"`
	// HandledByKilled is how many handler calls the child reported in all,
	// some between the kill being sent and its taking effect.
	HandledByKilled int `json:"handledByKilled"`
	// HandledByRestarted is how many handler calls the restarted consumer
	// made.
	HandledByRestarted int `json:"handledByRestarted"`
	// ResumeMs is the time from the SIGKILL to the restarted consumer's
	// first handler call, ms (a new bus, joining the group, fetching).
	ResumeMs float64 `json:"resumeMs"`

	// Lost is how many events of the backlog neither consumer handled.
	Lost int `json:"lost"`
	// Duplicates is how many handler calls were for an event already
	// handled (by the killed consumer, as a rule): the sum over events of
	// calls beyond the first.
	Duplicates int `json:"duplicates"`
	// DuplicateShare is Duplicates/Backlog.
	DuplicateShare float64 `json:"duplicateShare"`
	// Settled is true when, within the phase's bound, every event was
	// handled and the group committed the whole backlog, so that no
	// further duplicate could come; false means the figures are those at
	// the bound.
	Settled bool `json:"settled"`
}

// CrashConsumerConfig is what RunCrashConsumer consumes and how.
type CrashConsumerConfig struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string
	// SASL and TLS, when set, authenticate and encrypt the connections
	// (see eventbus.ClientConfig). They do not pass to the child process
	// the crash phase runs: Env does.
	SASL *eventbus.SASLConfig
	TLS  *tls.Config
	// Env is added to the child process's environment (Config.ConsumerEnv).
	Env []string
	// Topic is the topic consumed, from the beginning. Required.
	Topic string
	// Group is the consumer group. Required.
	Group string
	// InstanceID, when set, makes the consumer a static member of Group
	// (ConsumerConfig.InstanceID).
	InstanceID string
	// HandlerDelay is the handler's mean time per event; each call sleeps
	// between half and one and a half of it, at random.
	HandlerDelay time.Duration
	// Logger receives the client's and bus's logs. Default: none.
	Logger *slog.Logger
}

func (c CrashConsumerConfig) check() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("no brokers given")
	case c.Topic == "":
		return errors.New("no topic given")
	case c.Group == "":
		return errors.New("no group given")
	case c.HandlerDelay < 0:
		return fmt.Errorf("handler delay %s is negative", c.HandlerDelay)
	}
	return nil
}

// args are the command-line arguments, after the binary's name, that run
// the consumer of c as CrashConsumerCommand.
func (c CrashConsumerConfig) args() []string {
	args := []string{CrashConsumerCommand, "--log-level", "warn",
		"--brokers", strings.Join(c.Brokers, ","), "--topic", c.Topic, "--group", c.Group,
		"--handler-delay", c.HandlerDelay.String()}
	if c.InstanceID != "" {
		args = append(args, "--instance-id", c.InstanceID)
	}
	return args
}

// RunCrashConsumer is the crash phase's consumer, run in a child process:
// it subscribes to cfg.Topic in cfg.Group with default Delivery options
// from the beginning, prints "subscribed", then, from each handler call
// after its work and before it returns, one line "handled <event ID>",
// written to out at once (no buffer: a line is out of the process by the
// time the bus may commit its event, so that a SIGKILL loses no line of an
// event committed). It runs until ctx ends, then shuts the bus down.
func RunCrashConsumer(ctx context.Context, cfg CrashConsumerConfig, out io.Writer) error {
	if err := cfg.check(); err != nil {
		return fmt.Errorf("bench consumer: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers:  cfg.Brokers,
		ClientID: "eventbus-bench-crash",
		Logger:   cfg.Logger,
		SASL:     cfg.SASL,
		TLS:      cfg.TLS,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := client.Connect(cctx); err != nil {
		return err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{
		Logger:   cfg.Logger,
		Consumer: eventbus.ConsumerConfig{InstanceID: cfg.InstanceID},
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = bus.Shutdown(sctx)
	}()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu       sync.Mutex
		writeErr error
	)
	emit := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if writeErr != nil {
			return
		}
		if _, err := io.WriteString(out, line+"\n"); err != nil {
			writeErr = err
			stop() // no one reads: nothing left to report to
		}
	}
	_, err = eventbus.Subscribe(cctx, bus, eventbus.Name[json.RawMessage](cfg.Topic), func(_ context.Context, ev eventbus.RawEvent) error {
		time.Sleep(jittered(cfg.HandlerDelay, rand.Float64())) // the handler's work
		emit(handledPrefix + ev.ID)
		return nil
	}, eventbus.InGroup(cfg.Group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	if err != nil {
		return err
	}
	emit(subscribedLine)
	<-runCtx.Done()
	mu.Lock()
	defer mu.Unlock()
	if writeErr != nil {
		return fmt.Errorf("bench consumer: write: %w", writeErr)
	}
	return nil
}

// jittered is a handler time of mean d: d × (0.5 + u), u in [0, 1).
func jittered(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (0.5 + u))
}

// parseHandledLine reads a "handled <event ID>" line of the crash consumer.
func parseHandledLine(line string) (id string, ok bool) {
	id, ok = strings.CutPrefix(strings.TrimRight(line, "\r"), handledPrefix)
	if id = strings.TrimSpace(id); !ok || id == "" {
		return "", false
	}
	return id, true
}

// crashSide says which consumer of the crash phase handled an event.
type crashSide int

const (
	killedSide crashSide = iota
	restartedSide
)

// crashTally counts how often each event of the backlog was handled, by
// both consumers, from concurrent goroutines.
type crashTally struct {
	mu      sync.Mutex
	counts  map[string]int // backlog event ID -> handler calls
	seen    int            // events handled at least once
	handled [2]int         // handler calls per side, events not of the backlog included
	allSeen chan struct{}  // closed when seen reaches len(counts)
}

func newCrashTally(ids []string) *crashTally {
	t := &crashTally{counts: make(map[string]int, len(ids)), allSeen: make(chan struct{})}
	for _, id := range ids {
		t.counts[id] = 0
	}
	if len(t.counts) == 0 {
		close(t.allSeen)
	}
	return t
}

// add counts one handler call of side for event id and returns how many
// events of the backlog were handled at least once.
func (t *crashTally) add(side crashSide, id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.handled[side]++
	n, ok := t.counts[id]
	if !ok {
		return t.seen // not of the backlog: a call, not an event seen
	}
	t.counts[id] = n + 1
	if n == 0 {
		t.seen++
		if t.seen == len(t.counts) {
			close(t.allSeen)
		}
	}
	return t.seen
}

// result returns the events of the backlog never handled, the handler
// calls beyond each event's first, and the calls of each side.
func (t *crashTally) result() (lost, duplicates int, handled [2]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.counts {
		if n == 0 {
			lost++
		}
		duplicates += max(n-1, 0)
	}
	return lost, duplicates, t.handled
}

// caughtUp says whether a group's committed offsets reach the end offset of
// every partition: everything was handled and committed.
func caughtUp(ends, committed map[int32]int64) bool {
	for p, end := range ends {
		if end > 0 && committed[p] < end {
			return false
		}
	}
	return true
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}

// crash runs the crash phase.
func (r *runner) crash(ctx context.Context) (*Crash, error) {
	c := &Crash{Workload: Workload{
		HandlerMs:      ms(CrashHandlerTime),
		Keys:           SlowKeys,
		Partitions:     topicPartitions,
		Backlog:        r.cfg.Backlog,
		MaxConcurrency: eventbus.DefaultMaxConcurrency,
		MaxPending:     eventbus.DefaultMaxPending,
	}}
	topic := r.topics.crash()
	step := r.step(PhaseCrash)
	r.progress("%s crash: publishing a backlog of %d events over %d tenants (raw producer)", step, c.Backlog, c.Keys)
	ids, err := r.fillBacklog(ctx, topic, c.Backlog)
	if err != nil {
		return nil, fmt.Errorf("crash: backlog: %w", err)
	}
	err = r.profiled("crash-ours", func() error { return r.runCrash(ctx, c, topic, newCrashTally(ids)) })
	if err != nil {
		return nil, fmt.Errorf("crash: %w", err)
	}
	how := "settled: every event handled, the whole backlog committed"
	if !c.Settled {
		how = fmt.Sprintf("NOT settled within %s", crashWait)
	}
	r.progress("      lost %d, duplicates %d (%.2f%% of the backlog); restarted consumer's first event %.0f ms after the kill; %s",
		c.Lost, c.Duplicates, 100*c.DuplicateShare, c.ResumeMs, how)
	return c, nil
}

// runCrash kills a child consumer halfway through the backlog on topic,
// resumes in this process and fills c's figures from tally.
func (r *runner) runCrash(ctx context.Context, c *Crash, topic string, tally *crashTally) error {
	ends, err := r.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	child := CrashConsumerConfig{
		Brokers:      r.cfg.Brokers,
		Env:          r.cfg.ConsumerEnv,
		Topic:        topic,
		Group:        "eventbus-bench-crash-" + randomHex(4),
		InstanceID:   "eventbus-bench-crash-" + randomHex(4),
		HandlerDelay: CrashHandlerTime,
	}
	killAt := max(c.Backlog/2, 1)
	r.progress("%s crash: Subscribe (default options, handler %s ± 50%%) in a child process (%s); SIGKILL once it handled %d events",
		r.step(PhaseCrash), CrashHandlerTime, CrashConsumerCommand, killAt)
	killedAt, err := r.runKilledConsumer(ctx, child, tally, killAt)
	if err != nil {
		return err
	}
	c.KilledAt = killedAt
	r.progress("      killed once it had handled %d events; resuming in this process as the same static member", killedAt)

	bus, err := eventbus.NewBus(r.client, eventbus.Config{
		Logger:   r.cfg.Logger,
		Consumer: eventbus.ConsumerConfig{InstanceID: child.InstanceID},
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
		defer cancel()
		if err := bus.Shutdown(sctx); err != nil {
			r.cfg.Logger.Warn("bench: crash: shutdown of the restarted consumer", "err", err)
		}
	}()
	deadline := time.Now().Add(crashWait)
	killed := time.Now()
	var firstOnce sync.Once
	var first time.Time
	sctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	_, err = eventbus.Subscribe(sctx, bus, eventbus.Name[json.RawMessage](topic), func(_ context.Context, ev eventbus.RawEvent) error {
		firstOnce.Do(func() { first = time.Now() })
		time.Sleep(jittered(CrashHandlerTime, rand.Float64()))
		tally.add(restartedSide, ev.ID)
		return nil
	}, eventbus.InGroup(child.Group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	if err != nil {
		return fmt.Errorf("restarted consumer: %w", err)
	}
	settled, err := r.awaitSettled(sctx, tally, child.Group, topic, ends)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	c.Settled = settled
	lost, dups, handled := tally.result()
	c.Lost, c.Duplicates = lost, dups
	c.HandledByKilled, c.HandledByRestarted = handled[killedSide], handled[restartedSide]
	c.DuplicateShare = float64(dups) / float64(max(c.Backlog, 1))
	firstOnce.Do(func() {}) // no more writes of first
	if !first.IsZero() {
		c.ResumeMs = ms(first.Sub(killed))
	}
	return nil
}

// runKilledConsumer starts the child consumer, kills it with SIGKILL once
// tally has killAt events handled, reads its output to the end and returns
// how many events it had handled when the kill was sent.
func (r *runner) runKilledConsumer(ctx context.Context, cfg CrashConsumerConfig, tally *crashTally, killAt int) (int, error) {
	cmd := exec.CommandContext(ctx, r.cfg.Executable, cfg.args()...)
	if len(cfg.Env) > 0 {
		cmd.Env = append(os.Environ(), cfg.Env...) // the last value of a variable wins
	}
	stdin, err := cmd.StdinPipe() // held open: the child stops when it closes
	if err != nil {
		return 0, err
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	tail := &tailBuffer{max: stderrTail}
	cmd.Stderr = io.MultiWriter(r.cfg.Progress, tail)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the consumer (%s %s): %w", r.cfg.Executable, CrashConsumerCommand, err)
	}
	half := make(chan int, 1)
	readDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			id, ok := parseHandledLine(sc.Text())
			if !ok {
				continue
			}
			if seen := tally.add(killedSide, id); seen == killAt {
				half <- seen
			}
		}
		readDone <- sc.Err()
	}()
	timer := time.NewTimer(crashWait)
	defer timer.Stop()
	var killedAt int
	var failure error
	select {
	case killedAt = <-half:
		if err := cmd.Process.Kill(); err != nil {
			failure = fmt.Errorf("kill the consumer: %w", err)
		}
	case <-readDone:
		readDone <- nil // for the wait below
		failure = errors.New("the consumer process exited before it had handled half the backlog")
	case <-timer.C:
		_ = cmd.Process.Kill()
		failure = fmt.Errorf("the consumer process did not handle half the backlog (%d events) within %s", killAt, crashWait)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		failure = ctx.Err()
	}
	readErr := <-readDone // every line written before the process died
	waitErr := cmd.Wait()
	if failure == nil && readErr != nil {
		failure = fmt.Errorf("read the consumer's output: %w", readErr)
	}
	if failure == nil {
		var exit *exec.ExitError
		if !errors.As(waitErr, &exit) || exit.Success() {
			failure = fmt.Errorf("the consumer process ended with %v, not killed", waitErr)
		}
	}
	if failure != nil {
		if s := tail.String(); s != "" {
			failure = fmt.Errorf("%w (%v); its standard error ended:\n%s", failure, waitErr, s)
		}
		return 0, failure
	}
	return killedAt, nil
}

// awaitSettled waits until every event of tally was handled and group
// committed the end of every partition of topic, and says whether that
// happened before ctx ended.
func (r *runner) awaitSettled(ctx context.Context, tally *crashTally, group, topic string, ends map[int32]int64) (bool, error) {
	select {
	case <-tally.allSeen:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	adm, err := r.client.Admin()
	if err != nil {
		return false, err
	}
	tick := time.NewTicker(crashPoll)
	defer tick.Stop()
	for {
		resp, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			committed := map[int32]int64{}
			for p := range ends {
				if o, ok := resp.Lookup(topic, p); ok && o.Err == nil {
					committed[p] = o.At
				}
			}
			if caughtUp(ends, committed) {
				return true, nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// endOffsets lists the end offset of every partition of topic.
func (r *runner) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	adm, err := r.client.Admin()
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	listed, err := adm.ListEndOffsets(lctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return ends, nil
}
