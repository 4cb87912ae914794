package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/plexica/eventbus/internal/pluginacl"
)

// PluginAccess is what TopicManager.ProvisionPlugin grants a plugin besides
// its own topics and groups.
type PluginAccess struct {
	// Password is the plugin's SASL/SCRAM password. Required; generate a
	// long random one per plugin and hand it to the plugin's deployment
	// only.
	Password string
	// Mechanism is SASLScramSHA256 (default) or SASLScramSHA512. The plugin
	// connects with ClientConfig.SASL{Mechanism, Username:
	// PluginUsername(id), Password}.
	Mechanism string
	// CoreTopics are the core topics the plugin may read: full names
	// ("core.user.created") or prefixes ending in "." ("core.user." for
	// every user event; "core." for all core events).
	CoreTopics []string
	// PluginTopics are other plugins' topics the plugin may read: full
	// names ("plugin.crm.contact.created") or prefixes ending in "."
	// ("plugin.crm.").
	PluginTopics []string
}

// PluginUsername returns the SASL username of a plugin: "plugin.<id>". The
// prefix keeps plugin users apart from operators' and services' users (a
// plugin named "admin" is user "plugin.admin").
func PluginUsername(pluginID string) string { return "plugin." + pluginID }

// ProvisionPlugin creates or updates the plugin's SASL/SCRAM user
// (PluginUsername) and its ACLs, so that the broker itself keeps the plugin
// in its lane whatever client it runs (see Broker-enforced isolation in the
// package documentation):
//
//   - topics with prefix "plugin.<id>.": read, write, create and describe;
//   - topics with prefix "dlq.plugin.<id>.": the same, for its dead letters
//     (see DLQTopicFor);
//   - consumer groups with prefix "plugin.<id>.": read;
//   - access.CoreTopics and access.PluginTopics: read and describe;
//   - the cluster: idempotent write (the producer's InitProducerID; newer
//     brokers accept topic write instead).
//
// The plugin can write nothing else: producing to core.*, another plugin's
// topic or any other dlq.* topic fails with TOPIC_AUTHORIZATION_FAILED.
// The prefixes end with a dot, so "crm" does not reach "plugin.crm-admin.".
// Grants are replaced: after ProvisionPlugin the plugin has exactly these
// ACLs, so calling it again with fewer topics revokes the others, and with
// a new password rotates it. Bad input fails as ValidatePluginAccess says.
// The client must be allowed to alter SCRAM users and ACLs (a superuser).
//
// Concurrent calls for one plugin: on one TopicManager they run one after
// the other, each whole: the plugin ends with the password and grants of
// the call that ran last. The broker
// has no lock, so calls from different processes for one plugin may
// interleave and leave a mix (either password; grants of both, or one's
// minus what the other revoked). Provision a plugin from one place; a call
// repeated after such a race converges to its own grants.
func (m *TopicManager) ProvisionPlugin(ctx context.Context, pluginID string, access PluginAccess) error {
	plan, err := planPlugin(pluginID, access)
	if err != nil {
		return fmt.Errorf("provision plugin: %w", err)
	}
	lock, _ := m.provisioning.LoadOrStore(pluginID, new(sync.Mutex))
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	adm, err := m.client.Admin()
	if err != nil {
		return err
	}
	user := PluginUsername(pluginID)
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: plan.mech, Password: access.Password}})
	if err == nil {
		err = altered.Error()
	}
	if err != nil {
		return fmt.Errorf("provision plugin %s: set SCRAM credentials of user %s: %w", pluginID, user, err)
	}
	// A password left under the other mechanism would outlive a rotation.
	if err := pluginacl.DeleteSCRAMs(ctx, adm, user, plan.other); err != nil {
		return fmt.Errorf("provision plugin %s: %w", pluginID, err)
	}
	// Exactly these grants: what an earlier provisioning granted and this
	// one does not is revoked.
	if err := pluginacl.Replace(ctx, adm, user, plan.grants); err != nil {
		return fmt.Errorf("provision plugin %s: %w", pluginID, err)
	}
	return nil
}

// ValidatePluginAccess checks pluginID and access as ProvisionPlugin does,
// without a broker: a kebab-case ID (ErrInvalidPluginID), a password, a
// supported mechanism, and readable topics that are valid names or prefixes
// outside the plugin's own space (ErrInvalidConfig, naming the field).
func ValidatePluginAccess(pluginID string, access PluginAccess) error {
	_, err := planPlugin(pluginID, access)
	return err
}

// pluginPlan is what ProvisionPlugin sets for a plugin.
type pluginPlan struct {
	mech   kadm.ScramMechanism // the password's mechanism
	other  kadm.ScramMechanism // the other one, whose credentials are deleted
	grants []pluginacl.Grant   // the plugin's ACLs (see pluginacl.For)
}

