// Package eventbus is the Plexica event bus: typed, multi-tenant domain
// events on any Kafka-protocol broker (Redpanda, Apache Kafka, or the
// embedded broker of package embedded).
//
// A Client connects to the brokers; a Bus publishes and subscribes on it:
//
//	client, _ := eventbus.NewClient(eventbus.ClientConfig{Brokers: []string{"127.0.0.1:9092"}})
//	_ = client.Connect(ctx)
//	bus, _ := eventbus.NewBus(client, eventbus.Config{})
//	defer bus.Shutdown(context.Background())
//
//	eventbus.Subscribe(ctx, bus, "core.user.created",
//		func(ctx context.Context, ev eventbus.Event[UserCreated]) error { ... },
//		eventbus.SubscribeOptions{GroupID: "mailer", TenantID: "acme"})
//	eventbus.Publish(ctx, bus, "core.user.created", UserCreated{...},
//		eventbus.PublishMetadata{TenantID: "acme"})
//
// # Events and topics
//
// An Event carries its tenant (always), an optional workspace, its data and
// metadata. Its type is its topic, named core.<domain>.<action>,
// plugin.<pluginId>.<entity>.<action> or dlq.<topic>, lowercase, with
// past-tense actions; see TopicRules. A Name[T] is such a name typed with
// its data, from which the generic calls infer T (package catalog names the
// core events so). The wire format (JSON value, key, headers) is the one of
// the TypeScript @plexica/event-bus.
//
// # Delivery
//
// Publish returns once the broker acknowledged the event (idempotent
// producer, acks=all). Subscriptions are at-least-once: an event is
// finished when its handler returned nil or its failure was stored in the
// dead letter queue, and a partition's offset is committed only up to its
// first unfinished event, so a crash redelivers at most the unfinished
// window. Events of one key (the partition key, else the tenant) are
// handled one at a time in order and different keys concurrently, on up to
// Delivery.MaxConcurrency handlers; fetching goes on meanwhile, and a slow
// or stuck key holds up only itself. Delivery.MaxPending bounds what a
// subscription holds, pausing the partitions that are behind. A group's
// start position is committed when it first joins, so events published
// while every member is down are delivered when one returns. Revoked
// partitions and Shutdown wait for their handlers only up to a bound.
//
// # Tenants
//
// A subscription's tenant and workspace filters are read from record
// headers before decoding, and are part of its consumer group's identity
// (EffectiveGroupID), so no instance ever commits past an event that
// another tenant's instance needed.
//
// # Plugins
//
// A PluginClient is one plugin's view of the bus for one tenant: it publishes
// only plugin.<id>.* events, subscribes to its own, another plugin's or core
// events, and receives only its tenant's. Its consumer groups are
// "plugin.<id>.<name>" plus the tenant filter (see PluginClient for the scheme
// and its cost as tenants grow). A PluginHost is one plugin deployment
// serving a changing set of tenants: one group "plugin.<id>.<name>" per
// subscription, each event read once and handed to the handler for its
// tenant only, tenants added and removed at run time (AddTenant,
// RemoveTenant, FollowLifecycle). Types declare handlers with On and
// InitializeHandlers, on a Bus, a PluginClient or a PluginHost; WithPublish publishes a function's result. The broker
// enforces the same boundary: TopicManager.ProvisionPlugin gives each plugin
// a SCRAM user and prefixed ACLs. The core events are typed in package
// catalog.
//
// # Failures
//
// A handler that returns an error or panics sends the event to the
// DeadLetterQueue (Bus.DLQ), which retries it with backoff — only for the
// group that failed — and keeps it, durably, in the dlq.* topics. Only a
// process that runs the dead letter queue (DeadLetterQueue.Start; eventbus
// serve does) keeps a view of it and sends automatic retries; one that only
// publishes and subscribes keeps none. Handlers steer retries with
// Permanent and RetryAfter. Publishing is guarded by a
// circuit breaker (Config.Breaker). Every error for bad input wraps a
// sentinel (ErrInvalidTopic, ErrTenantRequired, ...) for errors.Is.
package eventbus
