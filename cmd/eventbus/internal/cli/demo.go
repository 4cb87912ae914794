package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/examples/analytics"
	"github.com/plexica/eventbus/examples/crm"
	"github.com/plexica/eventbus/pluginrun"
	"github.com/plexica/eventbus/topic"
)

// Settings of `eventbus demo`.
const (
	// DefaultDemoPace is the pause between the demo's steps, for reading.
	DefaultDemoPace = 250 * time.Millisecond
	// demoRetryBackoff is the delay before the first automatic retry.
	demoRetryBackoff = 200 * time.Millisecond
	// demoStepTimeout bounds every wait of the demo.
	demoStepTimeout = 30 * time.Second
	// demoPoll is how often the demo looks at the dead letter queue.
	demoPoll = 20 * time.Millisecond
	// demoSchedulerGroup schedules the retries of every bus of the demo:
	// an entry is retried by the scheduler group of the bus that wrote it.
	demoSchedulerGroup = "eventbus-demo-dlq-scheduler"
)

// The demo's cast: the example plugins crm and sample-analytics.
const (
	demoCRM       = crm.PluginID
	demoAnalytics = analytics.PluginID
	demoContact   = crm.ContactCreatedEvent // plugin.crm.contact.created
)

var demoTenants = []string{"acme", "globex"}

func (a *app) demoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch the bus at work: two tenants, two plugins, a failure, its retry",
		Long: `Run, in this process and against an embedded in-memory broker, a core service
that publishes catalog events for two tenants (acme and globex), and two plugins,
each one PluginHost serving both tenants (one consumer group per subscription,
each event read once and handed to its tenant's handler):

  crm               turns each new user (core.user.created) into a contact and
                    publishes plugin.crm.contact.created; its handler fails the
                    first time for one user;
  sample-analytics  counts new users, logins and the CRM's new contacts.

It prints, step by step, what is published and who receives it, checks that no
plugin instance ever sees another tenant's event, and follows the failed event
into the dead letter queue, through its automatic retry, to its resolution.
It ends by itself with a summary, in a few seconds.`,
		Args: argsUsage(0, 0, "no arguments", "eventbus demo"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pace, _ := cmd.Flags().GetDuration("pace")
			if pace < 0 {
				return usageErrorf("--pace %s is negative; give 0 for no pauses", pace)
			}
			return a.demo(cmd.Context(), pace)
		},
	}
	cmd.Flags().Duration("pace", DefaultDemoPace, "pause between steps, for reading (0: none)")
	return cmd
}

// demo is one run of `eventbus demo`: what happened, for the narration and
// the summary.
type demo struct {
	out  io.Writer
	pace time.Duration

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced at every change below
	published  int
	delivered  int
	violations int
	received   map[string][]eventbus.RawEvent // by plugin instance ("crm[acme]")
	failed     map[string]int                 // failed handlings by plugin instance
	attempts   map[string]int                 // crm handling attempts by event ID
	failOnce   map[string]bool                // user IDs whose first handling fails
}

func (a *app) demo(ctx context.Context, pace time.Duration) error {
	d := &demo{
		out: a.stdout, pace: pace, changed: make(chan struct{}),
		received: map[string][]eventbus.RawEvent{}, attempts: map[string]int{}, failed: map[string]int{},
		failOnce: map[string]bool{"u-3": true},
	}
	err := d.run(ctx, a.demoLogger())
	if err != nil && ctx.Err() != nil {
		return errInterrupted
	}
	return err
}

