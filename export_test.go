package eventbus

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
