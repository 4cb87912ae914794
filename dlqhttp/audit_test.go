package dlqhttp_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/plexica/eventbus/audit"
)

// TestAuditTrail: every retry and delete, and every retry of a topic, is
// in the audit trail with the name of the token that asked, the entry's
// tenant and the outcome; reads and refused requests are not.
func TestAuditTrail(t *testing.T) {
	f := newFixture(t)
	f.do(t, "POST", "/api/dlq/events/"+f.ids["secret"]+"/retry", namedToken).want(t, http.StatusAccepted, nil)
	f.do(t, "DELETE", "/api/dlq/events/"+f.ids["a2"], tokenA).want(t, http.StatusNoContent, nil)
	// Another tenant's entry: 404, nothing done, nothing recorded.
	f.do(t, "DELETE", "/api/dlq/events/"+f.ids["b1"], tokenA).wantError(t, http.StatusNotFound, "not_found")
	f.do(t, "POST", "/api/dlq/retry/topic/"+f.topicB, namedToken).want(t, http.StatusOK, nil)
	f.do(t, "GET", "/api/dlq/events/"+f.ids["b1"], namedToken).want(t, http.StatusOK, nil)

	page, err := f.audit.List(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ actor, actorTenant, action, target, tenant, outcome, topic, group string }
	var got []row
	for _, e := range page.Items {
		got = append(got, row{e.Actor, e.ActorTenant, e.Action, e.Target, e.TenantID, e.Outcome, e.Detail["topic"], e.Detail["group"]})
	}
	want := []row{
		{namedAdmin, "", audit.ActionDLQRetryTopic, f.topicB, "", audit.OutcomeOK, "", ""},
		{tokenNameOf(t, f, tokenA), f.tenantA, audit.ActionDLQDelete, f.ids["a2"], f.tenantA, audit.OutcomeOK, f.topicA, f.group},
		{namedAdmin, "", audit.ActionDLQRetry, f.ids["secret"], f.tenantA, audit.OutcomeOK, f.topicA, f.group},
	}
	if len(got) != len(want) {
		t.Fatalf("the trail holds %d entries, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if page.Items[0].Detail["succeeded"] != "1" {
		t.Errorf("the topic retry's detail %v, want succeeded 1", page.Items[0].Detail)
	}
}

// tokenNameOf is the name the trail gives an unnamed token: its
// fingerprint, token-<8 hex digits>, never the token.
func tokenNameOf(t *testing.T, f *fixture, token string) string {
	t.Helper()
	page, err := f.audit.List(context.Background(), audit.Query{Action: audit.ActionDLQDelete, Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("no delete in the trail: %v", err)
	}
	name := page.Items[0].Actor
	if len(name) != len("token-")+8 || name[:6] != "token-" || name == token {
		t.Errorf("an unnamed token is recorded as %q, want token-<8 hex digits>", name)
	}
	return name
}