// demoLogger keeps the library's warnings (a failed handler is one, and
// the demo narrates it) out of the demo's output unless debugging.
func (a *app) demoLogger() *slog.Logger {
	if a.libLog != nil && a.libLog.Enabled(context.Background(), slog.LevelDebug) {
		return a.libLog
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func (d *demo) run(ctx context.Context, log *slog.Logger) error {
	start := time.Now()
	d.say("eventbus demo: a core service and the crm and sample-analytics plugins, for tenants acme and globex\n")

	// 1. The broker, a client and a bus.
	d.step(1, "Start an embedded Kafka-protocol broker (in memory, on a free port)")
	broker, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		return fmt.Errorf("start the embedded broker: %w", err)
	}
	defer broker.Close()
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs(), ClientID: "eventbus-demo", Logger: log})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		return err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{
		Source: "core",
		Logger: log,
		DLQ:    deadletter.Config{RetryBackoff: demoRetryBackoff, SchedulerGroup: demoSchedulerGroup},
	})
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clientStopTimeout)
		defer cancel()
		_ = bus.Shutdown(stopCtx)
	}()
	// crm's failures on core.user.created are kept under the plugin's
	// prefix, by the group they failed in. A host's subscription joins
	// its group as it is (no tenant filter is added to the name).
	dlqTopic, err := topic.DLQFor("plugin."+crm.PluginID+"."+crm.Group, catalog.UserCreated.String())
	if err != nil {
		return err
	}
	// The topics exist before anyone subscribes, the dead-letter topic
	// included, so the retry scheduler owns its partitions from the start.
	for _, t := range []string{catalog.UserCreated.String(), catalog.UserLogin.String(), "plugin.crm." + demoContact, dlqTopic} {
		if err := client.Topics().Ensure(ctx, t); err != nil {
			return err
		}
	}
	// This process runs the dead letter queue, as eventbus serve does:
	// reading it alone would start nothing, and send no retry.
	if err := bus.DLQ().Start(ctx); err != nil {
		return err
	}
	d.say("    broker at %s; topics %s, %s, plugin.crm.%s (and %s for crm's failures)\n",
		strings.Join(broker.Addrs(), ","), catalog.UserCreated, catalog.UserLogin, demoContact, dlqTopic)

	// 2. The plugins, one host per plugin serving both tenants.
	d.step(2, "The plugins subscribe: one PluginHost per plugin serving both tenants, one group per subscription")
	stopPlugins, err := d.startPlugins(ctx, broker.Addrs(), log)
	if err != nil {
		return err
	}
	defer stopPlugins()

	// 3. The core service publishes; the plugins react.
	d.step(3, "The core service publishes catalog events for both tenants (→ publishes, ← receives)")
	users := []struct{ tenant, id, email string }{
		{"acme", "u-1", "ada@acme.test"},
		{"globex", "u-2", "grace@globex.test"},
	}
	for _, u := range users {
		// crm and analytics handle the user; analytics then counts the contact.
		if err := d.publishAndWait(ctx, bus, catalog.UserCreated.String(), u.tenant,
			catalog.UserCreatedData{UserID: u.id, Email: u.email, Role: "member"}, u.id+" "+u.email, 3); err != nil {
			return err
		}
	}
	for _, u := range users {
		if err := d.publishAndWait(ctx, bus, catalog.UserLogin.String(), u.tenant,
			catalog.UserLoginData{UserID: u.id, IPAddress: "203.0.113.7"}, u.id, 1); err != nil {
			return err
		}
	}

	// 4. A handler fails: the event goes to the dead letter queue, whose
	// scheduler retries it for the failed group only, and it succeeds.
	d.step(4, "A handler fails; the dead letter queue retries the event, for the failed group only")
	d.mu.Lock()
	// crm's retry, analytics' count of the user and of the contact.
	wantDelivered := d.delivered + 3
	d.mu.Unlock()
	id, err := d.publish(ctx, bus, catalog.UserCreated.String(), "globex",
		catalog.UserCreatedData{UserID: "u-3", Email: "linus@globex.test", Role: "admin"}, "u-3 linus@globex.test")
	if err != nil {
		return err
	}
	filter := deadletter.Query{Topic: catalog.UserCreated.String(), TenantID: "globex"}
	entry, err := d.waitEntry(ctx, bus.DLQ(), filter, id, func(deadletter.Entry) bool { return true })
	if err != nil {
		return err
	}
	d.say("    dead letter queue          entry %s: group %s, status %s, first of %d automatic retries after %s\n",
		entry.ID, entry.ConsumerGroup, entry.Status, entry.MaxRetries, demoRetryBackoff)
	resolved, err := d.waitEntry(ctx, bus.DLQ(), filter, id, func(e deadletter.Entry) bool { return e.Status == deadletter.StatusResolved })
	if err != nil {
		return err
	}
	// The retry's handling published the contact, which analytics counts.
	if err := d.waitDelivered(ctx, wantDelivered); err != nil {
		return err
	}
	var history []string
	for _, at := range resolved.Attempts {
		history = append(history, fmt.Sprintf("%s +%s", at.Kind, at.At.Sub(resolved.FailedAt).Round(time.Millisecond)))
	}
	d.say("    dead letter queue          entry %s: status %s (%s)\n", resolved.ID, resolved.Status, strings.Join(history, " → "))
	d.pause()

	stats, err := bus.DLQ().Stats(ctx, deadletter.Query{})
	if err != nil {
		return fmt.Errorf("read the dead letter queue: %w", err)
	}

	// 5. Tenant isolation, checked.
	d.step(5, "Tenant isolation: every plugin instance saw only its own tenant's events")
	d.mu.Lock()
	for _, tenant := range demoTenants {
		for _, plugin := range []string{demoCRM, demoAnalytics} {
			name := instance(plugin, tenant)
			evs := d.received[name]
			other := 0
			for _, ev := range evs {
				if ev.TenantID != tenant {
					other++
				}
			}
			failed := ""
			if n := d.failed[name]; n > 0 {
				failed = fmt.Sprintf(" (and %s that failed first)", plural(n, "handling"))
			}
			d.sayLocked("    %-26s handled %s: %d of %s, %d of another tenant%s\n", name, plural(len(evs), "event"), len(evs)-other, tenant, other, failed)
		}
	}
	dupes := 0
	for _, ev := range d.received[instance(demoAnalytics, "globex")] {
		if ev.ID == id {
			dupes++
		}
	}
	if d.violations == 0 {
		d.sayLocked("    ✓ no plugin instance saw another tenant's event\n")
	} else {
		d.sayLocked("    ✗ %s reached another tenant's plugin\n", plural(d.violations, "event"))
	}
	if dupes == 1 {
		d.sayLocked("    ✓ sample-analytics[globex] handled u-3's core.user.created once: the retry reached crm's group only\n")
	} else {
		d.sayLocked("    ✗ sample-analytics[globex] handled u-3's core.user.created %s\n", times(dupes))
	}
	summary := fmt.Sprintf("published %d, delivered %d, isolation violations %d, dead-lettered %d, resolved %d",
		d.published, d.delivered, d.violations, stats.Total, stats.ByStatus[string(deadletter.StatusResolved)])
	violations := d.violations
	d.mu.Unlock()

	d.say("\neventbus demo: %s (%s)\n", summary, time.Since(start).Round(100*time.Millisecond))
	if violations > 0 {
		return fmt.Errorf("tenant isolation failed: %d events reached another tenant's plugin", violations)
	}
	if dupes != 1 {
		return fmt.Errorf("sample-analytics[globex] saw u-3's event %d times, want once", dupes)
	}
	return nil
}

