package eventbus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

type userPayload struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

// userService is the seed's decorator example: two handlers in one group.
type userService struct {
	created, deleted   string // topics
	group              string
	gotCreated, gotDel *eventbustest.Recorder
}

func (s *userService) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On(eventbus.Name[userPayload](s.created), s.onUserCreated, eventbus.InGroup(s.group)),
		eventbus.On(eventbus.Name[userPayload](s.deleted), s.onUserDeleted, eventbus.InGroup(s.group)),
	}
}

func (s *userService) onUserCreated(ctx context.Context, ev eventbus.Event[userPayload]) error {
	if ev.Data.Email == "" {
		return errors.New("no email")
	}
	return s.gotCreated.Handle(ctx, eventbus.RawEvent{ID: ev.ID, TenantID: ev.TenantID})
}

func (s *userService) onUserDeleted(ctx context.Context, ev eventbus.Event[userPayload]) error {
	return s.gotDel.Handle(ctx, eventbus.RawEvent{ID: ev.ID, TenantID: ev.TenantID})
}

func TestHandlersOnBusShareOneGroup(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	s := &userService{
		created:    eventbustest.UniqueTopic(t, "core.user.created"),
		deleted:    eventbustest.UniqueTopic(t, "core.user.deleted"),
		group:      eventbustest.UniqueID("user-service"),
		gotCreated: eventbustest.NewRecorder(),
		gotDel:     eventbustest.NewRecorder(),
	}
	h, err := eventbus.InitializeHandlers(boundedCtx(t), bus, s)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.SubscriptionIDs()); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	c := eventbustest.MustPublish(t, bus, s.created, userPayload{"u1", "ada@acme.test"}, meta)
	d := eventbustest.MustPublish(t, bus, s.deleted, userPayload{UserID: "u1"}, meta)
	s.gotCreated.WaitForID(t, c)
	s.gotDel.WaitForID(t, d)

	// Both topics are in one consumer group.
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	described, err := adm.DescribeGroups(boundedCtx(t), s.group)
	if err != nil {
		t.Fatal(err)
	}
	g := described[s.group]
	assigned := g.AssignedPartitions()
	if len(assigned[s.created]) == 0 || len(assigned[s.deleted]) == 0 {
		t.Fatalf("group %s is assigned %v, want both topics", s.group, assigned)
	}

	if err := h.Cleanup(boundedCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := h.Cleanup(boundedCtx(t)); err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
	// Cleaned up: the group's topics can be subscribed again.
	eventbustest.MustSubscribe(t, bus, s.created, nop, eventbus.InGroup(s.group))
}

// crmHandlers declares handlers as a plugin would: its own event, a core
// event, and another plugin's event.
type crmHandlers struct {
	crm               *eventbus.PluginClient
	deal, users, docs string
	dealsSeen         *eventbustest.Recorder
	usersSeen         *eventbustest.Recorder
	docsSeen          *eventbustest.Recorder
	welcomeEvent      string
}

type crmDeal struct {
	DealID string `json:"dealId"`
	Stage  string `json:"stage"`
}

func (c *crmHandlers) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On(eventbus.Name[userPayload](c.users), c.onUserCreated, eventbus.InGroup("crm-sync")),
		eventbus.On(eventbus.Name[crmDeal](c.deal), c.onDealUpdated, eventbus.InGroup("crm-sync")),
		eventbus.On(eventbus.Name[map[string]any](c.docs), func(ctx context.Context, ev eventbus.Event[map[string]any]) error {
			return c.docsSeen.Handle(ctx, eventbus.RawEvent{ID: ev.ID, TenantID: ev.TenantID, Type: ev.Type})
		}, eventbus.FromPlugin("docs")),
	}
}

func (c *crmHandlers) onUserCreated(ctx context.Context, ev eventbus.Event[userPayload]) error {
	if err := c.usersSeen.Handle(ctx, eventbus.RawEvent{ID: ev.ID, TenantID: ev.TenantID, Type: ev.Type}); err != nil {
		return err
	}
	// What a handler publishes continues the event's correlation.
	_, err := eventbus.Publish(ctx, c.crm, eventbus.Name[map[string]string](c.welcomeEvent), map[string]string{"userId": ev.Data.UserID})
	return err
}

func (c *crmHandlers) onDealUpdated(ctx context.Context, ev eventbus.Event[crmDeal]) error {
	return c.dealsSeen.Handle(ctx, eventbus.RawEvent{ID: ev.ID, TenantID: ev.TenantID, Type: ev.Type})
}

