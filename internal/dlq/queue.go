// Package dlq is the dead letter queue's machinery: the entries on the
// dlq.* topics (their record format, the TypeScript package's, and the
// overlays of ours on the latter), the view a process that runs the queue
// keeps of them, the scheduler of automatic retries, and the checks a
// subscriber makes on the retries it receives. The root package's
// DeadLetterQueue is its public face; Host is what the queue needs of the
// bus.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/internal/logread"
	"github.com/plexica/eventbus/internal/tracing"
	"github.com/plexica/eventbus/wire"
)

// ErrStopped: the queue was stopped (the bus shut down). The queue's other
// errors are the deadletter package's (ErrNotFound, ErrRetryNotAllowed,
// ErrNotApplied).
var ErrStopped = errors.New("dead letter queue stopped")

// Host is what the queue needs of the bus it belongs to.
type Host interface {
	// Produce writes rec and returns once the brokers acknowledged it.
	Produce(ctx context.Context, rec *kgo.Record) error
	// EnsureTopic creates topic, with configs, unless it exists.
	EnsureTopic(ctx context.Context, topic string, configs map[string]string) error
	// EnsureRetryTopic creates a group's retry topic, with
	// RetryTopicPartitions partitions, unless it exists.
	EnsureRetryTopic(ctx context.Context, topic string) error
	// NewClient builds a franz-go client on the bus's connection settings
	// plus opts.
	NewClient(opts ...kgo.Opt) (*kgo.Client, error)
	// Conn is the bus's connected client; single records are read on it.
	Conn() (*kgo.Client, error)
	// Admin is the bus's admin client.
	Admin() (*kadm.Client, error)
	// RetrySent counts a retry sent for an event of topic.
	RetrySent(topic string, manual bool)
}

