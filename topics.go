package eventbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/topic"
)

// validNames remembers the topic names that passed the client's rules, so
// that publishing the same topic again costs a map lookup.
type validNames struct {
	rules *topic.Rules
	names sync.Map // topic names that passed validation
	count atomic.Int64
}

// maxValidNames bounds the cache of validated names, so that a stream of
// ever-new names cannot grow memory without end.
const maxValidNames = 10_000

// validate checks name against the rules, once per name.
func (v *validNames) validate(name string) error {
	if _, ok := v.names.Load(name); ok {
		return nil
	}
	if err := v.rules.Validate(name); err != nil {
		return err
	}
	if v.count.Load() < maxValidNames {
		if _, loaded := v.names.LoadOrStore(name, struct{}{}); !loaded {
			v.count.Add(1)
		}
	}
	return nil
}

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
