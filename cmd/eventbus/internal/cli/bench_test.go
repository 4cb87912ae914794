package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/plexica/eventbus/cmd/eventbus/internal/bench"
	"github.com/plexica/eventbus/eventbustest"
)

// TestBenchQuickInProcess runs `bench --quick --json` against an embedded
// broker in this process and checks that the report has every figure. It
// asserts no duration or ratio: those belong to real runs.
func TestBenchQuickInProcess(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	code, stdout, stderr := runCLI(context.Background(),
		"--log-level", "warn", "bench", "--quick", "--json", "--brokers", strings.Join(brokers, ","))
	if code != ExitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	checkReport(t, stdout)
	if !strings.Contains(stderr, "bench: [3/9] delivery at 10000 events/s") {
		t.Fatalf("no progress lines on stderr:\n%s", stderr)
	}
}

// TestBenchQuickSeparateProcess runs the built binary's `bench --quick`
// without brokers: it must start its own broker process and stop it.
func TestBenchQuickSeparateProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cmd, lines, stderr := startBinary(t, "bench", "--quick", "--json", "--rates", "1000")
	code, out := waitExit(t, cmd, lines)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	rep := checkReport(t, out)
	if !strings.Contains(rep.Broker, "separate process") {
		t.Fatalf("report broker %q: the embedded broker should run in a separate process", rep.Broker)
	}
	if !strings.Contains(stderr.String(), "bench: embedded broker at ") {
		t.Fatalf("stderr does not say where the broker runs:\n%s", stderr.String())
	}
}

func TestBenchTable(t *testing.T) {
	rep := &bench.Report{
		Brokers: []string{"127.0.0.1:9092"}, Publishers: 16, BatchSize: 100,
		Throughput: &bench.Throughput{Ours: bench.Rate{PerSecond: 1}, Raw: bench.Rate{PerSecond: 2}, Ratio: 0.5},
		Publish:    &bench.PublishLatency{},
		Delivery:   []bench.Delivery{{Rate: 10_000}},
		SlowHandler: &bench.SlowHandler{Workload: bench.Workload{HandlerMs: 10, Keys: 1000, Partitions: 3, Backlog: 20_000, MaxConcurrency: 1024, MaxPending: 20_000},
			PoolWorkers: 256, OursTuned: bench.Drain{PerSecond: 12_000, Drained: true}},
		FastDrain: &bench.FastDrain{Workload: bench.Workload{Keys: 1000, Partitions: 3, Backlog: 100_000}, Ours: bench.Drain{PerSecond: 70_000, Drained: true},
			Raw: bench.Drain{PerSecond: 140_000, Drained: true}, Ratio: 0.5},
		Fairness: &bench.Fairness{Rate: 1000, Tenants: 100, BlockedTenant: "tenant-0000", RatioP95: 3},
		Crash: &bench.Crash{Workload: bench.Workload{HandlerMs: 1, Keys: 1000, Backlog: 20_000}, KilledAt: 10_000, HandledByKilled: 10_004,
			HandledByRestarted: 12_000, Duplicates: 2_004, DuplicateShare: 0.1002, Settled: true},
		Hosts: &bench.Hosts{Rate: 1000, BaselineTenants: 1000, Runs: []bench.HostsRun{
			{Tenants: 10, Host: bench.HostsSide{Groups: 1, Published: 100, Read: 100, ReadsPerEvent: 1, HeapInuseMiB: 12.5},
				PerTenant: &bench.HostsSide{Groups: 10, Published: 100, Read: 1000, ReadsPerEvent: 10}},
			{Tenants: 1000, Host: bench.HostsSide{Groups: 1, ReadsPerEvent: 1.001, Published: 1},
				PerTenantNotRun: "not run: 1,000 consumer clients in one process", HostRatioP95: 1.25},
		}},
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"batched publish", "raw with records prebuilt", "publish p95 (ms)", "delivery @10000/s p99 (ms)", "ours/raw", "MISS",
		"slow handler 10 ms, 1000 keys (events/s)", "ours tuned (1024/20000)", "12000*", "raw goroutine per partition (≤ 300/s)",
		"drain, handler returning at once, 1000 keys (events/s)", "70000*", "140000*", "0.50", "100000 events over 3 partitions",
		"fairness @1000/s, 100 tenants, p95 (ms)", "one tenant blocked, p95 (ms)", "3.00", "key-ordered pool of 256 workers",
		"kill -9 mid-backlog (20000 events, 1000 keys): lost", "0 lost", "10.02%", "10004 / 12000",
		"hosts, 10 tenants: host / per-tenant p50 (ms)", "events read per event published", "10.000", "1.001", "12.5", "1.25",
		"≤ 2.0× unfiltered", "per-tenant not run: 1,000 consumer clients in one process"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// checkReport decodes a JSON report and fails unless every figure is there
// and positive.
func checkReport(t *testing.T, out string) bench.Report {
	t.Helper()
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, out)
	}
	var missing []string
	positive := func(name string, v float64) {
		if !(v > 0) {
			missing = append(missing, fmt.Sprintf("%s = %v", name, v))
		}
	}
	latency := func(name string, l bench.Latency) {
		positive(name+" count", float64(l.Count))
		positive(name+" p50", l.P50)
		positive(name+" p95", l.P95)
		positive(name+" p99", l.P99)
	}
	positive("valueBytes", float64(rep.ValueBytes))
	positive("headerBytes", float64(rep.HeaderBytes))
	if rep.Throughput == nil {
		missing = append(missing, "throughput figures")
	} else {
		positive("throughput ours", rep.Throughput.Ours.PerSecond)
		positive("throughput raw", rep.Throughput.Raw.PerSecond)
		positive("throughput raw prebuilt", rep.Throughput.RawPrebuilt.PerSecond)
		positive("throughput ratio", rep.Throughput.Ratio)
	}
	if rep.Publish == nil {
		missing = append(missing, "publish figures")
	} else {
		latency("publish ours", rep.Publish.Ours)
		latency("publish raw", rep.Publish.Raw)
		positive("publish ratio", rep.Publish.RatioP95)
	}
	if len(rep.Delivery) == 0 {
		missing = append(missing, "delivery figures")
	}
	for _, d := range rep.Delivery {
		name := fmt.Sprintf("delivery %d/s", d.Rate)
		positive(name+" ours sent", float64(d.Ours.Sent))
		positive(name+" raw sent", float64(d.Raw.Sent))
		latency(name+" ours", d.Ours.Latency)
		latency(name+" raw", d.Raw.Latency)
		positive(name+" ratio", d.RatioP95)
	}
	checkNewPhases(rep, positive, latency, &missing)
	if len(rep.Checks) == 0 {
		missing = append(missing, "checks against the targets")
	}
	if len(missing) > 0 {
		t.Fatalf("the report lacks figures: %s\n%s", strings.Join(missing, "; "), out)
	}
	return rep
}

