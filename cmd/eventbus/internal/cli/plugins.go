package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/pluginacl"
	"github.com/plexica/eventbus/topic"
)

// maxPasswordBytes bounds what provision reads as a password: more is a
// wrong file, not a password.
const maxPasswordBytes = 4096

func (a *app) pluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "Provision, list, check and revoke plugins' broker users and ACLs",
		Long: `Manage what plugins may do on the brokers. Each plugin gets a SASL/SCRAM user,
plugin.<id>, and ACLs that keep it in its lane whatever client it runs:

  topics plugin.<id>.*            read, write, create, describe
  topics dlq.plugin.<id>.*        read, write, create, describe (its dead letters)
  consumer groups plugin.<id>.*   read (every group it joins must start so)
  the cluster                     idempotent write (for the producer)
  --core-topics, --plugin-topics  read, describe

The brokers deny everything else: writing core.*, another plugin's topics or
any other dlq.* topic fails with TOPIC_AUTHORIZATION_FAILED. These commands need brokers that
enforce ACLs and a connection allowed to manage SCRAM users and ACLs (a
superuser). list and check read users and ACLs back from the brokers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("plugins needs a subcommand: provision ID, revoke ID, list or check ID")
		},
	}
	cmd.AddCommand(a.pluginsProvisionCmd(), a.pluginsRevokeCmd(), a.pluginsListCmd(), a.pluginsCheckCmd())
	return cmd
}

func (a *app) pluginsProvisionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provision ID (--password-stdin | --password-file FILE)",
		Short: "Create or update a plugin's SASL user and ACLs",
		Long: `Create the SASL/SCRAM user plugin.<ID> with the password read from standard
input or a file (never from a flag: command lines end up in shell histories
and process lists), and grant it its own topics and groups plus read access to
the topics of --core-topics and --plugin-topics. A topic entry is a full name
(core.user.created) or a prefix ending in "." (core.user. for every user
event, core. for all core events).

Provisioning again replaces: the plugin then has the new password and exactly
the grants of this call, so leaving a topic out revokes it. What the brokers
hold afterwards is printed.`,
		Example: `  (umask 077; openssl rand -base64 32 > crm.password)
  eventbus plugins provision crm --password-file crm.password --core-topics core.user.,core.tenant.created
  vault kv get -field=password secret/plugins/analytics |
    eventbus plugins provision analytics --password-stdin --core-topics core. --plugin-topics plugin.crm.`,
		Args: argsUsage(1, 1, "one plugin ID", "eventbus plugins provision crm --password-stdin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			id := args[0]
			if err := topic.ValidatePluginID(id); err != nil {
				return usageErrorf("%v", err)
			}
			password, err := a.readPassword(cmd)
			if err != nil {
				return err
			}
			access := pluginacl.Access{Password: password}
			access.Mechanism, _ = f.GetString("scram-mechanism")
			access.Mechanism = strings.ToUpper(access.Mechanism)
			access.CoreTopics, _ = f.GetStringSlice("core-topics")
			access.PluginTopics, _ = f.GetStringSlice("plugin-topics")
			if err := pluginacl.Validate(id, access); err != nil {
				return usageErrorf("%s", accessFlagNames.Replace(err.Error()))
			}
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			return a.pluginsProvision(cmd.Context(), bs, id, access)
		},
	}
	f := cmd.Flags()
	f.StringSlice("core-topics", nil, `core topics the plugin may read, comma separated: names or prefixes ending in "." (core.user.)`)
	f.StringSlice("plugin-topics", nil, `other plugins' topics the plugin may read: names or prefixes ending in "." (plugin.crm.)`)
	f.Bool("password-stdin", false, "read the plugin's password from standard input (one line)")
	f.String("password-file", "", "read the plugin's password from this file (one line; keep it mode 600)")
	f.String("scram-mechanism", eventbus.SASLScramSHA256, "SCRAM mechanism of the plugin's password: "+eventbus.SASLScramSHA256+" or "+eventbus.SASLScramSHA512)
	addBrokerFlags(cmd)
	return cmd
}

// accessFlagNames turns the library's pluginacl.Access field names into the
// flags that set them.
var accessFlagNames = strings.NewReplacer(
	"invalid configuration: Access.CoreTopics", "--core-topics",
	"invalid configuration: Access.PluginTopics", "--plugin-topics",
	"invalid configuration: Access.Mechanism", "--scram-mechanism",
)

