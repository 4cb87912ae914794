package pluginacl_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/pluginacl"
)

// An operator provisions plugin crm on brokers that enforce ACLs: crm may
// read the core user events besides its own topics, and the brokers refuse
// it anything else.
func ExampleProvision() {
	ctx := context.Background()
	broker, err := embedded.Start(embedded.Config{
		Superuser:  &embedded.User{Mechanism: "SCRAM-SHA-256", Name: "admin", Password: "admin"},
		EnableACLs: true,
	})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers: broker.Addrs(),
		SASL:    &eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA256, Username: "admin", Password: "admin"},
	})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		panic(err)
	}
	adm, err := client.Admin()
	if err != nil {
		panic(err)
	}

	access := pluginacl.Access{Password: "a-long-random-secret", CoreTopics: []string{"core.user."}}
	if err := pluginacl.Provision(ctx, adm, "crm", access); err != nil {
		panic(err)
	}
	grants, err := pluginacl.Describe(ctx, adm, "crm")
	if err != nil {
		panic(err)
	}
	fmt.Println(grants.Username, grants.Provisioned(), grants.Mechanisms)
	for _, c := range grants.Check() {
		if c.Resource == "topic core.*" || c.Resource == "topic core.user.*" || c.Resource == "topic plugin.crm.*" && c.Action == "produce" {
			fmt.Println(c.Action, c.Resource+":", c.Access)
		}
	}

	// A bad request fails before anything reaches the brokers.
	err = pluginacl.Validate("crm", pluginacl.Access{Password: "x", CoreTopics: []string{"plugin.billing."}})
	fmt.Println(errors.Is(err, eventbus.ErrInvalidConfig))
	// Output:
	// plugin.crm true [SCRAM-SHA-256]
	// produce topic plugin.crm.*: allowed
	// consume topic core.user.*: allowed
	// consume topic core.*: partly
	// produce topic core.*: denied
	// true
}