// checkNewPhases adds to missing what the slow-handler, fairness and crash
// phases lack.
func checkNewPhases(rep bench.Report, positive func(string, float64), latency func(string, bench.Latency), missing *[]string) {
	if s := rep.SlowHandler; s == nil {
		*missing = append(*missing, "slow handler figures")
	} else {
		positive("slow handler backlog", float64(s.Backlog))
		for name, d := range map[string]bench.Drain{
			"ours": s.Ours, "ours tuned": s.OursTuned, "raw per partition": s.RawPerPartition, "raw pool": s.RawPool,
		} {
			positive("slow handler "+name+" handled", float64(d.Handled))
			positive("slow handler "+name+" events/s", d.PerSecond)
		}
		positive("slow handler ratio", s.Ratio)
	}
	if d := rep.FastDrain; d == nil {
		*missing = append(*missing, "drain figures")
	} else {
		positive("drain backlog", float64(d.Backlog))
		positive("drain ours events/s", d.Ours.PerSecond)
		positive("drain raw events/s", d.Raw.PerSecond)
		positive("drain ratio", d.Ratio)
	}
	if g := rep.Gateway; g == nil {
		*missing = append(*missing, "gateway figures")
	} else {
		positive("gateway HTTP batch events/s", g.HTTPBatch.PerSecond)
		positive("gateway library batch events/s", g.LibraryBatch.PerSecond)
		positive("gateway push handled", float64(g.Push.Handled))
		positive("gateway library handled", float64(g.Library.Handled))
	}
	if f := rep.Fairness; f == nil {
		*missing = append(*missing, "fairness figures")
	} else {
		positive("fairness unblocked sent", float64(f.Unblocked.Sent))
		positive("fairness blocked sent", float64(f.Blocked.Sent))
		latency("fairness unblocked", f.Unblocked.Latency)
		latency("fairness blocked", f.Blocked.Latency)
		positive("fairness ratio", f.RatioP95)
	}
	if c := rep.Crash; c == nil {
		*missing = append(*missing, "crash figures")
	} else {
		positive("crash backlog", float64(c.Backlog))
		positive("crash killed at", float64(c.KilledAt))
		positive("crash handled by the killed consumer", float64(c.HandledByKilled))
		positive("crash handled by the restarted consumer", float64(c.HandledByRestarted))
		if c.Lost != 0 || !c.Settled {
			*missing = append(*missing, fmt.Sprintf("crash: %d events lost, settled %t", c.Lost, c.Settled))
		}
		if c.HandledByKilled+c.HandledByRestarted != c.Backlog+c.Duplicates {
			*missing = append(*missing, fmt.Sprintf("crash: %d + %d handled, want backlog %d + duplicates %d",
				c.HandledByKilled, c.HandledByRestarted, c.Backlog, c.Duplicates))
		}
	}
	checkHosts(rep, positive, latency, missing)
}

