package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Targets of the design (DESIGN.md §11).
const (
	TargetThroughputRatio   = 0.8   // batched publish, ours/raw, at least
	TargetPublishP95Ms      = 10.0  // single publish p95, ms, below
	TargetPublishRatioP95   = 1.5   // single publish p95, ours/raw, at most
	TargetDeliveryRatioP95  = 2.0   // delivery p95, ours/raw, at most
	TargetDeliveryP95Ms     = 100.0 // delivery p95 at TargetDeliveryRate, ms, below
	TargetDeliveryRate      = 10_000
	TargetSlowDefault       = 1_000  // slow handler, ours with default options, events/s, at least
	TargetSlowTuned         = 10_000 // slow handler, ours tuned, events/s, at least
	TargetFairnessRatioP95  = 2.0    // fairness, p95 one tenant blocked / none blocked, at most
	TargetHostReadsPerEvent = 1.05   // hosts, events read per event published by a PluginHost, at most
	TargetHostGroups        = 1      // hosts, consumer groups of a PluginHost subscription
	TargetHostRatioP95      = 2.0    // hosts, PluginHost p95 at 1,000 tenants / unfiltered p95, at most
	TargetHostRatioTenants  = 1_000  // the tenant count TargetHostRatioP95 is checked at
	// TargetCrashDuplicateShare: crash, events handled twice after the kill
	// over the backlog, at most (issue 24).
	TargetCrashDuplicateShare = 0.01
	// The dead letter queue at DLQEntries entries (issue #27: a third of
	// the first design's 260 MB and 5 s at 100,000 entries).
	TargetDLQBytesPerEntry   = 260e6 / 3 / DLQEntries // a new queue's heap per entry, bytes, at most
	TargetDLQLoadSeconds     = 5.0 / 3                // load time at DLQEntries entries, s, at most
	TargetDLQRESTP95Ms       = 100.0                  // REST list and stats p95, ms, below
	TargetDLQFirstRetryMaxMs = 200.0                  // a new topic's first retry, due to handled, ms, at most
)

// Report is the outcome of a run.
type Report struct {
	// Broker says what the brokers are (set by the caller, e.g.
	// "embedded, separate process"); Brokers where they are.
	Broker  string   `json:"broker,omitempty"`
	Brokers []string `json:"brokers"`

	GoVersion    string  `json:"goVersion"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	PhaseSeconds float64 `json:"phaseSeconds"`
	// ValueBytes and HeaderBytes are the size of one event's record value
	// and headers; both sides send the same.
	ValueBytes  int `json:"valueBytes"`
	HeaderBytes int `json:"headerBytes"`
	Publishers  int `json:"publishers"`
	BatchSize   int `json:"batchSize"`

	// Phases are the phases run (Config.Phases); the figures of the others
	// are absent.
	Phases []string `json:"phases"`

	Throughput  *Throughput     `json:"throughput,omitempty"`
	Publish     *PublishLatency `json:"publish,omitempty"`
	Delivery    []Delivery      `json:"delivery,omitempty"`
	SlowHandler *SlowHandler    `json:"slowHandler,omitempty"`
	FastDrain   *FastDrain      `json:"drain,omitempty"`
	Fairness    *Fairness       `json:"fairness,omitempty"`
	Crash       *Crash          `json:"crash,omitempty"`
	Hosts       *Hosts          `json:"hosts,omitempty"`
	Gateway     *Gateway        `json:"gateway,omitempty"`
	Outbox      *Outbox         `json:"outbox,omitempty"`
	Inbox       *Inbox          `json:"inbox,omitempty"`
	DLQ         *DLQ            `json:"dlq,omitempty"`

	// Checks compare the figures with the design's targets.
	Checks []Check `json:"checks"`
}

// Check is one figure held against its target.
type Check struct {
	Name   string  `json:"name"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	OK     bool    `json:"ok"`
}

