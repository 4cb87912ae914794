package pluginacl

import (
	"slices"
	"strings"
)

// Check is one answer of Grants.Check: whether the brokers'
// ACLs let the plugin do one action on a set of resources.
type Check struct {
	// Action is what the plugin does: "produce", "consume", "create",
	// "delete", "join consumer group", "produce idempotently",
	// "dead-letter (produce)", "read dead letters", "manage ACLs and users".
	Action string `json:"action"`
	// Resource names the resources: "topic plugin.crm.*", "topic core.*",
	// "group * (outside plugin.crm.*)", "cluster", ...
	Resource string `json:"resource"`
	// Access is "allowed", "denied" or "partly" (for some of the
	// resources only).
	Access string `json:"access"`
	// Why names the deciding ACLs: "allow WRITE on topic plugin.crm.*".
	Why string `json:"why"`
}

// Access values of a Check.
const (
	accessAllowed = "allowed"
	accessDenied  = "denied"
	accessPartly  = "partly"
)

// Check evaluates the plugin's ACLs (its own and those of every user, for
// any host; ACLs of particular client hosts are left out) the way a Kafka
// authorizer does, for the operations a plugin performs: on its own topics
// and groups, on the topics it was granted, on core, other plugins' and
// dead-letter topics, and on the cluster. A DENY wins over an ALLOW;
// READ, WRITE, DELETE and ALTER imply DESCRIBE; creating needs CREATE on
// the cluster or the topics; an idempotent producer needs IDEMPOTENT_WRITE
// on the cluster or WRITE on some topic. It reflects the ACLs as they are
// (see Describe), not what was asked for when
// provisioning; `eventbus plugins check` prints it.
func (g Grants) Check() []Check {
	var acls []ACL
	for _, acl := range g.ACLs {
		if acl.Host == "*" {
			acls = append(acls, acl)
		}
	}
	own := "plugin." + g.PluginID + "."
	ownTopics := aclScope{resource: "TOPIC", name: own}
	var checks []Check
	add := func(action, resource string, v verdict) {
		for _, c := range checks {
			if c.Action == action && c.Resource == resource {
				return
			}
		}
		checks = append(checks, Check{Action: action, Resource: resource, Access: v.access, Why: v.why})
	}
	add("produce", "topic "+own+"*", evaluate(acls, ownTopics, "WRITE"))
	add("consume", "topic "+own+"*", evaluate(acls, ownTopics, "READ"))
	add("create", "topic "+own+"*", evaluateCreate(acls, ownTopics))
	add("delete", "topic "+own+"*", evaluate(acls, ownTopics, "DELETE"))
	add("join consumer group", "group "+own+"*", evaluate(acls, aclScope{resource: "GROUP", name: own}, "READ"))
	add("produce idempotently", "cluster", evaluateIdempotent(acls))
	// The topics granted besides its own.
	for _, acl := range acls {
		if acl.Resource != "TOPIC" || acl.Permission != "ALLOW" || strings.HasPrefix(acl.Name, own) {
			continue
		}
		scope := aclScope{resource: "TOPIC", name: acl.Name, exact: acl.Pattern == "LITERAL" && acl.Name != "*"}
		if acl.Pattern == "LITERAL" && acl.Name == "*" {
			scope.name = ""
		}
		if acl.Operation == "READ" || acl.Operation == "ALL" {
			add("consume", resourceLabel(acl), evaluate(acls, scope, "READ"))
		}
		if acl.Operation == "WRITE" || acl.Operation == "ALL" {
			add("produce", resourceLabel(acl), evaluate(acls, scope, "WRITE"))
		}
	}
	core := aclScope{resource: "TOPIC", name: "core."}
	others := aclScope{resource: "TOPIC", name: "plugin.", except: own}
	ownDLQ := aclScope{resource: "TOPIC", name: "dlq." + own}
	dlq := aclScope{resource: "TOPIC", name: "dlq.", except: "dlq." + own}
	add("dead-letter (produce)", "topic dlq."+own+"*", evaluate(acls, ownDLQ, "WRITE"))
	add("read dead letters", "topic dlq."+own+"*", evaluate(acls, ownDLQ, "READ"))
	add("consume", "topic core.*", evaluate(acls, core, "READ"))
	add("produce", "topic core.*", evaluate(acls, core, "WRITE"))
	add("consume", "topic plugin.* (other plugins)", evaluate(acls, others, "READ"))
	add("produce", "topic plugin.* (other plugins)", evaluate(acls, others, "WRITE"))
	add("consume", "topic dlq.* (outside dlq."+own+"*)", evaluate(acls, dlq, "READ"))
	add("produce", "topic dlq.* (outside dlq."+own+"*)", evaluate(acls, dlq, "WRITE"))
	add("create", "topic * (outside "+own+"*)", evaluateCreate(acls, aclScope{resource: "TOPIC", except: own}))
	add("join consumer group", "group * (outside "+own+"*)", evaluate(acls, aclScope{resource: "GROUP", except: own}, "READ"))
	add("manage ACLs and users", "cluster", evaluate(acls, clusterScope, "ALTER"))
	return checks
}

// aclScope is the resources a check asks about: those of one type whose
// names start with name (that are name, when exact), except those whose
// names start with except.
type aclScope struct {
	resource string
	name     string
	exact    bool
	except   string
}

