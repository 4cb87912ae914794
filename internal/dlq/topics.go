package dlq

import (
	"strings"

	"github.com/plexica/eventbus/topic"
)

// TopicFor is the dead-letter topic of group's failures on t (see
// topic.DLQFor), or "" when t is not a valid core or plugin topic: a
// command or failure for it is then refused where it is sent.
func TopicFor(group, t string) string {
	name, _ := topic.DLQFor(group, t)
	return name
}

// RetryTopicFor is where retries of group's failures on t are sent (see
// topic.RetryFor), or "" when t is not a valid core or plugin topic.
func RetryTopicFor(group, t string) string {
	name, _ := topic.RetryFor(group, t)
	return name
}

// RetryTopicPartitions is the partition count of a retry topic. A group
// reads its retry topic beside its topic, and its balancer spreads their
// partitions over the members by count, not by topic: with as many retry
// partitions as topic partitions, one member could be given all the
// topic's and another all the retries'. One partition leaves the topic's
// spread at most one partition off; retries are few, and their order
// does not matter.
const RetryTopicPartitions = 1

// IsEntryTopic reports whether topic holds dead-letter entries (dlq.core.…
// or dlq.plugin.…), as opposed to a core group's retry topic.
func IsEntryTopic(topic string) bool {
	return strings.HasPrefix(topic, "dlq.core.") || strings.HasPrefix(topic, "dlq.plugin.")
}
