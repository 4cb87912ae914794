package pluginacl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/plexica/eventbus/internal/errs"
	"github.com/plexica/eventbus/topic"
)

// The SCRAM mechanisms of Access.Mechanism, as eventbus.SASLScramSHA256
// and eventbus.SASLScramSHA512 name them.
const (
	scramSHA256 = "SCRAM-SHA-256"
	scramSHA512 = "SCRAM-SHA-512"
)

// Access is what Provision grants a plugin besides its own topics and
// groups.
type Access struct {
	// Password is the plugin's SASL/SCRAM password. Required; generate a
	// long random one per plugin and hand it to the plugin's deployment
	// only.
	Password string
	// Mechanism is eventbus.SASLScramSHA256 (default) or
	// eventbus.SASLScramSHA512. The plugin connects with
	// eventbus.ClientConfig.SASL{Mechanism, Username: Username(id),
	// Password}.
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

// Username returns the SASL username of a plugin: "plugin.<id>". The
// prefix keeps plugin users apart from operators' and services' users (a
// plugin named "admin" is user "plugin.admin").
func Username(pluginID string) string { return "plugin." + pluginID }

// provisioning holds a lock per plugin ID: Provision calls for one plugin
// run one at a time in a process.
var provisioning sync.Map

// Provision creates or updates the plugin's SASL/SCRAM user (Username)
// and its ACLs, through adm (eventbus.Client.Admin gives one), so that the broker itself keeps the plugin
// in its lane whatever client it runs (see Broker-enforced isolation in the
// package documentation):
//
//   - topics with prefix "plugin.<id>.": read, write, create and describe;
//   - topics with prefix "dlq.plugin.<id>.": the same, for its dead letters
//     (see topic.DLQFor);
//   - consumer groups with prefix "plugin.<id>.": read;
//   - access.CoreTopics and access.PluginTopics: read and describe;
//   - the cluster: idempotent write (the producer's InitProducerID; newer
//     brokers accept topic write instead).
//
// The plugin can write nothing else: producing to core.*, another plugin's
// topic or any other dlq.* topic fails with TOPIC_AUTHORIZATION_FAILED.
// The prefixes end with a dot, so "crm" does not reach "plugin.crm-admin.".
// Grants are replaced: after Provision the plugin has exactly these
// ACLs, so calling it again with fewer topics revokes the others, and with
// a new password rotates it. Bad input fails as Validate says.
// The client must be allowed to alter SCRAM users and ACLs (a superuser).
//
// Concurrent calls for one plugin: in one process they run one after the
// other, each whole: the plugin ends with the password and grants of
// the call that ran last. The broker
// has no lock, so calls from different processes for one plugin may
// interleave and leave a mix (either password; grants of both, or one's
// minus what the other revoked). Provision a plugin from one place; a call
// repeated after such a race converges to its own grants.
func Provision(ctx context.Context, adm *kadm.Client, pluginID string, access Access) error {
	plan, err := planPlugin(pluginID, access)
	if err != nil {
		return fmt.Errorf("provision plugin: %w", err)
	}
	lock, _ := provisioning.LoadOrStore(pluginID, new(sync.Mutex))
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	user := Username(pluginID)
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: plan.mech, Password: access.Password}})
	if err == nil {
		err = altered.Error()
	}
	if err != nil {
		return fmt.Errorf("provision plugin %s: set SCRAM credentials of user %s: %w", pluginID, user, err)
	}
	// A password left under the other mechanism would outlive a rotation.
	if err := deleteSCRAMs(ctx, adm, user, plan.other); err != nil {
		return fmt.Errorf("provision plugin %s: %w", pluginID, err)
	}
	// Exactly these grants: what an earlier provisioning granted and this
	// one does not is revoked.
	if err := replace(ctx, adm, user, plan.grants); err != nil {
		return fmt.Errorf("provision plugin %s: %w", pluginID, err)
	}
	return nil
}

// Validate checks pluginID and access as Provision does, without a
// broker: a kebab-case ID (topic.ErrInvalidPluginID), a password, a
// supported mechanism, and readable topics that are valid names or
// prefixes outside the plugin's own space (eventbus.errs.InvalidConfig,
// naming the field).
func Validate(pluginID string, access Access) error {
	_, err := planPlugin(pluginID, access)
	return err
}

// pluginPlan is what Provision sets for a plugin.
type pluginPlan struct {
	mech   kadm.ScramMechanism // the password's mechanism
	other  kadm.ScramMechanism // the other one, whose credentials are deleted
	grants []grant             // the plugin's ACLs (see grantsFor)
}

// planPlugin checks pluginID and access (see Validate) and returns what
// Provision sets.
func planPlugin(pluginID string, access Access) (pluginPlan, error) {
	if err := topic.ValidatePluginID(pluginID); err != nil {
		return pluginPlan{}, err
	}
	if access.Password == "" {
		return pluginPlan{}, fmt.Errorf("%w: Access.Password is empty; give plugin %q a long random password", errs.InvalidConfig, pluginID)
	}
	mech, other, err := scramMechanisms(access.Mechanism)
	if err != nil {
		return pluginPlan{}, err
	}
	grants, err := grantsFor(pluginID, access.CoreTopics, access.PluginTopics, topic.Validate)
	if err != nil {
		return pluginPlan{}, fmt.Errorf("%w: %v", errs.InvalidConfig, err)
	}
	return pluginPlan{mech: mech, other: other, grants: grants}, nil
}