// readPassword reads provision's password from --password-stdin or
// --password-file: one line, its line break dropped.
func (a *app) readPassword(cmd *cobra.Command) (string, error) {
	f := cmd.Flags()
	fromStdin, _ := f.GetBool("password-stdin")
	file, _ := f.GetString("password-file")
	var (
		raw    []byte
		source string
	)
	switch {
	case fromStdin && file != "":
		return "", usageErrorf("give the password one way only: --password-stdin or --password-file")
	case fromStdin:
		source = "the password on standard input"
		var err error
		if raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxPasswordBytes+1)); err != nil {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
	case file != "":
		source = "--password-file " + file
		info, err := os.Stat(file)
		if err == nil && info.IsDir() {
			err = errors.New("is a directory")
		}
		if err == nil {
			raw, err = os.ReadFile(file)
		}
		if err != nil {
			return "", usageErrorf("--password-file: %v", err)
		}
		if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
			a.log.Warn("eventbus: the password file can be read by other users; chmod 600 it", "file", file, "mode", fmt.Sprintf("%o", info.Mode().Perm()))
		}
	default:
		return "", usageErrorf("plugins provision needs the plugin's password: pipe it to --password-stdin or name a file with --password-file (never on the command line)")
	}
	password := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	switch {
	case len(raw) > maxPasswordBytes:
		return "", usageErrorf("%s is longer than %d bytes; give the password alone", source, maxPasswordBytes)
	case password == "":
		return "", usageErrorf("%s is empty; give the plugin a long random password (e.g. openssl rand -base64 32)", source)
	case strings.ContainsAny(password, "\r\n"):
		return "", usageErrorf("%s has more than one line; give the password alone on one line", source)
	}
	return password, nil
}

func (a *app) pluginsProvision(ctx context.Context, bs brokerSettings, id string, access pluginacl.Access) error {
	client, before, err := a.connectPlugin(ctx, bs, id)
	if err != nil {
		return err
	}
	defer client.Close()
	adm, err := client.Admin()
	if err != nil {
		return err
	}
	if err := pluginacl.Provision(ctx, adm, id, access); err != nil {
		return pluginsHint(err)
	}
	after, err := pluginacl.Describe(ctx, adm, id)
	if err != nil {
		return pluginsHint(err)
	}
	verb := "provisioned"
	if before.Provisioned() {
		verb = "re-provisioned (new password, grants replaced)"
	}
	fmt.Fprintf(a.stdout, "eventbus: %s plugin %s as SASL user %s (%s); the brokers now hold:\n", verb, id, after.Username, mechanisms(after))
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tALLOW\tDENY")
	for _, r := range aclRows(after) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.resource, r.allow, r.deny)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	mech := access.Mechanism
	if mech == "" {
		mech = eventbus.SASLScramSHA256
	}
	fmt.Fprintf(a.stdout, "The plugin logs in with SASL %s as %s; its consumer groups must start with plugin.%s.\n", mech, after.Username, id)
	return nil
}

func (a *app) pluginsRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Delete a plugin's SASL user and ACLs",
		Long: `Delete the plugin's SCRAM credentials and every ACL of its user: it can no
longer log in, and connections it still holds can no longer read or write. Its
topics and their events stay.`,
		Example: `  eventbus plugins revoke crm`,
		Args:    argsUsage(1, 1, "one plugin ID", "eventbus plugins revoke crm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := a.pluginTarget(cmd, args[0])
			if err != nil {
				return err
			}
			return a.pluginsRevoke(cmd.Context(), bs, args[0])
		},
	}
	addBrokerFlags(cmd)
	return cmd
}

// pluginTarget checks the plugin ID a subcommand was given and resolves the
// brokers that hold the plugin's user and ACLs.
func (a *app) pluginTarget(cmd *cobra.Command, id string) (brokerSettings, error) {
	if err := topic.ValidatePluginID(id); err != nil {
		return brokerSettings{}, usageErrorf("%v", err)
	}
	return a.resolveBrokers(cmd)
}

func (a *app) pluginsRevoke(ctx context.Context, bs brokerSettings, id string) error {
	client, before, err := a.connectPlugin(ctx, bs, id)
	if err != nil {
		return err
	}
	defer client.Close()
	if !before.Provisioned() {
		return notProvisioned(before)
	}
	adm, err := client.Admin()
	if err != nil {
		return err
	}
	if err := pluginacl.Revoke(ctx, adm, id); err != nil {
		return pluginsHint(err)
	}
	after, err := pluginacl.Describe(ctx, adm, id)
	if err != nil {
		return pluginsHint(err)
	}
	if after.Provisioned() {
		return fmt.Errorf("revoke plugin %s: the brokers still hold %d ACL(s) or credentials of user %s; see `eventbus plugins check %s`",
			id, len(ownACLs(after)), after.Username, id)
	}
	fmt.Fprintf(a.stdout, "eventbus: revoked plugin %s: deleted user %s (%s) and its %d ACL(s); it can no longer log in\n",
		id, before.Username, mechanisms(before), len(ownACLs(before)))
	return nil
}