// Config is the queue's configuration: the deadletter.Config of the bus
// (New fills in its zero fields with their defaults), and what the queue
// takes from the rest of the bus's configuration.
type Config struct {
	deadletter.Config
	// RetentionCheck is how often the view lists the dlq.* partitions'
	// start offsets, to drop the entries retention removed
	// (DefaultRetentionCheck when 0).
	RetentionCheck time.Duration
	// SessionTimeout and HeartbeatInterval are the scheduler group's.
	SessionTimeout, HeartbeatInterval time.Duration
	// InstanceID, when set, makes the scheduler a static member of its
	// group (group.instance.id): a restart under the same ID owns its
	// partitions again at once instead of after the dead member's
	// SessionTimeout. Empty: a dynamic member.
	InstanceID string
	Logger     *slog.Logger
	// Tracer traces writes and retries (nil: off).
	Tracer *tracing.Tracer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// transactionTimeout is how long an owner's transaction may stay open
// before the brokers abort it.
func (c *Config) transactionTimeout() time.Duration { return 30 * time.Second }

// backoff is the delay before automatic retry n+1 after n were sent.
func (c *Config) backoff(n int) time.Duration {
	return backoff.Exponential(c.RetryBackoff, c.MaxRetryBackoff, n)
}

// Queue is one bus's dead letter queue. Only a process that calls Start
// keeps reading the dlq.* topics: it keeps an index of every entry
// (view.go), reads entries back from their records on demand, and, as a
// member of Config.SchedulerGroup, schedules the automatic retries of the
// DLQ partitions it owns (scheduler.go). A read (Query, Get, Stats) in a
// process that did not call Start reads the topics for that read alone
// (readView) and starts nothing. A process that only publishes and
// subscribes keeps no view: it writes its failures, and checks the
// retries it receives by reading the one record each names (verify.go).
type Queue struct {
	host Host
	cfg  Config

	mu      sync.Mutex // guards view, sched and stopped
	view    *view
	sched   *scheduler
	stopped bool

	knownTopics     sync.Map // dlq topics this process wrote to
	warnedCompacted sync.Map // dlq topics already warned about (legacy.go)

	// hookBeforeCommit, when set by a test, runs just before an owner
	// commits a round of changes to a partition.
	hookBeforeCommit atomic.Pointer[func(topic string, partition int32)]

	// wake tells the scheduler a command arrived (poke).
	wake chan struct{}

	commandsOnce sync.Once
	commands     *kgo.Client // produces commands (commandClient)
	commandsErr  error

	readerOnce sync.Once
	reader     *logread.Reader // reads the records retries name
	readerErr  error
}

// New returns the queue of the bus host; it reads nothing until Start.
func New(host Host, cfg Config) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Config = cfg.Config.WithDefaults()
	return &Queue{host: host, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Start begins reading the dlq.* topics and, unless disabled, scheduling
// retries; it returns once the view has caught up with what the topics
// held when it started. Calling it again only waits for that.
func (q *Queue) Start(ctx context.Context) error {
	view, err := q.startOnce()
	if err != nil {
		return err
	}
	return view.waitReady(ctx)
}

func (q *Queue) startOnce() (*view, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return nil, ErrStopped
	}
	if q.view != nil {
		return q.view, nil
	}
	view := newView(q)
	if err := view.start(); err != nil {
		return nil, err
	}
	q.view = view // before the scheduler starts: it reads the view
	if !q.cfg.DisableScheduler {
		sched := newScheduler(q)
		if err := sched.start(); err != nil {
			view.stop()
			q.view = nil
			return nil, err
		}
		q.sched = sched
	}
	return view, nil
}

// Stop stops the scheduler and the view. It holds q.mu only to mark the
// queue stopped: the scheduler it waits for may need q.mu (noticeTopic).
func (q *Queue) Stop(ctx context.Context) {
	q.mu.Lock()
	q.stopped = true
	sched, view := q.sched, q.view
	q.mu.Unlock()
	if sched != nil {
		sched.stop(ctx)
	}
	if view != nil {
		view.stop()
	}
	q.commandsOnce.Do(func() { q.commandsErr = ErrStopped })
	if q.commands != nil {
		q.commands.Close()
	}
}

// Ready reports whether the queue serves the full view: nil once Start
// has read the dlq.* topics up to where they stood when it began, else an
// error that says why not (ErrStopped, not started, still reading).
func (q *Queue) Ready() error {
	q.mu.Lock()
	view, stopped := q.view, q.stopped
	q.mu.Unlock()
	switch {
	case stopped:
		return ErrStopped
	case view == nil:
		return errors.New("the dead letter queue is not started in this process (DeadLetterQueue.Start)")
	}
	if caughtUp, total, ready := view.loading(); !ready {
		return fmt.Errorf("the dead letter queue is still reading the dlq.* topics (%d of %d partitions caught up)", caughtUp, total)
	}
	return nil
}

// currentView is the view, if this process started one.
func (q *Queue) currentView() *view {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.view
}

// readView returns the view a read answers from. In a process that called
// Start it is the running view, once it has caught up. In one that did
// not, it is a snapshot made for this read alone: the dlq.* topics read outside any group up to their
// current ends, then the reader closed. A read never starts the queue: it
// joins no group, sends no retry and leaves nothing running.
func (q *Queue) readView(ctx context.Context) (*view, error) {
	q.mu.Lock()
	v, stopped := q.view, q.stopped
	q.mu.Unlock()
	switch {
	case stopped:
		return nil, ErrStopped
	case v != nil:
		if err := v.waitReady(ctx); err != nil {
			return nil, err
		}
		return v, nil
	}
	return q.snapshot(ctx)
}

// snapshot reads the dlq.* topics up to their current end offsets into a
// view of its own, and stops its reader: the index stays, the entries are
// read back from their records as a started view's are.
func (q *Queue) snapshot(ctx context.Context) (*view, error) {
	v := newView(q)
	if err := v.start(); err != nil {
		return nil, err
	}
	err := v.waitReady(ctx)
	v.stop()
	if err != nil {
		return nil, err
	}
	return v, nil
}

// recordReader returns the reader of single DLQ records. It reads through
// the bus's connected client, which never long-polls: on a consuming
// client a read would queue behind that client's fetch.
func (q *Queue) recordReader() (*logread.Reader, error) {
	q.readerOnce.Do(func() {
		cl, err := q.host.Conn()
		if err != nil {
			q.readerErr = err
			return
		}
		q.reader = logread.New(cl)
	})
	return q.reader, q.readerErr
}

// Counts counts the entries by status, from the view's index (an empty
// map before Start: every status counts zero).
func (q *Queue) Counts() map[string]int {
	view := q.currentView()
	if view == nil {
		return map[string]int{}
	}
	return view.stats(dlqindex.Filter{}).ByStatus
}

// Query returns the entries that match f, sorted by failure time (newest
// first unless oldest), skipping offset and at most limit of them (0: all
// the rest), and how many match in all. Matching, counting and sorting use
// the index; only the page's entries are read from the brokers.
func (q *Queue) Query(ctx context.Context, f dlqindex.Filter, oldest bool, offset, limit int) ([]Entry, int, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return nil, 0, err
	}
	refs, total := view.index.Page(f, oldest, offset, limit)
	out, err := view.read(ctx, refs)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// Get returns one entry, or an error wrapping deadletter.ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (Entry, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return Entry{}, err
	}
	e, ok, err := view.get(ctx, id)
	switch {
	case err != nil:
		return Entry{}, err
	case !ok:
		return Entry{}, notFound(id)
	}
	return e, nil
}

