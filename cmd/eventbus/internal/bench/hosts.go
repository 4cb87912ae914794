package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
)

// The hosts phase: one plugin subscription to a core topic serving many
// tenants, through one PluginHost (one consumer group) and through a
// PluginClient per tenant (a group per tenant).
const (
	// HostsRate is the hosts phase's paced rate, events/s.
	HostsRate = 1_000
	// PerTenantMaxTenants is the most tenants the per-tenant side is run
	// with: beyond, it would be that many consumer clients in one process.
	PerTenantMaxTenants = 100
	// hostsPluginID is the plugin the hosts phase subscribes as.
	hostsPluginID = "bench-hosts"
	// commitWait bounds the wait, once the events arrived, for every group
	// of a side to commit the end of the topic.
	commitWait = 30 * time.Second
)

// HostsTenants are the tenant counts of the hosts phase.
var HostsTenants = []int{1, 10, 100, 1_000}

// Hosts compares the two ways a plugin serves many tenants, at HostsRate
// over each of HostsTenants: a PluginHost (one group for all tenants) and a
// PluginClient per tenant (one group per tenant), each subscribed once to a
// core topic whose events are spread evenly over the tenants. Baseline is
// one unfiltered Subscribe on the same kind of topic at the same rate,
// over the most tenants.
type Hosts struct {
	Rate            int          `json:"rate"`
	BaselineTenants int          `json:"baselineTenants"`
	Baseline        DeliverySide `json:"baseline"`
	Runs            []HostsRun   `json:"runs"`
}

// HostsRun is the hosts phase's figures at one tenant count.
type HostsRun struct {
	Tenants int       `json:"tenants"`
	Host    HostsSide `json:"host"`
	// PerTenant is absent when it was not run; PerTenantNotRun says why.
	PerTenant       *HostsSide `json:"perTenant,omitempty"`
	PerTenantNotRun string     `json:"perTenantNotRun,omitempty"`
	// HostRatioP95 is Host.P95 / the baseline's p95 (lower is better).
	HostRatioP95 float64 `json:"hostRatioP95"`
}

// HostsSide is one side's figures at one tenant count. Groups is how many
// consumer groups the side created (listed from the brokers); Published
// the events published to its topic (warm-up included) and Read the
// offsets its groups committed over them, summed over the groups: each
// group commits every event it read, its tenants' and the others'.
// HeapInuseMiB is the process's heap in use after a GC, taken once the
// events arrived, while the side's subscriptions still run.
type HostsSide struct {
	DeliverySide
	Groups        int     `json:"groups"`
	Published     int64   `json:"published"`
	Read          int64   `json:"read"`
	ReadsPerEvent float64 `json:"readsPerEvent"`
	HeapInuseMiB  float64 `json:"heapInuseMiB"`
}

// perTenantNotRun says why the per-tenant side is not run at tenants, or
// "" when it is.
func perTenantNotRun(tenants int) string {
	if tenants <= PerTenantMaxTenants {
		return ""
	}
	return fmt.Sprintf("not run: %s consumer clients in one process", grouped(tenants))
}

