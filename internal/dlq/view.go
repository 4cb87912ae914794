package dlq

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/wire"
)

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// view is this process's view of every dlq.* topic: an index of the
// entries (internal/dlqindex), read from the start of the topics outside
// any group, so every instance sees every entry; entries are read back from
// their records on demand, through q.recordReader (internal/logread).
type view struct {
	q  *Queue
	cl *kgo.Client

	index *dlqindex.Index

	mu       sync.RWMutex
	progress map[topicPartition]int64                     // next offset the reader will see
	targets  map[topicPartition]int64                     // end offsets when the view started
	starts   map[topicPartition]int64                     // start offsets last listed (followStarts)
	commands map[topicPartition]map[string]pendingCommand // commands not applied yet, by key
	// appliedAhead holds the commands whose tombstones an owner of this
	// process wrote before the reader read them, until it does: the
	// reader, still behind, must not take them for pending again.
	appliedAhead map[string]bool
	ready        chan struct{}

	cancel   context.CancelFunc
	done     chan struct{}
	watching sync.WaitGroup // watchStarts
}

func newView(q *Queue) *view {
	return &view{
		q:            q,
		index:        dlqindex.New(),
		progress:     map[topicPartition]int64{},
		starts:       map[topicPartition]int64{},
		commands:     map[topicPartition]map[string]pendingCommand{},
		appliedAhead: map[string]bool{},
		ready:        make(chan struct{}),
		done:         make(chan struct{}),
	}
}

// newTopicNotice is the metadata age of the view's and the scheduler's
// clients: how long a dlq.* topic that another process created may go
// unnoticed (a process that creates one tells its own at once,
// noticeTopic). Its first failure must reach its owner before its first
// retry is due (deadletter.Config.RetryBackoff, 1 s by default).
const newTopicNotice = 400 * time.Millisecond

// entryTopicPattern matches every topic that holds dead-letter entries
// (not the retry topics of core groups, dlq.retry.*).
const entryTopicPattern = `^dlq\.(core|plugin)\..+`

