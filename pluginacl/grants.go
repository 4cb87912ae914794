package pluginacl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// grant is one ACL of a plugin's user (always ALLOW, host *).
type grant struct {
	Type    kmsg.ACLResourceType
	Name    string
	Pattern kadm.ACLPattern
	Op      kadm.ACLOperation
}

// String says the grant in words: "READ on prefixed topic "plugin.crm."".
func (g grant) String() string {
	return fmt.Sprintf("%s on %s %s %q", g.Op, strings.ToLower(g.Pattern.String()), strings.ToLower(g.Type.String()), g.Name)
}

// TransactionalIDPrefix starts the transactional IDs of the dead letter
// queue's owners: eventbus-dlq.<scheduler group>.<topic>.<partition>.
const TransactionalIDPrefix = "eventbus-dlq."

// grantsFor lists the grants of plugin pluginID: read, write, create and describe
// on its own topics (plugin.<id>.) and its dead-letter topics
// (dlq.plugin.<id>., which hold its failures on its own topics and on those
// it reads; it never writes another dlq.* topic), read on its groups,
// idempotent writes, write and describe on the transactional IDs of its
// dead-letter owners (eventbus-dlq.plugin.<id>.), and read and describe on coreTopics and pluginTopics
// (names, or prefixes ending in "."). validTopic checks a topic name. An
// entry that is not readable fails with an error naming its field
// ("CoreTopics", "PluginTopics").
func grantsFor(pluginID string, coreTopics, pluginTopics []string, validTopic func(string) error) ([]grant, error) {
	own := "plugin." + pluginID + "."
	var gs []grant
	for _, prefix := range []string{own, "dlq." + own} {
		for _, op := range []kadm.ACLOperation{kadm.OpRead, kadm.OpWrite, kadm.OpCreate, kadm.OpDescribe} {
			gs = append(gs, grant{kmsg.ACLResourceTypeTopic, prefix, kadm.ACLPatternPrefixed, op})
		}
	}
	gs = append(gs,
		grant{kmsg.ACLResourceTypeGroup, own, kadm.ACLPatternPrefixed, kadm.OpRead},
		grant{kmsg.ACLResourceTypeCluster, "kafka-cluster", kadm.ACLPatternLiteral, kadm.OpIdempotentWrite},
		// The owners of its dead-letter partitions, in a scheduler group of
		// its own (plugin.<id>.…), write in transactions of their own.
		grant{kmsg.ACLResourceTypeTransactionalId, TransactionalIDPrefix + own, kadm.ACLPatternPrefixed, kadm.OpWrite},
		grant{kmsg.ACLResourceTypeTransactionalId, TransactionalIDPrefix + own, kadm.ACLPatternPrefixed, kadm.OpDescribe},
	)
	readable := func(field, prefix string, names []string) error {
		for _, n := range names {
			pattern := kadm.ACLPatternLiteral
			if strings.HasSuffix(n, ".") {
				pattern = kadm.ACLPatternPrefixed
			}
			if err := checkReadable(n, prefix, own, validTopic); err != nil {
				return fmt.Errorf("Access.%s: %v", field, err)
			}
			for _, op := range []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe} {
				gs = append(gs, grant{kmsg.ACLResourceTypeTopic, n, pattern, op})
			}
		}
		return nil
	}
	if err := readable("CoreTopics", "core.", coreTopics); err != nil {
		return nil, err
	}
	if err := readable("PluginTopics", "plugin.", pluginTopics); err != nil {
		return nil, err
	}
	return gs, nil
}

