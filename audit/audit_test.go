package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, client *eventbus.Client) *audit.Log {
	t.Helper()
	l, err := audit.Open(ctxT(t), client, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// TestRecordAndList records entries and pages through them newest first,
// filtered. The actor is unique to the test, so the test holds on a
// cluster shared with other tests (the topic is the cluster's one trail).
func TestRecordAndList(t *testing.T) {
	l := open(t, eventbustest.NewClient(t))
	ctx := ctxT(t)
	actor := eventbustest.UniqueID("ana")
	for i := range 7 {
		action := audit.ActionDLQRetry
		if i%2 == 1 {
			action = audit.ActionDLQDelete
		}
		if err := l.Record(ctx, audit.Entry{Actor: actor, Action: action, Target: fmt.Sprintf("id-%d", i), TenantID: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Record(ctx, audit.Entry{Actor: actor + "-other", Action: audit.ActionGroupReset, Target: "billing"}); err != nil {
		t.Fatal(err)
	}

	var got []string
	q := audit.Query{Actor: actor, Limit: 3}
	for range 10 {
		page, err := l.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			if e.Actor != actor || e.Outcome != audit.OutcomeOK || e.Time.IsZero() || e.TenantID != "acme" {
				t.Errorf("entry %+v", e)
			}
			got = append(got, e.Target)
		}
		if len(page.Items) > 3 {
			t.Fatalf("page of %d entries, limit 3", len(page.Items))
		}
		if page.Next == 0 {
			break
		}
		q.Before = page.Next
	}
	want := []string{"id-6", "id-5", "id-4", "id-3", "id-2", "id-1", "id-0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged targets %v, want %v", got, want)
	}

	page, err := l.List(ctx, audit.Query{Actor: actor, Action: audit.ActionDLQDelete})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 || page.Items[0].Target != "id-5" {
		t.Errorf("deletes: %+v, want id-5, id-3, id-1", page.Items)
	}
	page, err = l.List(ctx, audit.Query{Actor: actor, TenantID: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("tenant globex sees %+v", page.Items)
	}
}

func TestBadInput(t *testing.T) {
	l := open(t, eventbustest.NewClient(t))
	ctx := ctxT(t)
	for _, q := range []audit.Query{{Limit: -1}, {Limit: audit.MaxLimit + 1}, {Before: -5}} {
		if _, err := l.List(ctx, q); !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("List(%+v): %v, want ErrInvalidQuery", q, err)
		}
	}
	if err := l.Record(ctx, audit.Entry{Action: audit.ActionDLQDelete}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("an entry without actor: %v, want ErrInvalidConfig", err)
	}
	if _, err := audit.Open(ctx, nil, audit.Config{}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("Open(nil): %v", err)
	}
	if _, err := audit.Open(ctx, eventbustest.NewClient(t), audit.Config{Retention: -time.Hour}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("negative retention: %v", err)
	}
}

// TestSurvivesRestart: the trail is in the broker; an embedded broker with
// a data directory gives it back after a restart, to a new Log.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	broker := eventbustest.StartEmbedded(t, embedded.Config{DataDir: dir})
	addr := broker.Addrs()[0]
	client := eventbustest.NewClient(t, addr)
	l, err := audit.Open(ctxT(t), client, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctxT(t), audit.Entry{Actor: "ana", Action: audit.ActionGroupReset, Target: "billing", Detail: map[string]string{"to": "earliest"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	client.Close()
	broker.Close()

	eventbustest.StartEmbedded(t, embedded.Config{Addr: addr, DataDir: dir})
	l2 := open(t, eventbustest.NewClient(t, addr))
	page, err := l2.List(ctxT(t), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Actor != "ana" || page.Items[0].Detail["to"] != "earliest" || page.Items[0].Offset != 0 {
		t.Fatalf("after a restart the trail holds %+v, want ana's reset", page.Items)
	}
}

// TestScanBound: a filter that matches nothing reads at most MaxScan
// entries and says where to go on.
func TestScanBound(t *testing.T) {
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	l := open(t, eventbustest.NewClient(t, broker.Addrs()...))
	ctx := ctxT(t)
	n := audit.MaxScan + 100
	for i := range n {
		if err := l.Record(ctx, audit.Entry{Actor: "bot", Action: audit.ActionDLQRetry, Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := l.List(ctx, audit.Query{Actor: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 || page.Next != int64(n-audit.MaxScan) {
		t.Fatalf("page %+v, want no items and next %d", page, n-audit.MaxScan)
	}
	page, err = l.List(ctx, audit.Query{Actor: "nobody", Before: page.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 || page.Next != 0 {
		t.Fatalf("second page %+v, want the end", page)
	}
}