func notFound(id string) error {
	return fmt.Errorf("%w: no dead-letter entry %q (list them with List)", deadletter.ErrNotFound, id)
}

// Stats counts the entries that match f, from the index.
func (q *Queue) Stats(ctx context.Context, f dlqindex.Filter) (dlqindex.Counts, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return dlqindex.Counts{}, err
	}
	return view.stats(f), nil
}

// Retry asks the owner of entry e, just read, to send it again to the
// group that failed it, and waits until the owner did (see await). A
// manual retry works in any status; otherwise the retry counts toward
// MaxRetries and fails with deadletter.ErrRetryNotAllowed when the entry is
// resolved, out of retries, or was written by the TypeScript package. A
// TypeScript entry is retried the way that package retries (legacy.go).
func (q *Queue) Retry(ctx context.Context, e Entry, manual bool) error {
	if e.Origin == deadletter.OriginTypeScript {
		if !manual {
			return fmt.Errorf("%w: entry %s was written by the TypeScript package; retry it manually", deadletter.ErrRetryNotAllowed, e.ID)
		}
		topic, err := q.topicOf(ctx, e.ID)
		if err != nil {
			return err
		}
		return q.retryTypeScript(ctx, topic, e)
	}
	if !manual && (e.Status == deadletter.StatusResolved || e.Status == deadletter.StatusMaxRetriesExceeded || e.RetryCount >= e.MaxRetries) {
		return fmt.Errorf("%w: entry %s is %s after %d of %d retries; retry it manually", deadletter.ErrRetryNotAllowed, e.ID, e.Status, e.RetryCount, e.MaxRetries)
	}
	return q.ask(ctx, e, &command{Kind: CommandRetry, ID: e.ID, Manual: manual, At: q.cfg.Now().UTC()})
}

// Delete asks the owner of entry e, just read, to remove it (a tombstone
// on its DLQ topic), and waits until the owner did; an entry the
// TypeScript package wrote is hidden by an overlay instead.
func (q *Queue) Delete(ctx context.Context, e Entry) error {
	if e.Origin == deadletter.OriginTypeScript {
		topic, err := q.topicOf(ctx, e.ID)
		if err != nil {
			return err
		}
		return q.writeOverlay(ctx, topic, e, true)
	}
	return q.ask(ctx, e, &command{Kind: CommandDelete, ID: e.ID, At: q.cfg.Now().UTC()})
}

// ask sends an operator's command on entry e to its owner and waits for
// the result.
func (q *Queue) ask(ctx context.Context, e Entry, c *command) error {
	rec, err := q.sendCommand(ctx, TopicFor(e.ConsumerGroup, e.OriginalTopic), e.SchedulerGroup, c)
	if err != nil {
		return err
	}
	return q.await(ctx, e.ID, rec)
}

// topicOf returns the dlq.* topic where the view (or, before Start, a
// snapshot of the topics) found entry id.
func (q *Queue) topicOf(ctx context.Context, id string) (string, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return "", err
	}
	e, ok := view.index.Get(id)
	if !ok {
		return "", notFound(id)
	}
	return e.Pos.Topic, nil
}

// Claim is what the retry headers of a record on a group's retry topic
// say: the entry and the attempt it is a retry of. The record lies on a
// topic only the entry's owner writes retries to and only that group
// reads, so the claim needs no reading of the entry: the owner checks the
// answer against the entry when it applies it (decide).
type Claim struct {
	// ID is the entry's; Attempt the retry's number (1 for the first).
	ID      string
	Attempt int
	// Topic is the entry's original topic.
	Topic string
	// SchedulerGroup is the scheduler group whose owner sent the retry:
	// the answer goes to that owner ("" for a retry without the header).
	SchedulerGroup string
}

// headerRetryScheduler names, on a retry, the scheduler group whose owner
// sent it (see Claim.SchedulerGroup).
const headerRetryScheduler = "dlq-scheduler"

