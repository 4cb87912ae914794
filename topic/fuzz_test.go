package topic

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseTopic checks that Parse never panics, that every rejection is
// an *Error wrapping ErrInvalidTopic whose suggested name (if any) is valid,
// and that every accepted name re-validates and round-trips through String.
func FuzzParseTopic(f *testing.F) {
	for _, seed := range []string{
		"core.user.created", "core.auth.login", "core.tenant.member_added",
		"plugin.crm.contact.created", "plugin.crm.contact.note.added",
		"plugin.sample-analytics.report.built", "dlq.core.user.created",
		"dlq.plugin.crm.contact.note.added", "dlq.dlq.core.user.created",
		"core.user.create", "core.job.stop", "core.user.copy", "Core.User.Create",
		"plugin.CRM.contact.created", "plugin.sample_analytics.x.added",
		"plugin.-crm.x.added", "plugin.a--b.x.added", "orders", "__consumer_offsets",
		"", ".", "core.", "core..created", "core.user.created.", "dlq.", "dlq.orders",
		"plugin.crm..created", "core.usér.created", "core.user.\xff",
		"core.user." + strings.Repeat("a", 234) + "ed",
		"core.payment.held", "core.payment.hold", "plugin.shop.item.sold", "core.order.buy",
		"core.order.speed", "core.order.creating", "core.order.resend", "core.x.b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		topic, err := Parse(name)
		if err != nil {
			checkRejection(t, name, err)
			return
		}
		if got := topic.String(); got != name {
			t.Fatalf("String() = %q, want %q", got, name)
		}
		if err := Validate(topic.String()); err != nil {
			t.Fatalf("Parse accepted %q but Validate rejects it: %v", name, err)
		}
		if len(name) > maxNameLen {
			t.Fatalf("accepted %d characters", len(name))
		}
		if got := fromParts(topic).String(); got != name {
			t.Fatalf("parts %+v join to %q, want %q", topic, got, name)
		}
		switch topic.Kind {
		case KindCore, KindPlugin:
			if topic.Original != nil || topic.Action == "" || !strings.HasSuffix(name, "."+topic.Action) {
				t.Fatalf("bad parts: %+v", topic)
			}
			if d, err := Parse(dlqPrefix + name); err != nil || d.Original == nil || *d.Original != topic {
				t.Fatalf("Parse(%q) = %+v, %v; want the dlq topic of %+v", dlqPrefix+name, d, err, topic)
			}
		case KindDLQ:
			o := topic.Original
			if o == nil || o.Kind == KindDLQ || dlqPrefix+o.Name != name {
				t.Fatalf("bad dlq topic: %+v (Original %+v)", topic, o)
			}
		default:
			t.Fatalf("bad kind %v", topic.Kind)
		}
	})
}

func checkRejection(t *testing.T, name string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("error does not wrap ErrInvalidTopic: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, not *Error", err)
	}
	if e.Name != name || e.Rule == "" {
		t.Fatalf("bad *Error for %q: %+v", name, e)
	}
	if e.Example != "" && e.Example == name {
		t.Fatalf("suggests the rejected name %q", name)
	}
	if e.Example != "" {
		if err := Validate(e.Example); err != nil {
			t.Fatalf("the suggestion %q for %q is invalid: %v", e.Example, name, err)
		}
	} else if !strings.Contains(e.Rule, "(e.g. ") {
		t.Fatalf("rejection of %q shows no example: %v", name, err)
	}
	if !strings.HasPrefix(err.Error(), "invalid topic name ") {
		t.Fatalf("message: %q", err)
	}
	_ = PastTense(name)
	_ = ValidatePluginID(name)
}

// fromParts returns t with Name cleared (and its Original's), so String joins
// the parts.
func fromParts(t Topic) Topic {
	t.Name = ""
	if t.Original != nil {
		o := fromParts(*t.Original)
		t.Original = &o
	}
	return t
}
