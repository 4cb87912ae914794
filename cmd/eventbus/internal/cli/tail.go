package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/topic"
)

// DefaultTailRefresh is how often `eventbus tail` looks for new topics that
// match its prefixes (or its event types that did not exist yet).
const DefaultTailRefresh = 5 * time.Second

// tailDataMax caps the data shown on a readable tail line.
const tailDataMax = 400

// tailConfig is what `eventbus tail` follows, resolved from its arguments
// and flags.
type tailConfig struct {
	// Types are exact event types; Prefixes end with "." ("" follows every
	// core and plugin topic).
	Types, Prefixes []string
	TenantID        string
	WorkspaceID     string
	FromBeginning   bool
	JSON            bool
	// Group is the consumer group; Generated is set when tail made it up.
	Group     string
	Generated bool
	Max       int
	Refresh   time.Duration
	// Key, Header and Text are the console's filters (consoleapi.TailFilter);
	// Key and Header need API.
	Key, Header, Text string
	// API, when set, is the address of a running serve whose live tail
	// (GET /api/tail) this tail reads, with Token.
	API, Token string
}

// matches reports whether topic is followed by c.
func (c tailConfig) matches(name string) bool {
	if slices.Contains(c.Types, name) {
		return true
	}
	for _, p := range c.Prefixes {
		if strings.HasPrefix(name, p) {
			if t, err := topic.Parse(name); err == nil && t.Kind != topic.KindDLQ {
				return true
			}
		}
	}
	return false
}

func (a *app) tailCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tail TYPE|PREFIX...",
		Short: "Print events as they are published",
		Long: `Print events of the given types as they are published: one line per event
(time, type, tenant/workspace, ID, data) or, with --json, the event's JSON as it
is on the wire.

A TYPE is an event type (core.user.created). A PREFIX ends with a dot, or with
".*": core.user. (or core.user.*) follows every user event, plugin.crm. every
event of the crm plugin, core. every core event, "*" every core and plugin
event. Topics that match a prefix, or types that do not exist yet, are looked
for again every --refresh and followed, from their beginning, once they appear.

By default tail joins a consumer group of its own (eventbus-tail-<random>,
removed at exit), so it never takes events away from the groups of real
consumers, and starts at events published from now on (--from-beginning: at the
oldest retained one). It stops on Ctrl-C, or after --max events.

With --api (the address of a running eventbus serve) and --token, tail reads
serve's live tail instead of the brokers, with the console's filters applied on
the server: --tenant, --key, --header name=value and --text (searched in the
event as shown, secrets redacted); a tenant token sees its tenant's events only.
--key and --header need --api; --text works both ways.`,
		Example: `  eventbus tail core.user.created
  eventbus tail core.user. plugin.crm. --tenant acme
  eventbus tail 'core.*' --from-beginning --json | jq .
  eventbus tail core.user.login --tenant acme --workspace sales --max 10
  eventbus tail core.order. --api 127.0.0.1:8080 --token $TOKEN --key order-7 --text refund`,
		Args: argsUsage(1, -1, "at least one event type or prefix", "eventbus tail core.user.created plugin.crm."),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := resolveTail(cmd, args)
			if err != nil {
				return err
			}
			if cfg.API != "" {
				return a.tailAPI(cmd.Context(), cfg)
			}
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			return a.tail(cmd.Context(), bs, cfg)
		},
	}
	f := cmd.Flags()
	f.String("tenant", "", "only this tenant's events")
	f.String("workspace", "", "only this workspace's events (needs --tenant)")
	f.Bool("from-beginning", false, "start at the oldest retained event instead of new events only")
	f.Bool("json", false, "print each event's JSON (one per line) instead of a readable line")
	f.String("group", "", "consumer group to join, kept at exit; its other members share the events with this tail (default: a new group of this tail only, removed at exit)")
	f.Int("max", 0, "stop after this many events (0: run until Ctrl-C)")
	f.Duration("refresh", DefaultTailRefresh, "how often to look for new topics matching a prefix")
	f.String("key", "", "only events with this record key (needs --api)")
	f.String("header", "", "only events with this header, name or name=value (needs --api)")
	f.String("text", "", "only events whose JSON contains this text, ignoring case")
	f.String("api", "", "read the live tail of this running eventbus serve (host:port) instead of the brokers")
	f.String("token", "", "bearer token for --api (env "+EnvToken+")")
	addBrokerFlags(cmd)
	return cmd
}

