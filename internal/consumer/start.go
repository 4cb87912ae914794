package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// fixStarts makes the group's start positions durable: every newly
// assigned partition without a committed offset gets one now, at its start
// position, before anything is read. So events published while every
// member is down are delivered when one comes back, on every partition,
// not only on those where something was handled and committed.
//
// The start position of such a partition is its oldest retained record
// when the topic asked for FromBeginning or the group already has
// offsets on other partitions of the topic (the partition is new); else the
// topic's end offset when it was subscribed.
func (g *Group) fixStarts(ctx context.Context, assigned map[string][]int32) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	committed, err := g.adm.FetchOffsets(ctx, g.cfg.Group)
	if err != nil {
		g.cfg.Logger.Warn("eventbus: could not read the group's committed offsets; start positions are not made durable this time",
			"group", g.cfg.Group, "err", err)
		return
	}
	has := func(topic string, p int32) bool {
		o, ok := committed.Lookup(topic, p)
		return ok && o.Err == nil && o.At >= 0
	}
	toCommit := map[string]map[int32]kgo.EpochOffset{}
	var needStart []string
	for topic, ps := range assigned {
		d := g.dispatcher(topic)
		if d == nil {
			continue
		}
		for _, p := range ps {
			if o, ok := committed.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
				d.resumeFrom(p, o.At, decodeFinished(o.At, o.Metadata))
			}
		}
		topicHasOffsets := false
		for p, o := range committed[topic] {
			topicHasOffsets = topicHasOffsets || (o.Err == nil && o.At >= 0 && p >= 0)
		}
		for _, p := range ps {
			if has(topic, p) {
				continue
			}
			if toCommit[topic] == nil {
				toCommit[topic] = map[int32]kgo.EpochOffset{}
			}
			end, ok := d.t.StartAt[p]
			if d.t.FromBeginning || topicHasOffsets || !ok {
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
		if err != nil {
			g.cfg.Logger.Warn("eventbus: could not list start offsets; start positions are not made durable this time",
				"group", g.cfg.Group, "err", err)
			return
		}
		for topic, ps := range toCommit {
			for p, o := range ps {
				if o.Offset < 0 {
					s, _ := starts.Lookup(topic, p)
					ps[p] = kgo.EpochOffset{Epoch: -1, Offset: max(s.Offset, 0)}
				}
			}
		}
	}
	for topic, ps := range toCommit {
		for p, o := range ps {
			g.starts.set(topic, p, o.Offset)
		}
	}
	var cerr error
	g.cl.CommitOffsetsSync(ctx, toCommit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = err
		if err == nil && resp != nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 && cerr == nil {
						cerr = kerr.ErrorForCode(p.ErrorCode)
					}
				}
			}
		}
	})
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