func (v *view) start() error {
	cl, err := v.q.host.NewClient(
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(entryTopicPattern),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only what owners committed: an aborted transaction (an owner
		// fenced mid-way) never happened. The commit markers come too, so
		// that progress reaches the partitions' ends.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.MetadataMaxAge(newTopicNotice),
		kgo.MetadataMinAge(250*time.Millisecond),
		// A partition found meanwhile (a new dlq.* topic) is fetched only
		// once the fetch in flight returns: a short wait keeps its first
		// command from waiting as long.
		kgo.FetchMaxWait(newTopicNotice/2),
	)
	if err != nil {
		return err
	}
	v.cl = cl
	// Entries are read back through a client that never long-polls: on this
	// consuming client a read would queue behind the view's own fetch.
	if _, err := v.q.recordReader(); err != nil {
		cl.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	targets, err := v.endOffsets(ctx)
	if err != nil {
		cancel()
		cl.Close()
		return fmt.Errorf("dead letter queue: read dlq.* end offsets: %w", err)
	}
	v.targets = targets
	v.checkReady()
	go v.run(ctx)
	v.watching.Add(1)
	go v.watchStarts(ctx)
	return nil
}

// dlqTopics lists the dlq.* topics.
func dlqTopics(ctx context.Context, adm *kadm.Client) ([]string, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range topics {
		if IsEntryTopic(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// endOffsets returns the end offset of every dlq.* partition that holds
// records.
func (v *view) endOffsets(ctx context.Context) (map[topicPartition]int64, error) {
	adm, err := v.q.host.Admin()
	if err != nil {
		return nil, err
	}
	dlqTopics, err := dlqTopics(ctx, adm)
	if err != nil {
		return nil, err
	}
	out := map[topicPartition]int64{}
	if len(dlqTopics) == 0 {
		return out, nil
	}
	ends, err := adm.ListCommittedOffsets(ctx, dlqTopics...)
	if err != nil {
		return nil, err
	}
	// A partition whose records all went (retention, DeleteRecords) has
	// its start offset at its end: nothing is left to read there.
	starts, err := adm.ListStartOffsets(ctx, dlqTopics...)
	if err != nil {
		return nil, err
	}
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Err == nil && o.Offset > 0 && o.Offset > start.Offset {
			out[topicPartition{o.Topic, o.Partition}] = o.Offset
		}
	})
	return out, nil
}

// DefaultRetentionCheck is how often, by default, the view lists the
// start offsets of the dlq.* partitions (Config.RetentionCheck).
const DefaultRetentionCheck = 30 * time.Second

// loadingStartsCheck is how often the view lists the start offsets while
// it loads, so that readiness never waits on a partition emptied meanwhile.
const loadingStartsCheck = 500 * time.Millisecond

// watchStarts follows the start offsets of the dlq.* partitions
// (followStarts): every loadingStartsCheck while the view loads, then
// every Config.RetentionCheck.
func (v *view) watchStarts(ctx context.Context) {
	defer v.watching.Done()
	every := v.q.cfg.RetentionCheck
	if every <= 0 {
		every = DefaultRetentionCheck
	}
	for {
		wait := every
		if _, _, ready := v.loading(); !ready {
			wait = min(wait, loadingStartsCheck)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		v.followStarts(ctx)
	}
}

// followStarts lists the start offsets of the dlq.* partitions. Below a
// partition's start offset, retention (or DeleteRecords) removed the
// records: the entries whose newest version lay there leave the view, as a
// fresh instance would not see them, and the reader's progress moves up to
// the start, since nothing below it can be delivered any more: readiness
// and the scheduler never wait on a partition that cannot deliver more. A
// listing that fails is tried again at the next check.
func (v *view) followStarts(ctx context.Context) {
	adm, err := v.q.host.Admin()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics, err := dlqTopics(ctx, adm)
	if err != nil || len(topics) == 0 {
		return
	}
	listed, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return
	}
	v.mu.Lock()
	moved := false
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		tp := topicPartition{o.Topic, o.Partition}
		if o.Offset > v.starts[tp] {
			v.starts[tp] = o.Offset
			moved = true
		}
		if o.Offset > v.progress[tp] {
			v.progress[tp] = o.Offset
		}
	})
	if moved {
		for tp, cmds := range v.commands {
			for key, c := range cmds {
				if c.offset < v.starts[tp] {
					delete(cmds, key)
				}
			}
		}
		if n := v.index.DropBelow(func(topic string, partition int32) int64 {
			return v.starts[topicPartition{topic, partition}]
		}); n > 0 {
			v.q.cfg.Logger.Info("eventbus: dead-letter entries whose records retention removed left the view", "entries", n)
		}
	}
	v.mu.Unlock()
	v.checkReady()
}

func (v *view) run(ctx context.Context) {
	defer close(v.done)
	for {
		fetches := v.cl.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			v.q.cfg.Logger.Warn("eventbus: dead letter queue read failed", "topic", t, "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) { v.apply(r, true) })
		v.checkReady()
	}
}

// apply folds one DLQ record into the index. Records from the reader
// advance its progress; records this process wrote are applied as soon as
// they are acknowledged, so a caller reads its own writes, unless the
// reader got there first (it applied that record, and maybe newer ones).
// The index drops an entry at its tombstone; one this process wrote is
// kept (Unread) until the reader reads it, so that the older versions the
// reader brings before it do not show the entry again.
func (v *view) apply(r *kgo.Record, fromReader bool) {
	tp := topicPartition{r.Topic, r.Partition}
	if r.Attrs.IsControl() || isCommandKey(r.Key) {
		v.mu.Lock()
		if !r.Attrs.IsControl() && (fromReader || v.progress[tp] <= r.Offset) && r.Offset >= v.starts[tp] {
			v.applyCommand(tp, r, fromReader)
		}
		if fromReader && r.Offset+1 > v.progress[tp] {
			v.progress[tp] = r.Offset + 1
		}
		v.mu.Unlock()
		return
	}
	id, e, ok := v.decodeIndex(r)
	v.mu.Lock()
	defer v.mu.Unlock()
	if !fromReader {
		if v.progress[tp] > r.Offset {
			return
		}
		e.Unread = e.Deleted
	}
	// A record below the partition's start offset (fetched before
	// retention removed it) is gone: a fresh view would not see it.
	if ok && r.Offset >= v.starts[tp] {
		v.index.Apply(id, e)
	}
	if fromReader && r.Offset+1 > v.progress[tp] {
		v.progress[tp] = r.Offset + 1
	}
}

// pendingCommand is a command the view has read and no tombstone of it
// yet: not applied.
type pendingCommand struct {
	key            string
	offset         int64
	schedulerGroup string
}

// applyCommand folds a command record, or its tombstone, into the pending
// commands; v.mu is held. A new command wakes the owners of this process.
// Of the records this process wrote (fromReader false) only tombstones
// count, as applied ahead of the reader.
func (v *view) applyCommand(tp topicPartition, r *kgo.Record, fromReader bool) {
	key := string(r.Key)
	if r.Value == nil {
		delete(v.commands[tp], key)
		if fromReader {
			delete(v.appliedAhead, key)
		} else {
			v.appliedAhead[key] = true
		}
		return
	}
	// A command is pending once the reader read it, never before: the
	// owner applies a partition's commands in offset order, and one this
	// process stored may follow commands of other processes that the
	// reader has not read yet.
	if !fromReader || v.appliedAhead[key] {
		return
	}
	group, _ := wire.HeaderValue(r.Headers, HeaderCommand)
	cmds := v.commands[tp]
	if cmds == nil {
		cmds = map[string]pendingCommand{}
		v.commands[tp] = cmds
	}
	if _, seen := cmds[key]; !seen {
		cmds[key] = pendingCommand{key: key, offset: r.Offset, schedulerGroup: string(group)}
		v.q.poke()
	}
}

// pendingCommands lists tp's commands not applied yet whose owner is
// schedulerGroup's, in offset order: those the reader has read, so that
// none is applied before a command below it (one this process stored
// itself is known before the reader gets there).
func (v *view) pendingCommands(tp topicPartition, schedulerGroup string) []pendingCommand {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []pendingCommand
	read := v.progress[tp]
	for _, c := range v.commands[tp] {
		if c.offset >= read {
			continue
		}
		g := c.schedulerGroup
		if g == "" {
			g = deadletter.DefaultSchedulerGroup
		}
		if g == schedulerGroup {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b pendingCommand) int { return cmp.Compare(a.offset, b.offset) })
	return out
}

// dropCommand forgets a pending command whose record is gone.
func (v *view) dropCommand(tp topicPartition, key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.commands[tp], key)
}

// progressOf is the next offset of tp the reader will see.
func (v *view) progressOf(tp topicPartition) int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.progress[tp]
}