// resolveTail reads tail's arguments and flags and checks them.
func resolveTail(cmd *cobra.Command, args []string) (tailConfig, error) {
	f := cmd.Flags()
	var cfg tailConfig
	cfg.TenantID, _ = f.GetString("tenant")
	cfg.WorkspaceID, _ = f.GetString("workspace")
	cfg.FromBeginning, _ = f.GetBool("from-beginning")
	cfg.JSON, _ = f.GetBool("json")
	cfg.Group, _ = f.GetString("group")
	cfg.Max, _ = f.GetInt("max")
	cfg.Refresh, _ = f.GetDuration("refresh")
	cfg.Key, _ = f.GetString("key")
	cfg.Header, _ = f.GetString("header")
	cfg.Text, _ = f.GetString("text")
	cfg.API, _ = f.GetString("api")
	cfg.Token, _ = f.GetString("token")
	for _, arg := range args {
		p, isPrefix := tailPrefix(arg)
		if !isPrefix {
			if err := checkEventType(arg); err != nil {
				return cfg, err
			}
			if !slices.Contains(cfg.Types, arg) {
				cfg.Types = append(cfg.Types, arg)
			}
			continue
		}
		if err := checkPrefix(arg, p); err != nil {
			return cfg, err
		}
		if !slices.Contains(cfg.Prefixes, p) {
			cfg.Prefixes = append(cfg.Prefixes, p)
		}
	}
	switch {
	case cfg.WorkspaceID != "" && cfg.TenantID == "":
		return cfg, usageErrorf("--workspace needs --tenant too: workspaces belong to tenants")
	case cfg.Max < 0:
		return cfg, usageErrorf("--max %d is negative; give 0 to run until Ctrl-C", cfg.Max)
	case cfg.Refresh <= 0:
		return cfg, usageErrorf("--refresh must be positive, e.g. 5s")
	case cfg.API == "" && (cfg.Key != "" || cfg.Header != ""):
		return cfg, usageErrorf("--key and --header filter on the server: give --api (the address of eventbus serve) and --token")
	case cfg.API != "" && (cfg.WorkspaceID != "" || cfg.FromBeginning || f.Changed("group")):
		return cfg, usageErrorf("--workspace, --from-beginning and --group are for reading the brokers; drop them with --api (serve's live tail starts now)")
	}
	if cfg.Group == "" {
		var b [5]byte
		_, _ = rand.Read(b[:])
		cfg.Group, cfg.Generated = "eventbus-tail-"+hex.EncodeToString(b[:]), true
	}
	return cfg, nil
}

// tailPrefix reports whether arg is a prefix ("core.user.", "core.user.*",
// "*") and returns it ending with a dot ("" for all).
func tailPrefix(arg string) (string, bool) {
	switch {
	case arg == "*" || arg == "":
		return "", true
	case strings.HasSuffix(arg, ".*"):
		return strings.TrimSuffix(arg, "*"), true
	case strings.HasSuffix(arg, "."):
		return arg, true
	}
	return "", false
}

// checkPrefix rejects prefixes no core or plugin topic can have.
func checkPrefix(arg, p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "dlq.") {
		return usageErrorf("%q: dead-letter topics hold failed events, not events to tail; use `eventbus dlq list` instead", arg)
	}
	if !strings.HasPrefix(p, "core.") && !strings.HasPrefix(p, "plugin.") {
		return usageErrorf("prefix %q matches no event: prefixes start with core. or plugin. (e.g. core.user. or plugin.crm.)", arg)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "."), ".") {
		if seg == "" || strings.ToLower(seg) != seg || strings.ContainsAny(seg, " *") {
			return usageErrorf("prefix %q matches no event: segments are lowercase and not empty (e.g. core.user. or plugin.crm.)", arg)
		}
	}
	return nil
}

// tailer follows the topics of one tail run.
type tailer struct {
	a   *app
	cfg tailConfig
	bus *eventbus.Bus

	mu       sync.Mutex
	out      io.Writer
	count    int
	followed map[string]bool
	group    string        // the consumer group the tail joined, once it subscribed
	done     chan struct{} // closed when --max events were printed
}

