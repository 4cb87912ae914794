package eventbus

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/plexica/eventbus/topic"
)

type contact struct {
	Name string `json:"name"`
}

func TestOnOptionsFillTheSpec(t *testing.T) {
	d := Delivery{FromBeginning: true, OnFailure: RetryInPlace, Ordering: OrderPerPartition, MaxConcurrency: 8}
	spec := On("contact.created", func(context.Context, Event[contact]) error { return nil },
		InGroup("g"), FromPlugin("crm"), ForTenant("acme"), ForWorkspace("ws"), WithDelivery(d), nil)
	got := spec
	got.handler = nil
	want := HandlerSpec{name: "contact.created", groupID: "g", pluginID: "crm", tenantID: "acme", workspaceID: "ws", delivery: d}
	if !reflect.DeepEqual(got, want) || spec.handler == nil {
		t.Fatalf("spec = %+v", spec)
	}
	// The typed handler decodes the data; data of the wrong shape is a failure.
	var decoded contact
	h := On("contact.created", func(_ context.Context, ev Event[contact]) error { decoded = ev.Data; return nil }).handler
	if err := h(context.Background(), RawEvent{Data: []byte(`{"name":"Ada"}`)}); err != nil || decoded.Name != "Ada" {
		t.Fatalf("decoded %+v, %v", decoded, err)
	}
	if err := h(context.Background(), RawEvent{Data: []byte(`[1]`)}); err == nil {
		t.Fatal("data of the wrong shape was accepted")
	}
	// A raw handler gets the data undecoded, even data that is no object.
	var raw string
	h = On("contact.created", func(_ context.Context, ev RawEvent) error { raw = string(ev.Data); return nil }).handler
	if err := h(context.Background(), RawEvent{Data: []byte(`[1]`)}); err != nil || raw != "[1]" {
		t.Fatalf("raw handler got %q, %v", raw, err)
	}
}

// TestResolveNameOneRule: every target resolves a name by the same rule;
// only the subscribing plugin (none on a Bus) differs.
func TestResolveNameOneRule(t *testing.T) {
	rules := topic.DefaultRules()
	for _, c := range []struct {
		name, own, from string
		want            string
		err             error
	}{
		{"core.user.created", "", "", "core.user.created", nil},
		{"core.user.created", "crm", "", "core.user.created", nil},
		{"plugin.crm.contact.created", "", "", "plugin.crm.contact.created", nil},
		{"plugin.crm.contact.created", "analytics", "", "plugin.crm.contact.created", nil},
		{"plugin.crm.contact.created", "", "crm", "plugin.crm.contact.created", nil},
		{"contact.created", "crm", "", "plugin.crm.contact.created", nil},
		{"contact.created", "analytics", "crm", "plugin.crm.contact.created", nil},
		{"contact.created", "", "crm", "plugin.crm.contact.created", nil},
		{"contact.created", "", "", "", ErrInvalidTopic},
		{"contact.create", "crm", "", "", ErrInvalidTopic},
		{"dlq.core.user.created", "crm", "", "", ErrInvalidTopic},
		{"core.user.create", "", "", "", ErrInvalidTopic},
		{"core.user.created", "", "crm", "", ErrInvalidConfig},
		{"plugin.billing.invoice.paid", "", "crm", "", ErrInvalidConfig},
		{"contact.created", "", "CRM", "", ErrInvalidPluginID},
	} {
		got, err := resolveName(rules, c.name, c.own, c.from)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("resolveName(%q, own %q, from %q) = %q, %v; want %q, %v", c.name, c.own, c.from, got, err, c.want, c.err)
		}
	}
}

// FuzzGroupIDSeparatesScopes: of valid tenant and workspace IDs, no two
// scopes name the same group (see GroupID).
func FuzzGroupIDSeparatesScopes(f *testing.F) {
	f.Add("acme", "w1", "acme.workspace.w1", "")
	f.Add("a", "", "a", "b")
	f.Fuzz(func(t *testing.T, t1, w1, t2, w2 string) {
		for _, err := range []error{ValidateTenantID(t1), ValidateTenantID(t2), ValidateWorkspaceID(w1), ValidateWorkspaceID(w2)} {
			if err != nil {
				return
			}
		}
		if (t1 != t2 || w1 != w2) && filteredGroup("g", t1, w1) == filteredGroup("g", t2, w2) {
			t.Fatalf("(%q, %q) and (%q, %q) share group %q", t1, w1, t2, w2, filteredGroup("g", t1, w1))
		}
	})
}
