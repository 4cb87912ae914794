package eventbus

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pinStartOffsets commits the topic's current end offsets for group on
// every partition where the group has no committed offset yet, so that a
// new subscription starts exactly after what was published before it began.
// (A reset by timestamp or to the end is resolved only after the group has
// joined, racing with events published meanwhile.)
//
// member is the group's running client, or nil when the group has no member
// in this process yet; then the commit is a simple one, which the broker
// accepts while the group has no members elsewhere. When pinning is refused
// the group falls back to its reset offset.
func (b *Bus) pinStartOffsets(ctx context.Context, group, topic string, member *kgo.Client) {
	adm, err := b.client.Admin()
	if err != nil {
		return
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // a new group has no offsets
		b.logger.Warn("eventbus: could not read the group's offsets to pin its start; events published right after Subscribe may be missed",
			"group", group, "topic", topic, "err", err)
		return
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		b.logger.Warn("eventbus: could not list end offsets to pin the group's start; events published right after Subscribe may be missed",
			"group", group, "topic", topic, "err", err)
		return
	}
	pin := map[string]map[int32]kgo.EpochOffset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if _, ok := committed.Lookup(o.Topic, o.Partition); ok {
			return
		}
		if pin[o.Topic] == nil {
			pin[o.Topic] = map[int32]kgo.EpochOffset{}
		}
		pin[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
	})
	if len(pin) == 0 {
		return
	}
	if member != nil {
		member.CommitOffsetsSync(ctx, pin, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				b.logger.Warn("eventbus: could not pin the group's start; events published right after Subscribe may be missed",
					"group", group, "topic", topic, "err", err)
			}
		})
		return
	}
	offsets := kadm.Offsets{}
	for t, ps := range pin {
		for p, eo := range ps {
			offsets.Add(kadm.Offset{Topic: t, Partition: p, At: eo.Offset, LeaderEpoch: -1})
		}
	}
	resp, err := adm.CommitOffsets(ctx, group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		b.logger.Warn("eventbus: could not pin the group's start; events published right after Subscribe may be missed",
			"group", group, "topic", topic, "err", err)
	}
}