// checkHosts adds to missing what the hosts phase lacks.
func checkHosts(rep bench.Report, positive func(string, float64), latency func(string, bench.Latency), missing *[]string) {
	h := rep.Hosts
	if h == nil {
		*missing = append(*missing, "hosts figures")
		return
	}
	latency("hosts baseline", h.Baseline.Latency)
	if len(h.Runs) != len(bench.HostsTenants) {
		*missing = append(*missing, fmt.Sprintf("hosts: %d runs, want %d", len(h.Runs), len(bench.HostsTenants)))
	}
	for _, run := range h.Runs {
		sides := map[string]*bench.HostsSide{"host": &run.Host, "per-tenant": run.PerTenant}
		if run.Tenants > bench.PerTenantMaxTenants {
			if run.PerTenant != nil || run.PerTenantNotRun == "" {
				*missing = append(*missing, fmt.Sprintf("hosts %d tenants: per-tenant should be marked not run", run.Tenants))
			}
			delete(sides, "per-tenant")
		} else if run.PerTenant == nil {
			*missing = append(*missing, fmt.Sprintf("hosts %d tenants: per-tenant figures", run.Tenants))
			continue
		}
		for name, s := range sides {
			name = fmt.Sprintf("hosts %d tenants %s", run.Tenants, name)
			latency(name, s.Latency)
			positive(name+" groups", float64(s.Groups))
			positive(name+" published", float64(s.Published))
			positive(name+" reads per event", s.ReadsPerEvent)
			positive(name+" heap", s.HeapInuseMiB)
		}
		if run.Host.Groups != 1 {
			*missing = append(*missing, fmt.Sprintf("hosts %d tenants: host used %d groups, want 1", run.Tenants, run.Host.Groups))
		}
		if run.PerTenant != nil && run.PerTenant.Groups != run.Tenants {
			*missing = append(*missing, fmt.Sprintf("hosts %d tenants: per-tenant used %d groups, want %d", run.Tenants, run.PerTenant.Groups, run.Tenants))
		}
	}
}

// TestBenchConsumerHidden checks that the crash phase's consumer command is
// not listed in the help, and checks its flags before dialling anything.
func TestBenchConsumerHidden(t *testing.T) {
	code, stdout, _ := runCLI(context.Background(), "--help")
	if code != ExitOK || strings.Contains(stdout, bench.CrashConsumerCommand) || !strings.Contains(stdout, "bench") {
		t.Fatalf("exit %d; help lists %s or lacks bench:\n%s", code, bench.CrashConsumerCommand, stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic", "t", "--group", "g"}, "--brokers is required"},
		{[]string{"--brokers", "127.0.0.1:1", "--group", "g"}, "--topic is required"},
		{[]string{"--brokers", "127.0.0.1:1", "--topic", "t"}, "--group is required"},
		{[]string{"--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--handler-delay", "-1ms"}, "is negative"},
	} {
		code, _, stderr := runCLI(context.Background(), append([]string{bench.CrashConsumerCommand}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant usage error %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestBenchPhasesFlag checks that --phases names are checked before any
// broker is dialled.
func TestBenchPhasesFlag(t *testing.T) {
	code, _, stderr := runCLI(context.Background(), "bench", "--phases", "slow,warp", "--brokers", "127.0.0.1:1")
	if code != ExitUsage || !strings.Contains(stderr, `no phase "warp"`) {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
}
