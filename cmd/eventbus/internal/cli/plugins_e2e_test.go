package cli

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginacl"
)

// adminSASL is the superuser of the secure test broker.
var adminSASL = eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA256, Username: "admin", Password: "admin"}

// secureBroker starts an embedded broker with SASL/SCRAM and ACLs
// enforced, makes the plugins commands log in to it as its superuser, and
// returns its addresses and a superuser client.
func secureBroker(t *testing.T) ([]string, *eventbus.Client) {
	t.Helper()
	broker := eventbustest.StartEmbedded(t, embedded.Config{
		Superuser:  &embedded.User{Mechanism: adminSASL.Mechanism, Name: adminSASL.Username, Password: adminSASL.Password},
		EnableACLs: true,
	})
	connectAs := func(ctx context.Context, brokers []string, timeout time.Duration, logger *slog.Logger) (*eventbus.Client, error) {
		sasl := adminSASL
		client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: brokers, ConnectTimeout: timeout, Logger: logger, SASL: &sasl})
		if err != nil {
			return nil, err
		}
		if err := client.Connect(ctx); err != nil {
			client.Close()
			return nil, err
		}
		return client, nil
	}
	// The commands log in as the superuser through the connection
	// settings every command takes.
	t.Setenv(EnvSASLMechanism, string(adminSASL.Mechanism))
	t.Setenv(EnvSASLUser, adminSASL.Username)
	t.Setenv(EnvSASLPassword, adminSASL.Password)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	admin, err := connectAs(ctx, broker.Addrs(), 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return broker.Addrs(), admin
}