// evaluate fills Checks.
func (r *Report) evaluate() {
	add := func(name, target string, v float64, ok bool) {
		r.Checks = append(r.Checks, Check{Name: name, Target: target, Value: v, OK: ok})
	}
	if t := r.Throughput; t != nil {
		add("batched publish ours/raw", fmt.Sprintf(">= %.1f", TargetThroughputRatio),
			t.Ratio, t.Ratio >= TargetThroughputRatio)
	}
	if p := r.Publish; p != nil {
		add("publish p95 ms", fmt.Sprintf("< %.0f", TargetPublishP95Ms),
			p.Ours.P95, p.Ours.P95 < TargetPublishP95Ms)
		add("publish p95 ours/raw", fmt.Sprintf("<= %.1f", TargetPublishRatioP95),
			p.RatioP95, p.RatioP95 <= TargetPublishRatioP95)
	}
	for _, d := range r.Delivery {
		add(fmt.Sprintf("delivery %d/s p95 ours/raw", d.Rate), fmt.Sprintf("<= %.1f", TargetDeliveryRatioP95),
			d.RatioP95, d.RatioP95 <= TargetDeliveryRatioP95)
		if d.Rate >= TargetDeliveryRate {
			add(fmt.Sprintf("delivery %d/s p95 ms", d.Rate), fmt.Sprintf("< %.0f", TargetDeliveryP95Ms),
				d.Ours.P95, d.Ours.P95 < TargetDeliveryP95Ms)
		}
		add(fmt.Sprintf("delivery %d/s ours missing", d.Rate), "0",
			float64(d.Ours.Missing()), d.Ours.Missing() == 0)
	}
	if s := r.SlowHandler; s != nil {
		add("slow handler events/s, default options", fmt.Sprintf(">= %d", TargetSlowDefault),
			s.Ours.PerSecond, s.Ours.PerSecond >= TargetSlowDefault)
		add("slow handler events/s, tuned", fmt.Sprintf(">= %d", TargetSlowTuned),
			s.OursTuned.PerSecond, s.OursTuned.PerSecond >= TargetSlowTuned)
	}
	if f := r.Fairness; f != nil {
		add("fairness p95 blocked/unblocked", fmt.Sprintf("<= %.1f", TargetFairnessRatioP95),
			f.RatioP95, f.RatioP95 <= TargetFairnessRatioP95)
		add(fmt.Sprintf("fairness p95 blocked with MaxPending %d/unblocked", f.SmallCap), fmt.Sprintf("<= %.1f", TargetFairnessRatioP95),
			f.RatioP95SmallCap, f.RatioP95SmallCap <= TargetFairnessRatioP95)
		missing := f.Unblocked.Missing() + f.Blocked.Missing() + f.BlockedSmallCap.Missing()
		add("fairness missing (other tenants)", "0", float64(missing), missing == 0)
	}
	if c := r.Crash; c != nil {
		add("crash: events lost after kill -9", "0", float64(c.Lost), c.Lost == 0)
		add("crash: duplicates / backlog", fmt.Sprintf("<= %.2f", TargetCrashDuplicateShare),
			c.DuplicateShare, c.DuplicateShare <= TargetCrashDuplicateShare)
	}
	if g := r.Gateway; g != nil {
		add("gateway batched publish HTTP/library", fmt.Sprintf(">= %.1f", TargetGatewayPublishRatio),
			g.PublishRatio, g.PublishRatio >= TargetGatewayPublishRatio)
		add("gateway push events/s, default settings", fmt.Sprintf(">= %d", TargetGatewayPush),
			g.Push.PerSecond, g.Push.PerSecond >= TargetGatewayPush)
	}
	r.evaluateOutbox(add)
	if d := r.DLQ; d != nil {
		scale := float64(DLQEntries) / float64(max(d.Entries, 1))
		add("dlq: heap per entry, bytes", fmt.Sprintf("<= %.0f", TargetDLQBytesPerEntry),
			d.HeapBytesPerEntry, d.HeapBytesPerEntry <= TargetDLQBytesPerEntry)
		add("dlq: load time per 100,000 entries, s", fmt.Sprintf("<= %.2f", TargetDLQLoadSeconds),
			d.LoadSeconds*scale, d.LoadSeconds*scale <= TargetDLQLoadSeconds)
		add("dlq: REST list p95 ms", fmt.Sprintf("< %.0f", TargetDLQRESTP95Ms), d.List.P95, d.List.P95 < TargetDLQRESTP95Ms)
		add("dlq: REST stats p95 ms", fmt.Sprintf("< %.0f", TargetDLQRESTP95Ms), d.Stats.P95, d.Stats.P95 < TargetDLQRESTP95Ms)
		add("dlq: new topic's first retry, due to handled, max ms", fmt.Sprintf("<= %.0f", TargetDLQFirstRetryMaxMs),
			d.FirstRetry.Max, d.FirstRetry.Max <= TargetDLQFirstRetryMaxMs)
	}
	if h := r.Hosts; h != nil {
		for _, run := range h.Runs {
			add(fmt.Sprintf("hosts %d tenants: host reads per event", run.Tenants), fmt.Sprintf("<= %.2f", TargetHostReadsPerEvent),
				run.Host.ReadsPerEvent, hostReadsOK(run.Host))
			add(fmt.Sprintf("hosts %d tenants: host consumer groups", run.Tenants), fmt.Sprintf("%d", TargetHostGroups),
				float64(run.Host.Groups), run.Host.Groups == TargetHostGroups)
			add(fmt.Sprintf("hosts %d tenants: host missing", run.Tenants), "0",
				float64(run.Host.Missing()), run.Host.Missing() == 0)
			if run.Tenants == TargetHostRatioTenants {
				add(fmt.Sprintf("hosts %d tenants: host p95 / unfiltered p95", run.Tenants), fmt.Sprintf("<= %.1f", TargetHostRatioP95),
					run.HostRatioP95, run.HostRatioP95 <= TargetHostRatioP95)
			}
		}
	}
}

