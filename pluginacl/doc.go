// Package pluginacl keeps plugins in their lane on the brokers: it gives
// each plugin a SASL/SCRAM user ([Username]: "plugin.<id>") and exactly
// the ACLs a plugin needs, reads them back, and evaluates them as a Kafka
// authorizer does. With ACLs enforced by the brokers, a plugin cannot
// write core.* topics, another plugin's topics or the dead-letter entries
// a core scheduler acts on, whatever client it runs.
//
// [Provision] creates or updates a plugin's user and grants it:
//
//   - its own topics (prefix "plugin.<id>."): read, write, create,
//     describe;
//   - its dead-letter topics (prefix "dlq.plugin.<id>.", see topic.DLQFor)
//     and the transactional IDs of its dead-letter owners;
//   - its consumer groups (prefix "plugin.<id>."): read;
//   - the topics of [Access].CoreTopics and [Access].PluginTopics: read;
//   - idempotent writes on the cluster.
//
// Grants are replaced, not added to: provisioning again with fewer topics
// revokes the others, and with a new password rotates it. [Revoke] removes
// the user and every ACL of it. [Describe] and [List] read back what the
// brokers hold ([Grants]), and [Grants.Check] says, for each operation a
// plugin performs, whether those ACLs allow it and which ACL decides.
// [Validate] checks a plugin ID and an [Access] without a broker.
//
// Every call takes a franz-go admin client (eventbus.Client.Admin returns
// one) whose user may alter SCRAM users and ACLs (a superuser). The
// command eventbus plugins (provision, revoke, list, check) does the same
// for operators.
//
//	adm, err := client.Admin()
//	err = pluginacl.Provision(ctx, adm, "crm", pluginacl.Access{
//		Password:   secret,
//		CoreTopics: []string{"core.user."},
//	})
//
// The plugin then connects with eventbus.ClientConfig{SASL:
// &eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA256, Username:
// pluginacl.Username("crm"), Password: secret}}.
package pluginacl
