package dlq

import (
	"strings"

	"github.com/plexica/eventbus/internal/names"
)

// Where a failure is kept and where its retry goes depends on who failed:
//
//   - a core group: dlq.<topic>, and the retry is re-published to <topic>;
//   - a plugin's group (plugin.<id>.…) on the plugin's own topic
//     (plugin.<id>.…): the same, all within the plugin's topic space;
//   - a plugin's group on any other topic (core.*, another plugin's): the
//     entry is kept in dlq.plugin.<id>.<topic> and the retry goes to
//     plugin.<id>.retry.<topic>, which that subscription also reads. The
//     plugin so dead-letters and retries on its own credentials (ACLs on
//     plugin.<id>. and dlq.plugin.<id>., see TopicManager.ProvisionPlugin) without
//     write access to core or other plugins' topics, and it can never write
//     the dlq.* topics whose entries a core scheduler acts on.

// pluginOfGroup returns the plugin ID of a plugin consumer group
// ("plugin.<id>.<name>..."), or "".
func pluginOfGroup(group string) string {
	rest, ok := strings.CutPrefix(group, "plugin.")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok || names.ValidatePluginID(id) != nil {
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

// TopicFor is the dead-letter topic of group's failures on topic.
func TopicFor(group, topic string) string {
	if id, foreign := foreignToPlugin(group, topic); foreign {
		return "dlq.plugin." + id + "." + asEntity(topic)
	}
	return "dlq." + topic
}

// RetryTopicFor is where retries of group's failures on topic are sent.
func RetryTopicFor(group, topic string) string {
	if id, foreign := foreignToPlugin(group, topic); foreign {
		return "plugin." + id + ".retry." + asEntity(topic)
	}
	return topic
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