// ParseRetry reads the retry headers of r, a record of group's retry topic
// for topic. ok is false when they are missing or malformed, or name
// another group: such a record is no retry of this group's.
func ParseRetry(r *kgo.Record, topic, group string) (Claim, bool) {
	id, hasID := wire.HeaderValue(r.Headers, wire.HeaderDLQID)
	g, hasGroup := wire.HeaderValue(r.Headers, wire.HeaderRetryGroup)
	a, hasAttempt := wire.HeaderValue(r.Headers, wire.HeaderRetryAttempt)
	attempt, err := strconv.Atoi(string(a))
	if !hasID || !hasGroup || !hasAttempt || err != nil || attempt < 1 || string(g) != group || !isEntryID(string(id)) {
		return Claim{}, false
	}
	sched, _ := wire.HeaderValue(r.Headers, headerRetryScheduler)
	return Claim{ID: string(id), Attempt: attempt, Topic: topic, SchedulerGroup: string(sched)}, true
}

// answerGroup is the scheduler group an answer to claim goes to: the one
// whose owner sent the retry, else this bus's.
func (q *Queue) answerGroup(claim *Claim) string {
	if claim != nil && claim.SchedulerGroup != "" {
		return claim.SchedulerGroup
	}
	return q.cfg.SchedulerGroup
}

// RecordFailure asks the owner of the entry to record that group failed r
// (the event eventID of topic): the answer to a retry (claim non-nil), or
// else the failure of an ordinary delivery, which makes a new entry (and
// replaces an earlier entry of the same group, topic, tenant and event,
// see EntryID). It returns once the command is stored, with the entry's
// ID; the owner applies it.
func (q *Queue) RecordFailure(ctx context.Context, r *kgo.Record, topic, group, eventID string, claim *Claim, f Failure) (string, error) {
	c := &command{Kind: CommandFailed, Failure: &f, At: q.cfg.Now().UTC()}
	if claim != nil {
		c.ID, c.Attempt = claim.ID, claim.Attempt
	} else {
		e := q.newEntry(r, topic, group, eventID)
		c.ID, c.Entry = e.ID, e
	}
	_, err := q.sendCommand(ctx, TopicFor(group, topic), q.answerGroup(claim), c)
	return c.ID, err
}

// RouteFailure is RecordFailure of an ordinary delivery by hand: in a
// process that runs the queue it also waits until the owner applied it.
func (q *Queue) RouteFailure(ctx context.Context, r *kgo.Record, topic, group, eventID string, f Failure) (string, error) {
	e := q.newEntry(r, topic, group, eventID)
	c := &command{Kind: CommandFailed, ID: e.ID, Entry: e, Failure: &f, At: q.cfg.Now().UTC()}
	rec, err := q.sendCommand(ctx, TopicFor(group, topic), q.cfg.SchedulerGroup, c)
	if err != nil || q.currentView() == nil {
		return c.ID, err
	}
	return c.ID, q.await(ctx, c.ID, rec)
}

// Resolve asks the owner of the claim's entry to record that its retry
// succeeded. It returns once the command is stored.
func (q *Queue) Resolve(ctx context.Context, group string, claim Claim) error {
	c := &command{Kind: CommandResolved, ID: claim.ID, Attempt: claim.Attempt, At: q.cfg.Now().UTC()}
	_, err := q.sendCommand(ctx, TopicFor(group, claim.Topic), q.answerGroup(&claim), c)
	return err
}

// sendCommand stores command c on dlqTopic, on its entry's partition, for
// the owner in schedulerGroup, and returns its record once the brokers
// acknowledged it.
func (q *Queue) sendCommand(ctx context.Context, dlqTopic, schedulerGroup string, c *command) (rec *kgo.Record, err error) {
	if schedulerGroup == "" {
		schedulerGroup = deadletter.DefaultSchedulerGroup
	}
	ctx, span := q.cfg.Tracer.StartInternal(ctx, "dlq write "+dlqTopic,
		attribute.String("plexica.dlq_id", c.ID), attribute.String("plexica.dlq_command", c.Kind))
	defer func() { tracing.End(span, err) }()
	if err := q.host.EnsureTopic(ctx, dlqTopic, map[string]string{"cleanup.policy": string(q.cfg.TopicCleanupPolicy)}); err != nil {
		return nil, fmt.Errorf("write dead-letter command for %s to %s: %w", c.ID, dlqTopic, err)
	}
	if rec, err = commandRecord(dlqTopic, schedulerGroup, c); err != nil {
		return nil, err
	}
	cl, err := q.commandClient()
	if err != nil {
		return nil, err
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("write dead-letter command for %s to %s: %w", c.ID, dlqTopic, err)
	}
	if view := q.currentView(); view != nil {
		view.apply(rec, false)
	}
	if _, seen := q.knownTopics.LoadOrStore(rec.Topic, true); !seen {
		q.noticeTopic()
	}
	return rec, nil
}

