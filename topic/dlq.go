package topic

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// DLQFor returns the dead-letter topic where the failures of consumer
// group on topic are kept: "dlq.<topic>", except for a plugin's group
// ("plugin.<id>.…") on a topic outside that plugin's own, whose failures
// stay under the plugin's prefix ("dlq.plugin.<id>.<topic as entity>"; see
// pluginacl.Provision). topic must be a valid core or plugin topic under
// DefaultRules; otherwise the error wraps ErrInvalidTopic.
func DLQFor(group, topic string) (string, error) {
	if err := checkOriginal(topic); err != nil {
		return "", err
	}
	return dlqFor(group, topic), nil
}

// RetryFor returns the topic where the dead letter queue sends consumer
// group's retries of topic, which only that group reads:
// "dlq.retry.<group>.<topic>", or for a plugin's group
// "plugin.<id>.retry.<group>.<topic as entity>" (<group> is the group's
// name as a topic segment, with 8 hex digits of its hash). Errors as
// DLQFor.
func RetryFor(group, topic string) (string, error) {
	if err := checkOriginal(topic); err != nil {
		return "", err
	}
	return retryFor(group, topic), nil
}

// checkOriginal checks that topic can have failures: a valid core or
// plugin topic.
func checkOriginal(topic string) error {
	if err := defaultRules.Validate(topic); err != nil {
		return err
	}
	if strings.HasPrefix(topic, dlqPrefix) {
		return fmt.Errorf("%w: %q is a dead-letter topic already; give the topic whose failures it would hold", ErrInvalidTopic, topic)
	}
	return nil
}

// Where a failure is kept depends on who failed:
//
//   - a core group, or a plugin's group (plugin.<id>.…) on the plugin's own
//     topic (plugin.<id>.…): dlq.<topic>;
//   - a plugin's group on any other topic (core.*, another plugin's):
//     dlq.plugin.<id>.<topic>. The plugin so dead-letters on its own
//     credentials (ACLs on plugin.<id>. and dlq.plugin.<id>., see
//     pluginacl.Provision) without write access to core or other
//     plugins' topics, and it can never write the dlq.* topics whose
//     entries a core scheduler acts on.
//
// A retry goes to a topic of the failed group's own, which that group's
// subscription also reads and no other group does: a retry reaches only
// its group by where it lies, whatever can be read about its entry.
//
//   - a core group: dlq.retry.<group>.<topic>;
//   - a plugin's group: plugin.<id>.retry.<group>.<topic>, within the
//     plugin's topic space.
//
// <group> is the group's name made a segment ([a-z0-9_], at most 40
// characters) followed by "_" and 8 hex digits of its SHA-256: distinct
// groups never share a retry topic.

// pluginOfGroup returns the plugin ID of a plugin consumer group
// ("plugin.<id>.<name>..."), or "".
func pluginOfGroup(group string) string {
	rest, ok := strings.CutPrefix(group, "plugin.")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok || !isPluginID(id) {
		return ""
	}
	return id
}

// foreignToPlugin reports, for a group reading topic, the plugin whose
// group it is when topic lies outside that plugin's own topic space.
func foreignToPlugin(group, topic string) (pluginID string, foreign bool) {
	id := pluginOfGroup(group)
	if id == "" || strings.HasPrefix(topic, "plugin."+id+".") {
		return "", false
	}
	return id, true
}

// dlqFor is DLQFor of a valid topic.
func dlqFor(group, topic string) string {
	if id, foreign := foreignToPlugin(group, topic); foreign {
		return "dlq.plugin." + id + "." + asEntity(topic)
	}
	return "dlq." + topic
}

// retryFor is RetryFor of a valid topic.
func retryFor(group, topic string) string {
	if id := pluginOfGroup(group); id != "" {
		return "plugin." + id + ".retry." + groupSegment(strings.TrimPrefix(group, "plugin."+id+"."), group) + "." + asEntity(topic)
	}
	return "dlq.retry." + groupSegment(group, group) + "." + topic
}

// groupSegment writes name (group, or its part after a plugin's prefix) as
// one topic segment: lowercase, [a-z0-9_] (anything else becomes "_"),
// starting with a letter, at most 40 characters, then "_" and the first 8
// hex digits of group's SHA-256.
func groupSegment(name, group string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		if b.Len() >= 40 {
			break
		}
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	seg := b.String()
	if seg == "" || seg[0] < 'a' || seg[0] > 'z' {
		seg = "g" + seg
	}
	sum := sha256.Sum256([]byte(group))
	return seg + "_" + hex.EncodeToString(sum[:4])
}

// asEntity writes a topic name as entity segments of a plugin topic
// ([a-z][a-z0-9_]*): a plugin ID's "-" becomes "_", and a segment that
// starts with a digit gets an "n" in front. Plugin IDs hold no "_", so
// distinct topics stay distinct.
func asEntity(topic string) string {
	segs := strings.Split(topic, ".")
	for i, seg := range segs {
		seg = strings.ReplaceAll(seg, "-", "_")
		if seg != "" && seg[0] >= '0' && seg[0] <= '9' {
			seg = "n" + seg
		}
		segs[i] = seg
	}
	return strings.Join(segs, ".")
}