func (a *app) pluginsListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List provisioned plugins with their users and ACLs",
		Long: `List the plugins the brokers know (SCRAM users named plugin.<id> and the users
of ACLs), each with its SCRAM mechanisms and its ACLs, read back from the
brokers: the operations allowed and denied per resource. A prefixed ACL is shown
as NAME*; ACLs of principal User:* apply to every plugin and are marked so.`,
		Example: `  eventbus plugins list
  eventbus plugins list --json`,
		Args: argsUsage(0, 0, "no arguments", "eventbus plugins list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			asJSON, _ := cmd.Flags().GetBool("json")
			return a.pluginsList(cmd.Context(), bs, asJSON)
		},
	}
	cmd.Flags().Bool("json", false, "print the plugins and their ACLs as JSON")
	addBrokerFlags(cmd)
	return cmd
}

func (a *app) pluginsList(ctx context.Context, bs brokerSettings, asJSON bool) error {
	client, err := a.connect(ctx, bs, "eventbus-plugins")
	if err != nil {
		return err
	}
	defer client.Close()
	adm, err := client.Admin()
	if err != nil {
		return err
	}
	plugins, err := pluginacl.List(ctx, adm)
	if err != nil {
		return pluginsHint(err)
	}
	if asJSON {
		return writeJSON(a.stdout, plugins)
	}
	if len(plugins) == 0 {
		fmt.Fprintln(a.stdout, "no plugins provisioned: provision one with `eventbus plugins provision ID --password-stdin`")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUGIN\tUSER\tSCRAM\tRESOURCE\tALLOW\tDENY")
	for _, p := range plugins {
		rows := aclRows(p)
		if len(rows) == 0 {
			rows = []aclRow{{resource: "-", allow: "-", deny: "-"}}
		}
		for i, r := range rows {
			user, mechs := "", ""
			if i == 0 {
				user, mechs = p.Username, mechanisms(p)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.PluginID, user, mechs, r.resource, r.allow, r.deny)
		}
	}
	return tw.Flush()
}

func (a *app) pluginsCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check ID",
		Short: "Show what a plugin may and may not do, from the ACLs on the brokers",
		Long: `Read the plugin's ACLs back from the brokers (its own and those of User:*) and
show, for the operations that matter to a plugin, whether the brokers allow
them: on its own topics and groups, on the topics it was granted, on core,
other plugins' and dead-letter topics, and on the cluster. "partly" means for
some of the resources only; WHY names the deciding ACLs. This reflects the
ACLs as they are, not what was asked for when provisioning.`,
		Example: `  eventbus plugins check crm
  eventbus plugins check crm --json`,
		Args: argsUsage(1, 1, "one plugin ID", "eventbus plugins check crm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := a.pluginTarget(cmd, args[0])
			if err != nil {
				return err
			}
			asJSON, _ := cmd.Flags().GetBool("json")
			return a.pluginsCheck(cmd.Context(), bs, args[0], asJSON)
		},
	}
	cmd.Flags().Bool("json", false, "print the checks as JSON")
	addBrokerFlags(cmd)
	return cmd
}

// pluginCheckReport is what `eventbus plugins check --json` prints.
type pluginCheckReport struct {
	PluginID   string            `json:"pluginId"`
	Username   string            `json:"username"`
	Mechanisms []string          `json:"mechanisms"`
	Checks     []pluginacl.Check `json:"checks"`
	// HostACLs counts the ACLs limited to particular client hosts, which
	// the checks leave out.
	HostACLs int `json:"hostSpecificACLs,omitempty"`
}

func (a *app) pluginsCheck(ctx context.Context, bs brokerSettings, id string, asJSON bool) error {
	client, g, err := a.connectPlugin(ctx, bs, id)
	if err != nil {
		return err
	}
	defer client.Close()
	if !g.Provisioned() {
		return notProvisioned(g)
	}
	report := pluginCheckReport{PluginID: id, Username: g.Username, Mechanisms: g.Mechanisms, Checks: g.Check()}
	if report.Mechanisms == nil {
		report.Mechanisms = []string{}
	}
	for _, acl := range g.ACLs {
		if acl.Host != "*" {
			report.HostACLs++
		}
	}
	if asJSON {
		return writeJSON(a.stdout, report)
	}
	login := mechanisms(g)
	if len(g.Mechanisms) == 0 {
		login = "no password: it cannot log in"
	}
	fmt.Fprintf(a.stdout, "plugin %s: user %s (%s); what its ACLs on the brokers allow:\n", id, g.Username, login)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tRESOURCE\tACCESS\tWHY")
	for _, c := range report.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Action, c.Resource, c.Access, c.Why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if report.HostACLs > 0 {
		fmt.Fprintf(a.stdout, "note: %d ACL(s) apply to particular client hosts only and are left out above; see `eventbus plugins list`\n", report.HostACLs)
	}
	return nil
}