// commandClient returns the producer of commands: the bus's connection
// with entryPartitioner, so that a command lands on its entry's partition.
func (q *Queue) commandClient() (*kgo.Client, error) {
	q.commandsOnce.Do(func() {
		q.commands, q.commandsErr = q.host.NewClient(kgo.RecordPartitioner(newEntryPartitioner()))
	})
	return q.commands, q.commandsErr
}

// DefaultCommandWait bounds how long Retry and Delete wait for the
// entry's owner to apply their command when ctx has no deadline.
const DefaultCommandWait = 30 * time.Second

// await waits for the owner to apply command rec and returns its result:
// nil, or an error wrapping deadletter.ErrNotFound or deadletter.ErrRetryNotAllowed; or one
// wrapping deadletter.ErrNotApplied when the wait ends first.
func (q *Queue) await(ctx context.Context, id string, rec *kgo.Record) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandWait)
		defer cancel()
	}
	reader, err := q.recordReader()
	if err != nil {
		return err
	}
	// The entry's versions the owner wrote on the way to the result, and
	// the result itself, are applied to this process's view as they are
	// read here: a read that follows the answer sees what the owner
	// applied, even while the view's reader lags behind.
	view := q.currentView()
	from, wait := rec.Offset+1, 5*time.Millisecond
	for {
		var result []byte
		found := false
		_, err := reader.Scan(ctx, rec.Topic, rec.Partition, from, 0, func(r *kgo.Record) bool {
			from = r.Offset + 1
			if view != nil && !r.Attrs.IsControl() && (string(r.Key) == id || string(r.Key) == string(rec.Key)) {
				view.apply(r, false)
			}
			if r.Value == nil && string(r.Key) == string(rec.Key) {
				result, _ = wire.HeaderValue(r.Headers, HeaderCommandResult)
				found = true
				return false
			}
			return true
		})
		if found {
			return resultError(id, string(result))
		}
		if err != nil && ctx.Err() == nil {
			q.cfg.Logger.Debug("eventbus: reading a dead-letter command's result", "dlq_id", id, "err", err)
		}
		if !backoff.Sleep(ctx, wait) {
			return fmt.Errorf("%w: %s on entry %s (is a process running the queue? eventbus serve does): %w", deadletter.ErrNotApplied, commandKind(rec), id, ctx.Err())
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// commandKind names the command rec holds, for errors.
func commandKind(rec *kgo.Record) string {
	var c struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(rec.Value, &c)
	return c.Kind
}

// produceEntryRecord writes one DLQ record and applies it to the local
// view once the broker acknowledged it.
func (q *Queue) produceEntryRecord(ctx context.Context, rec *kgo.Record, id string) error {
	if err := q.host.Produce(ctx, rec); err != nil {
		return fmt.Errorf("write dead-letter entry %s to %s: %w", id, rec.Topic, err)
	}
	if view := q.currentView(); view != nil {
		view.apply(rec, false)
	}
	if _, seen := q.knownTopics.LoadOrStore(rec.Topic, true); !seen {
		q.noticeTopic()
	}
	return nil
}

// setHookBeforeCommit sets the test hook that runs just before an owner
// commits a round (nil: none).
func (q *Queue) setHookBeforeCommit(h func(topic string, partition int32)) {
	if h == nil {
		q.hookBeforeCommit.Store(nil)
		return
	}
	q.hookBeforeCommit.Store(&h)
}

// poke makes this process's owners look at their partitions now (a
// command arrived).
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// noticeTopic makes the view and the scheduler look for new dlq.* topics
// now rather than at their next periodic metadata refresh.
func (q *Queue) noticeTopic() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view != nil {
		q.view.cl.ForceMetadataRefresh()
	}
	if q.sched != nil {
		q.sched.cl.ForceMetadataRefresh()
	}
}
