package topic

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// listedForms reads pastforms.txt: form → bases, and base → forms.
func listedForms(t testing.TB) (forms, bases map[string][]string) {
	t.Helper()
	data, err := os.ReadFile("pastforms.txt")
	if err != nil {
		t.Fatal(err)
	}
	forms, bases = map[string][]string{}, map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.ContainsAny(f[0][:1], "#-!") { // comments, present forms, guards
			continue
		}
		forms[f[0]] = f[1:]
		for _, b := range f[1:] {
			if !strings.HasPrefix(b, "~") { // a form not to suggest
				bases[b] = append(bases[b], f[0])
			}
		}
	}
	if len(forms) < 1000 {
		t.Fatalf("pastforms.txt has %d forms", len(forms))
	}
	return forms, bases
}

// exampleAction returns the action of the suggestion for a rejected
// core.order.<action>, or "" when there is none; it fails the test if the
// name is accepted.
func exampleAction(t *testing.T, action string) string {
	t.Helper()
	err := Validate("core.order." + action)
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("core.order.%s accepted (%v), want it rejected", action, err)
		return ""
	}
	return strings.TrimPrefix(e.Example, "core.order.")
}

// TestIrregularPastForms goes over the whole list: every past form is
// accepted, in core and plugin topics, and every present form that is not a
// past form itself is rejected with one of its own past forms as suggestion.
func TestIrregularPastForms(t *testing.T) {
	forms, bases := listedForms(t)
	for f := range forms {
		for _, name := range []string{"core.order." + f, "plugin.shop.item." + f, "core.order.item_" + f, "dlq.core.order." + f} {
			if err := Validate(name); err != nil {
				t.Errorf("past form rejected: %v", err)
			}
		}
		if got := PastTense(f); got != f {
			t.Errorf("PastTense(%q) = %q, want it unchanged (already past)", f, got)
		}
	}
	for b, pasts := range bases {
		if _, past := forms[b]; past {
			if err := Validate("core.order." + b); err != nil {
				t.Errorf("%q is a past form too, but: %v", b, err)
			}
			continue
		}
		got := exampleAction(t, b)
		if !slices.Contains(pasts, got) {
			t.Errorf("core.order.%s: suggestion %q, want one of %q", b, got, pasts)
		}
		if got := PastTense("line_" + b); !slices.Contains(pasts, strings.TrimPrefix(got, "line_")) {
			t.Errorf("PastTense(line_%s) = %q, want line_ and one of %q", b, got, pasts)
		}
	}
}

// TestIssue25Names checks the names of issue 25 and the forms equal to the
// present or prefixed.
func TestIssue25Names(t *testing.T) {
	for _, a := range []string{
		"held", "kept", "sold", "bought", "chosen", "written", "wrote", "made", "found", "taught",
		"said", "stuck", "frozen", "read", "set", "put", "cut", "split", "hit", "let", "cost", "shut",
		"quit", "spread", "burst", "broadcast", "forecast", "reset", "upset", "rebuilt", "withdrawn",
		"upheld", "overridden", "undone", "misread", "reread", "overcome", "become", "come", "run",
		"rerun", "was", "were", "been", "had", "did", "done", "gone", "went", "sent", "paid", "lost",
		"won", "begun", "began", "got", "gotten", "lit", "fled", "led", "fed", "bred", "sped",
		"submitted", "stopped", "logged", "visited", "opened", "cancelled", "canceled", "labelled",
		"labeled", "panicked", "synced", "payment_held", "item_sold", "resold", "regrown", "misspoke",
	} {
		if err := Validate("core.order." + a); err != nil {
			t.Errorf("rejected: %v", err)
		}
		if err := Validate("plugin.shop-x.item.note." + a); err != nil {
			t.Errorf("rejected: %v", err)
		}
	}
	for present, want := range map[string][]string{
		"hold": {"held"}, "buy": {"bought"}, "keep": {"kept"}, "choose": {"chosen", "chose"},
		"find": {"found"}, "forget": {"forgotten", "forgot"}, "submit": {"submitted"},
		"write": {"written", "wrote"}, "sell": {"sold"}, "teach": {"taught"}, "say": {"said"},
		"stick": {"stuck"}, "freeze": {"frozen", "froze"}, "make": {"made"}, "send": {"sent"},
		"pay": {"paid"}, "do": {"done", "did"}, "go": {"gone", "went"}, "get": {"got", "gotten"},
		"rebuild": {"rebuilt"}, "withdraw": {"withdrawn", "withdrew"}, "uphold": {"upheld"},
		"override": {"overridden", "overrode"}, "work": {"worked"}, "learn": {"learned", "learnt"},
		"bypass": {"bypassed"}, "payment_hold": {"payment_held"}, "item_buy": {"item_bought"},
	} {
		if got := exampleAction(t, present); !slices.Contains(want, got) {
			t.Errorf("core.order.%s: suggestion %q, want one of %q", present, got, want)
		}
	}
}