// startPlugins runs the example plugins crm and sample-analytics, each a
// deployment (see pluginrun) of one PluginHost serving both tenants, both
// at once, with an interceptor that narrates their handling and plans
// crm's failure. It returns the function that stops them.
func (d *demo) startPlugins(ctx context.Context, brokers []string, log *slog.Logger) (func(), error) {
	// The hosts exist once Start returned; the interceptors read them then.
	var crmHost, analyticsHost atomic.Pointer[eventbus.PluginHost]
	config := func(pluginID string, intercept func(*eventbus.PluginHost) func(context.Context, eventbus.Event[any], func(context.Context) error) error,
		host *atomic.Pointer[eventbus.PluginHost]) pluginrun.Config {
		cfg := pluginrun.Config{PluginID: pluginID, Client: eventbus.ClientConfig{Brokers: brokers}, Tenants: demoTenants}
		cfg.Client.Logger = log
		cfg.Bus.Logger = log
		cfg.Bus.DLQ = deadletter.Config{RetryBackoff: demoRetryBackoff, SchedulerGroup: demoSchedulerGroup}
		cfg.Intercept = func(ctx context.Context, ev eventbus.Event[any], handle func(context.Context) error) error {
			return intercept(host.Load())(ctx, ev, handle)
		}
		return cfg
	}
	var crmDep *pluginrun.Deployment[crm.CRM]
	var analyticsDep *pluginrun.Deployment[analytics.Analytics]
	var crmErr, analyticsErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		crmDep, crmErr = pluginrun.Start(ctx, config(crm.PluginID, d.crmIntercept, &crmHost), crm.NewCRM, crm.Handlers)
		if crmErr == nil {
			crmHost.Store(crmDep.Host())
		}
	})
	wg.Go(func() {
		analyticsDep, analyticsErr = pluginrun.Start(ctx, config(analytics.PluginID, d.analyticsIntercept, &analyticsHost),
			analytics.New(0), analytics.Handlers)
		if analyticsErr == nil {
			analyticsHost.Store(analyticsDep.Host())
		}
	})
	wg.Wait()
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clientStopTimeout)
		defer cancel()
		if crmDep != nil {
			_ = crmDep.Stop(stopCtx)
		}
		if analyticsDep != nil {
			_ = analyticsDep.Stop(stopCtx)
		}
	}
	if err := errors.Join(crmErr, analyticsErr); err != nil {
		stop()
		return nil, err
	}
	for _, p := range []struct {
		host   *eventbus.PluginHost
		routes [][2]string // topic, group
	}{
		{crmHost.Load(), [][2]string{{catalog.UserCreated.String(), crm.Group}, {"plugin.crm." + crm.DealUpdatedEvent, crm.Group}}},
		{analyticsHost.Load(), [][2]string{{catalog.UserCreated.String(), "signups"}, {catalog.UserLogin.String() + ", " + catalog.UserLogout.String(), "sessions"},
			{catalog.APIRequest.String(), "api-usage"}, {"plugin.crm." + demoContact + ", plugin.crm." + crm.DealUpdatedEvent, "crm-activity"}}},
	} {
		for _, r := range p.routes {
			group, err := eventbus.GroupID(p.host, strings.Split(r[0], ", ")[0], eventbus.InGroup(r[1]))
			if err != nil {
				stop()
				return nil, err
			}
			d.say("    %-30s %-56s group %s\n", instance(p.host.PluginID(), strings.Join(p.host.Tenants(), ",")), r[0], group)
		}
	}
	d.pause()
	return stop, nil
}