// pluginClient is a raw franz-go client logged in with a plugin's
// credentials, with none of the bus's checks.
func pluginClient(t *testing.T, brokers []string, user, password string) *kgo.Client {
	t.Helper()
	auth := scram.Auth{User: user, Pass: password}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.SASL(auth.AsSha256Mechanism()),
		kgo.RecordDeliveryTimeout(3*time.Second), kgo.RecordRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produceAs(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{"raw":true}`)}).FirstErr()
}

// mustRunCLI runs the command in process and fails the test unless it
// exits 0 with nothing on stderr.
func mustRunCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(context.Background(), args...)
	if code != ExitOK || stderr != "" {
		t.Fatalf("eventbus %s: exit %d; stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

func writePasswordFile(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// wantLines fails the test unless out has, for each entry, a line holding
// its parts in order.
func wantLines(t *testing.T, what, out string, lines ...[]string) {
	t.Helper()
	for _, parts := range lines {
		if !regexpLine(out, parts...) {
			t.Errorf("%s lacks a line with %q:\n%s", what, parts, out)
		}
	}
}

// TestPluginsCommandsEndToEnd provisions, lists, checks and revokes plugins
// against a broker that enforces ACLs, and checks with a raw client on the
// provisioned credentials that the brokers confine the plugin.
func TestPluginsCommandsEndToEnd(t *testing.T) {
	brokers, admin := secureBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const (
		own      = "plugin.crm.contact.created"
		secret   = "plugin.crm.secret.created"
		core     = "core.user.created"
		audit    = "core.audit.logged"
		other    = "plugin.billing.invoice.paid"
		password = "crm-secret"
	)
	for _, topic := range []string{own, secret, core, audit, other} {
		if err := admin.Topics().Ensure(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	b := "--brokers=" + strings.Join(brokers, ",")

	// Provision: the password from a file, its line break dropped.
	out := mustRunCLI(t, "plugins", "provision", "crm", "--password-file", writePasswordFile(t, password+"\n"), "--core-topics", "core.user.", b)
	wantLines(t, "provision", out,
		[]string{"eventbus: provisioned plugin crm as SASL user plugin.crm (SCRAM-SHA-256)"},
		[]string{"topic plugin.crm.*", "read, write, create, describe", "-"},
		[]string{"group plugin.crm.*", "read", "-"},
		[]string{"cluster", "idempotent_write", "-"},
		[]string{"topic core.user.*", "read, describe", "-"},
		[]string{"logs in with SASL SCRAM-SHA-256 as plugin.crm", "start with plugin.crm."},
	)
	out = mustRunCLI(t, "plugins", "provision", "billing", "--password-file", writePasswordFile(t, "billing-secret"),
		"--plugin-topics", "plugin.crm.contact.created", "--scram-mechanism", "scram-sha-512", b)
	wantLines(t, "provision billing", out,
		[]string{"provisioned plugin billing as SASL user plugin.billing (SCRAM-SHA-512)"},
		[]string{"topic plugin.crm.contact.created", "read, describe"})

	// The brokers confine the plugin, whatever client it runs.
	crm := pluginClient(t, brokers, "plugin.crm", password)
	if err := produceAs(t, crm, own); err != nil {
		t.Fatalf("plugin crm producing to %s: %v", own, err)
	}
	for _, topic := range []string{core, other, "dlq." + core} {
		if err := produceAs(t, crm, topic); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("plugin crm producing to %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
		}
	}

	out = mustRunCLI(t, "plugins", "list", b)
	wantLines(t, "list", out,
		[]string{"PLUGIN", "USER", "SCRAM", "RESOURCE", "ALLOW", "DENY"},
		[]string{"billing", "plugin.billing", "SCRAM-SHA-512", "topic plugin.billing.*", "read, write, create, describe"},
		[]string{"billing", "topic plugin.crm.contact.created", "read, describe"},
		[]string{"crm", "plugin.crm", "SCRAM-SHA-256", "topic plugin.crm.*", "read, write, create, describe", "-"},
		[]string{"crm", "topic core.user.*", "read, describe", "-"},
	)
	if strings.Index(out, "billing") > strings.Index(out, "crm ") {
		t.Errorf("list is not sorted by plugin:\n%s", out)
	}
	var plugins []pluginacl.Grants
	if err := json.Unmarshal([]byte(mustRunCLI(t, "plugins", "list", "--json", b)), &plugins); err != nil {
		t.Fatal(err)
	}
	if len(plugins) != 2 || plugins[1].PluginID != "crm" || plugins[1].Username != "plugin.crm" || len(plugins[1].ACLs) != 14 {
		t.Fatalf("list --json: %+v", plugins)
	}

	check := []string{"plugins", "check", "crm", b}
	out = mustRunCLI(t, check...)
	wantLines(t, "check", out,
		[]string{"plugin crm: user plugin.crm (SCRAM-SHA-256); what its ACLs on the brokers allow:"},
		[]string{"ACTION", "RESOURCE", "ACCESS", "WHY"},
		[]string{"produce", "topic plugin.crm.*", "allowed", "allow WRITE on topic plugin.crm.*"},
		[]string{"consume", "topic plugin.crm.*", "allowed"},
		[]string{"create", "topic plugin.crm.*", "allowed"},
		[]string{"delete", "topic plugin.crm.*", "denied", "no ACL allows it"},
		[]string{"join consumer group", "group plugin.crm.*", "allowed"},
		[]string{"produce idempotently", "cluster", "allowed", "allow IDEMPOTENT_WRITE on cluster"},
		[]string{"consume", "topic core.user.*", "allowed", "allow READ on topic core.user.*"},
		[]string{"consume", "topic core.*", "partly", "only topic core.user.*"},
		[]string{"produce", "topic core.*", "denied", "no ACL allows it"},
		[]string{"consume", "topic plugin.* (other plugins)", "denied"},
		[]string{"produce", "topic plugin.* (other plugins)", "denied"},
		[]string{"dead-letter (produce)", "topic dlq.plugin.crm.*", "allowed"},
		[]string{"produce", "topic dlq.* (outside dlq.plugin.crm.*)", "denied"},
		[]string{"create", "topic * (outside plugin.crm.*)", "partly", "only topic dlq.plugin.crm.*"},
		[]string{"join consumer group", "group * (outside plugin.crm.*)", "denied"},
		[]string{"manage ACLs and users", "cluster", "denied"},
	)
	out = mustRunCLI(t, "plugins", "check", "billing", b)
	wantLines(t, "check billing", out,
		[]string{"consume", "topic plugin.crm.contact.created", "allowed"},
		[]string{"consume", "topic plugin.* (other plugins)", "partly", "only topic plugin.crm.contact.created"})

	// check reads the ACLs as they are: an operator's ACLs, allow and
	// deny, show up, and the brokers agree with it.
	adm, err := admin.Admin()
	if err != nil {
		t.Fatal(err)
	}
	for _, acl := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:plugin.crm").AllowHosts("*").Topics("core.audit.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
		kadm.NewACLs().Deny("User:plugin.crm").DenyHosts("*").Topics(secret).ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite),
	} {
		if res, err := adm.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
			t.Fatalf("create ACL: %v %v", err, res)
		}
	}
	var report pluginCheckReport
	if err := json.Unmarshal([]byte(mustRunCLI(t, append(check, "--json")...)), &report); err != nil {
		t.Fatal(err)
	}
	got := map[string]pluginacl.Check{}
	for _, c := range report.Checks {
		got[c.Action+" "+c.Resource] = c
	}
	for key, want := range map[string]string{
		"produce topic plugin.crm.*": "partly",
		"produce topic core.audit.*": "allowed",
		"produce topic core.*":       "partly",
		"consume topic core.user.*":  "allowed",
	} {
		if got[key].Access != want {
			t.Errorf("check --json: %q is %+v, want %s; all: %+v", key, got[key], want, report.Checks)
		}
	}
	if why := got["produce topic plugin.crm.*"].Why; !strings.Contains(why, "denied on topic "+secret) {
		t.Errorf("check --json: why %q does not name the deny", why)
	}
	if err := produceAs(t, crm, audit); err != nil {
		t.Errorf("plugin crm producing to %s after the operator's grant: %v", audit, err)
	}
	if err := produceAs(t, crm, secret); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("plugin crm producing to %s after the operator's deny: %v, want TOPIC_AUTHORIZATION_FAILED", secret, err)
	}
	wantLines(t, "list", mustRunCLI(t, "plugins", "list", b),
		[]string{"crm", "topic " + secret, "-", "write"})

	// Provisioning again replaces the grants (the operator's allow goes,
	// its deny stays) and says so.
	out = mustRunCLI(t, "plugins", "provision", "crm", "--password-file", writePasswordFile(t, password), "--core-topics", "core.user.", b)
	wantLines(t, "re-provision", out, []string{"re-provisioned (new password, grants replaced) plugin crm"})
	if strings.Contains(out, "core.audit") {
		t.Errorf("re-provisioning kept the operator's grant:\n%s", out)
	}

	// Revoked: the open connection can no longer write, a new one cannot
	// log in, and the plugin is gone from list and check.
	out = mustRunCLI(t, "plugins", "revoke", "crm", b)
	wantLines(t, "revoke", out, []string{"eventbus: revoked plugin crm: deleted user plugin.crm (SCRAM-SHA-256) and its 15 ACL(s); it can no longer log in"})
	if err := produceAs(t, crm, own); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("revoked plugin on its open connection: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	pingCtx, cancelPing := context.WithTimeout(ctx, 3*time.Second)
	defer cancelPing()
	if err := pluginClient(t, brokers, "plugin.crm", password).Ping(pingCtx); err == nil {
		t.Error("revoked plugin could still log in")
	}
	out = mustRunCLI(t, "plugins", "list", b)
	if regexpLine(out, "crm", "plugin.crm") || !regexpLine(out, "billing", "plugin.billing") {
		t.Errorf("list after revoking crm:\n%s", out)
	}
	for _, args := range [][]string{{"plugins", "revoke", "crm", b}, {"plugins", "check", "crm", b}} {
		code, stdout, stderr := runCLI(context.Background(), args...)
		if code != ExitError || stdout != "" {
			t.Fatalf("%v: exit %d, stdout %q", args, code, stdout)
		}
		oneLineError(t, stderr, "plugin crm is not provisioned", "no user plugin.crm", "eventbus plugins list")
	}
	mustRunCLI(t, "plugins", "revoke", "billing", b)
	if out := mustRunCLI(t, "plugins", "list", b); !strings.Contains(out, "no plugins provisioned") {
		t.Errorf("list with no plugins:\n%s", out)
	}
	if out := mustRunCLI(t, "plugins", "list", "--json", b); strings.TrimSpace(out) != "[]" {
		t.Errorf("list --json with no plugins: %q", out)
	}
}

// TestPluginsUsageErrors checks the plugins commands' usage errors, which
// need no broker: exit code 2, one line saying what to do.
func TestPluginsUsageErrors(t *testing.T) {
	pw := writePasswordFile(t, "secret\n")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no subcommand", []string{"plugins"}, []string{"plugins needs a subcommand: provision ID, revoke ID, list or check ID"}},
		{"provision no id", []string{"plugins", "provision"}, []string{"plugins provision needs one plugin ID"}},
		{"provision bad id", []string{"plugins", "provision", "CRM", "--password-file", pw}, []string{`invalid plugin ID "CRM"`, "kebab-case", `use "crm"`}},
		{"provision no password", []string{"plugins", "provision", "crm"}, []string{"needs the plugin's password", "--password-stdin", "--password-file"}},
		{"provision two passwords", []string{"plugins", "provision", "crm", "--password-stdin", "--password-file", pw}, []string{"one way only"}},
		{"provision missing file", []string{"plugins", "provision", "crm", "--password-file", "/no/such/file"}, []string{"--password-file: stat /no/such/file"}},
		{"provision empty file", []string{"plugins", "provision", "crm", "--password-file", writePasswordFile(t, "\n")}, []string{"is empty", "openssl rand"}},
		{"provision two lines", []string{"plugins", "provision", "crm", "--password-file", writePasswordFile(t, "a\nb\n")}, []string{"more than one line"}},
		{"provision bad core topic", []string{"plugins", "provision", "crm", "--password-file", pw, "--core-topics", "plugin.billing."}, []string{`--core-topics: "plugin.billing." must start with "core."`}},
		{"provision bad action", []string{"plugins", "provision", "crm", "--password-file", pw, "--core-topics", "core.user.create"}, []string{"--core-topics", `use "core.user.created"`}},
		{"provision own topics", []string{"plugins", "provision", "crm", "--password-file", pw, "--plugin-topics", "plugin.crm."}, []string{"--plugin-topics", "own topic space"}},
		{"provision bad mechanism", []string{"plugins", "provision", "crm", "--password-file", pw, "--scram-mechanism", "PLAIN"}, []string{`--scram-mechanism "PLAIN" is not supported`, "SCRAM-SHA-512"}},
		{"provision bad brokers", []string{"plugins", "provision", "crm", "--password-file", pw, "--brokers", "kafka"}, []string{`broker "kafka" is not host:port`}},
		{"revoke bad id", []string{"plugins", "revoke", "crm_app"}, []string{`invalid plugin ID "crm_app"`}},
		{"check nothing", []string{"plugins", "check"}, []string{"plugins check needs one plugin ID"}},
		{"check bad id", []string{"plugins", "check", "a.b"}, []string{`invalid plugin ID "a.b"`}},
		{"list argument", []string{"plugins", "list", "crm"}, []string{"plugins list takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(context.Background(), tt.args...)
			if code != ExitUsage || stdout != "" {
				t.Fatalf("exit %d (want %d), stdout %q; stderr:\n%s", code, ExitUsage, stdout, stderr)
			}
			oneLineError(t, stderr, tt.want...)
		})
	}
}

// TestPluginsPasswordStdin runs the built binary: the password piped to
// --password-stdin is taken (the command goes on to the brokers), an empty
// one is refused.
func TestPluginsPasswordStdin(t *testing.T) {
	addr := closedAddr(t)
	args := []string{"plugins", "provision", "crm", "--password-stdin", "--brokers", addr, "--connect-timeout", "300ms"}
	code, _, stderr := runBinary(t, "s3cret\n", nil, args...)
	if code != ExitError {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	oneLineError(t, stderr, "no broker answered at "+addr)
	code, _, stderr = runBinary(t, "", nil, args...)
	if code != ExitUsage {
		t.Fatalf("empty stdin: exit %d; stderr:\n%s", code, stderr)
	}
	oneLineError(t, stderr, "the password on standard input is empty")
}

func TestReadPassword(t *testing.T) {
	var logs eventbustest.LogBuffer
	a := newApp(nil, nil)
	a.log = slog.New(slog.NewTextHandler(&logs, nil))
	read := func(stdin string, args ...string) (string, error) {
		cmd := a.pluginsProvisionCmd()
		cmd.SetIn(strings.NewReader(stdin))
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return a.readPassword(cmd)
	}
	for stdin, want := range map[string]string{"pw\n": "pw", "pw\r\n": "pw", "pw": "pw", " p w \n": " p w "} {
		if got, err := read(stdin, "--password-stdin"); err != nil || got != want {
			t.Errorf("stdin %q: %q, %v; want %q", stdin, got, err, want)
		}
	}
	if _, err := read(strings.Repeat("x", maxPasswordBytes+1), "--password-stdin"); err == nil || !strings.Contains(err.Error(), "longer than 4096 bytes") {
		t.Errorf("a long stdin: %v", err)
	}
	file := writePasswordFile(t, "from-file\n")
	if got, err := read("ignored", "--password-file", file); err != nil || got != "from-file" || logs.String() != "" {
		t.Errorf("--password-file: %q, %v; logs %q", got, err, logs.String())
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := read("", "--password-file", file); err != nil || !strings.Contains(logs.String(), "can be read by other users") {
		t.Errorf("a readable password file: %v; logs %q", err, logs.String())
	}
	if _, err := read("", "--password-file", t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
}
