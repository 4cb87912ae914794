package topic

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestParseTopicValid(t *testing.T) {
	tests := []struct {
		name string
		want Topic
	}{
		{"core.user.created", Topic{Kind: KindCore, Domain: "user", Action: "created"}},
		{"core.tenant.member_added", Topic{Kind: KindCore, Domain: "tenant", Action: "member_added"}},
		{"core.auth.login", Topic{Kind: KindCore, Domain: "auth", Action: "login"}},
		{"core.auth.password_reset", Topic{Kind: KindCore, Domain: "auth", Action: "password_reset"}},
		{"core.mail.email_sent", Topic{Kind: KindCore, Domain: "mail", Action: "email_sent"}},
		{"core.system.heartbeat", Topic{Kind: KindCore, Domain: "system", Action: "heartbeat"}},
		{"core.user2.v2_imported", Topic{Kind: KindCore, Domain: "user2", Action: "v2_imported"}},
		{"core.invoice.paid", Topic{Kind: KindCore, Domain: "invoice", Action: "paid"}},
		{"plugin.crm.contact.created", Topic{Kind: KindPlugin, PluginID: "crm", Entity: "contact", Action: "created"}},
		{"plugin.crm.contact.note.added", Topic{Kind: KindPlugin, PluginID: "crm", Entity: "contact.note", Action: "added"}},
		{"plugin.sample-analytics.report.built", Topic{Kind: KindPlugin, PluginID: "sample-analytics", Entity: "report", Action: "built"}},
		{"plugin.salesforce-sync.a.b.c.synced", Topic{Kind: KindPlugin, PluginID: "salesforce-sync", Entity: "a.b.c", Action: "synced"}},
		{"plugin.2fa.code.sent", Topic{Kind: KindPlugin, PluginID: "2fa", Entity: "code", Action: "sent"}},
		// A dotted plugin ID cannot be told apart: the first segment is the ID.
		{"plugin.salesforce.sync.contact.created", Topic{Kind: KindPlugin, PluginID: "salesforce", Entity: "sync.contact", Action: "created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.name)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Name = tt.name
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.name {
				t.Errorf("String() = %q", got.String())
			}
			dlq := "dlq." + tt.name
			d, err := Parse(dlq)
			if err != nil {
				t.Fatalf("Parse(%q): %v", dlq, err)
			}
			if d.Kind != KindDLQ || d.Name != dlq || d.Original == nil || *d.Original != tt.want {
				t.Errorf("Parse(%q) = %+v (Original %+v)", dlq, d, d.Original)
			}
		})
	}
}

