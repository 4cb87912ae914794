// Package eventbus is the Plexica event bus: typed, multi-tenant domain
// events on Apache Kafka or the embedded broker of package embedded (the two
// brokers CI runs; other Kafka-protocol brokers: see docs/brokers.md).
//
// A [Client] connects to the brokers; a [Bus] publishes and subscribes on it:
//
//	client, _ := eventbus.NewClient(eventbus.ClientConfig{Brokers: []string{"127.0.0.1:9092"}})
//	_ = client.Connect(ctx)
//	bus, _ := eventbus.NewBus(client, eventbus.Config{})
//	defer bus.Shutdown(context.Background())
//
//	eventbus.Subscribe(ctx, bus, "core.user.created",
//		func(ctx context.Context, ev eventbus.Event[UserCreated]) error { ... },
//		eventbus.InGroup("mailer"), eventbus.ForTenant("acme"))
//	ctx = eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"})
//	eventbus.Publish(ctx, bus, "core.user.created", UserCreated{...})
//
// The same two calls work on a [PluginClient] and a [PluginHost] (both a
// [Subscriber] and a [Publisher]), with the same options; a name resolves
// by one rule on all three (see [Subscribe]).
//
// # Events
//
// An [Event] always belongs to a tenant and may name one of its workspaces;
// its type is its topic. The wire format is the one of the TypeScript
// @plexica/event-bus, so Go and TypeScript services read each other's
// events: the value is the event's JSON, the key is the partition key
// ([WithPartitionKey]) or else the tenant ID, and the headers event-id,
// event-type, tenant-id, workspace-id, correlation-id and timestamp come
// first. A [Name] is an event name typed with its data; package catalog
// names the core events so.
//
// # Topic names
//
// A topic has one of three forms:
//
//	core.<domain>.<action>                 core.user.created
//	plugin.<pluginId>.<entity>.<action>    plugin.crm.contact.created
//	dlq.<topic>                            dlq.core.user.created
//
// Segments are lowercase, [a-z][a-z0-9_]*; plugin IDs are kebab-case
// (topic.ValidatePluginID). An action is past tense: its last word (after the
// last "_") is an English past tense or past participle, regular (created,
// submitted, member_added) or irregular (held, sold, written, read, set; the
// list is derived from WordNet's), or that word or the whole action is on
// the allow-list of the topic.Rules in force (login, logout, request,
// error, ...; extend it with topic.NewRules in [ClientConfig.TopicRules]).
// Package topic holds these rules and the topic manager.
// A core or plugin topic has at most 245 characters, so that its dlq. topic
// fits Kafka's 249. A bad name fails with [ErrInvalidTopic] and a suggested
// fix. The bus creates a missing topic on first use (as
// [Client.Topics]().Ensure does) unless [Config.DisableTopicCreation] is
// set.
//
// # Publishing
//
// [Publish] (and [Bus.Publish], its untyped form with explicit metadata,
// for relays and tools) returns once the broker acknowledged the event: the
// producer is idempotent, with acks=all and no linger, and compresses with
// Snappy by default ([Config.Compression]). An event may take
// [Config.MaxEventBytes] as a broker measures it: the record batch that
// would carry it alone, headers and framing included. The producer's
// batches stay under the brokers' default max.message.bytes whatever
// events they pack, and a broker's rejection of one event wraps
// [ErrEventTooLarge] or [ErrInvalidEvent].
//
// A circuit breaker guards publishing (package breaker, [Config].Breaker).
// It counts only failures that wrap [ErrBrokerUnavailable] (no acknowledgement or topic
// creation within [Config.DeliveryTimeout], brokers unreachable or unable
// to take writes), never the caller's: bad input, a broker's rejection of
// one event, or the caller's own context ending.
//
// [Bus.Shutdown] refuses publishes from outside at once but lets running
// handlers publish their follow-up events while it waits for them; then it
// waits for the publishes in flight and flushes the producers until its
// deadline: ctx's, or [Config.ShutdownTimeout] ([DefaultShutdownTimeout],
// 30 s) when ctx has none. Running handlers have the first three quarters
// of that time (the grace period); then their contexts are cancelled.
// Events not acknowledged by the deadline fail with [ErrShuttingDown]
// (they may or may not have been written).
//
// # Delivery
//
// Subscriptions are at-least-once. An event is finished when its handler
// returned nil, its failure was stored in the dead letter queue, or its
// failure policy skipped it. Each partition's committed offset is its first
// unfinished event; the offsets finished above it travel in the commit's
// metadata and are not handled again. A group commits once a subscription
// finished MaxConcurrency events (at least 64) since its last commit, else
// at most once per [ConsumerConfig.CommitInterval]; once twice that many
// finished since the last commit was sent, the subscription starts no
// event until the next one is. A crash so redelivers what had not
// finished, plus at most about 2 × MaxConcurrency events per subscription
// (at least 128), however long the brokers take to answer a commit. A
// commit that fails does not hold handlers up (a lasting error would stop
// the subscription); what finished since the last commit that landed comes
// again after a crash, and the failure is logged. A member whose session
// ends while it cannot commit (its group's coordinator went down, say)
// keeps what it finished until the next assignment: partitions assigned
// back to it skip those events; partitions that go to another member hand
// them again there.
//
// [Delivery], embedded in the options of every kind of subscription, says
// how events are handled. By default the events of one key (the partition
// key, else the tenant) are handled one at a time in publish order, and
// different keys concurrently. Fetching never waits for a slow key: a slow or
// stuck key holds up only itself until its own waiting events reach
// [Delivery.MaxPending] (events finished behind it do not count); then its
// partition pauses, and resumes as it drains. A subscription at MaxPending
// whose handlers keep up is not paused: fetching waits for them a moment
// (at most 250 ms in all) instead, since a resumed partition is fetched again only
// once the fetch in flight returned (up to a second on an idle topic).
//
// A new group's start position is committed when it first joins, so events
// published while every member is down are delivered when one returns. It
// is where the subscription began (or the oldest retained event with
// FromBeginning); only a partition the group has no commit on while it
// made progress on others (one added to the topic later) starts at its
// oldest retained event. Members that join a new group together all start
// where they subscribed. A partition revoked in a rebalance waits for its
// running handlers at most [ConsumerConfig.RevokeTimeout], and
// [Bus.Shutdown] at most until its grace period ends; what did not finish is not
// committed and comes again. Events fetched before a rebalance are never
// handed to the partition's next assignment, and a partition assigned back
// to a process starts its keys only once the handlers of its earlier
// assignment there returned (bounded by RevokeTimeout), so one key never
// runs twice at once in a process.
//
// # Tenants and consumer groups
//
// A subscription's tenant and workspace filters are read from the record
// headers, before the value is decoded, and are part of its consumer
// group's identity: the group joined is
// <GroupID>.tenant.<TenantID>[.workspace.<WorkspaceID>]
// ([GroupID] names it for any target). So instances that share a GroupID but filter
// different tenants never skip and commit an event another one needed.
// Tenant and workspace IDs are therefore checked wherever they name a
// group or a served tenant, and on every publish (a filtered
// [Subscribe], [NewPluginClient], [PluginHost.AddTenant], [Publish]
// and the other publishers): 1 to 128 ASCII letters, digits, '-' and '_' —
// "acme", "tenant_42", a UUID — and no dots, so no two scopes share a group
// name ([ValidateTenantID]; the errors wrap [ErrInvalidTenantID] or
// [ErrInvalidWorkspaceID]). Events written by other clients are read
// whatever their tenant. Each filtered group
// reads the whole topic. Filters are not a security boundary; the
// broker's ACLs are (see Broker-enforced isolation).
//
// The headers and the event must agree: a record whose tenant-id (or
// workspace-id) header names another tenant (or workspace) than its
// event's tenantId (workspaceId) is malformed, on every path alike
// ([Subscribe] on a [Bus], a [PluginClient] or a [PluginHost]). It is never handed to a
// handler; it goes to the dead letter queue with reason [deadletter.ReasonMalformed]
// (or is skipped and logged under [Skip]). A record without those headers
// is filtered by its decoded event.
//
// # Event context
//
// Every handler the bus calls gets a context that carries the event being
// handled as its event context ([EventContextFrom]): its tenant, workspace,
// user and correlation, with the event's ID as CausationID. What the
// handler publishes with [Publish] or [WithPublish] so keeps the
// correlation and names the event as its cause.
// Elsewhere, [WithEventContext] sets it.
//
// # Plugins
//
// A [PluginClient] is one plugin's view of the bus for one tenant. It
// publishes only the plugin's own events, named with or without the
// prefix (names resolve by one rule, see [Subscribe]); it
// subscribes to its own, another plugin's or core events, and receives only
// its tenant's. A subscription of plugin P with group name N (by default
// the subscribed topic) joins the group
//
//	plugin.<P>.<N>.tenant.<tenant>[.workspace.<workspace>]
//
// Every group of a plugin starts with plugin.<P>., so the broker's ACLs can
// grant exactly its groups. The cost grows with the number T of tenants a
// plugin serves: T groups per subscription, each reading the whole topic.
//
// A [PluginHost] is one plugin deployment serving a changing set of
// tenants. Each of its subscriptions is one group, plugin.<P>.<N>, for all
// of them: it reads each event once, calls the handler for the tenants the
// host serves, and skips and commits the others. Tenants run concurrently
// (events are in order per key, the tenant unless the publisher gave a
// partition key), so a slow or failing one holds up only itself. Tenants
// are added and removed at run time without a rebalance
// ([PluginHost.AddTenant], [PluginHost.FollowLifecycle]).
//
// [PluginHost.FollowLifecycle] keeps a host's tenants in step with the
// platform's core.plugin.* events. It reads them with a consumer of its
// own, without a consumer group (so a restart leaves nothing behind on the
// broker), and returns once it has applied them up to their end offsets as
// of the call: after a restart with FollowOptions.FromBeginning, a tenant
// that uninstalled the plugin is not served. While a host follows, an event
// of a tenant it does not serve is not skipped before the lifecycle events
// published until that event was fetched are applied, so a tenant's first
// events are not lost to an install read late. The publishers' clocks
// never order lifecycle events read live: the log's order does, and a
// platform sequence (data.sequence) when the events carry one.
// [PluginHost.RemoveTenant] does not wait for the tenant's running
// handler calls (none starts after it returns); [PluginHost.DrainTenant]
// waits for them.
//
// Use a PluginHost when one deployment serves many tenants (hundreds or
// thousands). Keep a PluginClient per tenant when each tenant needs a group
// of its own (its own offsets and lag, a replay from its install, workspace
// filters, instances pinned to one tenant) and the tenants stay in the
// tens. [PluginHost.Client] is a tenant's PluginClient. Package pluginrun
// runs a host-based deployment in one call: client, bus, host, lifecycle,
// handlers, one state value per served tenant, and the stop in order.
//
// A type declares its handlers with [On]; [InitializeHandlers] subscribes
// them on a Bus, a PluginClient or a PluginHost. [WithPublish] wraps a
// function so that its result is published.
//
// # Broker-enforced isolation
//
// The client-side checks keep honest plugins in their lane; the broker
// stops the others. pluginacl.Provision gives a plugin a SCRAM user and
// ACLs on its own topics and groups, its dead-letter topics and the topics
// it may read. A plugin's failures on a core or another plugin's topic are
// kept under its own prefix (topic.DLQFor) and retried through
// plugin.<id>.retry.<topic>, so it dead-letters and retries on its own
// credentials. A plugin that runs a Bus on its own credentials sets
// [deadletter.Config.SchedulerGroup] to plugin.<id>.dlq-scheduler and has an
// operator create the core topics it reads ([Config.DisableTopicCreation]).
//
// # Failures and the dead letter queue
//
// A handler fails when it returns an error or panics; a record that is not
// an event fails too ([deadletter.ReasonMalformed]). [Delivery.OnFailure] says what
// follows: [DeadLetter] (the default), [RetryInPlace] or [Skip].
//
// With DeadLetter the failure is stored as a [deadletter.Entry] in a dlq.*
// topic and retried automatically with backoff, at most
// [deadletter.Config.MaxRetries] times ([deadletter.DefaultMaxRetries]; [deadletter.NoRetries] turns
// automatic retries off). A handler returns [Permanent] to skip the
// retries or [RetryAfter] to pick the delay; a malformed record is only
// retried by hand. A retry goes to the group that failed and no other.
//
// The dlq.* topics are the source of truth, and each entry has one writer:
// the member of [deadletter.Config.SchedulerGroup] that owns the entry's dlq.*
// partition, in a process that calls [DeadLetterQueue.Start] (eventbus
// serve does). A subscriber that fails an event, or answers a retry, and
// an operator who retries or deletes an entry, only append a command to
// that partition; the owner applies the commands in order, each change in
// a Kafka transaction with the retry it sends, and fences the previous
// owner when a partition changes hands. So a delete is never undone, an
// answer is never lost, and an attempt is counted exactly when its retry
// is sent. At least one such process must run, or failures wait for one
// (stored, not lost). Retry and Delete return once the owner applied them,
// or an error wrapping [deadletter.ErrNotApplied] when none did in time.
//
// A retry goes to the failed group's own retry topic, which only that
// group reads: no other group ever sees it, and the subscriber reads
// nothing to handle it. The queue speaks the verbs of its REST API
// ([DeadLetterQueue.Get], List, Stats, Retry, RetryAll, Delete, selecting
// with a [deadletter.Query]). Reads start nothing: in a process that has not
// called Start, Get, List and Stats read the topics for that call alone.
//
// # Errors
//
// Bad input fails before anything is sent, with an error that wraps one of
// the sentinel errors ([ErrInvalidTopic], [ErrTenantRequired], ...) for
// [errors.Is] and says what to change.
package eventbus