// TestPresentEndingInEd checks that a verb ending in "ed" that is no past
// form is rejected with its past (the old check took any "-ed" for a past).
func TestPresentEndingInEd(t *testing.T) {
	for present, past := range map[string]string{
		"speed": "sped", "feed": "fed", "breed": "bred", "bleed": "bled", "embed": "embedded",
		"shred": "shredded", "seed": "seeded", "weed": "weeded", "bed": "bedded", "overfeed": "",
	} {
		if got := exampleAction(t, present); got != past {
			t.Errorf("core.order.%s: suggestion %q, want %q", present, got, past)
		}
	}
	for _, a := range []string{"shed", "wed", "sped", "fed", "bred", "created", "seeded"} {
		if err := Validate("core.order." + a); err != nil {
			t.Errorf("rejected: %v", err)
		}
	}
}

// TestPresentForms checks that the present forms verb.exc lists are
// rejected with their verb's past, not a made-up form (hased, amed, ised).
func TestPresentForms(t *testing.T) {
	for present, want := range map[string][]string{
		"has": {"had"}, "is": {"been", "was", "were"}, "am": {"been", "was", "were"},
		"are": {"been", "was", "were"}, "quizzes": {"quizzed"}, "gasses": {"gassed"},
		"item_has": {"item_had"},
	} {
		if got := exampleAction(t, present); !slices.Contains(want, got) {
			t.Errorf("core.order.%s: suggestion %q, want one of %q", present, got, want)
		}
	}
}

// TestRegularSpelling checks the spelling rules of regular verbs: doubling,
// -e, -y, -c/-ck.
func TestRegularSpelling(t *testing.T) {
	for present, past := range map[string]string{
		// doubling, and not
		"submit": "submitted", "stop": "stopped", "log": "logged", "plan": "planned",
		"ship": "shipped", "admit": "admitted", "commit": "committed", "refer": "referred",
		"prefer": "preferred", "control": "controlled", "cancel": "cancelled", "label": "labelled",
		"visit": "visited", "open": "opened", "edit": "edited", "offer": "offered",
		"enter": "entered", "fix": "fixed", "allow": "allowed", "add": "added",
		"happen": "happened", "limit": "limited", "deposit": "deposited", "audit": "audited",
		// -e
		"create": "created", "update": "updated", "delete": "deleted", "approve": "approved",
		"free": "freed", "agree": "agreed",
		// -y
		"copy": "copied", "apply": "applied", "verify": "verified", "play": "played",
		"deploy": "deployed", "notify": "notified", "retry": "retried",
		// -c/-ck
		"panic": "panicked", "mimic": "mimicked", "traffic": "trafficked", "picnic": "picnicked",
		"sync": "synced",
		// in words
		"member_add": "member_added", "job_stop": "job_stopped", "email_send": "email_sent",
	} {
		if err := Validate("core.order." + past); err != nil {
			t.Errorf("rejected: %v", err)
		}
		want := []string{past}
		if present == "cancel" || present == "label" {
			want = append(want, present+"ed") // cancelled or canceled
		}
		if got := exampleAction(t, present); !slices.Contains(want, got) {
			t.Errorf("core.order.%s: suggestion %q, want one of %q", present, got, want)
		}
		if got := PastTense(present); !slices.Contains(want, got) {
			t.Errorf("PastTense(%q) = %q, want one of %q", present, got, want)
		}
	}
	for _, a := range []string{"canceled", "cancelled", "labeled", "labelled", "traveled", "travelled"} {
		if err := Validate("core.order." + a); err != nil {
			t.Errorf("rejected: %v", err)
		}
	}
}

// TestNoInventedSuggestions checks that no suggestion appends "ed" to an
// irregular verb or to a past form, and that a word that is no verb form the
// rules can put in the past gets none.
func TestNoInventedSuggestions(t *testing.T) {
	forms, bases := listedForms(t)
	for f := range forms {
		if got := PastTense(f); got == f+"ed" || got == f+"d" {
			t.Errorf("PastTense(%q) = %q", f, got)
		}
	}
	for b, pasts := range bases {
		if got := PastTense(b); (got == b+"ed" || got == b+"d") && !slices.Contains(pasts, got) {
			t.Errorf("PastTense(%q) = %q, not one of %q", b, got, pasts)
		}
	}
	for _, a := range []string{"v2", "x_", "", "creating", "processing", "creates", "ships", "resend", "prebuild"} {
		if got := PastTense(a); got != "" {
			t.Errorf("PastTense(%q) = %q, want no suggestion", a, got)
		}
	}
}