func TestParseTopicInvalid(t *testing.T) {
	tests := []struct {
		name     string
		contains []string // substrings of the message
		example  string   // the corrected name, "" if none
		pluginID bool     // wraps ErrInvalidPluginID too
	}{
		{name: "core.user.create", example: "core.user.created",
			contains: []string{`invalid topic name "core.user.create": action "create" must be past tense (or on the allowed-actions list); use "core.user.created"`}},
		{name: "orders",
			contains: []string{`invalid topic name "orders": a topic must be core.<domain>.<action> (e.g. core.user.created), plugin.<pluginId>.<entity>.<action> (e.g. plugin.crm.contact.created) or dlq.<topic> (e.g. dlq.core.user.created)`}},
		{name: "", contains: []string{"a topic must be core.<domain>.<action>"}},
		{name: "user.created", contains: []string{"a topic must be"}},
		{name: "__consumer_offsets", contains: []string{`"__" are reserved`, "a topic must be core.<domain>.<action>"}},
		{name: "Core.user.created", example: "core.user.created", contains: []string{"a topic must be"}},
		{name: "core", contains: []string{"a topic must be"}},
		{name: "core.", contains: []string{"must not be empty", "(e.g. core.user.created)"}},
		{name: "core..created", contains: []string{"must not be empty", "(e.g. core.user.created)"}},
		{name: "core.user.created.", example: "core.user.created", contains: []string{"must not be empty"}},
		{name: "core.user", contains: []string{"a core topic must be core.<domain>.<action> (e.g. core.user.created)"}},
		{name: "core.user.profile.updated", contains: []string{"a core topic must be core.<domain>.<action>"}},
		{name: "core.User.created", example: "core.user.created", contains: []string{`domain "User" must match [a-z][a-z0-9_]*: it has uppercase letters`}},
		{name: "core.user-profile.updated", example: "core.user_profile.updated", contains: []string{`domain "user-profile"`, "'-'"}},
		{name: "core.2fa.enabled", contains: []string{`domain "2fa"`, "start with a letter", "(e.g. core.user.created)"}},
		{name: "core._x.created", contains: []string{"start with a letter"}},
		{name: "core.user.Created", example: "core.user.created", contains: []string{`action "Created"`}},
		{name: "core.us er.created", contains: []string{`it contains ' '`}},
		{name: "core.usér.created", contains: []string{`it contains 'é'`}},
		{name: "core.user.update", example: "core.user.updated", contains: []string{"past tense", `use "core.user.updated"`}},
		{name: "core.user.delete", example: "core.user.deleted"},
		{name: "core.tenant.member_add", example: "core.tenant.member_added"},
		{name: "core.job.stop", example: "core.job.stopped"},
		{name: "core.email.send", example: "core.email.sent"},
		{name: "core.file.write", example: "core.file.written"},
		{name: "core.user.created_v2", contains: []string{"past tense", "(e.g. core.user.created)"}},
		{name: "core.auth.login_attempt", example: "core.auth.login_attempted", contains: []string{`action "login_attempt" must be past tense`}},
		{name: "core.mail.email_send", example: "core.mail.email_sent"},
		{name: "plugin.crm", contains: []string{"a plugin topic must be plugin.<pluginId>.<entity>.<action> (e.g. plugin.crm.contact.created)"}},
		{name: "plugin.crm.created", contains: []string{"a plugin topic must be"}},
		{name: "plugin.crm.contact.create", example: "plugin.crm.contact.created", contains: []string{`action "create"`}},
		{name: "plugin.crm.contact.Note.added", example: "plugin.crm.contact.note.added", contains: []string{`entity part "Note"`}},
		{name: "plugin.crm.Contact.added", example: "plugin.crm.contact.added", contains: []string{`entity "Contact"`}},
		{name: "plugin.crm..created", contains: []string{"must not be empty", "(e.g. plugin.crm.contact.created)"}},
		{name: "plugin.CRM.contact.created", example: "plugin.crm.contact.created", pluginID: true, contains: []string{`plugin ID "CRM" must be kebab-case`}},
		{name: "plugin.sample_analytics.report.built", example: "plugin.sample-analytics.report.built", pluginID: true, contains: []string{`it contains '_' (use '-')`}},
		{name: "plugin.-crm.contact.created", example: "plugin.crm.contact.created", pluginID: true, contains: []string{"starts with '-'"}},
		{name: "plugin.crm-.contact.created", example: "plugin.crm.contact.created", pluginID: true, contains: []string{"ends with '-'"}},
		{name: "plugin.a--b.contact.created", example: "plugin.a-b.contact.created", pluginID: true, contains: []string{"twice in a row"}},
		{name: "dlq.", contains: []string{"a dlq topic must be dlq.<core or plugin topic> (e.g. dlq.core.user.created)"}},
		{name: "dlq.orders", contains: []string{"a dlq topic must be dlq.<core or plugin topic>"}},
		{name: "dlq.dlq.core.user.created", example: "dlq.core.user.created", contains: []string{"not of another dlq topic"}},
		{name: "dlq.core.user.create", example: "dlq.core.user.created", contains: []string{`action "create"`}},
		{name: "dlq.core.user", contains: []string{"a core topic must be", "(e.g. dlq.core.user.created)"}},
		{name: "dlq.plugin.CRM.contact.created", example: "dlq.plugin.crm.contact.created", pluginID: true},
		{name: "core.user." + strings.Repeat("a", 234) + "ed", contains: []string{"at most 245 characters", "not 246"}},
		{name: "dlq.core.user." + strings.Repeat("a", 234) + "ed", contains: []string{"at most 249 characters", "not 250"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.name)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", got)
			}
			if got != (Topic{}) {
				t.Errorf("Parse returned a Topic with the error: %+v", got)
			}
			if !errors.Is(err, ErrInvalidTopic) {
				t.Errorf("error does not wrap ErrInvalidTopic: %v", err)
			}
			if errors.Is(err, ErrInvalidPluginID) != tt.pluginID {
				t.Errorf("errors.Is(err, ErrInvalidPluginID) = %v, want %v", !tt.pluginID, tt.pluginID)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *Error", err)
			}
			if e.Name != tt.name || e.Example != tt.example {
				t.Errorf("Name, Example = %q, %q; want %q, %q", e.Name, e.Example, tt.name, tt.example)
			}
			msg := err.Error()
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not contain %q", msg, s)
				}
			}
			checkShowsExample(t, e)
			if Validate(tt.name) == nil {
				t.Error("Validate accepted what Parse rejected")
			}
		})
	}
}