// evaluateOutbox adds the outbox and inbox phases' checks.
func (r *Report) evaluateOutbox(add func(name, target string, v float64, ok bool)) {
	if o := r.Outbox; o != nil {
		add("outbox relay events/s", fmt.Sprintf(">= %d", TargetRelayPerSecond), o.Relay.PerSecond, o.Relay.PerSecond >= TargetRelayPerSecond)
		add(fmt.Sprintf("outbox commit to handler @%d/s p95 ms", o.CommitRate), fmt.Sprintf("<= %.0f", TargetCommitP95Ms),
			o.CommitToHandler.P95, o.CommitToHandler.P95 <= TargetCommitP95Ms)
		missing := float64(o.CommitSent - o.CommitToHandler.Count)
		add("outbox commit to handler missing", "0", missing, missing == 0)
	}
	if in := r.Inbox; in != nil {
		add("inbox duplicate effects", "0", float64(in.DuplicateEffects), in.DuplicateEffects == 0)
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as a table: each figure ours, raw, the ratio
// ours/raw and the target. Raw builds each record as the bus does (same
// work); the "prebuilt" row is the client alone, for reference.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "eventbus bench: %s at %s; %s per phase and side; events of %d B value + %d B headers; %s, GOMAXPROCS %d\n\n",
		orDefault(r.Broker, "brokers"), strings.Join(r.Brokers, ","), seconds(r.PhaseSeconds),
		r.ValueBytes, r.HeaderBytes, r.GoVersion, r.GOMAXPROCS)
	var rows [][]string
	row := func(cells ...string) { rows = append(rows, cells) }
	row("figure", "ours", "raw", "ours/raw", "target", "")
	if t := r.Throughput; t != nil {
		row(fmt.Sprintf("batched publish (events/s, %d×%d)", r.Publishers, r.BatchSize),
			fmt.Sprintf("%.0f", t.Ours.PerSecond), fmt.Sprintf("%.0f", t.Raw.PerSecond), ratio(t.Ratio),
			fmt.Sprintf("≥ %.1f×", TargetThroughputRatio), verdict(t.Ratio >= TargetThroughputRatio))
		row("  ours with PublishAsync", fmt.Sprintf("%.0f", t.OursAsync.PerSecond), fmt.Sprintf("%.0f", t.Raw.PerSecond), ratio(t.RatioAsync), "", "")
		row("  raw with records prebuilt (floor)", "", fmt.Sprintf("%.0f", t.RawPrebuilt.PerSecond), ratio(t.RatioPrebuilt), "", "")
	}
	if p := r.Publish; p != nil {
		latencyRows(row, "publish", p.Ours, p.Raw,
			fmt.Sprintf("< %.0f ms, ≤ %.1f×", TargetPublishP95Ms, TargetPublishRatioP95),
			verdict(p.Ours.P95 < TargetPublishP95Ms && p.RatioP95 <= TargetPublishRatioP95))
	}
	for _, d := range r.Delivery {
		target := fmt.Sprintf("≤ %.1f×", TargetDeliveryRatioP95)
		ok := d.RatioP95 <= TargetDeliveryRatioP95
		if d.Rate >= TargetDeliveryRate {
			target = fmt.Sprintf("< %.0f ms, ", TargetDeliveryP95Ms) + target
			ok = ok && d.Ours.P95 < TargetDeliveryP95Ms
		}
		latencyRows(row, fmt.Sprintf("delivery @%d/s", d.Rate), d.Ours.Latency, d.Raw.Latency, target, verdict(ok))
		row(fmt.Sprintf("delivery @%d/s arrived", d.Rate),
			fmt.Sprintf("%d/%d", d.Ours.Count, d.Ours.Sent), fmt.Sprintf("%d/%d", d.Raw.Count, d.Raw.Sent), "", "all",
			verdict(d.Ours.Missing() == 0))
	}
	if s := r.SlowHandler; s != nil {
		slowRows(row, s)
	}
	if d := r.FastDrain; d != nil {
		perSecond := func(d Drain) string {
			if d.Drained {
				return fmt.Sprintf("%.0f*", d.PerSecond)
			}
			return fmt.Sprintf("%.0f", d.PerSecond)
		}
		row(fmt.Sprintf("drain, handler returning at once, %d keys (events/s)", d.Keys),
			perSecond(d.Ours), perSecond(d.Raw), ratio(d.Ratio), "", "")
	}
	if f := r.Fairness; f != nil {
		fairnessRows(row, f)
	}
	if c := r.Crash; c != nil {
		crashRows(row, c)
	}
	if h := r.Hosts; h != nil {
		hostsRows(row, h)
	}
	if g := r.Gateway; g != nil {
		row("gateway: batched publish HTTP vs library (events/s)", fmt.Sprintf("%.0f", g.HTTPBatch.PerSecond), fmt.Sprintf("%.0f", g.LibraryBatch.PerSecond),
			ratio(g.PublishRatio), fmt.Sprintf("≥ %.1f×", TargetGatewayPublishRatio), verdict(g.PublishRatio >= TargetGatewayPublishRatio))
		row(fmt.Sprintf("gateway: push %g ms, %d keys vs library (events/s)", g.HandlerMs, g.Keys), fmt.Sprintf("%.0f", g.Push.PerSecond), fmt.Sprintf("%.0f", g.Library.PerSecond),
			ratio(g.PushRatio), fmt.Sprintf("≥ %d/s", TargetGatewayPush), verdict(g.Push.PerSecond >= TargetGatewayPush))
	}
	outboxRows(row, r.Outbox, r.Inbox)
	if d := r.DLQ; d != nil {
		dlqRows(row, d)
	}
	if err := writeRows(w, rows); err != nil {
		return err
	}
	return writeNotes(w, r)
}

