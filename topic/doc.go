// Package topic names and administers the event bus's topics: the naming
// rules ([Parse], [Validate], [Rules]), where a consumer group's failures
// and retries go ([DLQFor], [RetryFor]), and a [Manager] that creates and
// lists topics on a connected eventbus.Client (eventbus.Client.Topics).
// Every place that names a topic (publishing, subscribing, creating
// topics, dead-lettering) checks the name here first, so a bad name fails
// fast with a message that says which rule it broke and shows a valid
// name.
//
// # The three forms
//
// A topic name has exactly one of three forms:
//
//	core.<domain>.<action>                  core.user.created
//	                                        core.tenant.member_added
//	plugin.<pluginId>.<entity>.<action>     plugin.crm.contact.created
//	                                        plugin.crm.contact.note.added
//	dlq.<core or plugin topic>              dlq.core.user.created
//	                                        dlq.plugin.crm.contact.created
//
// The entity of a plugin topic may have several dot-separated parts: in
// plugin.crm.contact.note.added the plugin ID is "crm", the entity is
// "contact.note" and the action is "added". The plugin ID is always the single
// segment after "plugin." (plugin IDs have no dots) and the action is always
// the last segment. A dlq topic holds the failures of one core or plugin topic;
// dlq topics are not nested (dlq.dlq.core.user.created is rejected).
//
// The prefixes "core.", "plugin.", "dlq." and "__" (Kafka's internal topics,
// such as __consumer_offsets) are reserved. Any name of another shape, such as
// "orders", "user.created" or "Core.user.created", is rejected.
//
// # Segments
//
// Names are lowercase ASCII and no segment may be empty (no leading, trailing
// or doubled dots):
//
//   - core domains, core actions, plugin entity parts and plugin actions match
//     [a-z][a-z0-9_]*: "user", "member_added", "v2_imported";
//   - plugin IDs are kebab-case, [a-z0-9]+(-[a-z0-9]+)*: "crm",
//     "sample-analytics", "salesforce-sync" (not "CRM", "sample_analytics",
//     "salesforce.sync", "-crm" or "crm-"). See [ValidatePluginID].
//
// # Length
//
// Kafka allows topic names of at most 249 characters. Every core and plugin
// topic must leave room for its "dlq." prefix, so it is at most 245
// characters; a dlq topic is then at most 249.
//
// # Past-tense actions
//
// Events record what happened, so actions are past tense: an action is
// accepted when its last word (after the last '_') is an English past tense
// or past participle, or is on the allow-list of the [Rules] in force
// (login, request), or when the whole action is on that list. A past form
// is a listed irregular form (held, sold, written, chosen, read, set,
// rebuilt, withdrawn; was, been), or a word ending in "ed" (created,
// submitted, member_added, login_failed) other than a present verb the list
// knows (speed, feed, embed). The default allow-list holds the noun-like
// actions of the core event catalog, and past forms it held before every
// past form was accepted:
//
//	begun built done error heartbeat login logout lost paid read request
//	reset response run sent set shut signup spent split won
//
// [NewRules] extends the list, for example NewRules("sync", "import"). A
// rejected action comes with a suggestion from [PastTense] when it has one:
// core.user.create is rejected with "use \"core.user.created\"",
// core.order.hold with "use \"core.order.held\"", and core.order.buy with
// "use \"core.order.bought\"". A suggestion is a listed past form or the
// regular past of a verb; a word that is no verb (core.order.payment,
// core.cart.checkout) gets none, and its message shows a valid name
// instead: "(e.g. core.user.created)". The verbs are WordNet's one-word verb
// lemmas and a few newer ones (upsert, onboard, unsubscribe, enqueue,
// resync); an action that is none of them, such as checkout (a noun: the
// verb is "check out"), is accepted as it is once put on the allow-list
// with [NewRules].
//
// # The list of past forms
//
// The irregular forms come from WordNet 3.0's verb exception list (verb.exc,
// Debian package wordnet-base), filtered to past tenses and participles, with
// the verbs whose past equals the present (read, set, put, cut, come, run)
// added, and the prefixed forms it leaves out (resold, regrown): 1,565 forms
// (561 of them not ending in "ed") of 1,365 verbs, embedded from
// pastforms.txt and looked up in a map. WordNet 3.0 is Copyright 2006 by
// Princeton University, used under its licence (WORDNET-LICENSE in this
// directory). gen_pastforms.go rebuilds the list: go generate
// ./topic, with wordnet-base installed; building and testing do not
// need it. It also writes verbs.txt, the verbs given a regular past as a
// suggestion: WordNet's 8,429 one-word verb lemmas (index.verb) and 26 verbs
// it adds that WordNet 3.0 does not know (upsert, onboard, unsubscribe,
// ...), 68 KB, read into a map on the first rejected name.
//
// # Creating topics
//
// [Manager.Ensure] creates a topic unless it exists, with
// [DefaultPartitions] (3) partitions, replication factor
// min([DefaultReplicationFactor] (3), brokers) and [DefaultRetention] (7
// days; dlq.* topics: [deadletter.DefaultRetention], 30 days, compacted) unless
// [Option]s say otherwise ([WithPartitions], [WithReplicationFactor],
// [WithRetention], [WithConfig], [WithCreationTimeout]). A topic is
// ensured once per process: later calls return at once. The bus ensures
// the topics it publishes to and subscribes to the same way.
//
//	topics := client.Topics()
//	err := topics.Ensure(ctx, "plugin.crm.contact.created", topic.WithPartitions(6))
//	names, err := topics.List(ctx)
//
// # Dead-letter and retry topics
//
// The failures of consumer group g on topic t are kept in [DLQFor](g, t):
// dlq.<t>, or for a plugin's group on a topic outside the plugin's own,
// dlq.plugin.<id>.<t as entity>, so that a plugin dead-letters on its own
// credentials (see package pluginacl). Their retries go to [RetryFor](g, t),
// a topic only that group reads.
//
// # Errors
//
// Every rejected topic name is an [*Error] that wraps [ErrInvalidTopic]; a
// topic rejected because of its plugin ID wraps [ErrInvalidPluginID] as well.
// Test with errors.Is and read the detail with errors.As:
//
//	invalid topic name "core.user.create": action "create" must be past tense (or on the allowed-actions list); use "core.user.created"
//	invalid topic name "orders": a topic must be core.<domain>.<action> (e.g. core.user.created), plugin.<pluginId>.<entity>.<action> (e.g. plugin.crm.contact.created) or dlq.<topic> (e.g. dlq.core.user.created)
//
// # Speed
//
// [Parse] runs on every publish. It uses no regular expressions and does
// not allocate for core and plugin topics (one small allocation for the
// Original of a dlq topic); only a rejection does extra work, to build its
// message and suggestion.
package topic