// crmIntercept narrates crm's handling and makes its address book "be
// down" the first time it handles some users.
func (d *demo) crmIntercept(host *eventbus.PluginHost) func(context.Context, eventbus.Event[any], func(context.Context) error) error {
	return func(ctx context.Context, ev eventbus.Event[any], handle func(context.Context) error) error {
		tenant := tenantOf(host, ev.TenantID)
		name := instance(demoCRM, tenant)
		raw := eventbus.RawEvent{ID: ev.ID, Type: ev.Type, TenantID: ev.TenantID, WorkspaceID: ev.WorkspaceID}
		user, _ := ev.Data.(catalog.UserCreatedData)
		d.mu.Lock()
		d.attempts[ev.ID]++
		attempt := d.attempts[ev.ID]
		fail := d.failOnce[user.UserID] && attempt == 1
		d.mu.Unlock()
		note := ""
		if attempt > 1 {
			note = fmt.Sprintf(" (retry %d)", attempt-1)
		}
		if fail {
			err := errors.New("address book unavailable (the demo's planned failure)")
			d.receivedEvent(name, tenant, raw, false,
				fmt.Sprintf("    %-26s ← %-26s %s ✗ handler failed: %v", name, ev.Type, user.UserID, err))
			return err
		}
		d.receivedEvent(name, tenant, raw, true, fmt.Sprintf("    %-26s ← %-26s %s%s", name, ev.Type, user.UserID, note))
		if ev.Type == catalog.UserCreated.String() {
			d.say("    %-26s → %-26s for %s\n", name, "plugin.crm."+demoContact, user.UserID)
			d.mu.Lock()
			d.published++
			d.mu.Unlock()
		}
		return handle(ctx)
	}
}

// analyticsIntercept narrates what sample-analytics counts.
func (d *demo) analyticsIntercept(host *eventbus.PluginHost) func(context.Context, eventbus.Event[any], func(context.Context) error) error {
	return func(ctx context.Context, ev eventbus.Event[any], handle func(context.Context) error) error {
		tenant := tenantOf(host, ev.TenantID)
		name := instance(demoAnalytics, tenant)
		data, _ := ev.Data.(map[string]any)
		subject, _ := data["userId"].(string)
		if c, ok := data["contactId"].(string); ok {
			subject = c
		}
		raw := eventbus.RawEvent{ID: ev.ID, Type: ev.Type, TenantID: ev.TenantID, WorkspaceID: ev.WorkspaceID}
		d.receivedEvent(name, tenant, raw, true, fmt.Sprintf("    %-26s ← %-26s %s (counted)", name, ev.Type, subject))
		return handle(ctx)
	}
}

// tenantOf is the tenant a host hands ev to: the tenant of the client it
// acts with (empty when the host does not serve the event's tenant, which
// the isolation check counts as a violation).
func tenantOf(host *eventbus.PluginHost, tenantID string) string {
	c, err := host.Client(tenantID)
	if err != nil {
		return ""
	}
	return c.Scope().TenantID
}