// slowRows writes the slow-handler phase's rows: events/s, ours against
// raw franz-go's key-ordered pool.
func slowRows(row func(...string), s *SlowHandler) {
	perSecond := func(d Drain) string {
		if d.Drained {
			return fmt.Sprintf("%.0f*", d.PerSecond)
		}
		return fmt.Sprintf("%.0f", d.PerSecond)
	}
	row(fmt.Sprintf("slow handler %g ms, %d keys (events/s)", s.HandlerMs, s.Keys),
		perSecond(s.Ours), perSecond(s.RawPool), ratio(s.Ratio),
		fmt.Sprintf("≥ %d/s", TargetSlowDefault), verdict(s.Ours.PerSecond >= TargetSlowDefault))
	row(fmt.Sprintf("  ours tuned (%d/%d)", s.MaxConcurrency, s.MaxPending),
		perSecond(s.OursTuned), perSecond(s.RawPool), ratio(s.RatioTuned),
		fmt.Sprintf("≥ %d/s", TargetSlowTuned), verdict(s.OursTuned.PerSecond >= TargetSlowTuned))
	row(fmt.Sprintf("  raw goroutine per partition (≤ %.0f/s)", float64(s.Partitions)*1000/s.HandlerMs),
		"", perSecond(s.RawPerPartition), "", "", "")
}

