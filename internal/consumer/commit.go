package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitSoon asks the committer to commit: something finished. The
// commit is made once CommitInterval passed since the last one, or sooner
// when enough finished meanwhile (commitNow).
func (g *Group) commitSoon() {
	select {
	case g.commitSig <- struct{}{}:
	default:
	}
}

// commitNow asks the committer to commit without waiting for
// CommitInterval: a topic finished commitEvery records since its last
// commit.
func (g *Group) commitNow() {
	select {
	case g.commitNowSig <- struct{}{}:
	default:
	}
}

// minCommitEvery is the fewest finished records of a topic that make a
// commit due before CommitInterval passed (commitEvery).
const minCommitEvery = 64

// commitEvery is how many records of topic t, finished since its last
// commit, make a commit due at once: its MaxConcurrency, at least
// minCommitEvery. So what a crash hands again to the next owner is bounded
// by a count, whatever the rate and however long the broker takes to
// answer a commit: at most maxUncommitted finished after the last commit
// taken, plus what was running (the commit in flight lands if it was
// sent; if it was not, what it carried comes again too). A busy group
// commits once per that many records, never more often than its commits
// return (commits never overlap), while a quiet one commits at most once
// per CommitInterval.
func commitEvery(t Topic) int { return max(t.MaxConcurrency, minCommitEvery) }

// maxUncommitted is how many records of topic t may finish after the
// last commit was taken (commitPoints) before its workers take no new
// record until the next one is: twice commitEvery. A commit is taken once
// commitEvery finished, so the commit in flight may take that long again
// to be answered before anything waits; only a broker slow to answer
// (loaded, paused, failing over) holds handlers up. Without it, what a
// crash hands again would grow with the time a commit takes to be
// answered: a member whose records were already fetched handled on at
// full speed while its commit waited, and all of that came again. The
// price: a topic handles at most about maxUncommitted records per commit
// round trip, which handlers that take next to no time (a backlog drained
// by a handler of a few microseconds) reach; a larger MaxConcurrency
// raises it.
func maxUncommitted(t Topic) int { return 2 * commitEvery(t) }

// committer commits the finished prefix of every partition (and the
// offsets finished above it) whenever something finished: once
// CommitInterval passed since the last commit, or at once when a topic
// finished commitEvery records since its last one; until fetching stops
// (Stop then commits one last time).
func (g *Group) committer() {
	defer close(g.committerDone)
	var last time.Time
	for {
		now := false
		select {
		case <-g.commitSig:
		case <-g.commitNowSig:
			now = true
		case <-g.pollCtx.Done():
			return
		}
		if wait := g.cfg.CommitInterval - time.Since(last); !now && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-g.commitNowSig:
				t.Stop()
			case <-g.pollCtx.Done():
				t.Stop()
				return
			}
		}
		last = time.Now()
		if h := g.cfg.hooks.committing; h != nil {
			h()
		}
		g.mu.RLock()
		ds := make(map[string]*dispatcher, len(g.topics))
		for name, d := range g.topics {
			ds[name] = d
		}
		g.mu.RUnlock()
		for name, d := range ds {
			err := g.commitParts(g.pollCtx, name, d, nil)
			switch {
			case err == nil || g.pollCtx.Err() != nil:
			case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID):
				// A rebalance is under way: its revocation commits.
			default:
				g.cfg.Logger.Warn("eventbus: commit failed; handled events may be delivered again", "group", g.cfg.Group, "topic", name, "err", err)
			}
		}
	}
}

// commitParts commits the commit point of the given partitions of a topic
// (nil: all that are not being released), with the offsets finished above
// it in the commit's metadata, and waits for the answer. Commits never
// overlap, so one that revocation makes cannot be overtaken by an older
// one.
//
// A broker whose offset.metadata.max.bytes is below what the metadata
// takes rejects the commit (OFFSET_METADATA_TOO_LARGE): the commit is then
// made again at once with half the metadata, down to none, and the group
// keeps the lower limit.
func (g *Group) commitParts(ctx context.Context, topic string, d *dispatcher, parts []*partition) error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	for {
		limit := int(g.metadataLimit.Load())
		points := d.commitPoints(parts, limit)
		if len(points) == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		offsets := make(map[int32]kgo.EpochOffset, len(points))
		for id, pt := range points {
			offsets[id] = pt.EpochOffset
		}
		cctx = withCommitMetadata(cctx, func(t string, p int32, offset int64) string {
			if pt, ok := points[p]; ok && t == topic && pt.Offset == offset {
				return pt.metadata
			}
			return ""
		})
		err := commitSync(cctx, g.cl, map[string]map[int32]kgo.EpochOffset{topic: offsets})
		cancel()
		var failed partitionErrors
		if errors.As(err, &failed) {
			for p := range failed {
				delete(points, p)
			}
		} else if err != nil {
			clear(points)
		}
		d.committedAt(points, parts)
		if limit > 0 && errors.Is(err, kerr.OffsetMetadataTooLarge) {
			g.metadataLimit.Store(int64(limit / 2))
			g.cfg.Logger.Warn("eventbus: the broker rejected the finished offsets carried in a commit as too large (offset.metadata.max.bytes); committing again with less",
				"group", g.cfg.Group, "topic", topic, "metadata_bytes", limit/2)
			continue
		}
		if err != nil {
			g.commitSoon() // try again after CommitInterval
		}
		return err
	}
}

// partitionErrors are the partitions a commit's answer rejected.
type partitionErrors map[int32]error

func (e partitionErrors) Error() string {
	var b strings.Builder
	for p, err := range e {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "partition %d: %v", p, err)
	}
	return b.String()
}

func (e partitionErrors) Unwrap() []error {
	out := make([]error, 0, len(e))
	for _, err := range e {
		out = append(out, err)
	}
	return out
}

// withCommitMetadata makes the commits made with ctx carry, per partition,
// the metadata meta returns for the offset committed; it is set just
// before franz-go sends the request.
func withCommitMetadata(ctx context.Context, meta func(topic string, partition int32, offset int64) string) context.Context {
	return kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				p := &t.Partitions[j]
				if m := meta(t.Topic, p.Partition, p.Offset); m != "" {
					p.Metadata = kmsg.StringPtr(m)
				}
			}
		}
		return nil
	})
}

// commitSync commits offsets and waits for the answer: the request's error,
// or the partitions the answer rejected (partitionErrors).
func commitSync(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) error {
	var err error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
		if err = cerr; err != nil || resp == nil {
			return
		}
		failed := partitionErrors{}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					failed[p.Partition] = kerr.ErrorForCode(p.ErrorCode)
				}
			}
		}
		if len(failed) > 0 {
			err = failed
		}
	})
	return err
}
