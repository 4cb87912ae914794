package consumer

import (
	"context"
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
			if err := g.commitParts(g.pollCtx, name, d, nil); err != nil && g.pollCtx.Err() == nil {
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

// commitParts commits the finished prefix of the given partitions of a
// topic (nil: all that are not being released) and waits for the answer.
// Commits never overlap, so one that revocation makes cannot be overtaken
// by an older one.
func (g *Group) commitParts(ctx context.Context, topic string, d *dispatcher, parts []*partition) error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	offsets := d.commitOffsets(parts)
	if len(offsets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	g.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
			if err = cerr; err != nil || resp == nil {
				clear(offsets)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						delete(offsets, p.Partition)
						err = fmt.Errorf("partition %d: %w", p.Partition, kerr.ErrorForCode(p.ErrorCode))
					}
				}
			}
		})
	d.committedAt(offsets, parts)
	return err
}