func TestHandlersOnPluginClient(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	crm := newPluginClient(t, bus, "crm", "acme", "")
	c := &crmHandlers{
		crm:          crm,
		deal:         pluginEvent(t, "crm", "deal.updated"),
		users:        eventbustest.UniqueTopic(t, "core.user.created"),
		docs:         pluginEvent(t, "docs", "document.shared"),
		dealsSeen:    eventbustest.NewRecorder(),
		usersSeen:    eventbustest.NewRecorder(),
		docsSeen:     eventbustest.NewRecorder(),
		welcomeEvent: pluginEvent(t, "crm", "welcome.sent"),
	}
	welcomes := eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, c.welcomeEvent, welcomes.Handle)
	h, err := eventbus.InitializeHandlers(boundedCtx(t), crm, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup(context.Background()) })

	docs := newPluginClient(t, bus, "docs", "acme", "")
	key := eventbus.WithPartitionKey("one-partition")
	eventbustest.MustPublish(t, bus, c.users, userPayload{"u0", "x@globex.test"}, eventbus.PublishMetadata{TenantID: "globex"}, key)
	u := eventbustest.MustPublish(t, bus, c.users, userPayload{"u1", "ada@acme.test"},
		eventbus.PublishMetadata{TenantID: "acme", CorrelationID: "signup-1", UserID: "admin"}, key)
	d := mustPluginPublish(t, crm, c.deal, crmDeal{"d1", "won"})
	doc := mustPluginPublish(t, docs, c.docs, map[string]string{"documentId": "doc-1"})

	assertExactly(t, "core user handler", "acme", []eventbus.RawEvent{c.usersSeen.WaitForID(t, u)}, []string{u})
	if got := c.dealsSeen.WaitForID(t, d).Type; got != "plugin.crm."+c.deal {
		t.Errorf("deal handler got %s", got)
	}
	if got := c.docsSeen.WaitForID(t, doc).Type; got != "plugin.docs."+c.docs {
		t.Errorf("docs handler got %s", got)
	}
	w := welcomes.WaitFor(t, 1)[0]
	if w.Metadata.CorrelationID != "signup-1" || w.Metadata.CausationID != u || w.Metadata.UserID != "admin" || w.Metadata.Source != "crm" {
		t.Errorf("event published by the handler has metadata %+v; want correlation signup-1, causation %s, user admin, source crm", w.Metadata, u)
	}
	if c.usersSeen.Len() != 1 {
		t.Errorf("user handler saw %d events, want acme's 1", c.usersSeen.Len())
	}

	// The two crm-sync handlers share the plugin's group for the tenant.
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	group := "plugin.crm.crm-sync.tenant.acme"
	described, err := adm.DescribeGroups(boundedCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	g := described[group]
	assigned := g.AssignedPartitions()
	if len(assigned[c.users]) == 0 || len(assigned["plugin.crm."+c.deal]) == 0 {
		t.Fatalf("group %s is assigned %v, want the core and the deal topic", group, assigned)
	}
}

type handlerList []eventbus.HandlerSpec

func (l handlerList) EventHandlers() []eventbus.HandlerSpec { return l }

func TestInitializeHandlersUndoesOnError(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("g")
	ok := eventbus.On(eventbus.Name[userPayload](topic), func(context.Context, eventbus.Event[userPayload]) error { return nil }, eventbus.InGroup(group))
	bad := eventbus.On("core.user.create", func(context.Context, eventbus.Event[userPayload]) error { return nil })
	_, err := eventbus.InitializeHandlers(boundedCtx(t), bus, handlerList{ok, bad})
	if !errors.Is(err, eventbus.ErrInvalidTopic) {
		t.Fatalf("InitializeHandlers = %v, want ErrInvalidTopic", err)
	}
	// The first handler was unsubscribed again: its topic is free in its group.
	eventbustest.MustSubscribe(t, bus, topic, nop, eventbus.InGroup(group))

	// Specs without a name or function fail before anything is subscribed.
	noFn := eventbus.On[userPayload](eventbus.Name[userPayload](topic), nil)
	if _, err := eventbus.InitializeHandlers(boundedCtx(t), bus, handlerList{noFn}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("handler without function: %v", err)
	}
	if _, err := eventbus.InitializeHandlers(boundedCtx(t), nil, handlerList{ok}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("nil target: %v", err)
	}

	// A plugin client refuses a handler for another tenant.
	crm := newPluginClient(t, bus, "crm", "acme", "")
	other := eventbus.On(eventbus.Name[userPayload](topic), func(context.Context, eventbus.Event[userPayload]) error { return nil }, eventbus.ForTenant("globex"))
	if _, err := eventbus.InitializeHandlers(boundedCtx(t), crm, handlerList{other}); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Fatalf("handler for another tenant: %v", err)
	}
	if err := (*eventbus.Handlers)(nil).Cleanup(boundedCtx(t)); err != nil {
		t.Fatal(err)
	}
}
