package topic_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/topic"
)

func ExampleParse() {
	for _, name := range []string{
		"core.user.created",
		"plugin.crm.contact.note.added",
		"dlq.core.tenant.member_added",
	} {
		t, err := topic.Parse(name)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch t.Kind {
		case topic.KindCore:
			fmt.Printf("%s: domain=%s action=%s\n", t.Kind, t.Domain, t.Action)
		case topic.KindPlugin:
			fmt.Printf("%s: plugin=%s entity=%s action=%s\n", t.Kind, t.PluginID, t.Entity, t.Action)
		case topic.KindDLQ:
			fmt.Printf("%s: failures of %s\n", t.Kind, t.Original)
		}
	}
	// Output:
	// core: domain=user action=created
	// plugin: plugin=crm entity=contact.note action=added
	// dlq: failures of core.tenant.member_added
}

func ExampleValidate() {
	for _, name := range []string{
		"core.user.created",
		"core.user.create",
		"orders",
		"plugin.sample_analytics.report.built",
	} {
		err := topic.Validate(name)
		fmt.Println(err)
		if err != nil {
			fmt.Println("  invalid topic:", errors.Is(err, topic.ErrInvalidTopic),
				"invalid plugin ID:", errors.Is(err, topic.ErrInvalidPluginID))
		}
	}
	// Output:
	// <nil>
	// invalid topic name "core.user.create": action "create" must be past tense (or on the allowed-actions list); use "core.user.created"
	//   invalid topic: true invalid plugin ID: false
	// invalid topic name "orders": a topic must be core.<domain>.<action> (e.g. core.user.created), plugin.<pluginId>.<entity>.<action> (e.g. plugin.crm.contact.created) or dlq.<topic> (e.g. dlq.core.user.created)
	//   invalid topic: true invalid plugin ID: false
	// invalid topic name "plugin.sample_analytics.report.built": plugin ID "sample_analytics" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it contains '_' (use '-'); use "plugin.sample-analytics.report.built"
	//   invalid topic: true invalid plugin ID: true
}

func ExampleError() {
	err := topic.Validate("core.tenant.member_add")
	var e *topic.Error
	if errors.As(err, &e) {
		fmt.Println("rule:", e.Rule)
		fmt.Println("use:", e.Example)
	}
	// Output:
	// rule: action "member_add" must be past tense (or on the allowed-actions list)
	// use: core.tenant.member_added
}

func ExampleNewRules() {
	rules, err := topic.NewRules("sync", "made")
	if err != nil {
		panic(err)
	}
	fmt.Println(rules.Validate("plugin.salesforce-sync.contact.sync"))
	fmt.Println(topic.Validate("plugin.salesforce-sync.contact.sync") != nil)
	fmt.Println(rules.AllowedActions())

	_, err = topic.NewRules("Sync")
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// [begun built done error heartbeat login logout lost made paid read request reset response run sent set shut signup spent split sync won]
	// invalid configuration: topic rules: extra action "Sync" must match [a-z][a-z0-9_]*: it has uppercase letters (e.g. "synced")
}

func ExamplePastTense() {
	var pasts []string
	for _, a := range []string{"create", "add", "stop", "copy", "open", "send", "member_add",
		"hold", "buy", "write", "submit", "panic", "work", "held", "read"} {
		pasts = append(pasts, topic.PastTense(a))
	}
	fmt.Println(strings.Join(pasts, " "))
	fmt.Printf("%q\n", topic.PastTense("creating")) // no suggestion rather than a wrong one
	fmt.Printf("%q\n", topic.PastTense("payment"))  // no verb: not "paymented"
	// Output:
	// created added stopped copied opened sent member_added held bought written submitted panicked worked held read
	// ""
	// ""
}

func ExampleValidatePluginID() {
	for _, id := range []string{"sample-analytics", "salesforce.sync", "crm-"} {
		fmt.Println(topic.ValidatePluginID(id))
	}
	// Output:
	// <nil>
	// invalid plugin ID "salesforce.sync": plugin ID "salesforce.sync" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it contains '.' (use '-'); use "salesforce-sync"
	// invalid plugin ID "crm-": plugin ID "crm-" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it ends with '-'; use "crm"
}

// Where a consumer group's failures are kept: dlq.<topic>, except for a
// plugin's group on a topic outside the plugin's own, which stays under the
// plugin's prefix. Retries go to a topic only that group reads.
func ExampleDLQFor() {
	fmt.Println(topic.DLQFor("mailer", "core.user.created"))
	fmt.Println(topic.DLQFor("plugin.crm.sync", "plugin.crm.contact.created"))
	fmt.Println(topic.DLQFor("plugin.crm.sync", "core.user.created"))
	retry, _ := topic.RetryFor("plugin.crm.sync", "core.user.created")
	fmt.Println(strings.HasPrefix(retry, "plugin.crm.retry.sync_"))
	_, err := topic.DLQFor("mailer", "dlq.core.user.created")
	fmt.Println(errors.Is(err, topic.ErrInvalidTopic))
	// Output:
	// dlq.core.user.created <nil>
	// dlq.plugin.crm.contact.created <nil>
	// dlq.plugin.crm.core.user.created <nil>
	// true
	// true
}

// A client's topic manager creates topics with the defaults (3
// partitions, replication min(3, brokers), 7 days' retention) unless
// options say otherwise, once per process, and lists them as the brokers
// see them now.
func ExampleManager_Ensure() {
	ctx := context.Background()
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		panic(err)
	}
	topics := client.Topics()
	if err := topics.Ensure(ctx, "core.user.created"); err != nil {
		panic(err)
	}
	if err := topics.Ensure(ctx, "plugin.crm.contact.created", topic.WithPartitions(6), topic.WithRetention(24*time.Hour)); err != nil {
		panic(err)
	}
	err = topics.Ensure(ctx, "core.user.create")
	fmt.Println(errors.Is(err, topic.ErrInvalidTopic))
	names, err := topics.List(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(names)
	// Output:
	// true
	// [core.user.created plugin.crm.contact.created]
}