// fairnessRows writes the fairness phase's rows: ours alone; the ratio
// column holds one tenant blocked / none blocked.
func fairnessRows(row func(...string), f *Fairness) {
	name := fmt.Sprintf("fairness @%d/s, %d tenants", f.Rate, f.Tenants)
	row(name+", p95 (ms)", fmt.Sprintf("%.3f", f.Unblocked.P95), "", "", "", "")
	row("  one tenant blocked, p95 (ms)", fmt.Sprintf("%.3f", f.Blocked.P95), "", ratio(f.RatioP95),
		fmt.Sprintf("≤ %.1f× unblocked", TargetFairnessRatioP95), verdict(f.RatioP95 <= TargetFairnessRatioP95))
	row(fmt.Sprintf("  one tenant blocked, MaxPending %d, p95 (ms)", f.SmallCap), fmt.Sprintf("%.3f", f.BlockedSmallCap.P95), "", ratio(f.RatioP95SmallCap),
		fmt.Sprintf("≤ %.1f× unblocked", TargetFairnessRatioP95), verdict(f.RatioP95SmallCap <= TargetFairnessRatioP95))
	row("  arrived: unblocked, others when blocked",
		fmt.Sprintf("%d/%d", f.Unblocked.Count, f.Unblocked.Sent), fmt.Sprintf("%d/%d", f.Blocked.Count, f.Blocked.Sent), "", "all",
		verdict(f.Unblocked.Missing()+f.Blocked.Missing() == 0))
	row(fmt.Sprintf("  arrived: others when blocked, MaxPending %d", f.SmallCap),
		"", fmt.Sprintf("%d/%d", f.BlockedSmallCap.Count, f.BlockedSmallCap.Sent), "", "all",
		verdict(f.BlockedSmallCap.Missing() == 0))
}

