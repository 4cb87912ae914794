package groups_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/groups"
	"github.com/plexica/eventbus/topic"
)

// defaultPartitions is the partition count of the topics the bus creates.
const defaultPartitions = topic.DefaultPartitions

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func admin(t *testing.T, c *eventbus.Client) *kadm.Client {
	t.Helper()
	adm, err := c.Admin()
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

// TestDescribeResetRedeliver: a group that handled every event has no
// lag; a reset refuses it while a member runs; once it is empty, a reset
// to a time previews exactly the events published after that time, and
// applying it delivers exactly those again, to that group only.
func TestDescribeResetRedeliver(t *testing.T) {
	client := eventbustest.NewClient(t)
	adm := admin(t, client)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group, other := eventbustest.UniqueID("mailer"), eventbustest.UniqueID("crm")
	ctx := ctxT(t)

	var ids []string
	publish := func(n int) {
		for i := range n {
			ids = append(ids, eventbustest.MustPublish(t, bus, topic, map[string]int{"n": i}, eventbus.PublishMetadata{TenantID: "acme"}))
		}
	}
	publish(4)
	// Every event from here on has a timestamp at or after mark.
	mark := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	for time.Now().Before(mark) {
		time.Sleep(time.Millisecond)
	}
	publish(6)

	consumer := eventbustest.NewBus(t, eventbus.Config{}, client.Brokers()...)
	rec, otherRec := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, consumer, topic, rec.Handle, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	eventbustest.MustSubscribe(t, consumer, topic, otherRec.Handle, eventbus.InGroup(other), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	rec.WaitFor(t, 10)
	otherRec.WaitFor(t, 10)

	// Active: described with its member; a reset is refused.
	g, err := groups.Describe(ctx, adm, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 1 || g.State != "Stable" {
		t.Errorf("running group: state %s, %d members; want Stable with 1", g.State, len(g.Members))
	}
	if _, err := groups.PlanReset(ctx, adm, group, nil, groups.Target{Kind: groups.ToEarliest}); !errors.Is(err, groups.ErrGroupActive) {
		t.Fatalf("reset of a running group: %v, want ErrGroupActive", err)
	}

	if err := consumer.Shutdown(ctx); err != nil { // commits and leaves
		t.Fatal(err)
	}
	g, err = groups.Describe(ctx, adm, group)
	if err != nil {
		t.Fatal(err)
	}
	// The group reads its retry topic too (the dead letter queue's); the
	// topic's own partitions are checked here.
	var own []groups.Partition
	for _, p := range g.Partitions {
		if p.Topic == topic {
			own = append(own, p)
		}
	}
	if g.State != "Empty" || len(g.Members) != 0 || g.Lag != 0 || len(own) != defaultPartitions {
		t.Fatalf("stopped group: %+v; want Empty, no members, no lag, %d partitions of %s", g, defaultPartitions, topic)
	}
	var end int64
	for _, p := range own {
		if p.Committed != p.End || p.Topic != topic {
			t.Errorf("partition %+v: committed is not the end", p)
		}
		end += p.End
	}
	if end != 10 {
		t.Errorf("end offsets sum to %d, want 10", end)
	}
	list, err := groups.List(ctx, adm)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(list, func(s groups.Summary) bool { return s.Group == group }); i < 0 || list[i].Lag != 0 || !slices.Contains(list[i].Topics, topic) {
		t.Errorf("List lacks %s with no lag on %s: %+v", group, topic, list)
	}

	plan, err := groups.PlanReset(ctx, adm, group, nil, groups.Target{Kind: groups.ToTime, Time: mark})
	if err != nil {
		t.Fatal(err)
	}
	planned := 0
	for _, p := range plan.Partitions {
		if p.Topic == topic {
			planned++
		}
	}
	if plan.Redeliver != 6 || plan.Skip != 0 || planned != defaultPartitions {
		t.Fatalf("plan %+v; want 6 to redeliver on every partition", plan)
	}
	// A plan changes nothing.
	if g, _ := groups.Describe(ctx, adm, group); g.Lag != 0 {
		t.Fatalf("a plan moved the offsets: lag %d", g.Lag)
	}
	if err := groups.Reset(ctx, adm, plan); err != nil {
		t.Fatal(err)
	}
	if g, _ := groups.Describe(ctx, adm, group); g.Lag != 6 {
		t.Fatalf("after the reset the lag is %d, want 6", g.Lag)
	}
	if g, _ := groups.Describe(ctx, adm, other); g.Lag != 0 {
		t.Fatalf("the reset moved another group: lag %d", g.Lag)
	}

	// The group runs again: exactly the six later events come back.
	again := eventbustest.NewBus(t, eventbus.Config{}, client.Brokers()...)
	rec2 := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, again, topic, rec2.Handle, eventbus.InGroup(group))
	got := rec2.WaitFor(t, 6)
	var gotIDs []string
	for _, e := range got {
		gotIDs = append(gotIDs, e.ID)
	}
	slices.Sort(gotIDs)
	want := slices.Clone(ids[4:])
	slices.Sort(want)
	if !slices.Equal(gotIDs, want) {
		t.Errorf("redelivered %v, want the six after the mark %v", gotIDs, want)
	}
	if err := again.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec2.Len(); n != 6 {
		t.Errorf("the group handled %d events after the reset, want 6", n)
	}
	if n := otherRec.Len(); n != 10 {
		t.Errorf("the other group handled %d events, want its 10 only", n)
	}
}

func TestPlanTargets(t *testing.T) {
	client := eventbustest.NewClient(t)
	adm := admin(t, client)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.invoice.paid")
	group := eventbustest.UniqueID("ledger")
	ctx := ctxT(t)
	for i := range 9 {
		eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	// A group that never ran has nothing to reset unless given topics.
	if _, err := groups.PlanReset(ctx, adm, group, nil, groups.Target{Kind: groups.ToEarliest}); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Errorf("reset of an unknown group without topics: %v, want ErrGroupNotFound", err)
	}
	if _, err := groups.Describe(ctx, adm, group); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Errorf("Describe of an unknown group: %v, want ErrGroupNotFound", err)
	}
	plan, err := groups.PlanReset(ctx, adm, group, []string{topic}, groups.Target{Kind: groups.ToEarliest})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Redeliver != 9 {
		t.Errorf("earliest for a new group: redeliver %d, want 9", plan.Redeliver)
	}
	if err := groups.Reset(ctx, adm, plan); err != nil {
		t.Fatal(err)
	}
	// Offsets are clamped to what the partition holds; latest skips the rest.
	plan, err = groups.PlanReset(ctx, adm, group, nil, groups.Target{Kind: groups.ToOffset, Offset: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Skip != 9 || plan.Redeliver != 0 {
		t.Errorf("offset past the end: %+v, want every partition at its end (skip 9)", plan)
	}
	for _, p := range plan.Partitions {
		if p.New != p.End || p.Current != 0 {
			t.Errorf("partition %+v: want new = end, current 0", p)
		}
	}
	if _, err := groups.PlanReset(ctx, adm, group, []string{"core.nothing.created"}, groups.Target{Kind: groups.ToLatest}); !errors.Is(err, groups.ErrInvalidTarget) {
		t.Errorf("unknown topic: %v, want ErrInvalidTarget", err)
	}
	if _, err := groups.PlanReset(ctx, adm, group, nil, groups.Target{Kind: "sideways"}); !errors.Is(err, groups.ErrInvalidTarget) {
		t.Errorf("unknown kind: %v, want ErrInvalidTarget", err)
	}
}

func TestParseTarget(t *testing.T) {
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	for in, want := range map[string]groups.Target{
		"earliest":                  {Kind: groups.ToEarliest},
		" latest ":                  {Kind: groups.ToLatest},
		"offset:42":                 {Kind: groups.ToOffset, Offset: 42},
		"time:2026-12-07T05:00:00Z": {Kind: groups.ToTime, Time: now.Add(-time.Hour)},
		"ago:30m":                   {Kind: groups.ToTime, Time: now.Add(-30 * time.Minute)},
	} {
		got, err := groups.ParseTarget(in, now)
		if err != nil || got.Kind != want.Kind || got.Offset != want.Offset || !got.Time.Equal(want.Time) {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "first", "offset:", "offset:-1", "offset:x", "time:yesterday", "ago:-5m", "ago:0s", "earliest:1"} {
		if _, err := groups.ParseTarget(in, now); !errors.Is(err, groups.ErrInvalidTarget) {
			t.Errorf("ParseTarget(%q): %v, want ErrInvalidTarget", in, err)
		}
	}
}

// TestHistory samples a group's lag with a fake clock: points are kept for
// the window only, at most window/interval+1 of them.
func TestHistory(t *testing.T) {
	client := eventbustest.NewClient(t)
	adm := admin(t, client)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("shipping")
	ctx := ctxT(t)
	for i := range 5 {
		eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	plan, err := groups.PlanReset(ctx, adm, group, []string{topic}, groups.Target{Kind: groups.ToEarliest})
	if err != nil {
		t.Fatal(err)
	}
	if err := groups.Reset(ctx, adm, plan); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	h, err := groups.NewHistory(adm, groups.HistoryConfig{Interval: time.Minute, Window: 5 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 9 {
		if err := h.Sample(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	now = now.Add(-time.Minute) // the time of the last sample
	pts := h.Points(group)
	if len(pts) != 6 {
		t.Fatalf("%d points kept, want 6 (5 minutes at 1 a minute, both ends)", len(pts))
	}
	for i, p := range pts {
		if p.Lag != 5 || !p.Time.Equal(now.Add(time.Duration(i-5)*time.Minute)) {
			t.Errorf("point %d: %+v, want lag 5 at %s", i, p, now.Add(time.Duration(i-5)*time.Minute))
		}
	}
	if got := h.Points("no-such-group"); len(got) != 0 {
		t.Errorf("points of an unknown group: %v", got)
	}
	h2, _ := groups.NewHistory(adm, groups.HistoryConfig{MaxGroups: 1})
	if err := h2.Sample(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h2.Groups(); n != 1 {
		t.Errorf("MaxGroups 1 follows %d groups", n)
	}
	if _, err := groups.NewHistory(adm, groups.HistoryConfig{Interval: -time.Second}); err == nil {
		t.Error("a negative interval was accepted")
	}
}