// planPlugin checks pluginID and access (see ValidatePluginAccess) and
// returns what ProvisionPlugin sets.
func planPlugin(pluginID string, access PluginAccess) (pluginPlan, error) {
	if err := ValidatePluginID(pluginID); err != nil {
		return pluginPlan{}, err
	}
	if access.Password == "" {
		return pluginPlan{}, fmt.Errorf("%w: PluginAccess.Password is empty; give plugin %q a long random password", ErrInvalidConfig, pluginID)
	}
	mech, other, err := scramMechanisms(access.Mechanism)
	if err != nil {
		return pluginPlan{}, err
	}
	grants, err := pluginacl.For(pluginID, access.CoreTopics, access.PluginTopics, defaultTopicRules.ValidateTopic)
	if err != nil {
		return pluginPlan{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return pluginPlan{mech: mech, other: other, grants: grants}, nil
}

// RevokePlugin deletes the plugin's SCRAM credentials and every ACL of its
// user (allow and deny, on any host): it can no longer authenticate, and
// connections it already holds can no longer read or write. Revoking a
// plugin that was never provisioned is a no-op.
func (m *TopicManager) RevokePlugin(ctx context.Context, pluginID string) error {
	if err := ValidatePluginID(pluginID); err != nil {
		return fmt.Errorf("revoke plugin: %w", err)
	}
	adm, err := m.client.Admin()
	if err != nil {
		return err
	}
	user := PluginUsername(pluginID)
	if err := pluginacl.RevokeAll(ctx, adm, user); err != nil {
		return fmt.Errorf("revoke plugin %s: %w", pluginID, err)
	}
	if err := pluginacl.DeleteSCRAMs(ctx, adm, user, kadm.ScramSha256, kadm.ScramSha512); err != nil {
		return fmt.Errorf("revoke plugin %s: %w", pluginID, err)
	}
	return nil
}

// PluginACL is an ACL that applies to a plugin's user, as the brokers
// report it, in Kafka's names.
type PluginACL struct {
	// Principal is the plugin's user, "User:plugin.<id>", or "User:*" for
	// an ACL of every user.
	Principal string `json:"principal"`
	// Host is the client host the ACL applies to; "*" is any host.
	Host string `json:"host"`
	// Permission is "ALLOW" or "DENY".
	Permission string `json:"permission"`
	// Operation is "READ", "WRITE", "CREATE", "DELETE", "ALTER",
	// "DESCRIBE", "IDEMPOTENT_WRITE", "ALL", ...
	Operation string `json:"operation"`
	// Resource is "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID" or
	// "DELEGATION_TOKEN".
	Resource string `json:"resource"`
	// Pattern is "LITERAL" (the resource named Name; "*" is every one) or
	// "PREFIXED" (every resource whose name starts with Name).
	Pattern string `json:"pattern"`
	// Name is the resource's name or prefix; "kafka-cluster" for the
	// cluster.
	Name string `json:"name"`
}

// PluginGrants is a plugin's SASL user and the ACLs that apply to it, as
// the brokers report them: what ProvisionPlugin granted, and any ACL added
// by other means.
type PluginGrants struct {
	// PluginID is the plugin's ID.
	PluginID string `json:"pluginId"`
	// Username is the plugin's SASL user, PluginUsername(PluginID).
	Username string `json:"username"`
	// Mechanisms are the SCRAM mechanisms the user has a password for
	// ("SCRAM-SHA-256", "SCRAM-SHA-512"); with none it cannot log in.
	Mechanisms []string `json:"mechanisms"`
	// ACLs are the user's own ACLs and those of principal "User:*", on any
	// host, allow and deny, sorted by principal, resource, name, pattern,
	// permission and operation.
	ACLs []PluginACL `json:"acls"`
}

// Provisioned reports whether the brokers know the plugin: its user has a
// password or ACLs of its own.
func (g PluginGrants) Provisioned() bool {
	if len(g.Mechanisms) > 0 {
		return true
	}
	for _, a := range g.ACLs {
		if a.Principal == "User:"+g.Username {
			return true
		}
	}
	return false
}

// DescribePlugin reads the plugin's user and ACLs back from the brokers.
// A plugin the brokers do not know is no error: the result is not
// Provisioned. The client must be allowed to describe SCRAM users and ACLs
// (a superuser).
func (m *TopicManager) DescribePlugin(ctx context.Context, pluginID string) (PluginGrants, error) {
	if err := ValidatePluginID(pluginID); err != nil {
		return PluginGrants{}, fmt.Errorf("describe plugin: %w", err)
	}
	adm, err := m.client.Admin()
	if err != nil {
		return PluginGrants{}, err
	}
	user := PluginUsername(pluginID)
	scrams, err := adm.DescribeUserSCRAMs(ctx, user)
	if err != nil {
		return PluginGrants{}, fmt.Errorf("describe plugin %s: describe SCRAM credentials of user %s: %w", pluginID, user, err)
	}
	principals := []string{"User:" + user, "User:*"}
	acls, err := describeACLs(ctx, adm, kadm.NewACLs().Allow(principals...).AllowHosts().Deny(principals...).DenyHosts())
	if err != nil {
		return PluginGrants{}, fmt.Errorf("describe plugin %s: %w", pluginID, err)
	}
	g := PluginGrants{PluginID: pluginID, Username: user, ACLs: acls}
	for _, d := range scrams {
		if d.Err != nil && !errors.Is(d.Err, kerr.ResourceNotFound) {
			return PluginGrants{}, fmt.Errorf("describe plugin %s: describe SCRAM credentials of user %s: %w", pluginID, user, d.Err)
		}
		g.Mechanisms = append(g.Mechanisms, mechanismNames(d.CredInfos)...)
	}
	return g, nil
}

// ListPlugins reads every provisioned plugin back from the brokers, sorted
// by ID: the users named PluginUsername(id) for a valid plugin ID that have
// a password or ACLs, each with its ACLs as DescribePlugin returns them.
func (m *TopicManager) ListPlugins(ctx context.Context) ([]PluginGrants, error) {
	adm, err := m.client.Admin()
	if err != nil {
		return nil, err
	}
	scrams, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list plugins: describe SCRAM users: %w", err)
	}
	acls, err := describeACLs(ctx, adm, kadm.NewACLs().Allow().AllowHosts().Deny().DenyHosts())
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	byID := map[string]*PluginGrants{}
	plugin := func(user string) *PluginGrants {
		id, ok := strings.CutPrefix(user, "plugin.")
		if !ok || ValidatePluginID(id) != nil {
			return nil
		}
		if byID[id] == nil {
			byID[id] = &PluginGrants{PluginID: id, Username: user}
		}
		return byID[id]
	}
	for _, d := range scrams.Sorted() {
		if d.Err != nil && !errors.Is(d.Err, kerr.ResourceNotFound) {
			return nil, fmt.Errorf("list plugins: describe SCRAM credentials of user %s: %w", d.User, d.Err)
		}
		if g := plugin(d.User); g != nil {
			g.Mechanisms = append(g.Mechanisms, mechanismNames(d.CredInfos)...)
		}
	}
	var everyone []PluginACL
	for _, a := range acls {
		if a.Principal == "User:*" {
			everyone = append(everyone, a)
		} else if user, ok := strings.CutPrefix(a.Principal, "User:"); ok {
			if g := plugin(user); g != nil {
				g.ACLs = append(g.ACLs, a)
			}
		}
	}
	out := make([]PluginGrants, 0, len(byID))
	for _, g := range byID {
		if !g.Provisioned() {
			continue
		}
		g.ACLs = append(g.ACLs, everyone...)
		sortACLs(g.ACLs)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b PluginGrants) int { return strings.Compare(a.PluginID, b.PluginID) })
	return out, nil
}