// checkShowsExample checks that a rejection shows a valid name: its Example,
// or an "(e.g. ...)" in its rule.
func checkShowsExample(t *testing.T, e *Error) {
	t.Helper()
	msg := e.Error()
	if !strings.HasPrefix(msg, "invalid topic name "+`"`) {
		t.Errorf("message %q does not start with the sentinel text and name", msg)
	}
	if e.Example != "" {
		if err := Validate(e.Example); err != nil {
			t.Errorf("Example %q is not valid: %v", e.Example, err)
		}
		if !strings.HasSuffix(msg, `; use "`+e.Example+`"`) {
			t.Errorf("message %q does not end with the example", msg)
		}
		return
	}
	_, after, ok := strings.Cut(e.Rule, "(e.g. ")
	if !ok {
		t.Fatalf("message %q shows no valid example", msg)
	}
	example, _, _ := strings.Cut(after, ")")
	if err := Validate(example); err != nil {
		t.Errorf("the example %q in %q is not valid: %v", example, msg, err)
	}
}

func TestLengthLimits(t *testing.T) {
	action := func(n int) string { return strings.Repeat("a", n-2) + "ed" }
	core245 := "core.user." + action(245-len("core.user."))
	plugin245 := "plugin.crm.contact." + action(245-len("plugin.crm.contact."))
	for _, name := range []string{core245, plugin245, "dlq." + core245, "dlq." + plugin245} {
		if err := Validate(name); err != nil {
			t.Errorf("len %d: %v", len(name), err)
		}
	}
	if len("dlq."+core245) != 249 {
		t.Fatalf("test setup: len = %d", len("dlq."+core245))
	}
	for _, name := range []string{core245 + "d", plugin245 + "d", "dlq." + core245 + "d"} {
		if err := Validate(name); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("len %d accepted: %v", len(name), err)
		}
	}
}

func TestValidatePluginID(t *testing.T) {
	valid := []string{"crm", "sample-analytics", "salesforce-sync", "a", "2fa", "a-1-b"}
	for _, id := range valid {
		if err := ValidatePluginID(id); err != nil {
			t.Errorf("ValidatePluginID(%q) = %v", id, err)
		}
	}
	invalid := []struct{ id, example, contains string }{
		{"", "", "it is empty (e.g. sample-analytics)"},
		{"CRM", "crm", "uppercase"},
		{"sample_analytics", "sample-analytics", "'_'"},
		{"salesforce.sync", "salesforce-sync", "'.'"},
		{"-crm", "crm", "starts with '-'"},
		{"crm-", "crm", "ends with '-'"},
		{"a--b", "a-b", "twice in a row"},
		{"crm!", "", "'!'"},
		{"-", "", "starts with '-'"},
	}
	for _, tt := range invalid {
		err := ValidatePluginID(tt.id)
		if !errors.Is(err, ErrInvalidPluginID) || errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidatePluginID(%q) = %v: want only ErrInvalidPluginID", tt.id, err)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Example != tt.example {
			t.Errorf("ValidatePluginID(%q) = %#v, want Example %q", tt.id, err, tt.example)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, `invalid plugin ID "`) || !strings.Contains(msg, tt.contains) {
			t.Errorf("ValidatePluginID(%q) = %q, want it to contain %q", tt.id, msg, tt.contains)
		}
		if tt.example != "" && !strings.HasSuffix(msg, `; use "`+tt.example+`"`) {
			t.Errorf("message %q does not end with the example", msg)
		}
	}
	const want = `invalid plugin ID "CRM": plugin ID "CRM" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it has uppercase letters; use "crm"`
	if got := ValidatePluginID("CRM").Error(); got != want {
		t.Errorf("message\n got %s\nwant %s", got, want)
	}
}