// grouped writes n with thousands separated by commas: 1,000.
func grouped(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// hosts runs the hosts phase.
func (r *runner) hosts(ctx context.Context) (*Hosts, error) {
	step := r.step(PhaseHosts)
	maxTenants := HostsTenants[len(HostsTenants)-1]
	h := &Hosts{Rate: HostsRate, BaselineTenants: maxTenants}
	r.progress("%s hosts baseline: one unfiltered Subscribe at %d events/s over %d tenants, %s", step, h.Rate, maxTenants, r.cfg.Duration)
	err := r.profiled("hosts-baseline", func() (err error) {
		h.Baseline, err = r.oursPaced(ctx, pacedRun{
			topic:   r.topics.hosts(0, "base"),
			rate:    h.Rate,
			tenants: tenantNames(maxTenants),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hosts, baseline: %w", err)
	}
	r.reportDelivery("baseline", h.Baseline)
	for _, n := range HostsTenants {
		run := HostsRun{Tenants: n, PerTenantNotRun: perTenantNotRun(n)}
		r.progress("%s hosts, %d tenants, host: one PluginHost, one Subscribe, at %d events/s, %s", step, n, h.Rate, r.cfg.Duration)
		if run.Host, err = r.hostsSide(ctx, n, "host"); err != nil {
			return nil, fmt.Errorf("hosts, %d tenants, host: %w", n, err)
		}
		r.reportHostsSide("host", run.Host)
		if run.PerTenantNotRun == "" {
			r.progress("%s hosts, %d tenants, per-tenant: %d PluginClients, one Subscribe each, at %d events/s, %s", step, n, n, h.Rate, r.cfg.Duration)
			side, err := r.hostsSide(ctx, n, "tenant")
			if err != nil {
				return nil, fmt.Errorf("hosts, %d tenants, per-tenant: %w", n, err)
			}
			run.PerTenant = &side
			r.reportHostsSide("per-tenant", side)
		} else {
			r.progress("%s hosts, %d tenants, per-tenant: %s", step, n, run.PerTenantNotRun)
		}
		run.HostRatioP95 = run.Host.P95 / h.Baseline.P95
		h.Runs = append(h.Runs, run)
	}
	return h, nil
}

func (r *runner) reportHostsSide(side string, s HostsSide) {
	r.reportDelivery(side, s.DeliverySide)
	r.progress("      %s: %d groups, %.3f reads per event (%d read / %d published), heap in use %.1f MiB",
		side, s.Groups, s.ReadsPerEvent, s.Read, s.Published, s.HeapInuseMiB)
}

// hostsSide runs one side ("host" or "tenant") of the hosts phase at
// tenants tenants.
func (r *runner) hostsSide(ctx context.Context, tenants int, side string) (HostsSide, error) {
	var out HostsSide
	adm, err := r.client.Admin()
	if err != nil {
		return out, err
	}
	topic := r.topics.hosts(tenants, side)
	names := tenantNames(tenants)
	before, err := endOffsetsOf(ctx, adm, topic)
	if err != nil {
		return out, err
	}
	// The plugin's group name, new for each side, so that the groups the
	// side created are those listed under its prefix.
	name := "bench-" + randomHex(4)
	prefix := "plugin." + hostsPluginID + "." + name
	var groups []string
	run := pacedRun{topic: topic, rate: HostsRate, tenants: names}
	if side == "host" {
		run.subscribe = func(ctx context.Context, topic string, handler eventbus.Handler) (func(context.Context), error) {
			host, err := eventbus.NewPluginHost(r.bus, eventbus.PluginHostConfig{PluginID: hostsPluginID, Tenants: names})
			if err != nil {
				return nil, err
			}
			id, err := eventbus.Subscribe(ctx, host, eventbus.Name[json.RawMessage](topic), handler, eventbus.InGroup(name))
			if err != nil {
				return nil, err
			}
			group, err := eventbus.GroupID(host, topic, eventbus.InGroup(name))
			if err != nil {
				return nil, err
			}
			groups = []string{group}
			return func(ctx context.Context) { _ = host.Unsubscribe(ctx, id) }, nil
		}
	} else {
		run.warmUpEachTenant = true
		run.subscribe = func(ctx context.Context, topic string, handler eventbus.Handler) (func(context.Context), error) {
			stop, gs, err := r.subscribePerTenant(ctx, topic, name, names, handler)
			groups = gs
			return stop, err
		}
	}
	run.measure = func(ctx context.Context) error {
		after, err := endOffsetsOf(ctx, adm, topic)
		if err != nil {
			return err
		}
		committed, err := waitCommitted(ctx, adm, topic, groups, after)
		if err != nil {
			return err
		}
		out.Read, out.Published = readsOf(before, after, committed)
		if out.Published > 0 {
			out.ReadsPerEvent = float64(out.Read) / float64(out.Published)
		}
		if out.Groups, err = countGroups(ctx, adm, prefix); err != nil {
			return err
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		out.HeapInuseMiB = float64(ms.HeapInuse) / (1 << 20)
		return nil
	}
	err = r.profiled(fmt.Sprintf("hosts%d-%s", tenants, side), func() (err error) {
		out.DeliverySide, err = r.oursPaced(ctx, run)
		return err
	})
	if len(groups) > 0 {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
		if _, derr := adm.DeleteGroups(dctx, groups...); derr != nil {
			r.cfg.Logger.Warn("bench: delete the hosts phase's groups", "prefix", prefix, "err", derr)
		}
		cancel()
	}
	return out, err
}

// subscribeParallel is how many per-tenant subscriptions join at once.
const subscribeParallel = 16

// subscribePerTenant subscribes handler once per tenant, each through its
// own PluginClient (one group per tenant), and returns what unsubscribes
// them all and the groups joined.
func (r *runner) subscribePerTenant(ctx context.Context, topic, name string, tenants []string, handler eventbus.Handler) (func(context.Context), []string, error) {
	type sub struct {
		client *eventbus.PluginClient
		id     string
	}
	subs := make([]sub, len(tenants))
	groups := make([]string, len(tenants))
	errs := make([]error, len(tenants))
	sem := make(chan struct{}, subscribeParallel)
	var wg sync.WaitGroup
	for i, t := range tenants {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := eventbus.NewPluginClient(r.bus, eventbus.PluginScope{PluginID: hostsPluginID, TenantID: t})
			if err != nil {
				errs[i] = err
				return
			}
			if groups[i], err = eventbus.GroupID(c, topic, eventbus.InGroup(name)); err != nil {
				errs[i] = err
				return
			}
			id, err := eventbus.Subscribe(ctx, c, eventbus.Name[json.RawMessage](topic), handler, eventbus.InGroup(name))
			if err != nil {
				errs[i] = fmt.Errorf("tenant %s: %w", t, err)
				return
			}
			subs[i] = sub{c, id}
		})
	}
	wg.Wait()
	stop := func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, s := range subs {
			if s.client == nil {
				continue
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				_ = s.client.Unsubscribe(ctx, s.id)
			})
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		stop(context.WithoutCancel(ctx))
		return nil, groups, err
	}
	return stop, groups, nil
}

// offsets are one topic's offsets by partition.
type offsets map[int32]int64

// endOffsetsOf returns topic's end offsets.
func endOffsetsOf(ctx context.Context, adm *kadm.Client, topic string) (offsets, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := offsets{}
	for p, o := range listed[topic] {
		out[p] = o.Offset
	}
	return out, nil
}

// waitCommitted fetches the offsets groups committed on topic until every
// group committed end on every partition, or commitWait passed, and
// returns the last fetched.
func waitCommitted(ctx context.Context, adm *kadm.Client, topic string, groups []string, end offsets) (map[string]offsets, error) {
	deadline := time.Now().Add(commitWait)
	for {
		fetched := adm.FetchManyOffsets(ctx, groups...)
		if err := fetched.Error(); err != nil {
			return nil, fmt.Errorf("committed offsets: %w", err)
		}
		committed := map[string]offsets{}
		for _, g := range groups {
			committed[g] = offsets{}
			for p, o := range fetched[g].Fetched[topic] {
				committed[g][p] = o.At
			}
		}
		if allCommitted(committed, end) || time.Now().After(deadline) {
			return committed, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allCommitted reports whether every group committed end on every partition.
func allCommitted(committed map[string]offsets, end offsets) bool {
	for _, c := range committed {
		for p, e := range end {
			if c[p] < e {
				return false
			}
		}
	}
	return true
}

// readsOf returns the events the groups read — the sum over groups and
// partitions of committed minus start offset (a partition a group never
// committed counts nothing) — and the events published between start and
// end.
func readsOf(start, end offsets, committed map[string]offsets) (read, published int64) {
	for p, e := range end {
		published += e - start[p]
	}
	for _, c := range committed {
		for p, at := range c {
			if s, ok := start[p]; ok && at > s {
				read += at - s
			}
		}
	}
	return read, published
}

// countGroups counts the brokers' consumer groups whose name is prefix or
// starts with prefix + ".".
func countGroups(ctx context.Context, adm *kadm.Client, prefix string) (int, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return 0, fmt.Errorf("list groups: %w", err)
	}
	n := 0
	for g := range listed {
		if g == prefix || strings.HasPrefix(g, prefix+".") {
			n++
		}
	}
	return n, nil
}
