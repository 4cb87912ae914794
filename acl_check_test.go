package eventbus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginacl"
)

// TestACLCheckAgreesWithTheBroker: for a set of grants beyond what
// provisioning gives (a deny inside the plugin's own space, a literal
// grant on one core topic), every answer of pluginacl.Grants.Check is what an
// ACL-enforcing broker does when the plugin tries: "allowed" where every
// sampled resource is allowed, "denied" where every one is refused,
// "partly" where some are.
func TestACLCheckAgreesWithTheBroker(t *testing.T) {
	t.Parallel()
	brokers, admin := secureCluster(t)
	topics := admin.Topics()
	ctx := boundedCtx(t)
	const password = "crm-secret"
	existing := []string{
		"plugin.crm.contact.created", "plugin.crm.secret.leaked", "plugin.billing.invoice.paid",
		"core.user.created", "core.tenant.created", "core.audit.logged",
	}
	for _, topic := range existing {
		if err := topics.Ensure(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: password, CoreTopics: []string{"core.user."}}); err != nil {
		t.Fatal(err)
	}
	adm, err := admin.Admin()
	if err != nil {
		t.Fatal(err)
	}
	user := "User:" + pluginacl.Username("crm")
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Deny(user).DenyHosts("*").Topics("plugin.crm.secret.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
		kadm.NewACLs().Allow(user).AllowHosts("*").Topics("core.audit.logged").ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite),
	} {
		res, err := adm.CreateACLs(ctx, b)
		if err == nil {
			for _, r := range res {
				err = errors.Join(err, r.Err)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	bus := eventbustest.NewBusOn(t, admin, eventbus.Config{})
	for _, topic := range existing {
		eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	}

	g, err := pluginacl.Describe(ctx, kadmOf(t, admin), "crm")
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]pluginacl.Check{}
	for _, c := range g.Check() {
		checks[c.Action+" "+c.Resource] = c
	}

	crm := rawPluginClient(t, brokers, "crm", password)
	crmAdmin := kadm.NewClient(crm)
	produce := func(topic string) error { return rawProduce(t, crm, topic) }
	consume := func(group string) func(string) error {
		return func(topic string) error {
			_, err := consumeOne(t, brokers, "crm", password, group, topic)
			return err
		}
	}
	create := func(topic string) error {
		res, err := crmAdmin.CreateTopic(ctx, 1, 1, nil, topic)
		if err != nil {
			return err
		}
		return res.Err
	}
	for _, p := range []struct {
		check   string
		try     func(resource string) error
		samples []string
	}{
		{"produce topic plugin.crm.*", produce, []string{"plugin.crm.contact.created", "plugin.crm.secret.leaked"}},
		{"consume topic plugin.crm.*", consume("plugin.crm.g1"), []string{"plugin.crm.contact.created"}},
		{"create topic plugin.crm.*", create, []string{"plugin.crm.note.added"}},
		{"consume topic core.user.*", consume("plugin.crm.g2"), []string{"core.user.created"}},
		{"consume topic core.*", consume("plugin.crm.g3"), []string{"core.user.created", "core.tenant.created"}},
		{"produce topic core.*", produce, []string{"core.user.created", "core.audit.logged"}},
		{"produce topic core.audit.logged", produce, []string{"core.audit.logged"}},
		{"produce topic plugin.* (other plugins)", produce, []string{"plugin.billing.invoice.paid"}},
		{"consume topic plugin.* (other plugins)", consume("plugin.crm.g4"), []string{"plugin.billing.invoice.paid"}},
		{"create topic * (outside plugin.crm.*)", create, []string{"core.thing.created", "dlq.plugin.crm.core.thing.created"}},
		{"join consumer group group * (outside plugin.crm.*)", consume("reporting"), []string{"plugin.crm.contact.created"}},
	} {
		c, ok := checks[p.check]
		if !ok {
			t.Errorf("Check has no answer for %q; it answered %v", p.check, checks)
			continue
		}
		var allowed, denied []string
		for _, r := range p.samples {
			switch err := p.try(r); {
			case err == nil:
				allowed = append(allowed, r)
			case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
				errors.Is(err, kerr.ClusterAuthorizationFailed):
				denied = append(denied, r)
			default:
				t.Fatalf("%s on %s: %v (neither allowed nor refused)", p.check, r, err)
			}
		}
		broker := "partly"
		switch {
		case len(denied) == 0:
			broker = "allowed"
		case len(allowed) == 0:
			broker = "denied"
		}
		if c.Access != broker {
			t.Errorf("%s: Check says %s (%s); the broker allowed %v and refused %v", p.check, c.Access, c.Why, allowed, denied)
		}
	}
	if why := checks["produce topic plugin.crm.*"].Why; !strings.Contains(why, "plugin.crm.secret.*") {
		t.Errorf("why of the partial deny: %q", why)
	}
}
