package names_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/plexica/eventbus/internal/names"
)

func ExampleParseTopic() {
	for _, name := range []string{
		"core.user.created",
		"plugin.crm.contact.note.added",
		"dlq.core.tenant.member_added",
	} {
		t, err := names.ParseTopic(name)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch t.Kind {
		case names.KindCore:
			fmt.Printf("%s: domain=%s action=%s\n", t.Kind, t.Domain, t.Action)
		case names.KindPlugin:
			fmt.Printf("%s: plugin=%s entity=%s action=%s\n", t.Kind, t.PluginID, t.Entity, t.Action)
		case names.KindDLQ:
			fmt.Printf("%s: failures of %s\n", t.Kind, t.Original)
		}
	}
	// Output:
	// core: domain=user action=created
	// plugin: plugin=crm entity=contact.note action=added
	// dlq: failures of core.tenant.member_added
}

func ExampleValidateTopic() {
	for _, name := range []string{
		"core.user.created",
		"core.user.create",
		"orders",
		"plugin.sample_analytics.report.built",
	} {
		err := names.ValidateTopic(name)
		fmt.Println(err)
		if err != nil {
			fmt.Println("  invalid topic:", errors.Is(err, names.ErrInvalidTopic),
				"invalid plugin ID:", errors.Is(err, names.ErrInvalidPluginID))
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
	err := names.ValidateTopic("core.tenant.member_add")
	var e *names.Error
	if errors.As(err, &e) {
		fmt.Println("rule:", e.Rule)
		fmt.Println("use:", e.Example)
	}
	// Output:
	// rule: action "member_add" must be past tense (or on the allowed-actions list)
	// use: core.tenant.member_added
}

func ExampleNewRules() {
	rules, err := names.NewRules("sync", "made")
	if err != nil {
		panic(err)
	}
	fmt.Println(rules.ValidateTopic("plugin.salesforce-sync.contact.sync"))
	fmt.Println(names.ValidateTopic("plugin.salesforce-sync.contact.sync") != nil)
	fmt.Println(rules.AllowedActions())

	_, err = names.NewRules("Sync")
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// [begun built done error heartbeat login logout lost made paid read request reset response run sent set shut signup spent split sync won]
	// names: extra action "Sync" must match [a-z][a-z0-9_]*: it has uppercase letters (e.g. "synced")
}

func ExamplePastTense() {
	var pasts []string
	for _, a := range []string{"create", "add", "stop", "copy", "open", "send", "member_add",
		"hold", "buy", "write", "submit", "panic", "work", "held", "read"} {
		pasts = append(pasts, names.PastTense(a))
	}
	fmt.Println(strings.Join(pasts, " "))
	fmt.Printf("%q\n", names.PastTense("creating")) // no suggestion rather than a wrong one
	fmt.Printf("%q\n", names.PastTense("payment"))  // no verb: not "paymented"
	// Output:
	// created added stopped copied opened sent member_added held bought written submitted panicked worked held read
	// ""
	// ""
}

func ExampleValidatePluginID() {
	for _, id := range []string{"sample-analytics", "salesforce.sync", "crm-"} {
		fmt.Println(names.ValidatePluginID(id))
	}
	// Output:
	// <nil>
	// invalid plugin ID "salesforce.sync": plugin ID "salesforce.sync" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it contains '.' (use '-'); use "salesforce-sync"
	// invalid plugin ID "crm-": plugin ID "crm-" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it ends with '-'; use "crm"
}