// clusterScope is the cluster resource (Kafka names it kafka-cluster).
var clusterScope = aclScope{resource: "CLUSTER", name: "kafka-cluster", exact: true}

// covers reports whether acl matches every resource of s.
func (s aclScope) covers(acl ACL) bool {
	if acl.Resource != s.resource {
		return false
	}
	switch acl.Pattern {
	case "LITERAL":
		return acl.Name == "*" || (s.exact && acl.Name == s.name)
	case "PREFIXED":
		return strings.HasPrefix(s.name, acl.Name)
	}
	return false
}

// touches reports whether acl matches some resource of s.
func (s aclScope) touches(acl ACL) bool {
	if s.covers(acl) {
		return true
	}
	if acl.Resource != s.resource || s.exact {
		return false
	}
	excluded := s.except != "" && strings.HasPrefix(acl.Name, s.except)
	switch acl.Pattern {
	case "LITERAL", "PREFIXED":
		return strings.HasPrefix(acl.Name, s.name) && !excluded
	}
	return false
}

// opMatches reports whether acl applies to op: the same operation, ALL, or
// (for ALLOW) an operation that implies it, as in Kafka.
func opMatches(acl ACL, op string) bool {
	if acl.Operation == op || acl.Operation == "ALL" {
		return true
	}
	if acl.Permission != "ALLOW" {
		return false
	}
	switch op {
	case "DESCRIBE":
		return slices.Contains([]string{"READ", "WRITE", "DELETE", "ALTER"}, acl.Operation)
	case "DESCRIBE_CONFIGS":
		return acl.Operation == "ALTER_CONFIGS"
	}
	return false
}

type verdict struct{ access, why string }

// evaluate decides op on the resources of s: a DENY that covers them wins,
// then an ALLOW that covers them; ACLs matching only some make it partly.
func evaluate(acls []ACL, s aclScope, op string) verdict {
	var allowAll, denyAll *ACL
	var allowSome, denySome []string
	for i := range acls {
		acl := &acls[i]
		if !opMatches(*acl, op) || !s.touches(*acl) {
			continue
		}
		all := s.covers(*acl)
		switch {
		case acl.Permission == "DENY" && all:
			denyAll = acl
		case acl.Permission == "DENY":
			denySome = append(denySome, resourceLabel(*acl))
		case all && allowAll == nil:
			allowAll = acl
		case !all:
			allowSome = append(allowSome, resourceLabel(*acl))
		}
	}
	switch {
	case denyAll != nil:
		return verdict{accessDenied, aclSays(*denyAll)}
	case allowAll != nil && len(denySome) == 0:
		return verdict{accessAllowed, aclSays(*allowAll)}
	case allowAll != nil:
		return verdict{accessPartly, aclSays(*allowAll) + "; but denied on " + strings.Join(slices.Compact(denySome), ", ")}
	case len(allowSome) > 0:
		why := "only " + strings.Join(slices.Compact(allowSome), ", ")
		if len(denySome) > 0 {
			why += "; denied on " + strings.Join(slices.Compact(denySome), ", ")
		}
		return verdict{accessPartly, why}
	}
	return verdict{accessDenied, "no ACL allows it"}
}

// evaluateCreate decides creating topics of s: brokers allow it with CREATE
// on the cluster, or else CREATE on the topics.
func evaluateCreate(acls []ACL, s aclScope) verdict {
	if v := evaluate(acls, clusterScope, "CREATE"); v.access == accessAllowed {
		return v
	}
	return evaluate(acls, s, "CREATE")
}

// evaluateIdempotent decides an idempotent producer's InitProducerID:
// IDEMPOTENT_WRITE on the cluster, or (Kafka 3.0 and later) WRITE on any
// topic.
func evaluateIdempotent(acls []ACL) verdict {
	v := evaluate(acls, clusterScope, "IDEMPOTENT_WRITE")
	if v.access == accessAllowed {
		return v
	}
	for _, acl := range acls {
		if acl.Resource != "TOPIC" || acl.Permission != "ALLOW" || !opMatches(acl, "WRITE") {
			continue
		}
		s := aclScope{resource: "TOPIC", name: acl.Name, exact: acl.Pattern == "LITERAL"}
		if w := evaluate(acls, s, "WRITE"); w.access != accessDenied {
			return verdict{accessAllowed, aclSays(acl) + " (write on any topic is enough)"}
		}
	}
	return v
}

// aclSays describes an ACL: "allow WRITE on topic plugin.crm.*".
func aclSays(acl ACL) string {
	s := strings.ToLower(acl.Permission) + " " + acl.Operation + " on " + resourceLabel(acl)
	if acl.Principal == "User:*" {
		s += " (every user)"
	}
	return s
}

// resourceLabel names an ACL's resource: "topic core.user.created", "topic
// core.user.*" (prefixed), "group *", "cluster".
func resourceLabel(acl ACL) string {
	if acl.Resource == "CLUSTER" {
		return "cluster"
	}
	name := acl.Name
	if acl.Pattern == "PREFIXED" {
		name += "*"
	}
	return strings.ToLower(strings.ReplaceAll(acl.Resource, "_", " ")) + " " + name
}
