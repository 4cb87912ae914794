package eventbus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginacl"
)

// secureCluster starts an embedded broker with SASL/SCRAM and ACLs and
// returns its brokers and a connected superuser client.
func secureCluster(t *testing.T) ([]string, *eventbus.Client) {
	t.Helper()
	broker := eventbustest.StartEmbedded(t, embedded.Config{
		Superuser:  &embedded.User{Mechanism: "SCRAM-SHA-256", Name: "admin", Password: "admin"},
		EnableACLs: true,
	})
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers: broker.Addrs(),
		SASL:    &eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA256, Username: "admin", Password: "admin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Connect(boundedCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return broker.Addrs(), client
}

// pluginConnection is a connected Client logged in as a plugin.
func pluginConnection(t *testing.T, brokers []string, pluginID, password string) *eventbus.Client {
	t.Helper()
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers: brokers,
		SASL:    &eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA256, Username: pluginacl.Username(pluginID), Password: password},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Connect(boundedCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// rawPluginClient is a franz-go client logged in as a plugin, with none of
// the bus's checks.
func rawPluginClient(t *testing.T, brokers []string, pluginID, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	auth := scram.Auth{User: pluginacl.Username(pluginID), Pass: password}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.SASL(auth.AsSha256Mechanism()),
		kgo.RecordDeliveryTimeout(3 * time.Second),
		kgo.RecordRetries(2),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func rawProduce(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{"raw":true}`)}).FirstErr()
}

// consumeOne reads one record of topic in group as the plugin.
func consumeOne(t *testing.T, brokers []string, pluginID, password, group, topic string) (*kgo.Record, error) {
	t.Helper()
	cl := rawPluginClient(t, brokers, pluginID, password,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return nil, err
		}
		for _, err := range fetches.Errors() {
			return nil, err.Err
		}
		if recs := fetches.Records(); len(recs) > 0 {
			return recs[0], nil
		}
	}
}

func TestACLProvisionedPluginIsConfinedByTheBroker(t *testing.T) {
	t.Parallel()
	brokers, admin := secureCluster(t)

	ctx := boundedCtx(t)
	const (
		own       = "plugin.crm.contact.created"
		neighbour = "plugin.crm-admin.user.created" // shares the "plugin.crm" string prefix
		other     = "plugin.billing.invoice.paid"
		granted   = "core.user.created"
		forbidden = "core.tenant.created"
	)
	for _, topic := range []string{own, neighbour, other, granted, forbidden} {
		if err := admin.Topics().Ensure(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: "crm-secret", CoreTopics: []string{"core.user."}}); err != nil {
		t.Fatal(err)
	}
	bus := eventbustest.NewBusOn(t, admin, eventbus.Config{})
	eventbustest.MustPublish(t, bus, granted, userPayload{"u1", "ada@acme.test"}, eventbus.PublishMetadata{TenantID: "acme"})
	eventbustest.MustPublish(t, bus, forbidden, 1, eventbus.PublishMetadata{TenantID: "acme"})

	crm := rawPluginClient(t, brokers, "crm", "crm-secret")
	// What it may not do.
	for _, topic := range []string{granted, forbidden, neighbour, other, "dlq." + granted} {
		if err := rawProduce(t, crm, topic); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("plugin crm producing to %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
		}
	}
	if _, err := consumeOne(t, brokers, "crm", "crm-secret", "plugin.crm.tenants", forbidden); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("plugin crm reading %s: %v, want TOPIC_AUTHORIZATION_FAILED", forbidden, err)
	}
	if _, err := consumeOne(t, brokers, "crm", "crm-secret", "analytics", own); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("plugin crm in a group outside plugin.crm.: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	// What it may do: write and read its own topics (creating new ones),
	// and read the core topics it was granted, in its own groups.
	if err := rawProduce(t, crm, own); err != nil {
		t.Fatalf("plugin crm producing to its own topic: %v", err)
	}
	for topic, want := range map[string]error{"plugin.crm.deal.updated": nil, "core.deal.updated": kerr.TopicAuthorizationFailed} {
		resp, err := kadm.NewClient(crm).CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("plugin crm creating %s: %v, want %v", topic, err, want)
		}
	}
	if err := rawProduce(t, crm, "plugin.crm.deal.updated"); err != nil {
		t.Fatalf("plugin crm producing to the topic it created: %v", err)
	}
	if r, err := consumeOne(t, brokers, "crm", "crm-secret", "plugin.crm.contacts", own); err != nil || string(r.Value) != `{"raw":true}` {
		t.Fatalf("plugin crm reading its own topic: %v", err)
	}
	if r, err := consumeOne(t, brokers, "crm", "crm-secret", "plugin.crm.core.user.created.tenant.acme", granted); err != nil || !strings.Contains(string(r.Value), "ada@acme.test") {
		t.Fatalf("plugin crm reading the granted core topic: %v", err)
	}

	// Revoked: no new connection authenticates, and the open one can no
	// longer write.
	if err := pluginacl.Revoke(ctx, kadmOf(t, admin), "crm"); err != nil {
		t.Fatal(err)
	}
	if err := rawProduce(t, crm, own); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("revoked plugin on its open connection: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// Kafka answers SASL_AUTHENTICATION_FAILED; the embedded broker
	// closes the connection of an unknown user.
	fresh := rawPluginClient(t, brokers, "crm", "crm-secret")
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := fresh.Ping(pingCtx); err == nil {
		t.Error("revoked plugin could still log in")
	} else if err := rawProduce(t, fresh, own); err == nil {
		t.Error("revoked plugin could still write")
	}
	if err := pluginacl.Revoke(ctx, kadmOf(t, admin), "crm"); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
}

func TestACLProvisionReplacesGrants(t *testing.T) {
	t.Parallel()
	_, admin := secureCluster(t)

	ctx := boundedCtx(t)
	access := pluginacl.Access{Password: "pw-1", CoreTopics: []string{"core.user.", "core.tenant.created"}, PluginTopics: []string{"plugin.crm."}}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "sample-analytics", access); err != nil {
		t.Fatal(err)
	}
	has := func() map[string]bool {
		adm, err := admin.Admin()
		if err != nil {
			t.Fatal(err)
		}
		res, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:plugin.sample-analytics").AllowHosts().
			AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range res {
			for _, d := range r.Described {
				out[strings.ToLower(d.Type.String()+" "+d.Pattern.String()+" "+d.Name+" "+d.Operation.String())] = true
			}
		}
		return out
	}
	got := has()
	for _, want := range []string{
		"topic prefixed plugin.sample-analytics. write",
		"topic prefixed plugin.sample-analytics. read",
		"topic prefixed plugin.sample-analytics. create",
		"group prefixed plugin.sample-analytics. read",
		"cluster literal kafka-cluster idempotent_write",
		"topic prefixed core.user. read",
		"topic literal core.tenant.created read",
		"topic prefixed plugin.crm. read",
	} {
		if !got[want] {
			t.Errorf("missing ACL %q; have %v", want, got)
		}
	}
	// Provisioning again with less revokes the rest.
	access.CoreTopics, access.PluginTopics, access.Password = []string{"core.user."}, nil, "pw-2"
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "sample-analytics", access); err != nil {
		t.Fatal(err)
	}
	got = has()
	if got["topic literal core.tenant.created read"] || got["topic prefixed plugin.crm. read"] || !got["topic prefixed core.user. read"] {
		t.Errorf("after re-provisioning: %v", got)
	}
}

func TestACLProvisionRejectsBadInput(t *testing.T) {
	t.Parallel()
	_, admin := secureCluster(t)

	ctx := boundedCtx(t)
	for _, c := range []struct {
		id     string
		access pluginacl.Access
		want   error
	}{
		{"CRM", pluginacl.Access{Password: "x"}, eventbus.ErrInvalidPluginID},
		{"crm", pluginacl.Access{}, eventbus.ErrInvalidConfig},
		{"crm", pluginacl.Access{Password: "x", Mechanism: "PLAIN"}, eventbus.ErrInvalidConfig},
		{"crm", pluginacl.Access{Password: "x", CoreTopics: []string{"plugin.billing."}}, eventbus.ErrInvalidConfig},
		{"crm", pluginacl.Access{Password: "x", CoreTopics: []string{"core.user.create"}}, eventbus.ErrInvalidConfig},
		{"crm", pluginacl.Access{Password: "x", CoreTopics: []string{"core.User."}}, eventbus.ErrInvalidConfig},
		{"crm", pluginacl.Access{Password: "x", PluginTopics: []string{"core."}}, eventbus.ErrInvalidConfig},
		{"crm", pluginacl.Access{Password: "x", PluginTopics: []string{"plugin.crm."}}, eventbus.ErrInvalidConfig},
	} {
		err := pluginacl.Provision(ctx, kadmOf(t, admin), c.id, c.access)
		if !errors.Is(err, c.want) {
			t.Errorf("pluginacl.Provision(%q, %+v) = %v, want %v", c.id, c.access, err, c.want)
		}
	}
	if err := pluginacl.Revoke(ctx, kadmOf(t, admin), "Bad.ID"); !errors.Is(err, eventbus.ErrInvalidPluginID) {
		t.Errorf("pluginacl.Revoke(bad id) = %v", err)
	}
}

// A plugin running our own Bus and PluginClient on its provisioned
// credentials: the consumer-group scheme and the ACLs fit together.
func TestACLPluginBusOnItsOwnCredentials(t *testing.T) {
	t.Parallel()
	brokers, admin := secureCluster(t)
	ctx := boundedCtx(t)
	own := "plugin.crm.contact.created"
	core := "core.user.created"
	for _, topic := range []string{own, core} {
		if err := admin.Topics().Ensure(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: "crm-secret", CoreTopics: []string{core}}); err != nil {
		t.Fatal(err)
	}
	platform := eventbustest.NewBusOn(t, admin, eventbus.Config{})

	client := pluginConnection(t, brokers, "crm", "crm-secret")
	pluginBus := eventbustest.NewBusOn(t, client, eventbus.Config{
		DLQ: deadletter.Config{SchedulerGroup: "plugin.crm.dlq-scheduler"},
	})
	crm := newPluginClient(t, pluginBus, "crm", "acme", "")
	contacts, users := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, "contact.created", contacts.Handle)
	mustPluginSubscribe(t, crm, core, users.Handle)

	c := mustPluginPublish(t, crm, "contact.created", crmContact{ID: "c1"})
	u := eventbustest.MustPublish(t, platform, core, userPayload{"u1", "ada@acme.test"}, eventbus.PublishMetadata{TenantID: "acme"})
	contacts.WaitForID(t, c)
	users.WaitForID(t, u)

	// Even past the client's own checks, the broker refuses core topics.
	if _, err := pluginBus.Publish(ctx, core, 1, eventbus.PublishMetadata{TenantID: "acme"}); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("plugin credentials publishing %s through a Bus: %v, want TOPIC_AUTHORIZATION_FAILED", core, err)
	}
}

// pluginacl.Describe and pluginacl.List read back what the brokers hold, ACLs
// added by hand and those of every user included; pluginacl.Revoke removes the
// plugin's deny ACLs too.
func TestACLPluginGrantsReadBack(t *testing.T) {
	t.Parallel()
	_, admin := secureCluster(t)

	ctx := boundedCtx(t)
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: "pw", CoreTopics: []string{"core.user."}}); err != nil {
		t.Fatal(err)
	}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "billing", pluginacl.Access{Password: "pw", Mechanism: eventbus.SASLScramSHA512}); err != nil {
		t.Fatal(err)
	}
	adm, err := admin.Admin()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Deny("User:plugin.crm").DenyHosts("*").Topics("core.user.password_reset").ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:*").AllowHosts("*").Topics("core.status.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpDescribe),
		kadm.NewACLs().Allow("User:service.api").AllowHosts("*").Topics("core.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
	} {
		if res, err := adm.CreateACLs(ctx, b); err != nil || res[0].Err != nil {
			t.Fatalf("create ACL: %v %v", err, res)
		}
	}

	crm, err := pluginacl.Describe(ctx, kadmOf(t, admin), "crm")
	if err != nil {
		t.Fatal(err)
	}
	if !crm.Provisioned() || crm.Username != "plugin.crm" || !slices.Equal(crm.Mechanisms, []string{"SCRAM-SHA-256"}) {
		t.Fatalf("pluginacl.Describe(crm) = %+v", crm)
	}
	for _, want := range []pluginacl.ACL{
		{Principal: "User:plugin.crm", Host: "*", Permission: "ALLOW", Operation: "WRITE", Resource: "TOPIC", Pattern: "PREFIXED", Name: "plugin.crm."},
		{Principal: "User:plugin.crm", Host: "*", Permission: "ALLOW", Operation: "READ", Resource: "GROUP", Pattern: "PREFIXED", Name: "plugin.crm."},
		{Principal: "User:plugin.crm", Host: "*", Permission: "ALLOW", Operation: "IDEMPOTENT_WRITE", Resource: "CLUSTER", Pattern: "LITERAL", Name: "kafka-cluster"},
		{Principal: "User:plugin.crm", Host: "*", Permission: "ALLOW", Operation: "READ", Resource: "TOPIC", Pattern: "PREFIXED", Name: "core.user."},
		{Principal: "User:plugin.crm", Host: "*", Permission: "DENY", Operation: "READ", Resource: "TOPIC", Pattern: "LITERAL", Name: "core.user.password_reset"},
		{Principal: "User:*", Host: "*", Permission: "ALLOW", Operation: "DESCRIBE", Resource: "TOPIC", Pattern: "PREFIXED", Name: "core.status."},
	} {
		if !slices.Contains(crm.ACLs, want) {
			t.Errorf("pluginacl.Describe(crm) lacks %+v; has %+v", want, crm.ACLs)
		}
	}
	for _, acl := range crm.ACLs {
		if acl.Principal == "User:service.api" {
			t.Errorf("pluginacl.Describe(crm) has another user's ACL %+v", acl)
		}
	}

	plugins, err := pluginacl.List(ctx, kadmOf(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	if len(plugins) != 2 || plugins[0].PluginID != "billing" || plugins[1].PluginID != "crm" {
		t.Fatalf("pluginacl.List = %+v, want billing and crm", plugins)
	}
	if !slices.Equal(plugins[0].Mechanisms, []string{"SCRAM-SHA-512"}) || !slices.Equal(plugins[1].ACLs, crm.ACLs) {
		t.Errorf("pluginacl.List = %+v\nwant crm as %+v", plugins, crm)
	}

	if err := pluginacl.Revoke(ctx, kadmOf(t, admin), "crm"); err != nil {
		t.Fatal(err)
	}
	crm, err = pluginacl.Describe(ctx, kadmOf(t, admin), "crm")
	if err != nil || crm.Provisioned() || len(crm.Mechanisms) != 0 {
		t.Fatalf("after pluginacl.Revoke: %+v, %v", crm, err)
	}
	for _, acl := range crm.ACLs {
		if acl.Principal != "User:*" {
			t.Errorf("after pluginacl.Revoke the plugin still has %+v", acl)
		}
	}
	if plugins, err := pluginacl.List(ctx, kadmOf(t, admin)); err != nil || len(plugins) != 1 || plugins[0].PluginID != "billing" {
		t.Fatalf("pluginacl.List after revoking crm = %+v, %v", plugins, err)
	}
	if _, err := pluginacl.Describe(ctx, kadmOf(t, admin), "Bad.ID"); !errors.Is(err, eventbus.ErrInvalidPluginID) {
		t.Errorf("pluginacl.Describe(bad id) = %v", err)
	}
}

func TestPluginACLValidate(t *testing.T) {
	if err := pluginacl.Validate("crm", pluginacl.Access{Password: "x", CoreTopics: []string{"core.user.", "core.tenant.created"}, PluginTopics: []string{"plugin.billing."}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     string
		access pluginacl.Access
		want   error
		says   string
	}{
		{"CRM", pluginacl.Access{Password: "x"}, eventbus.ErrInvalidPluginID, `use "crm"`},
		{"crm", pluginacl.Access{}, eventbus.ErrInvalidConfig, "Password is empty"},
		{"crm", pluginacl.Access{Password: "x", Mechanism: "PLAIN"}, eventbus.ErrInvalidConfig, "Access.Mechanism"},
		{"crm", pluginacl.Access{Password: "x", CoreTopics: []string{"core.user.create"}}, eventbus.ErrInvalidConfig, "Access.CoreTopics"},
		{"crm", pluginacl.Access{Password: "x", PluginTopics: []string{"plugin.crm."}}, eventbus.ErrInvalidConfig, "own topic space"},
	} {
		err := pluginacl.Validate(c.id, c.access)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("pluginacl.Validate(%q, %+v) = %v, want %v saying %q", c.id, c.access, err, c.want, c.says)
		}
	}
}

// TestACLPluginDeadLettersOnItsOwnCredentials: a plugin running on its own
// SCRAM user dead-letters and retries its failures, on its own topic and on
// a core topic it reads, without write access to core.* or any dlq.* topic
// but its own (dlq.plugin.<id>.).
func TestACLPluginDeadLettersOnItsOwnCredentials(t *testing.T) {
	t.Parallel()
	brokers, admin := secureCluster(t)
	ctx := boundedCtx(t)
	core := "core.user.created"
	if err := admin.Topics().Ensure(ctx, core); err != nil {
		t.Fatal(err)
	}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: "crm-secret", CoreTopics: []string{core}}); err != nil {
		t.Fatal(err)
	}
	platform := eventbustest.NewBusOn(t, admin, eventbus.Config{})
	client := pluginConnection(t, brokers, "crm", "crm-secret")
	cfg := fastDLQ()
	cfg.DLQ.SchedulerGroup = "plugin.crm.dlq-scheduler"
	// One of the plugin's processes runs its dead letter queue (the view of
	// the dlq.plugin.crm.* topics it may read, and its retry scheduler).
	pluginBus := startDLQ(t, eventbustest.NewBusOn(t, client, cfg))
	crm := newPluginClient(t, pluginBus, "crm", "acme", "")

	// Each handler fails an event the first time it sees it.
	var mu sync.Mutex
	seen := map[string]int{}
	failOnce := func(rec *eventbustest.Recorder) eventbus.Handler {
		return func(ctx context.Context, ev eventbus.RawEvent) error {
			mu.Lock()
			seen[ev.ID]++
			n := seen[ev.ID]
			mu.Unlock()
			if n == 1 {
				return errors.New("first try fails")
			}
			return rec.Handle(ctx, ev)
		}
	}
	contacts, users := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, "contact.created", failOnce(contacts))
	mustPluginSubscribe(t, crm, core, failOnce(users))

	c := mustPluginPublish(t, crm, "contact.created", crmContact{ID: "c1"})
	u := eventbustest.MustPublish(t, platform, core, userPayload{"u1", "ada@acme.test"}, eventbus.PublishMetadata{TenantID: "acme"})
	contacts.WaitForID(t, c) // dead-lettered, retried, handled
	users.WaitForID(t, u)
	for _, topic := range []string{"plugin.crm.contact.created", core} {
		entries := waitList(t, pluginBus.DLQ(), deadletter.Query{Topic: topic, Status: deadletter.StatusResolved}, 1)
		if entries[0].RetryCount != 1 {
			t.Errorf("%s: entry %+v, want one retry", topic, entries[0])
		}
	}
	// Its core-topic failures are kept under its own prefix: the core's
	// dead-letter topic holds nothing of it.
	if ok, err := admin.Topics().Exists(ctx, "dlq."+core); err != nil || ok {
		t.Fatalf("dlq.%s exists=%v (err %v); the plugin's failure belongs in dlq.plugin.crm.%s", core, ok, err, core)
	}
}

// Two pluginacl.Provision calls for one plugin at once, in one process:
// the plugin ends with the grants of one of them, whole, never a mix.
func TestACLConcurrentProvisionsOfOnePluginDoNotMix(t *testing.T) {
	t.Parallel()
	_, admin := secureCluster(t)

	ctx := boundedCtx(t)
	adm, err := admin.Admin()
	if err != nil {
		t.Fatal(err)
	}
	reads := func() (user, tenant bool) {
		res, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:plugin.crm").AllowHosts().
			AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			for _, d := range r.Described {
				user = user || d.Name == "core.user."
				tenant = tenant || d.Name == "core.tenant."
			}
		}
		return user, tenant
	}
	for round := range 10 {
		var wg sync.WaitGroup
		for _, core := range []string{"core.user.", "core.tenant."} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: "pw-" + core, CoreTopics: []string{core}}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if user, tenant := reads(); user == tenant {
			t.Fatalf("round %d: after two concurrent provisionings the plugin reads core.user.: %t, core.tenant.: %t; want exactly one", round, user, tenant)
		}
	}
}

// kadmOf returns c's admin client.
func kadmOf(t *testing.T, c *eventbus.Client) *kadm.Client {
	t.Helper()
	adm, err := c.Admin()
	if err != nil {
		t.Fatal(err)
	}
	return adm
}