// Revoke deletes the plugin's SCRAM credentials and every ACL of its
// user (allow and deny, on any host): it can no longer authenticate, and
// connections it already holds can no longer read or write. Revoking a
// plugin that was never provisioned is a no-op.
func Revoke(ctx context.Context, adm *kadm.Client, pluginID string) error {
	if err := topic.ValidatePluginID(pluginID); err != nil {
		return fmt.Errorf("revoke plugin: %w", err)
	}
	user := Username(pluginID)
	if err := revokeAll(ctx, adm, user); err != nil {
		return fmt.Errorf("revoke plugin %s: %w", pluginID, err)
	}
	if err := deleteSCRAMs(ctx, adm, user, kadm.ScramSha256, kadm.ScramSha512); err != nil {
		return fmt.Errorf("revoke plugin %s: %w", pluginID, err)
	}
	return nil
}

// ACL is an ACL that applies to a plugin's user, as the brokers
// report it, in Kafka's names.
type ACL struct {
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

// Grants is a plugin's SASL user and the ACLs that apply to it, as the
// brokers report them: what Provision granted, and any ACL added
// by other means.
type Grants struct {
	// PluginID is the plugin's ID.
	PluginID string `json:"pluginId"`
	// Username is the plugin's SASL user, Username(PluginID).
	Username string `json:"username"`
	// Mechanisms are the SCRAM mechanisms the user has a password for
	// ("SCRAM-SHA-256", "SCRAM-SHA-512"); with none it cannot log in.
	Mechanisms []string `json:"mechanisms"`
	// ACLs are the user's own ACLs and those of principal "User:*", on any
	// host, allow and deny, sorted by principal, resource, name, pattern,
	// permission and operation.
	ACLs []ACL `json:"acls"`
}

// Provisioned reports whether the brokers know the plugin: its user has a
// password or ACLs of its own.
func (g Grants) Provisioned() bool {
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

// Describe reads the plugin's user and ACLs back from the brokers.
// A plugin the brokers do not know is no error: the result is not
// Provisioned. The client must be allowed to describe SCRAM users and ACLs
// (a superuser).
func Describe(ctx context.Context, adm *kadm.Client, pluginID string) (Grants, error) {
	if err := topic.ValidatePluginID(pluginID); err != nil {
		return Grants{}, fmt.Errorf("describe plugin: %w", err)
	}
	user := Username(pluginID)
	scrams, err := adm.DescribeUserSCRAMs(ctx, user)
	if err != nil {
		return Grants{}, fmt.Errorf("describe plugin %s: describe SCRAM credentials of user %s: %w", pluginID, user, err)
	}
	principals := []string{"User:" + user, "User:*"}
	acls, err := describeACLs(ctx, adm, kadm.NewACLs().Allow(principals...).AllowHosts().Deny(principals...).DenyHosts())
	if err != nil {
		return Grants{}, fmt.Errorf("describe plugin %s: %w", pluginID, err)
	}
	g := Grants{PluginID: pluginID, Username: user, ACLs: acls}
	for _, d := range scrams {
		if d.Err != nil && !errors.Is(d.Err, kerr.ResourceNotFound) {
			return Grants{}, fmt.Errorf("describe plugin %s: describe SCRAM credentials of user %s: %w", pluginID, user, d.Err)
		}
		g.Mechanisms = append(g.Mechanisms, mechanismNames(d.CredInfos)...)
	}
	return g, nil
}

// List reads every provisioned plugin back from the brokers, sorted by ID:
// the users named Username(id) for a valid plugin ID that have a password
// or ACLs, each with its ACLs as Describe returns them.
func List(ctx context.Context, adm *kadm.Client) ([]Grants, error) {
	scrams, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list plugins: describe SCRAM users: %w", err)
	}
	acls, err := describeACLs(ctx, adm, kadm.NewACLs().Allow().AllowHosts().Deny().DenyHosts())
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	byID := map[string]*Grants{}
	plugin := func(user string) *Grants {
		id, ok := strings.CutPrefix(user, "plugin.")
		if !ok || topic.ValidatePluginID(id) != nil {
			return nil
		}
		if byID[id] == nil {
			byID[id] = &Grants{PluginID: id, Username: user}
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
	var everyone []ACL
	for _, a := range acls {
		if a.Principal == "User:*" {
			everyone = append(everyone, a)
		} else if user, ok := strings.CutPrefix(a.Principal, "User:"); ok {
			if g := plugin(user); g != nil {
				g.ACLs = append(g.ACLs, a)
			}
		}
	}
	out := make([]Grants, 0, len(byID))
	for _, g := range byID {
		if !g.Provisioned() {
			continue
		}
		g.ACLs = append(g.ACLs, everyone...)
		sortACLs(g.ACLs)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Grants) int { return strings.Compare(a.PluginID, b.PluginID) })
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
func describeACLs(ctx context.Context, adm *kadm.Client, b *kadm.ACLBuilder) ([]ACL, error) {
	res, err := adm.DescribeACLs(ctx, b.AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations())
	if err != nil {
		return nil, fmt.Errorf("describe ACLs: %w", err)
	}
	var acls []ACL
	for _, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("describe ACLs: %w", r.Err)
		}
		for _, d := range r.Described {
			acls = append(acls, ACL{
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

func sortACLs(acls []ACL) {
	slices.SortFunc(acls, func(a, b ACL) int {
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
	case "", scramSHA256:
		return kadm.ScramSha256, kadm.ScramSha512, nil
	case scramSHA512:
		return kadm.ScramSha512, kadm.ScramSha256, nil
	}
	return 0, 0, fmt.Errorf("%w: Access.Mechanism %q is not supported; use %s (default) or %s",
		errs.InvalidConfig, name, scramSHA256, scramSHA512)
}