// connectPlugin connects to the brokers and reads back what they hold of
// plugin id: its user and ACLs. The caller closes the client.
func (a *app) connectPlugin(ctx context.Context, bs brokerSettings, id string) (*eventbus.Client, pluginacl.Grants, error) {
	client, err := a.connect(ctx, bs, "eventbus-plugins")
	if err != nil {
		return nil, pluginacl.Grants{}, err
	}
	adm, err := client.Admin()
	if err != nil {
		client.Close()
		return nil, pluginacl.Grants{}, err
	}
	g, err := pluginacl.Describe(ctx, adm, id)
	if err != nil {
		client.Close()
		return nil, pluginacl.Grants{}, pluginsHint(err)
	}
	return client, g, nil
}

func notProvisioned(g pluginacl.Grants) error {
	return fmt.Errorf("plugin %s is not provisioned: the brokers have no user %s and no ACLs of it (see `eventbus plugins list`)", g.PluginID, g.Username)
}

// pluginsHint adds what to do to the errors an operator can fix.
func pluginsHint(err error) error {
	switch {
	case errors.Is(err, kerr.SecurityDisabled):
		return fmt.Errorf("%w; the brokers enforce no ACLs (no authorizer is configured), so plugins cannot be confined: enable SASL and an authorizer on the cluster", err)
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("%w; this connection's user may not manage SCRAM users and ACLs: connect as a superuser", err)
	}
	return err
}

func mechanisms(g pluginacl.Grants) string {
	if len(g.Mechanisms) == 0 {
		return "no password"
	}
	return strings.Join(g.Mechanisms, ", ")
}

// ownACLs returns the ACLs of the plugin's own user (not those of User:*).
func ownACLs(g pluginacl.Grants) []pluginacl.ACL {
	var own []pluginacl.ACL
	for _, acl := range g.ACLs {
		if acl.Principal == "User:"+g.Username {
			own = append(own, acl)
		}
	}
	return own
}

// aclRow is one resource of a plugin's ACLs with the operations allowed and
// denied on it.
type aclRow struct {
	resource, allow, deny string
	rank                  int
}

// aclRows groups a plugin's ACLs by resource: its own topics and groups
// first, then the cluster, other topics, other resources, and last the ACLs
// of every user.
func aclRows(g pluginacl.Grants) []aclRow {
	own := "plugin." + g.PluginID + "."
	type key struct{ principal, resource, pattern, name, host string }
	ops := map[key][2][]string{}
	var keys []key
	for _, acl := range g.ACLs {
		k := key{acl.Principal, acl.Resource, acl.Pattern, acl.Name, acl.Host}
		v, seen := ops[k]
		if !seen {
			keys = append(keys, k)
		}
		if acl.Permission == "DENY" {
			v[1] = append(v[1], acl.Operation)
		} else {
			v[0] = append(v[0], acl.Operation)
		}
		ops[k] = v
	}
	rows := make([]aclRow, 0, len(keys))
	for _, k := range keys {
		acl := pluginacl.ACL{Principal: k.principal, Resource: k.resource, Pattern: k.pattern, Name: k.name, Host: k.host}
		r := aclRow{resource: resourceLabel(acl), allow: opList(ops[k][0]), deny: opList(ops[k][1])}
		inOwn := strings.HasPrefix(k.name, own)
		switch {
		case k.resource == "TOPIC" && inOwn:
			r.rank = 0
		case k.resource == "GROUP" && inOwn:
			r.rank = 1
		case k.resource == "CLUSTER":
			r.rank = 2
		case k.resource == "TOPIC":
			r.rank = 3
		default:
			r.rank = 4
		}
		if k.principal != "User:"+g.Username {
			r.rank += 10
			r.resource += " (every user)"
		}
		if k.host != "*" {
			r.resource += " from host " + k.host
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b aclRow) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.resource, b.resource)
	})
	return rows
}

// opList lists operations in Kafka's order, lower case; "-" for none.
func opList(ops []string) string {
	if len(ops) == 0 {
		return "-"
	}
	slices.SortFunc(ops, func(a, b string) int {
		x, _ := kmsg.ParseACLOperation(a)
		y, _ := kmsg.ParseACLOperation(b)
		return int(x) - int(y)
	})
	return strings.ToLower(strings.Join(slices.Compact(ops), ", "))
}

// resourceLabel names an ACL's resource: "topic core.user.created", "topic
// core.user.*" (prefixed), "group *", "cluster".
func resourceLabel(acl pluginacl.ACL) string {
	if acl.Resource == "CLUSTER" {
		return "cluster"
	}
	name := acl.Name
	if acl.Pattern == "PREFIXED" {
		name += "*"
	}
	return strings.ToLower(strings.ReplaceAll(acl.Resource, "_", " ")) + " " + name
}