// FuzzPastTense checks that any suggestion is itself accepted, and that an
// accepted action is never given a suggestion (least of all itself plus
// "ed").
func FuzzPastTense(f *testing.F) {
	for _, s := range []string{"held", "hold", "found", "find", "read", "submit", "stop", "copy",
		"panic", "create", "written", "write", "member_add", "login", "ran", "x", "v2", "bought", "said"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		p := PastTense(a)
		if !isIdent(a) || len(a) > 200 { // room for "core.order." and a suffix
			return
		}
		err := Validate("core.order." + a)
		if err == nil && !slices.Contains(DefaultRules().AllowedActions(), a[strings.LastIndexByte(a, '_')+1:]) {
			if p != a {
				t.Fatalf("%q is accepted, but PastTense gives %q", a, p)
			}
			return
		}
		if err == nil {
			return // allowed (login): PastTense does not know the allow-list
		}
		if p != "" {
			if err := Validate("core.order." + p); err != nil {
				t.Fatalf("PastTense(%q) = %q, rejected: %v", a, p, err)
			}
		}
		var e *Error
		if errors.As(err, &e) && e.Example != "" {
			if err := Validate(e.Example); err != nil {
				t.Fatalf("suggestion %q rejected: %v", e.Example, err)
			}
		}
	})
}

// requireWordNetEnv, when set (CI sets it), makes a missing WordNet fail
// TestPastFormsUpToDate instead of skipping it.
const requireWordNetEnv = "EVENTBUS_REQUIRE_WORDNET"

// TestPastFormsUpToDate rebuilds pastforms.txt and verbs.txt from WordNet
// with gen_pastforms.go and compares, where Debian's wordnet-base is
// installed (it is not needed otherwise: the lists are committed).
func TestPastFormsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the word lists from WordNet: not in -short")
	}
	const dir = "/usr/share/wordnet"
	for _, f := range []string{"verb.exc", "index.verb", "index.noun", "index.adj", "index.adv"} {
		if _, err := os.Stat(dir + "/" + f); err != nil {
			msg := "WordNet is not installed (apt-get install wordnet-base): " + err.Error()
			if os.Getenv(requireWordNetEnv) != "" {
				t.Fatalf("%s; %s is set, so it must run", msg, requireWordNetEnv)
			}
			t.Skip(msg)
		}
	}
	tmp := t.TempDir()
	cmd := exec.Command("go", "run", "gen_pastforms.go", "-wordnet", dir,
		"-o", tmp+"/pastforms.txt", "-verbs", tmp+"/verbs.txt")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_pastforms.go: %v\n%s", err, b)
	}
	for _, f := range []string{"pastforms.txt", "verbs.txt"} {
		got, err := os.ReadFile(tmp + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from what gen_pastforms.go makes: run go generate ./topic", f)
		}
	}
}

// TestNoSuggestionForNonVerbs checks that a word WordNet does not know as a
// verb gets no made-up past form ("paymented", "checkouted"), only the rule
// and an example of a valid name, while the verbs keep their suggestion.
func TestNoSuggestionForNonVerbs(t *testing.T) {
	for _, a := range []string{
		"payment", "checkout", "customer", "user", "status", "summary", "history",
		"session", "token", "webhook", "shipment", "delivery", "subscription", "metadata",
		"order_payment", "cart_checkout", "rollback", "backup", "setup", "bookmark",
		"insight", "uptime", "overdraft", "resend", "resell", "unsend",
	} {
		err := Validate("core.order." + a)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("core.order.%s accepted (%v), want it rejected", a, err)
			continue
		}
		if e.Example != "" {
			t.Errorf("core.order.%s: suggestion %q, want none", a, e.Example)
		}
		if want := `action "` + a + `" must be past tense (or on the allowed-actions list) (e.g. core.user.created)`; e.Rule != want {
			t.Errorf("core.order.%s: rule %q, want %q", a, e.Rule, want)
		}
		if got := PastTense(a); got != "" {
			t.Errorf("PastTense(%q) = %q, want no suggestion", a, got)
		}
	}
	for present, past := range map[string]string{
		"submit": "submitted", "open": "opened", "stop": "stopped", "visit": "visited",
		"cancel": "cancelled", "sync": "synced", "subscribe": "subscribed", "invoice": "invoiced",
		"refund": "refunded", "account": "accounted", "resubmit": "resubmitted", "unpin": "unpinned",
		"order_pay": "order_paid", "payment_capture": "payment_captured", "blog": "blogged",
		"spam": "spammed", "hyphen": "hyphened", "syphon": "syphoned", "zinc": "zinced",
		// not in WordNet 3.0, added by gen_pastforms.go
		"upsert": "upserted", "onboard": "onboarded", "unsubscribe": "unsubscribed",
		"enqueue": "enqueued", "reapply": "reapplied", "unban": "unbanned", "unflag": "unflagged",
		"resync": "resynced", "unlink": "unlinked", "whitelist": "whitelisted",
	} {
		if got := exampleAction(t, present); got != past {
			t.Errorf("core.order.%s: suggestion %q, want %q", present, got, past)
		}
	}
}