func TestPastTense(t *testing.T) {
	tests := map[string]string{
		"create": "created", "update": "updated", "delete": "deleted", "add": "added",
		"stop": "stopped", "plan": "planned", "log": "logged", "strip": "stripped",
		"open": "opened", "edit": "edited", "visit": "visited", "fix": "fixed",
		"allow": "allowed", "play": "played", "copy": "copied", "apply": "applied",
		"verify": "verified", "start": "started", "import": "imported", "sync": "synced",
		"send": "sent", "build": "built", "pay": "paid", "begin": "begun", "win": "won",
		"lose": "lost", "run": "run", "set": "set", "do": "done", "make": "made",
		"write": "written", "get": "gotten", "reset": "reset", "read": "read",
		"member_add": "member_added", "email_send": "email_sent", "job_stop": "job_stopped",
		"created": "created", "sent": "sent", "made": "made", "member_added": "member_added",
		"": "", "x_": "", "v2": "", "hold": "held", "buy": "bought", "submit": "submitted",
		"held": "held", "found": "found", "find": "found", "work": "worked", "creating": "",
	}
	for in, want := range tests {
		if got := PastTense(in); got != want {
			t.Errorf("PastTense(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRules(t *testing.T) {
	def := DefaultRules()
	if DefaultRules() != def {
		t.Error("DefaultRules returns a different value each call")
	}
	want := []string{"begun", "built", "done", "error", "heartbeat", "login", "logout", "lost", "paid", "read",
		"request", "reset", "response", "run", "sent", "set", "shut", "signup", "spent", "split", "won"}
	if got := def.AllowedActions(); !slices.Equal(got, want) {
		t.Errorf("AllowedActions() = %q, want %q", got, want)
	}
	def.AllowedActions()[0] = "mutated"
	if def.AllowedActions()[0] != "begun" {
		t.Error("AllowedActions shares its slice")
	}

	r, err := NewRules("sync", "made", "sync", "import")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.AllowedActions(); len(got) != len(want)+3 || !slices.IsSorted(got) || !slices.Contains(got, "sync") {
		t.Errorf("NewRules(...).AllowedActions() = %q", got)
	}
	for _, name := range []string{"core.crm.sync", "plugin.x.doc.made", "core.data.import", "core.user.created", "core.auth.login"} {
		if err := r.Validate(name); err != nil {
			t.Errorf("extended rules reject %q: %v", name, err)
		}
	}
	if err := Validate("core.crm.sync"); err == nil {
		t.Error("NewRules changed the default rules")
	}
	// With "made" allowed, "make" gets a suggestion.
	var e *Error
	if _, err := r.Parse("core.doc.make"); !errors.As(err, &e) || e.Example != "core.doc.made" {
		t.Errorf("extended rules on core.doc.make: %v", err)
	}

	for _, bad := range []string{"", "Sync", "1st", "re-sync", "_x", "a.b", "syncé"} {
		r, err := NewRules("ok", bad)
		if err == nil || r != nil {
			t.Errorf("NewRules(%q) = %v, %v; want an error", bad, r, err)
		}
	}

	var nilRules *Rules
	if err := nilRules.Validate("core.auth.login"); err != nil {
		t.Errorf("nil *Rules: %v", err)
	}
	if len(nilRules.AllowedActions()) != len(want) {
		t.Error("nil *Rules does not have the default allow-list")
	}
}

func TestRulesConcurrent(t *testing.T) {
	r, err := NewRules("sync")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if err := r.Validate("plugin.crm.contact.sync"); err != nil {
					t.Error(err)
				}
				if err := DefaultRules().Validate("core.user.create"); err == nil {
					t.Error("accepted core.user.create")
				}
				_ = r.AllowedActions()
			}
		})
	}
	wg.Wait()
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindCore: "core", KindPlugin: "plugin", KindDLQ: "dlq", 0: "Kind(0)", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func TestTopicStringFromParts(t *testing.T) {
	core := Topic{Kind: KindCore, Domain: "user", Action: "created"}
	plugin := Topic{Kind: KindPlugin, PluginID: "crm", Entity: "contact.note", Action: "added"}
	tests := map[string]Topic{
		"core.user.created":                 core,
		"plugin.crm.contact.note.added":     plugin,
		"dlq.plugin.crm.contact.note.added": {Kind: KindDLQ, Original: &plugin},
		"given":                             {Kind: KindCore, Name: "given", Domain: "user", Action: "created"},
		"":                                  {},
	}
	for want, topic := range tests {
		if got := topic.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", topic, got, want)
		}
	}
}

func TestErrorUnwrap(t *testing.T) {
	e := &Error{Name: "x", Rule: "r", Err: errTopicPluginID}
	if got := e.Unwrap(); len(got) != 2 || got[0] != ErrInvalidTopic || got[1] != ErrInvalidPluginID {
		t.Errorf("Unwrap() = %v", got)
	}
	if got := (&Error{Err: ErrInvalidTopic}).Unwrap(); len(got) != 1 || got[0] != ErrInvalidTopic {
		t.Errorf("Unwrap() = %v", got)
	}
	if got := (&Error{}).Unwrap(); got != nil {
		t.Errorf("Unwrap() = %v", got)
	}
	if got, want := e.Error(), `invalid topic name "x": r`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseTopicAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a normal build")
	}
	for name, want := range map[string]float64{
		"core.user.created":             0,
		"plugin.crm.contact.note.added": 0,
		"core.auth.login":               0,
		"core.payment.held":             0,
		"plugin.shop.item.sold":         0,
		"dlq.core.user.created":         1,
	} {
		if got := testing.AllocsPerRun(100, func() { _, _ = Parse(name) }); got > want {
			t.Errorf("Parse(%q): %v allocations, want at most %v", name, got, want)
		}
	}
}

var sink Topic

func BenchmarkParseTopic(b *testing.B) {
	for _, name := range []string{
		"core.user.created",
		"core.auth.login",
		"core.payment.held",
		"plugin.sample-analytics.contact.note.added",
		"dlq.plugin.crm.contact.created",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, err := Parse(name)
				if err != nil {
					b.Fatal(err)
				}
				sink = t
			}
		})
	}
	b.Run("rejected/core.user.create", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse("core.user.create"); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