// publish publishes one core event and narrates it. The line comes first
// (the ID is chosen here), so that it precedes the deliveries it causes.
func (d *demo) publish(ctx context.Context, bus *eventbus.Bus, eventType, tenant string, data any, what string) (string, error) {
	uid, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	id := uid.String()
	d.say("  core service → %-22s %-7s %-24s event %s\n", eventType, tenant, what, id)
	if _, err := bus.Publish(ctx, eventType, data, eventbus.PublishMetadata{TenantID: tenant, Source: "core"}, eventbus.WithEventID(id)); err != nil {
		return "", fmt.Errorf("publish %s: %w", eventType, err)
	}
	d.mu.Lock()
	d.published++
	d.mu.Unlock()
	return id, nil
}

// publishAndWait publishes one event and waits until the plugins handled
// it: n more deliveries.
func (d *demo) publishAndWait(ctx context.Context, bus *eventbus.Bus, eventType, tenant string, data any, what string, n int) error {
	d.mu.Lock()
	want := d.delivered + n
	d.mu.Unlock()
	if _, err := d.publish(ctx, bus, eventType, tenant, data, what); err != nil {
		return err
	}
	if err := d.waitDelivered(ctx, want); err != nil {
		return err
	}
	d.pause()
	return nil
}

// waitDelivered waits until n events were delivered in all.
func (d *demo) waitDelivered(ctx context.Context, n int) error {
	return d.waitUntil(ctx, func() bool { return d.delivered >= n },
		func() string { return fmt.Sprintf("%d deliveries of %d", d.delivered, n) })
}

// waitUntil waits, on the demo's change signal, until cond (called with
// d.mu held) holds.
func (d *demo) waitUntil(ctx context.Context, cond func() bool, progress func() string) error {
	timer := time.NewTimer(demoStepTimeout)
	defer timer.Stop()
	for {
		d.mu.Lock()
		ok, changed := cond(), d.changed
		d.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			d.mu.Lock()
			defer d.mu.Unlock()
			return fmt.Errorf("the demo got stuck: after %s, %s; run it with --log-level debug to see why", demoStepTimeout, progress())
		}
	}
}

// waitEntry polls the dead letter queue (bounded) until the entry of event
// id exists and done accepts it.
func (d *demo) waitEntry(ctx context.Context, q *eventbus.DeadLetterQueue, filter deadletter.Query, id string, done func(deadletter.Entry) bool) (deadletter.Entry, error) {
	deadline := time.Now().Add(demoStepTimeout)
	tick := time.NewTicker(demoPoll)
	defer tick.Stop()
	var last deadletter.Entry
	for {
		entries, _, err := q.List(ctx, filter)
		if err != nil && ctx.Err() == nil {
			return last, fmt.Errorf("read the dead letter queue: %w", err)
		}
		for _, e := range entries {
			if e.EventID == id {
				last = e
				if done(e) {
					return e, nil
				}
			}
		}
		if time.Now().After(deadline) {
			if last.ID == "" {
				return last, fmt.Errorf("the demo got stuck: event %s did not reach the dead letter queue within %s", id, demoStepTimeout)
			}
			return last, fmt.Errorf("the demo got stuck: dead-letter entry %s still %s after %s", last.ID, last.Status, demoStepTimeout)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return last, ctx.Err()
		}
	}
}

// receivedEvent records a handling of a plugin instance, counting it as
// an isolation violation when it is another tenant's.
func (d *demo) receivedEvent(name, tenant string, ev eventbus.RawEvent, ok bool, line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		d.delivered++
		d.received[name] = append(d.received[name], ev)
	} else {
		d.failed[name]++
	}
	if ev.TenantID != tenant {
		d.violations++
		line += fmt.Sprintf("   ✗ ISOLATION VIOLATION: tenant %s", ev.TenantID)
	}
	d.sayLocked("%s\n", line)
	d.signalLocked()
}

func (d *demo) signalLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *demo) step(n int, title string) {
	d.say("\n%d. %s\n", n, title)
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sayLocked(format, args...)
}

func (d *demo) sayLocked(format string, args ...any) {
	fmt.Fprintf(d.out, format, args...)
}

// pause waits a moment between steps, for reading; correctness never
// depends on it.
func (d *demo) pause() {
	if d.pace > 0 {
		time.Sleep(d.pace)
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

func instance(plugin, tenant string) string { return plugin + "[" + tenant + "]" }
