package bench

import (
	"slices"
	"testing"
)

func TestReadsOf(t *testing.T) {
	start := offsets{0: 10, 1: 20, 2: 0}
	end := offsets{0: 40, 1: 50, 2: 40} // 100 published
	committed := map[string]offsets{
		"once":    {0: 40, 1: 50, 2: 40},
		"partial": {0: 25, 1: 50},   // 15 + 30, partition 2 never committed
		"behind":  {0: 5, 2: 40},    // below start counts nothing, + 40
		"other":   {7: 1000, 0: 40}, // unknown partition ignored, + 30
	}
	read, published := readsOf(start, end, committed)
	if published != 100 {
		t.Fatalf("published = %d, want 100", published)
	}
	if want := int64(100 + 45 + 40 + 30); read != want {
		t.Fatalf("read = %d, want %d", read, want)
	}
	if !allCommitted(map[string]offsets{"a": {0: 40, 1: 50, 2: 41}}, end) {
		t.Fatal("a group at or past the end on every partition has committed it all")
	}
	if allCommitted(committed, end) {
		t.Fatal("groups behind the end have not committed it all")
	}
}

func TestPerTenantNotRun(t *testing.T) {
	for _, n := range HostsTenants {
		got := perTenantNotRun(n)
		if (n <= PerTenantMaxTenants) != (got == "") {
			t.Errorf("perTenantNotRun(%d) = %q", n, got)
		}
	}
	if got := perTenantNotRun(1000); got != "not run: 1,000 consumer clients in one process" {
		t.Fatalf("perTenantNotRun(1000) = %q", got)
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := grouped(n); got != want {
			t.Errorf("grouped(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHostsPhaseTopics(t *testing.T) {
	phases, err := ParsePhases([]string{" Hosts "})
	if err != nil || !slices.Equal(phases, []string{PhaseHosts}) || !slices.Contains(AllPhases, PhaseHosts) {
		t.Fatalf("ParsePhases(hosts) = %v, %v; AllPhases %v", phases, err, AllPhases)
	}
	tp := topics{prefix: "core.bench_00", phases: phases}
	all := tp.all()
	// baseline, a host topic per tenant count, a per-tenant topic for 1, 10, 100
	if len(all) != 1+len(HostsTenants)+3 || !slices.Contains(all, "core.bench_00_hosts1000_host.recorded") ||
		slices.Contains(all, "core.bench_00_hosts1000_tenant.recorded") {
		t.Fatalf("topics %v", all)
	}
	clean := tp.cleanup()
	if !slices.Contains(clean, "plugin.bench-hosts.retry.core.bench_00_hosts10_tenant.recorded") || len(clean) != len(all)+len(all)-1 {
		t.Fatalf("cleanup %v", clean)
	}
}

func TestHostsChecks(t *testing.T) {
	rep := &Report{Hosts: &Hosts{Runs: []HostsRun{
		{Tenants: 100, Host: HostsSide{Groups: 1, Published: 10, ReadsPerEvent: 1.06}},
		{Tenants: 1000, Host: HostsSide{Groups: 1, Published: 10, ReadsPerEvent: 1}, HostRatioP95: 2.5},
	}}}
	rep.evaluate()
	ok := map[string]bool{}
	for _, c := range rep.Checks {
		ok[c.Name] = c.OK
	}
	for name, want := range map[string]bool{
		"hosts 100 tenants: host reads per event":       false,
		"hosts 100 tenants: host consumer groups":       true,
		"hosts 1000 tenants: host reads per event":      true,
		"hosts 1000 tenants: host p95 / unfiltered p95": false,
	} {
		if got, found := ok[name]; !found || got != want {
			t.Errorf("check %q: ok %t (found %t), want %t", name, got, found, want)
		}
	}
	if _, found := ok["hosts 100 tenants: host p95 / unfiltered p95"]; found {
		t.Error("the p95 ratio is checked at 1,000 tenants only")
	}
}
