package topic

import (
	"strings"
	"testing"
)

func TestDeadLetterAndRetryTopics(t *testing.T) {
	seg := func(name, group string) string { return groupSegment(name, group) }
	for _, c := range []struct{ group, topic, dlq, retry string }{
		{"mailer", "core.user.created", "dlq.core.user.created", "dlq.retry." + seg("mailer", "mailer") + ".core.user.created"},
		{"plugin.crm.sync.tenant.acme", "plugin.crm.contact.created", "dlq.plugin.crm.contact.created",
			"plugin.crm.retry." + seg("sync.tenant.acme", "plugin.crm.sync.tenant.acme") + ".plugin.crm.contact.created"},
		{"plugin.crm.sync.tenant.acme", "core.user.created", "dlq.plugin.crm.core.user.created",
			"plugin.crm.retry." + seg("sync.tenant.acme", "plugin.crm.sync.tenant.acme") + ".core.user.created"},
		{"plugin.crm.sync", "plugin.billing.invoice.paid", "dlq.plugin.crm.plugin.billing.invoice.paid",
			"plugin.crm.retry." + seg("sync", "plugin.crm.sync") + ".plugin.billing.invoice.paid"},
		{"plugin.dashboard.x", "plugin.sample-analytics.summary.generated", "dlq.plugin.dashboard.plugin.sample_analytics.summary.generated",
			"plugin.dashboard.retry." + seg("x", "plugin.dashboard.x") + ".plugin.sample_analytics.summary.generated"},
		{"plugin.dashboard.x", "plugin.3d-view.scene.rendered", "dlq.plugin.dashboard.plugin.n3d_view.scene.rendered",
			"plugin.dashboard.retry." + seg("x", "plugin.dashboard.x") + ".plugin.n3d_view.scene.rendered"},
		{"plugin.Not_An_ID.x", "core.user.created", "dlq.core.user.created", "dlq.retry." + seg("plugin.Not_An_ID.x", "plugin.Not_An_ID.x") + ".core.user.created"},
		{"Billing-Service v2", "core.invoice.paid", "dlq.core.invoice.paid", "dlq.retry." + seg("Billing-Service v2", "Billing-Service v2") + ".core.invoice.paid"},
	} {
		if got := dlqFor(c.group, c.topic); got != c.dlq {
			t.Errorf("dlqFor(%q, %q) = %q, want %q", c.group, c.topic, got, c.dlq)
		}
		if got := retryFor(c.group, c.topic); got != c.retry {
			t.Errorf("retryFor(%q, %q) = %q, want %q", c.group, c.topic, got, c.retry)
		}
		for _, name := range []string{c.dlq, c.retry} {
			if _, err := DefaultRules().Parse(name); err != nil {
				t.Errorf("%s is not a valid topic: %v", name, err)
			}
		}
	}
	if got := groupSegment("Billing-Service v2", "x"); !strings.HasPrefix(got, "billing_service_v2_") {
		t.Errorf("groupSegment keeps the name readable: got %q", got)
	}
}

// Two groups whose names write the same segment still get distinct retry
// topics: no group ever reads another's retries.
func TestRetryTopicsOfDistinctGroupsDiffer(t *testing.T) {
	pairs := [][2]string{{"a.b", "a_b"}, {"mailer", "Mailer"}, {"plugin.crm.a.b", "plugin.crm.a_b"}}
	for _, p := range pairs {
		if retryFor(p[0], "core.user.created") == retryFor(p[1], "core.user.created") {
			t.Errorf("groups %q and %q share a retry topic", p[0], p[1])
		}
	}
}
