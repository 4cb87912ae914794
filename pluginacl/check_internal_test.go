package pluginacl

import (
	"strings"
	"testing"
)

// TestCheckPluginEvaluation covers the ACL semantics Check applies beyond
// what provisioning grants: wildcards, ALL, implied DESCRIBE, deny
// precedence, other hosts and every user's ACLs.
func TestCheckPluginEvaluation(t *testing.T) {
	acl := func(perm, op, res, pattern, name string) ACL {
		return ACL{Principal: "User:plugin.crm", Host: "*", Permission: perm, Operation: op, Resource: res, Pattern: pattern, Name: name}
	}
	g := Grants{PluginID: "crm", Username: "plugin.crm", ACLs: []ACL{
		acl("ALLOW", "ALL", "TOPIC", "PREFIXED", "plugin."),
		acl("DENY", "WRITE", "TOPIC", "PREFIXED", "plugin.billing."),
		acl("ALLOW", "CREATE", "CLUSTER", "LITERAL", "kafka-cluster"),
		acl("ALLOW", "READ", "GROUP", "LITERAL", "*"),
		acl("DENY", "READ", "GROUP", "LITERAL", "audit"),
		{Principal: "User:*", Host: "*", Permission: "ALLOW", Operation: "READ", Resource: "TOPIC", Pattern: "LITERAL", Name: "core.tenant.created"},
		{Principal: "User:plugin.crm", Host: "10.0.0.1", Permission: "ALLOW", Operation: "WRITE", Resource: "TOPIC", Pattern: "PREFIXED", Name: "core."},
	}}
	got := map[string]Check{}
	for _, c := range g.Check() {
		got[c.Action+" "+c.Resource] = c
	}
	for key, want := range map[string]string{
		"produce topic plugin.crm.*":                         accessAllowed, // ALL on a shorter prefix
		"produce topic plugin.* (other plugins)":             accessPartly,  // but not plugin.billing.
		"consume topic plugin.* (other plugins)":             accessAllowed,
		"create topic * (outside plugin.crm.*)":              accessAllowed, // cluster CREATE
		"join consumer group group * (outside plugin.crm.*)": accessPartly,
		"join consumer group group plugin.crm.*":             accessAllowed,
		"consume topic core.tenant.created":                  accessAllowed, // every user's ACL
		"consume topic core.*":                               accessPartly,
		"produce topic core.*":                               accessDenied,  // only from one host
		"produce idempotently cluster":                       accessAllowed, // write on a topic is enough
		"manage ACLs and users cluster":                      accessDenied,
	} {
		if got[key].Access != want {
			t.Errorf("%s: %+v, want %s", key, got[key], want)
		}
	}
	if why := got["consume topic core.tenant.created"].Why; !strings.Contains(why, "(every user)") {
		t.Errorf("why of an every-user ACL: %q", why)
	}
	if why := got["produce topic plugin.* (other plugins)"].Why; why != "allow ALL on topic plugin.*; but denied on topic plugin.billing.*" {
		t.Errorf("why of a partial deny: %q", why)
	}
	// DESCRIBE is implied by READ for ALLOW, but a DENY of READ does not deny DESCRIBE.
	s := aclScope{resource: "TOPIC", name: "core.user.created", exact: true}
	if v := evaluate([]ACL{acl("ALLOW", "READ", "TOPIC", "LITERAL", "core.user.created")}, s, "DESCRIBE"); v.access != accessAllowed {
		t.Errorf("implied DESCRIBE: %+v", v)
	}
	if v := evaluate([]ACL{acl("ALLOW", "DESCRIBE", "TOPIC", "LITERAL", "*"), acl("DENY", "READ", "TOPIC", "LITERAL", "*")}, s, "DESCRIBE"); v.access != accessAllowed {
		t.Errorf("DESCRIBE with READ denied: %+v", v)
	}
}