// crashRows writes the crash phase's rows: ours alone.
func crashRows(row func(...string), c *Crash) {
	settled := ""
	if !c.Settled {
		settled = " (not settled)"
	}
	row(fmt.Sprintf("kill -9 mid-backlog (%d events, %d keys): lost%s", c.Backlog, c.Keys, settled),
		fmt.Sprintf("%d", c.Lost), "", "", "0 lost", verdict(c.Lost == 0))
	row("  duplicates (events handled twice)", fmt.Sprintf("%d", c.Duplicates), "", "", "", "")
	row("  duplicates, share of the backlog", fmt.Sprintf("%.2f%%", 100*c.DuplicateShare), "", "",
		fmt.Sprintf("≤ %.0f%%", 100*TargetCrashDuplicateShare), verdict(c.DuplicateShare <= TargetCrashDuplicateShare))
	row("  handled: killed consumer / restarted", fmt.Sprintf("%d / %d", c.HandledByKilled, c.HandledByRestarted), "", "", "", "")
	row("  restarted consumer's first event after the kill (ms)", fmt.Sprintf("%.0f", c.ResumeMs), "", "", "", "")
}

// hostReadsOK says whether a PluginHost read each event about once.
func hostReadsOK(s HostsSide) bool {
	return s.Published > 0 && s.ReadsPerEvent <= TargetHostReadsPerEvent
}

// hostsRows writes the hosts phase's rows: the ours column holds the
// PluginHost, the raw column a PluginClient per tenant, the ratio column
// the host's p95 over the unfiltered baseline's.
func hostsRows(row func(...string), h *Hosts) {
	row(fmt.Sprintf("hosts @%d/s: unfiltered Subscribe, %d tenants, p95 (ms)", h.Rate, h.BaselineTenants),
		fmt.Sprintf("%.3f", h.Baseline.P95), "", "", "", "")
	row("  unfiltered arrived", fmt.Sprintf("%d/%d", h.Baseline.Count, h.Baseline.Sent), "", "", "", "")
	for _, run := range h.Runs {
		host := run.Host
		pt := func(f func(HostsSide) string) string {
			if run.PerTenant == nil {
				return "—"
			}
			return f(*run.PerTenant)
		}
		target, ok := "", ""
		if run.Tenants == TargetHostRatioTenants {
			target = fmt.Sprintf("≤ %.1f× unfiltered", TargetHostRatioP95)
			ok = verdict(run.HostRatioP95 <= TargetHostRatioP95)
		}
		row(fmt.Sprintf("hosts, %d tenants: host / per-tenant p50 (ms)", run.Tenants),
			fmt.Sprintf("%.3f", host.P50), pt(func(s HostsSide) string { return fmt.Sprintf("%.3f", s.P50) }), "", "", "")
		row("  p95 (ms); ratio host/unfiltered",
			fmt.Sprintf("%.3f", host.P95), pt(func(s HostsSide) string { return fmt.Sprintf("%.3f", s.P95) }),
			ratio(run.HostRatioP95), target, ok)
		row("  arrived", fmt.Sprintf("%d/%d", host.Count, host.Sent),
			pt(func(s HostsSide) string { return fmt.Sprintf("%d/%d", s.Count, s.Sent) }), "", "all", verdict(host.Missing() == 0))
		row("  consumer groups", strconv.Itoa(host.Groups), pt(func(s HostsSide) string { return strconv.Itoa(s.Groups) }),
			"", fmt.Sprintf("%d", TargetHostGroups), verdict(host.Groups == TargetHostGroups))
		row("  events read per event published", fmt.Sprintf("%.3f", host.ReadsPerEvent),
			pt(func(s HostsSide) string { return fmt.Sprintf("%.3f", s.ReadsPerEvent) }),
			"", fmt.Sprintf("≤ %.2f", TargetHostReadsPerEvent), verdict(hostReadsOK(host)))
		row("  heap in use after the run (MiB)", fmt.Sprintf("%.1f", host.HeapInuseMiB),
			pt(func(s HostsSide) string { return fmt.Sprintf("%.1f", s.HeapInuseMiB) }), "", "", "")
		if run.PerTenantNotRun != "" {
			row("  per-tenant "+run.PerTenantNotRun, "", "", "", "", "")
		}
	}
}

