package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/backoff"
)

// startOffsets remembers where partitions without a committed offset were
// set to start, for adjustStart.
type startOffsets struct {
	mu sync.Mutex
	at map[string]map[int32]int64
}

func (s *startOffsets) init() { s.at = map[string]map[int32]int64{} }

func (s *startOffsets) set(topic string, p int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at[topic] == nil {
		s.at[topic] = map[int32]int64{}
	}
	s.at[topic][p] = offset
}

func (s *startOffsets) get(topic string, p int32) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.at[topic][p]
	return o, ok
}

// startMarker is the metadata of a start-position commit: it says where a
// partition starts, not that anything was handled, so it is never taken
// for the group's progress.
const startMarker = "s1:start"

// isProgress reports whether a committed offset is the group's progress
// (a commit of handled records, by this engine or any other client) rather
// than a start position.
func isProgress(o kadm.OffsetResponse) bool {
	return o.Err == nil && o.At >= 0 && o.Metadata != startMarker
}

// Reading the group's offsets at assignment is retried this many times,
// backing off, before the documented fallback applies.
const startReadAttempts = 5

// fixStarts makes the group's start positions durable: every newly
// assigned partition without a committed offset gets one now, at its start
// position, before anything is read. So events published while every
// member is down are delivered when one comes back, on every partition,
// not only on those where something was handled and committed.
//
// The start position of such a partition is its oldest retained record
// when the topic asked for FromBeginning, when the partition did not exist
// when the topic was subscribed (it is missing from StartAt), or when the
// group already made progress on other partitions of the topic (the
// partition is new); else StartAt, the topic's end offset when it was
// subscribed. Start-position commits carry startMarker and never count as
// progress, so members that join a new group together all start at
// StartAt, whichever of them commits first.
//
// When the group's offsets cannot be read (after startReadAttempts tries),
// nothing is committed and a partition without a commit starts at StartAt,
// or at its oldest retained record with FromBeginning: never at the oldest
// record for a group that did not ask for it.
func (g *Group) fixStarts(ctx context.Context, assigned map[string][]int32) {
	// A rebalance that assigns nothing new (cooperative and KIP-848
	// assignments call back with what was added) has nothing to start:
	// the callback holds the poll loop, so it reads no offsets.
	anything := false
	for topic, ps := range assigned {
		anything = anything || (len(ps) > 0 && g.dispatcher(topic) != nil)
	}
	if !anything {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Stop waits for this callback (the poll loop cannot return while it
	// runs): the work here ends when Stop begins. The member is leaving;
	// whoever takes the partitions makes their starts durable.
	defer context.AfterFunc(g.pollCtx, cancel)()
	committed, err := g.readOffsets(ctx)
	if err != nil && g.pollCtx.Err() != nil {
		return // stopping
	}
	if err != nil {
		g.cfg.Logger.Warn("eventbus: could not read the group's committed offsets; partitions without a commit start where the subscription began, and that start is made durable by the first commit",
			"group", g.cfg.Group, "err", err)
		for topic, ps := range assigned {
			if d := g.dispatcher(topic); d != nil && !d.t.FromBeginning {
				for _, p := range ps {
					if end, ok := d.t.StartAt[p]; ok {
						g.starts.set(topic, p, end)
					}
				}
			}
		}
		return
	}
	toCommit := map[string]map[int32]kgo.EpochOffset{}
	var needStart []string
	for topic, ps := range assigned {
		d := g.dispatcher(topic)
		if d == nil {
			continue
		}
		topicHasProgress := false
		for p, o := range committed[topic] {
			topicHasProgress = topicHasProgress || (p >= 0 && isProgress(o))
		}
		for _, p := range ps {
			o, ok := committed.Lookup(topic, p)
			if ok && o.Err == nil && o.At >= 0 {
				d.resumeFrom(p, o.At, decodeFinished(o.At, o.Metadata))
				continue
			}
			if ok && o.Err != nil {
				// The partition's commit is unknown, not absent: a start
				// committed over it could skip records never handled.
				// Without a commit found by the client, it starts as
				// after a failed read.
				g.cfg.Logger.Warn("eventbus: could not read a partition's committed offset; no start position is committed for it this time",
					"group", g.cfg.Group, "topic", topic, "partition", p, "err", o.Err)
				if end, ok := d.t.StartAt[p]; ok && !d.t.FromBeginning {
					g.starts.set(topic, p, end)
				}
				continue
			}
			if toCommit[topic] == nil {
				toCommit[topic] = map[int32]kgo.EpochOffset{}
			}
			end, ok := d.t.StartAt[p]
			if d.t.FromBeginning || topicHasProgress || !ok {
				end = -1 // the oldest retained record, listed below
				needStart = append(needStart, topic)
			}
			toCommit[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: end}
		}
	}
	if len(toCommit) == 0 {
		return
	}
	if len(needStart) > 0 {
		starts, err := g.adm.ListStartOffsets(ctx, needStart...)
		if err == nil {
			err = starts.Error()
		}
		for topic, ps := range toCommit {
			for p, o := range ps {
				if o.Offset >= 0 {
					continue
				}
				if err != nil {
					delete(ps, p) // reading starts at the oldest retained record (ConsumeResetOffset) anyway
					continue
				}
				s, _ := starts.Lookup(topic, p)
				ps[p] = kgo.EpochOffset{Epoch: -1, Offset: max(s.Offset, 0)}
			}
		}
		if err != nil {
			g.cfg.Logger.Warn("eventbus: could not list start offsets; partitions that start at their oldest record get no durable start this time",
				"group", g.cfg.Group, "err", err)
		}
	}
	for topic, ps := range toCommit {
		for p, o := range ps {
			g.starts.set(topic, p, o.Offset)
		}
	}
	ctx = withCommitMetadata(ctx, func(string, int32, int64) string { return startMarker })
	cerr := commitSync(ctx, g.cl, toCommit)
	if cerr == nil {
		for topic, ps := range toCommit {
			if d := g.dispatcher(topic); d != nil {
				for p, o := range ps {
					d.resumeFrom(p, o.Offset, nil)
				}
			}
		}
	}
	if cerr != nil {
		g.cfg.Logger.Warn("eventbus: could not commit start positions; a restart before the first commit may skip events published meanwhile",
			"group", g.cfg.Group, "err", cerr)
	}
}

// readOffsets reads the group's committed offsets, trying again on
// failure (a broker still loading the group, a connection lost).
func (g *Group) readOffsets(ctx context.Context) (kadm.OffsetResponses, error) {
	delays := backoff.Delays{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	var err error
	for range startReadAttempts {
		var committed kadm.OffsetResponses
		if committed, err = g.adm.FetchOffsets(ctx, g.cfg.Group); err == nil {
			return committed, nil
		}
		if !backoff.Sleep(ctx, delays.Next()) {
			break
		}
	}
	return nil, err
}

// adjustStart runs once the group's committed offsets are fetched: a
// partition that still has none starts where fixStarts decided, and every
// partition's dispatcher learns its start, below which it drops records.
func (g *Group) adjustStart(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for topic, parts := range offsets {
		d := g.dispatcher(topic)
		for p, o := range parts {
			at := o.EpochOffset().Offset
			if at < 0 {
				if s, ok := g.starts.get(topic, p); ok {
					parts[p] = kgo.NewOffset().At(s)
					at = s
				}
			}
			if d != nil && at >= 0 {
				d.startAt(p, at)
			}
		}
	}
	return offsets, nil
}