// tail runs `eventbus tail` until ctx ends or --max events were printed.
func (a *app) tail(ctx context.Context, bs brokerSettings, cfg tailConfig) error {
	client, err := a.connect(ctx, bs, "eventbus-tail")
	if err != nil {
		return err
	}
	// Tail reads: it never creates topics, and never schedules the dead
	// letter queue's retries (that is serve's job).
	bus, err := eventbus.NewBus(client, eventbus.Config{
		Logger:               a.libLog,
		DisableTopicCreation: true,
		DLQ:                  deadletter.Config{DisableScheduler: true},
	})
	if err != nil {
		client.Close()
		return err
	}
	t := &tailer{a: a, cfg: cfg, bus: bus, out: a.stdout, followed: map[string]bool{}, done: make(chan struct{})}
	defer func() {
		a.stopBus(ctx, bus, nil)
		if cfg.Generated {
			t.deleteGroup(ctx, client)
		}
		client.Close()
	}()

	topics, err := t.matching(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := t.follow(ctx, topics, cfg.FromBeginning); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t.announce(topics)

	ticker := time.NewTicker(cfg.Refresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.done:
			return nil
		case <-ticker.C:
			if len(cfg.Prefixes) == 0 && t.followsAllTypes() {
				continue
			}
			found, err := t.matching(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.log.Warn("eventbus: tail could not list topics; will try again", "err", err)
				continue
			}
			// A topic that appeared after tail started holds only events
			// published since: follow it from its beginning.
			if err := t.follow(ctx, found, true); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, topic := range found {
				fmt.Fprintf(a.stderr, "eventbus: now also tailing %s\n", topic)
			}
		}
	}
}

// matching lists the existing topics tail should follow and does not yet.
func (t *tailer) matching(ctx context.Context) ([]string, error) {
	all, err := t.bus.Client().Topics().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, topic := range all {
		if !t.followed[topic] && t.cfg.matches(topic) {
			out = append(out, topic)
		}
	}
	return out, nil
}

func (t *tailer) followsAllTypes() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, typ := range t.cfg.Types {
		if !t.followed[typ] {
			return false
		}
	}
	return true
}

// follow subscribes to topics, all at once: they share the tail's group.
func (t *tailer) follow(ctx context.Context, topics []string, fromBeginning bool) error {
	errs := make([]error, len(topics))
	var wg sync.WaitGroup
	opts := []eventbus.SubscribeOption{eventbus.InGroup(t.cfg.Group), eventbus.ForTenant(t.cfg.TenantID), eventbus.ForWorkspace(t.cfg.WorkspaceID), eventbus.WithDelivery(eventbus.Delivery{
		FromBeginning: fromBeginning,
		// A throwaway reader: a record it cannot show is not a failure to keep.
		OnFailure: eventbus.Skip,
		// Shown in the order of each partition.
		Ordering: eventbus.OrderPerPartition,
	})}
	if len(topics) > 0 {
		if group, err := eventbus.GroupID(t.bus, topics[0], opts...); err == nil {
			t.mu.Lock()
			t.group = group
			t.mu.Unlock()
		}
	}
	for i, topic := range topics {
		wg.Go(func() {
			_, errs[i] = eventbus.Subscribe(ctx, t.bus, eventbus.Name[json.RawMessage](topic), t.handle, opts...)
		})
	}
	wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, topic := range topics {
		if errs[i] != nil {
			return fmt.Errorf("tail %s: %w", topic, errs[i])
		}
		t.followed[topic] = true
	}
	return nil
}

// announce says on stderr what tail follows, once it is subscribed: from
// then on, every matching event published is printed.
func (t *tailer) announce(topics []string) {
	var scope string
	switch {
	case t.cfg.WorkspaceID != "":
		scope = fmt.Sprintf("tenant %s, workspace %s, ", t.cfg.TenantID, t.cfg.WorkspaceID)
	case t.cfg.TenantID != "":
		scope = "tenant " + t.cfg.TenantID + ", "
	}
	start := "new events"
	if t.cfg.FromBeginning {
		start = "all retained events"
	}
	var waiting []string
	for _, typ := range t.cfg.Types {
		if !slices.Contains(topics, typ) {
			waiting = append(waiting, typ)
		}
	}
	for _, p := range t.cfg.Prefixes {
		if p == "" {
			waiting = append(waiting, "any new core or plugin topic")
		} else {
			waiting = append(waiting, "new "+p+"* topics")
		}
	}
	if len(topics) == 0 {
		fmt.Fprintf(t.a.stderr, "eventbus: waiting for a matching topic (%sgroup %s); Ctrl-C to stop\n", scope, t.cfg.Group)
	} else {
		fmt.Fprintf(t.a.stderr, "eventbus: tailing %s (%s, %sgroup %s); Ctrl-C to stop\n", strings.Join(topics, ", "), start, scope, t.cfg.Group)
	}
	if len(waiting) > 0 {
		fmt.Fprintf(t.a.stderr, "eventbus: looking every %s for %s\n", t.cfg.Refresh, strings.Join(waiting, ", "))
	}
}