// dlqRows writes the DLQ phase's rows: ours alone, no raw baseline.
func dlqRows(row func(...string), d *DLQ) {
	scale := float64(DLQEntries) / float64(max(d.Entries, 1))
	row(fmt.Sprintf("dlq, %s entries: failures applied by one owner (/s)", grouped(d.Entries)),
		fmt.Sprintf("%.0f", d.AppliedPerSecond), "", "", "", "")
	row("  new bus's DLQ().Start until ready (s)", fmt.Sprintf("%.2f", d.LoadSeconds), "", "",
		fmt.Sprintf("≤ %.2f s per %s", TargetDLQLoadSeconds, grouped(DLQEntries)), verdict(d.LoadSeconds*scale <= TargetDLQLoadSeconds))
	row("  its heap per entry (B)", fmt.Sprintf("%.0f", d.HeapBytesPerEntry), "", "",
		fmt.Sprintf("≤ %.0f", TargetDLQBytesPerEntry), verdict(d.HeapBytesPerEntry <= TargetDLQBytesPerEntry))
	row("  its RSS growth per entry (B)", fmt.Sprintf("%.0f", d.RSSBytesPerEntry), "", "", "", "")
	latencyRows3 := func(name string, l Latency) {
		row(fmt.Sprintf("  REST %s p50 / p95 (ms)", name), fmt.Sprintf("%.1f / %.1f", l.P50, l.P95), "", "",
			fmt.Sprintf("< %.0f ms", TargetDLQRESTP95Ms), verdict(l.P95 < TargetDLQRESTP95Ms))
	}
	latencyRows3("list (page of 20)", d.List)
	latencyRows3("stats", d.Stats)
	row("  manual retries applied by one owner (/s)", fmt.Sprintf("%.0f", d.RetriedPerSecond), "", "", "", "")
	for _, f := range d.Flow {
		key := "no record key"
		if f.Keyed {
			key = "keyed"
		}
		row(fmt.Sprintf("  retry flow, %s: retries handled (/s)", key), fmt.Sprintf("%.0f", f.PerSecond), "", "", "", "")
		row("    heap in use idle / peak / after (MiB)", fmt.Sprintf("%.1f / %.1f / %.1f", f.HeapIdleMiB, f.HeapPeakMiB, f.HeapAfterMiB), "", "", "", "")
	}
	row("  new topic's first retry, due to handled, p50 / max (ms)", fmt.Sprintf("%.0f / %.0f", d.FirstRetry.P50, d.FirstRetry.Max), "", "",
		fmt.Sprintf("≤ %.0f ms", TargetDLQFirstRetryMaxMs), verdict(d.FirstRetry.Max <= TargetDLQFirstRetryMaxMs))
}

