package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitSoon asks the committer to commit: something finished.
func (g *Group) commitSoon() {
	select {
	case g.commitSig <- struct{}{}:
	default:
	}
}

// committer commits the finished prefix of every partition whenever
// something finished, at most once per CommitInterval, until fetching
// stops (Stop then commits one last time).
func (g *Group) committer() {
	defer close(g.committerDone)
	for {
		select {
		case <-g.commitSig:
		case <-g.pollCtx.Done():
			return
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
		if g.cfg.CommitInterval > 0 {
			t := time.NewTimer(g.cfg.CommitInterval)
			select {
			case <-t.C:
			case <-g.pollCtx.Done():
				t.Stop()
				return
			}
		}
	}
}

// commitParts commits the commit point of the given partitions of a topic
// (nil: all that are not being released), with the offsets finished above
// it in the commit's metadata, and waits for the answer. Commits never
// overlap, so one that revocation makes cannot be overtaken by an older
// one.
func (g *Group) commitParts(ctx context.Context, topic string, d *dispatcher, parts []*partition) error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	points := d.commitPoints(parts)
	if len(points) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	offsets := make(map[int32]kgo.EpochOffset, len(points))
	for id, pt := range points {
		offsets[id] = pt.EpochOffset
	}
	// The finished offsets ride in the request's metadata, set just
	// before franz-go sends it.
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			if t.Topic != topic {
				continue
			}
			for j := range t.Partitions {
				p := &t.Partitions[j]
				if pt, ok := points[p.Partition]; ok && pt.Offset == p.Offset && pt.metadata != "" {
					p.Metadata = kmsg.StringPtr(pt.metadata)
				}
			}
		}
		return nil
	})
	var err error
	g.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
			if err = cerr; err != nil || resp == nil {
				clear(points)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						delete(points, p.Partition)
						err = fmt.Errorf("partition %d: %w", p.Partition, kerr.ErrorForCode(p.ErrorCode))
					}
				}
			}
		})
	d.committedAt(points, parts)
	if err != nil {
		g.commitSoon() // try again after CommitInterval
	}
	return err
}
