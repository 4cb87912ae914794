package eventbus

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus/internal/backoff"
)

// endOffsets lists the end offset of every partition of topic, retrying
// while a partition is not served yet (just after the topic was created)
// until ctx ends.
func (b *Bus) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	adm, err := b.client.Admin()
	if err != nil {
		return nil, err
	}
	delays := backoff.Delays{Base: 20 * time.Millisecond, Max: time.Second}
	for {
		listed, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			ends := map[int32]int64{}
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			if len(ends) > 0 {
				return ends, nil
			}
			err = fmt.Errorf("topic %s has no partitions yet", topic)
		}
		if !backoff.Sleep(ctx, delays.Next()) {
			return nil, fmt.Errorf("list end offsets of %s: %w (last error: %v)", topic, ctx.Err(), err)
		}
	}
}