// decodeIndex reads what the index keeps of a DLQ record: the entry's ID
// and its index entry, or ok false for a record that is not an entry.
func (v *view) decodeIndex(r *kgo.Record) (id string, ie dlqindex.Entry, ok bool) {
	ie.Pos = dlqindex.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	if r.Value == nil { // a tombstone: keyed by the entry's ID
		id = string(r.Key)
		if !isEntryID(id) {
			return "", ie, false
		}
		ie.Deleted = true
		return id, ie, true
	}
	// One of the bus's own versions, as its owner wrote it: the header
	// holds what the index keeps.
	if hid, hie, ok := parseIndexHeader(r); ok && hid == string(r.Key) && isEntryID(hid) {
		hie.Pos = ie.Pos
		return hid, hie, true
	}
	e, overlay, deleted, err := decodeRecord(r)
	if err != nil {
		v.q.cfg.Logger.Warn("eventbus: unreadable dead-letter entry skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return "", ie, false
	}
	if e.Origin == deadletter.OriginTypeScript && !overlay {
		v.warnIfCompacted(r.Topic)
	}
	pos := ie.Pos
	ie = indexEntryOf(&e, overlay, deleted)
	ie.Pos = pos
	return e.ID, ie, true
}

func (v *view) checkReady() {
	v.mu.RLock()
	defer v.mu.RUnlock()
	select {
	case <-v.ready:
		return
	default:
	}
	for tp, end := range v.targets {
		if v.progress[tp] < end {
			return
		}
	}
	close(v.ready)
}

// loading reports, while the view is not ready, how many dlq.* partitions
// it has read up to their end offsets at start, of how many.
func (v *view) loading() (caughtUp, total int, ready bool) {
	select {
	case <-v.ready:
		return 0, 0, true
	default:
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for tp, end := range v.targets {
		if v.progress[tp] >= end {
			caughtUp++
		}
	}
	return caughtUp, len(v.targets), false
}

// caughtUp reports whether the reader has read tp up to end.
func (v *view) caughtUp(tp topicPartition, end int64) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.progress[tp] >= end
}

func (v *view) waitReady(ctx context.Context) error {
	select {
	case <-v.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dead letter queue: still reading the dlq.* topics: %w", ctx.Err())
	}
}

// ref returns where live entry id lies.
func (v *view) ref(id string) (dlqindex.Ref, bool) {
	e, ok := v.index.Get(id)
	return dlqindex.Ref{ID: id, Pos: e.Pos}, ok
}

// get reads entry id from its record.
func (v *view) get(ctx context.Context, id string) (Entry, bool, error) {
	ref, ok := v.ref(id)
	if !ok {
		return Entry{}, false, nil
	}
	got, err := v.read(ctx, []dlqindex.Ref{ref})
	if err != nil {
		return Entry{}, false, err
	}
	if len(got) == 0 {
		return Entry{}, false, nil
	}
	return got[0], true, nil
}

// read reads the entries refs point at, in refs' order. An entry whose
// record is gone (retention removed it since it was indexed) is left out.
func (v *view) read(ctx context.Context, refs []dlqindex.Ref) ([]Entry, error) {
	reader, err := v.q.recordReader()
	if err != nil {
		return nil, fmt.Errorf("dead letter queue: read entries: %w", err)
	}
	byTP := map[topicPartition][]int64{}
	for _, r := range refs {
		tp := topicPartition{r.Pos.Topic, r.Pos.Partition}
		byTP[tp] = append(byTP[tp], r.Pos.Offset)
	}
	records := map[topicPartition]map[int64]*kgo.Record{}
	for tp, offsets := range byTP {
		got, err := reader.Read(ctx, tp.topic, tp.partition, offsets)
		if err != nil {
			return nil, fmt.Errorf("dead letter queue: read entries: %w", err)
		}
		records[tp] = got
	}
	out := make([]Entry, 0, len(refs))
	for _, r := range refs {
		rec := records[topicPartition{r.Pos.Topic, r.Pos.Partition}][r.Pos.Offset]
		if rec == nil {
			continue
		}
		e, _, deleted, err := decodeRecord(rec)
		if err != nil || deleted || e.ID != r.ID {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// statusNames are the statuses as the index holds them (Statuses);
// waitingStatuses those of an entry that waits for an automatic retry.
var (
	statusNames = func() []string {
		out := make([]string, len(Statuses))
		for i, st := range Statuses {
			out[i] = string(st)
		}
		return out
	}()
	waitingStatuses = []string{string(deadletter.StatusPending), string(deadletter.StatusRetrying)}
)

// stats counts the entries that match f, from the index alone.
func (v *view) stats(f dlqindex.Filter) dlqindex.Counts {
	return v.index.Count(f, statusNames)
}

// due returns, by partition, the IDs of this bus's live entries that are
// due at now and that keep accepts (given their scheduler group).
func (v *view) due(now time.Time, keep func(tp topicPartition, schedulerGroup string) bool) map[topicPartition][]string {
	byPos := v.index.Due(now.UnixNano(), waitingStatuses, func(topic string, partition int32, schedulerGroup string) bool {
		return keep(topicPartition{topic, partition}, schedulerGroup)
	})
	out := make(map[topicPartition][]string, len(byPos))
	for p, ids := range byPos {
		out[topicPartition{p.Topic, p.Partition}] = ids
	}
	return out
}

func (v *view) stop() {
	if v.cancel != nil {
		v.cancel()
		<-v.done
		v.watching.Wait()
		v.cl.Close()
	}
}