// handle prints one event; it never fails, so tail never dead-letters.
func (t *tailer) handle(_ context.Context, ev eventbus.RawEvent) error {
	var line []byte
	if t.cfg.JSON {
		line, _ = json.Marshal(ev)
	} else {
		line = []byte(formatEventLine(ev))
	}
	if t.cfg.Text != "" {
		shown, _ := json.Marshal(ev)
		if !strings.Contains(strings.ToLower(string(shown)), strings.ToLower(t.cfg.Text)) {
			return nil
		}
	}
	t.print(line)
	return nil
}

// print writes one line, counting it against --max.
func (t *tailer) print(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg.Max > 0 && t.count >= t.cfg.Max {
		return
	}
	t.count++
	_, _ = t.out.Write(append(line, '\n'))
	if t.cfg.Max > 0 && t.count == t.cfg.Max {
		close(t.done)
	}
}

// tailAPI runs tail against serve's live tail (GET /api/tail).
func (a *app) tailAPI(ctx context.Context, cfg tailConfig) error {
	token := cfg.Token
	if token == "" {
		token, _ = a.lookupEnv(EnvToken)
	}
	base, err := apiBase(cfg.API)
	if err != nil {
		return err
	}
	filter := consoleapi.TailFilter{TenantID: cfg.TenantID, Key: cfg.Key, Header: cfg.Header, Text: cfg.Text}
	filter.Types = append(filter.Types, cfg.Types...)
	for _, p := range cfg.Prefixes {
		if p != "" {
			filter.Types = append(filter.Types, p)
		}
	}
	t := &tailer{a: a, cfg: cfg, out: a.stdout, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-t.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = consoleapi.NewClient(base, strings.TrimSpace(token), &http.Client{}).Tail(ctx, filter,
		func(topics []string) {
			fmt.Fprintf(a.stderr, "eventbus: tailing %s through %s; Ctrl-C to stop\n", strings.Join(topics, ", "), base)
		},
		func(r consoleapi.TailRecord) {
			if cfg.JSON {
				line, _ := json.Marshal(r)
				t.print(line)
				return
			}
			var ev eventbus.RawEvent
			if r.Malformed || json.Unmarshal(r.Value, &ev) != nil {
				t.print(fmt.Appendf(nil, "%s  %s  (not an event)  %s", r.Timestamp.Format("2006-01-02T15:04:05.000Z"), r.Topic, r.Value))
				return
			}
			t.print([]byte(formatEventLine(ev)))
		},
		func(n int) {
			fmt.Fprintf(a.stderr, "eventbus: %d events over the tail's rate limit were not shown\n", n)
		})
	if err != nil {
		return fmt.Errorf("live tail at %s: %w", base, err)
	}
	return nil
}

// formatEventLine is tail's readable line: time, type, tenant[/workspace],
// ID and compact data.
func formatEventLine(ev eventbus.RawEvent) string {
	scope := ev.TenantID
	if ev.WorkspaceID != "" {
		scope += "/" + ev.WorkspaceID
	}
	var data bytes.Buffer
	if err := json.Compact(&data, ev.Data); err != nil {
		data.Reset()
		data.Write(ev.Data)
	}
	d := data.String()
	if len(d) > tailDataMax {
		d = fmt.Sprintf("%s… (%d bytes)", d[:tailDataMax], len(d))
	}
	return fmt.Sprintf("%s  %s  %s  %s  %s", ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"), ev.Type, scope, ev.ID, d)
}

// deleteGroup removes the group tail made up, so it leaves nothing behind.
func (t *tailer) deleteGroup(ctx context.Context, client *eventbus.Client) {
	adm, err := client.Admin()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	t.mu.Lock()
	group := t.group
	t.mu.Unlock()
	if group == "" {
		return // it never subscribed: there is no group
	}
	if _, err := adm.DeleteGroups(ctx, group); err != nil {
		t.a.log.Debug("eventbus: could not delete the tail's group", "group", group, "err", err)
	}
}
