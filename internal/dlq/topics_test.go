package dlq

import (
	"testing"

	"github.com/plexica/eventbus/internal/names"
)

func TestDeadLetterAndRetryTopics(t *testing.T) {
	for _, c := range []struct{ group, topic, dlq, retry string }{
		{"mailer", "core.user.created", "dlq.core.user.created", "core.user.created"},
		{"plugin.crm.sync.tenant.acme", "plugin.crm.contact.created", "dlq.plugin.crm.contact.created", "plugin.crm.contact.created"},
		{"plugin.crm.sync.tenant.acme", "core.user.created", "dlq.plugin.crm.core.user.created", "plugin.crm.retry.core.user.created"},
		{"plugin.crm.sync", "plugin.billing.invoice.paid", "dlq.plugin.crm.plugin.billing.invoice.paid", "plugin.crm.retry.plugin.billing.invoice.paid"},
		{"plugin.dashboard.x", "plugin.sample-analytics.summary.generated", "dlq.plugin.dashboard.plugin.sample_analytics.summary.generated", "plugin.dashboard.retry.plugin.sample_analytics.summary.generated"},
		{"plugin.dashboard.x", "plugin.3d-view.scene.rendered", "dlq.plugin.dashboard.plugin.n3d_view.scene.rendered", "plugin.dashboard.retry.plugin.n3d_view.scene.rendered"},
		{"plugin.Not_An_ID.x", "core.user.created", "dlq.core.user.created", "core.user.created"},
		{"plugin.crm", "core.user.created", "dlq.core.user.created", "core.user.created"}, // no group name after the ID
	} {
		if got := TopicFor(c.group, c.topic); got != c.dlq {
			t.Errorf("TopicFor(%q, %q) = %q, want %q", c.group, c.topic, got, c.dlq)
		}
		if got := RetryTopicFor(c.group, c.topic); got != c.retry {
			t.Errorf("RetryTopicFor(%q, %q) = %q, want %q", c.group, c.topic, got, c.retry)
		}
		for _, name := range []string{c.dlq, c.retry} {
			if _, err := names.DefaultRules().ParseTopic(name); err != nil {
				t.Errorf("%s is not a valid topic: %v", name, err)
			}
		}
	}
}