// checkReadable checks one entry of the topics a plugin may read: a valid
// topic, or a prefix of lowercase segments ending in ".".
func checkReadable(name, prefix, own string, validTopic func(string) error) error {
	if !strings.HasPrefix(name, prefix) {
		return fmt.Errorf("%q must start with %q (e.g. %q)", name, prefix, prefix+"user.created")
	}
	if strings.HasPrefix(name, own) {
		return fmt.Errorf("%q is the plugin's own topic space, which it gets anyway", name)
	}
	if strings.HasSuffix(name, ".") {
		for _, seg := range strings.Split(strings.TrimSuffix(name, "."), ".") {
			if seg == "" || strings.Trim(seg, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
				return fmt.Errorf("prefix %q must be lowercase dot-separated segments ending in \".\" (e.g. %q)", name, prefix+"user.")
			}
		}
		return nil
	}
	return validTopic(name)
}

// replace gives user exactly grants: it creates them, then deletes every
// other ALLOW ACL of user (what an earlier provisioning granted).
func replace(ctx context.Context, adm *kadm.Client, user string, grants []grant) error {
	for _, g := range grants {
		res, err := adm.CreateACLs(ctx, builder(user, g))
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					err = fmt.Errorf("%w (%s)", r.Err, r.ErrMessage)
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("grant %v to user %s: %w", g, user, err)
		}
	}
	have, err := describe(ctx, adm, user)
	if err != nil {
		return err
	}
	wanted := map[grant]bool{}
	for _, g := range grants {
		wanted[g] = true
	}
	for _, g := range have {
		if wanted[g] {
			continue
		}
		if err := deleteACLs(ctx, adm, builder(user, g)); err != nil {
			return fmt.Errorf("revoke %v: %w", g, err)
		}
	}
	return nil
}

// revokeAll deletes every ACL of user, allow and deny, on any host and
// resource.
func revokeAll(ctx context.Context, adm *kadm.Client, user string) error {
	filter := kadm.NewACLs().
		Allow("User:" + user).AllowHosts().
		Deny("User:" + user).DenyHosts().
		AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Operations()
	if err := deleteACLs(ctx, adm, filter); err != nil {
		return fmt.Errorf("delete ACLs of user %s: %w", user, err)
	}
	return nil
}

// deleteACLs deletes the ACLs that b matches. Its error is the request's, or
// that of the first filter the brokers failed.
func deleteACLs(ctx context.Context, adm *kadm.Client, b *kadm.ACLBuilder) error {
	res, err := adm.DeleteACLs(ctx, b)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// deleteSCRAMs deletes user's credentials under each mechanism; a
// credential that does not exist is not an error.
func deleteSCRAMs(ctx context.Context, adm *kadm.Client, user string, mechs ...kadm.ScramMechanism) error {
	for _, mech := range mechs {
		res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: mech}}, nil)
		if err == nil {
			err = res.Error()
		}
		if err != nil && !errors.Is(err, kerr.ResourceNotFound) {
			return fmt.Errorf("delete %s credentials of user %s: %w", mech, user, err)
		}
	}
	return nil
}

func builder(user string, g grant) *kadm.ACLBuilder {
	b := kadm.NewACLs().Allow("User:" + user).AllowHosts("*").ResourcePatternType(g.Pattern).Operations(g.Op)
	switch g.Type {
	case kmsg.ACLResourceTypeTopic:
		b.Topics(g.Name)
	case kmsg.ACLResourceTypeGroup:
		b.Groups(g.Name)
	case kmsg.ACLResourceTypeCluster:
		b.Clusters()
	case kmsg.ACLResourceTypeTransactionalId:
		b.TransactionalIDs(g.Name)
	}
	return b
}

// describe lists the ALLOW ACLs of user on any host.
func describe(ctx context.Context, adm *kadm.Client, user string) ([]grant, error) {
	filter := kadm.NewACLs().
		Allow("User:" + user).AllowHosts("*").
		AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Operations()
	res, err := adm.DescribeACLs(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("describe ACLs of user %s: %w", user, err)
	}
	var gs []grant
	for _, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("describe ACLs of user %s: %w", user, r.Err)
		}
		for _, d := range r.Described {
			gs = append(gs, grant{d.Type, d.Name, d.Pattern, d.Operation})
		}
	}
	return gs, nil
}