// writeNotes explains the new phases' rows that the columns do not.
func writeNotes(w io.Writer, r *Report) error {
	var notes []string
	if s := r.SlowHandler; s != nil {
		notes = append(notes, fmt.Sprintf("slow handler: raw is franz-go with a key-ordered pool of %d workers; "+
			"* the whole backlog (%d events) was handled before the phase's time was up.", s.PoolWorkers, s.Backlog))
	}
	if d := r.FastDrain; d != nil {
		notes = append(notes, fmt.Sprintf("drain: ours with default options; raw is a franz-go group consumer decoding and marking each record "+
			"in its poll loop (autocommitted marks); * the whole backlog (%d events over %d partitions) was handled before the phase's time was up.",
			d.Backlog, d.Partitions))
	}
	if f := r.Fairness; f != nil {
		notes = append(notes, fmt.Sprintf("fairness: ours with default options (the last run with MaxPending %d, fewer than the events behind the blocked one); "+
			"%s's handler blocks while the events are sent; its ratio is blocked/unblocked p95 and the second count the other tenants' events.", f.SmallCap, f.BlockedTenant))
	}
	if c := r.Crash; c != nil {
		notes = append(notes, fmt.Sprintf("crash: ours with default options (MaxConcurrency %d, MaxPending %d), handler %g ms ± 50%%, "+
			"in a child process killed with SIGKILL once it had handled %d events; the group then resumed in this process "+
			"as the same static member until every event was handled and the backlog committed. "+
			"Duplicates are handler calls beyond an event's first: what finished after the last commit (a group commits once MaxConcurrency events "+
			"finished since its last commit, or CommitInterval (100 ms) passed, and starts no event once twice that many finished "+
			"since the last commit was taken, so a broker slow to answer does not let it grow) "+
			"and what was running; offsets finished above an unfinished one ride in the commit's metadata and are not handled again.",
			c.MaxConcurrency, c.MaxPending, c.HandlerMs, c.KilledAt))
	}
	if h := r.Hosts; h != nil {
		notes = append(notes, fmt.Sprintf("hosts: one subscription of plugin %q to a core topic, events spread evenly over the tenants, "+
			"paced at %d/s; column ours is one PluginHost (one Subscribe), column raw a PluginClient per tenant (one Subscribe each), "+
			"— where not run; ratio is the host's p95 over one unfiltered Subscribe's at the same rate over %d tenants. "+
			"Groups are those the side created, listed from the brokers; events read per event published is, from the brokers, "+
			"the offsets the side's groups committed over the topic divided by the events published to it (warm-up included). "+
			"Heap in use is the whole process's, after a GC, with the side's subscriptions still running.",
			hostsPluginID, h.Rate, h.BaselineTenants))
	}
	notes = append(notes, outboxNotes(r.Outbox, r.Inbox)...)
	if d := r.DLQ; d != nil {
		notes = append(notes, "dlq: ours alone; raw franz-go has no dead letter queue, so there is no raw figure. "+
			"Failures are routed with RouteToDLQ (permanent: no automatic retry) from a bus that does not run the queue, and applied by one owner (this process's DLQ().Start). "+
			"The load is a new client and bus in this process (scheduler off); heap and RSS per entry are the process's growth over it, after a GC. "+
			"REST is dlqhttp's handler on the owner's queue through httptest. Retry flow: a subscriber in this process fails each event once and handles its automatic retry; "+
			"its heap is the whole process's, the owner's view of every entry included. First retry: from the failure plus the default backoff (1 s) to the handler's call, on topics whose dlq.* topic is new, failed by a bus other than the owner's.")
	}
	if len(notes) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// writeRows writes rows as columns: the first left-aligned, the numbers
// right-aligned, the target and verdict left-aligned.
func writeRows(w io.Writer, rows [][]string) error {
	width := make([]int, 6)
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	pad := func(s string, n int, left bool) string {
		fill := strings.Repeat(" ", n-utf8.RuneCountInString(s))
		if left {
			return s + fill
		}
		return fill + s
	}
	for _, r := range rows {
		line := pad(r[0], width[0], true) + "  " + pad(r[1], width[1], false) + "  " +
			pad(r[2], width[2], false) + "  " + pad(r[3], width[3], false) + "  " +
			pad(r[4], width[4], true) + "  " + r[5]
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	return nil
}

// latencyRows writes the p50, p95 and p99 rows of one latency figure; the
// target goes on the p95 row.
func latencyRows(row func(...string), name string, ours, raw Latency, target, ok string) {
	for _, q := range []struct {
		label     string
		ours, raw float64
	}{{"p50", ours.P50, raw.P50}, {"p95", ours.P95, raw.P95}, {"p99", ours.P99, raw.P99}} {
		t, v := "", ""
		if q.label == "p95" {
			t, v = target, ok
		}
		row(fmt.Sprintf("%s %s (ms)", name, q.label),
			fmt.Sprintf("%.3f", q.ours), fmt.Sprintf("%.3f", q.raw), ratio(q.ours/q.raw), t, v)
	}
}

func ratio(v float64) string { return fmt.Sprintf("%.2f", v) }

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

func seconds(s float64) string { return fmt.Sprintf("%gs", s) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
