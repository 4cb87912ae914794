package eventbus

// SetDLQReadFault makes fault run before each read of the dead-letter
// records that b's subscribers check retries against; an error it returns
// fails that read (see dlq.Queue.SetReadFault). nil removes it.
func SetDLQReadFault(b *Bus, fault func() error) { b.dlq.q.SetReadFault(fault) }

// SetLifecycleHook makes hook run (on the lifecycle consumer's goroutine)
// before h applies a lifecycle event of its plugin; it may block to hold
// the lifecycle consumer. Set it before FollowLifecycle.
func SetLifecycleHook(h *PluginHost, hook func(tenant string)) { h.hooks.lifecycle = hook }

// SetUnknownTenantHook makes hook run when an event of a tenant h does not
// serve waits for the lifecycle to catch up. Set it before subscribing.
func SetUnknownTenantHook(h *PluginHost, hook func(tenant string)) { h.hooks.unknownTenant = hook }

// SetFollowHook makes hook run inside FollowLifecycle once it has started
// following, before it waits for the lifecycle topics to be read.
func SetFollowHook(h *PluginHost, hook func()) { h.hooks.follow = hook }