func mechanismNames(infos []kadm.CredInfo) []string {
	var names []string
	for _, c := range infos {
		names = append(names, c.Mechanism.String())
	}
	slices.Sort(names)
	return names
}

// describeACLs lists the ACLs the principal and host filters of b select,
// on any resource and operation, sorted.
func describeACLs(ctx context.Context, adm *kadm.Client, b *kadm.ACLBuilder) ([]PluginACL, error) {
	res, err := adm.DescribeACLs(ctx, b.AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations())
	if err != nil {
		return nil, fmt.Errorf("describe ACLs: %w", err)
	}
	var acls []PluginACL
	for _, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("describe ACLs: %w", r.Err)
		}
		for _, d := range r.Described {
			acls = append(acls, PluginACL{
				Principal:  d.Principal,
				Host:       d.Host,
				Permission: d.Permission.String(),
				Operation:  d.Operation.String(),
				Resource:   d.Type.String(),
				Pattern:    d.Pattern.String(),
				Name:       d.Name,
			})
		}
	}
	sortACLs(acls)
	return slices.Compact(acls), nil
}

func sortACLs(acls []PluginACL) {
	slices.SortFunc(acls, func(a, b PluginACL) int {
		for _, c := range [][2]string{
			{a.Principal, b.Principal}, {a.Resource, b.Resource}, {a.Name, b.Name}, {a.Pattern, b.Pattern},
			{a.Permission, b.Permission}, {a.Operation, b.Operation}, {a.Host, b.Host},
		} {
			if n := strings.Compare(c[0], c[1]); n != 0 {
				return n
			}
		}
		return 0
	})
}

func scramMechanisms(name string) (use, other kadm.ScramMechanism, err error) {
	switch strings.ToUpper(name) {
	case "", SASLScramSHA256:
		return kadm.ScramSha256, kadm.ScramSha512, nil
	case SASLScramSHA512:
		return kadm.ScramSha512, kadm.ScramSha256, nil
	}
	return 0, 0, fmt.Errorf("%w: PluginAccess.Mechanism %q is not supported; use %s (default) or %s",
		ErrInvalidConfig, name, SASLScramSHA256, SASLScramSHA512)
}
