package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/eventbustest/testcerts"
)

// The user of secureCluster.
const (
	secureUser     = "eventbus"
	securePassword = "correct horse battery staple"
)

// secureCluster is an embedded broker that takes only TLS connections with
// a client certificate signed by its CA, authenticated with SCRAM-SHA-256
// as secureUser, and the files its clients need (in a temporary
// directory): its CA, a client certificate and key, the password, and
// wrong ones.
type secureCluster struct {
	brokers string
	dir     string
	// ca signed the broker's and the client's certificates; otherCA did not.
	ca, otherCA       string
	cert, key         string
	password, wrongPW string
}

func startSecureCluster(t *testing.T) *secureCluster {
	t.Helper()
	ca := testcerts.NewCA(t, "eventbus test CA")
	other := testcerts.NewCA(t, "some other CA")
	b := eventbustest.StartEmbedded(t, embedded.Config{
		Superuser: &embedded.User{Mechanism: eventbus.SASLScramSHA256, Name: secureUser, Password: securePassword},
		TLS: &tls.Config{
			Certificates: []tls.Certificate{ca.Issue(t, "broker", "127.0.0.1", "localhost").TLS},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    ca.Pool(),
			MinVersion:   tls.VersionTLS12,
		},
	})
	dir := t.TempDir()
	c := &secureCluster{brokers: strings.Join(b.Addrs(), ","), dir: dir,
		ca: ca.WriteFile(t, dir, "ca.pem"), otherCA: other.WriteFile(t, dir, "other-ca.pem")}
	c.cert, c.key = ca.Issue(t, "eventbus client").WriteFiles(t, dir, "client")
	c.password = c.file(t, "password", securePassword+"\n")
	c.wrongPW = c.file(t, "wrong-password", "hunter2\n")
	return c
}

// file writes content to a file of the cluster's directory.
func (c *secureCluster) file(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// flags are the connection flags that reach the cluster, with the password
// from a file; replace (flag, value pairs) changes some, "" drops one.
func (c *secureCluster) flags(replace ...string) []string {
	set := [][2]string{
		{"--brokers", c.brokers}, {"--sasl-mechanism", "SCRAM-SHA-256"}, {"--sasl-user", secureUser},
		{"--sasl-password-file", c.password}, {"--tls-ca", c.ca}, {"--tls-cert", c.cert}, {"--tls-key", c.key},
	}
	for i := 0; i+1 < len(replace); i += 2 {
		j := slices.IndexFunc(set, func(kv [2]string) bool { return kv[0] == replace[i] })
		if j < 0 {
			set = append(set, [2]string{replace[i], replace[i+1]})
		} else {
			set[j][1] = replace[i+1]
		}
	}
	var out []string
	for _, kv := range set {
		if kv[1] != "" {
			out = append(out, kv[0], kv[1])
		}
	}
	return out
}

// env are the variables that reach the cluster, the password in
// EVENTBUS_SASL_PASSWORD.
func (c *secureCluster) env() map[string]string {
	return map[string]string{
		EnvBrokers: c.brokers, EnvSASLMechanism: "scram-sha-256", EnvSASLUser: secureUser, EnvSASLPassword: securePassword,
		EnvTLS: "true", EnvTLSCA: c.ca, EnvTLSCert: c.cert, EnvTLSKey: c.key,
	}
}

// runCLIEnv runs the eventbus command in process with env as its whole
// environment.
func runCLIEnv(ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut eventbustest.LogBuffer
	a := newApp(&out, &errOut)
	a.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = a.run(ctx, args)
	return code, out.String(), errOut.String()
}

// TestSecureServe runs the built binary's serve --brokers against a broker
// that requires SCRAM and TLS with a client certificate, the password in
// EVENTBUS_SASL_PASSWORD and the rest in flags, checks that it is ready
// (its bus reached the brokers: it read the DLQ topics, /readyz asks the
// brokers) and stops it with SIGTERM.
func TestSecureServe(t *testing.T) {
	c := startSecureCluster(t)
	args := append([]string{"serve", "--http-addr", "127.0.0.1:0", "--log-level", "warn"},
		c.flags("--sasl-password-file", "", "--sasl-mechanism", "SCRAM-SHA-256")...)
	cmd, lines, stderr := startBinaryEnv(t, []string{EnvSASLPassword + "=" + securePassword}, args...)
	var banner []string
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	httpAddr := ""
	for len(banner) == 0 || !strings.HasPrefix(banner[len(banner)-1], BrokersLinePrefix) {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended before it was ready; stdout %q, stderr:\n%s", banner, stderr)
			}
			banner = append(banner, line)
			if addr, ok := strings.CutPrefix(line, HTTPLinePrefix); ok {
				httpAddr = addr
			}
		case <-timer.C:
			t.Fatalf("serve not ready within %s; stdout %q, stderr:\n%s", waitTimeout, banner, stderr)
		}
	}
	if want := "eventbus: connected to brokers " + c.brokers + " (TLS, SASL SCRAM-SHA-256 as " + secureUser + ")"; banner[0] != want {
		t.Fatalf("banner starts %q, want %q", banner[0], want)
	}
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s; stderr:\n%s", resp.Status, stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitExit(t, cmd, lines); code != ExitOK {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, stderr)
	}
}

// TestSecurePublishTail publishes (settings from the environment) and tails
// (settings from flags) through a broker that requires SCRAM and TLS.
func TestSecurePublishTail(t *testing.T) {
	t.Parallel()
	c := startSecureCluster(t)
	ctx := context.Background()
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	code, out, stderr := runCLIEnv(ctx, c.env(), "publish", topic, "--tenant", "acme", "--data", `{"userId":"u-1"}`)
	if code != ExitOK {
		t.Fatalf("publish: exit %d; stderr:\n%s", code, stderr)
	}
	id := strings.TrimSpace(out)
	args := append([]string{"--log-level", "warn", "tail", topic, "--from-beginning", "--max", "1", "--json"}, c.flags()...)
	code, out, stderr = runCLIEnv(ctx, nil, args...)
	if code != ExitOK {
		t.Fatalf("tail: exit %d; stderr:\n%s", code, stderr)
	}
	var ev eventbus.RawEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.ID != id || ev.TenantID != "acme" || string(ev.Data) != `{"userId":"u-1"}` {
		t.Fatalf("tail printed %q (%v); published %s", out, err, id)
	}
	code, out, stderr = runCLIEnv(ctx, c.env(), "topics", "list", topic)
	if code != ExitOK || !strings.Contains(out, topic) {
		t.Fatalf("topics list: exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

// TestSecureConnectErrors checks the one line each wrong connection
// setting gives, and that it comes at once rather than after
// --connect-timeout.
func TestSecureConnectErrors(t *testing.T) {
	t.Parallel()
	c := startSecureCluster(t)
	addr := strings.Split(c.brokers, ",")[0]
	wrongPassword := []string{`SASL authentication failed for user "eventbus" (SCRAM-SHA-256) at ` + addr,
		"check --sasl-user and the password (" + EnvSASLPassword + " or --sasl-password-file; this one came from --sasl-password-file " + c.wrongPW + ")"}
	wrongCA := []string{"TLS handshake with " + addr + " failed: the server's certificate is not signed by the CA in --tls-ca " + c.otherCA}
	publish := []string{"publish", "core.user.created", "--tenant", "acme"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"publish wrong password", append(publish, c.flags("--sasl-password-file", c.wrongPW)...), wrongPassword},
		{"serve wrong password", append([]string{"serve", "--http-addr", "127.0.0.1:0"}, c.flags("--sasl-password-file", c.wrongPW)...), wrongPassword},
		{"tail wrong CA", append([]string{"tail", "core.user."}, c.flags("--tls-ca", c.otherCA)...), wrongCA},
		{"serve wrong CA", append([]string{"serve", "--http-addr", "127.0.0.1:0"}, c.flags("--tls-ca", c.otherCA)...), wrongCA},
		{"wrong server name", append([]string{"topics", "list"}, c.flags("--tls-server-name", "kafka.example")...),
			[]string{"TLS handshake with " + addr + " failed", "not kafka.example", "set --tls-server-name to a name the certificate holds"}},
		{"no client certificate", append(publish, c.flags("--tls-cert", "", "--tls-key", "")...),
			[]string{"TLS handshake with " + addr + " failed", "it wants a client certificate; give --tls-cert and --tls-key"}},
		{"no TLS", append(publish, c.flags("--tls-ca", "", "--tls-cert", "", "--tls-key", "")...),
			[]string{"the broker at " + addr + " closed every connection at once", "add --tls"}},
		{"no SASL", append(publish, c.flags("--sasl-mechanism", "", "--sasl-user", "", "--sasl-password-file", "")...),
			[]string{"the broker at " + addr + " closed every connection at once", "set --sasl-mechanism, --sasl-user and the password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := runCLIEnv(context.Background(), nil, append(tt.args, "--connect-timeout", "20s")...)
			if code != ExitError || stdout != "" {
				t.Fatalf("exit %d, stdout %q; stderr:\n%s", code, stdout, stderr)
			}
			oneLineError(t, stderr, tt.want...)
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %s: the error must come at once, not at --connect-timeout", d)
			}
		})
	}
	// bench prints progress lines first; its error is the last line.
	code, _, stderr := runCLIEnv(context.Background(), nil, append([]string{"bench", "--quick"}, c.flags("--sasl-password-file", c.wrongPW)...)...)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != ExitError {
		t.Fatalf("bench: exit %d; stderr:\n%s", code, stderr)
	}
	oneLineError(t, lines[len(lines)-1], wrongPassword...)
}

// TestSecureBenchCrash runs the bench's crash phase against a broker that
// requires SCRAM and TLS: its consumer, in a child process, must connect
// with the same settings, passed in its environment.
func TestSecureBenchCrash(t *testing.T) {
	c := startSecureCluster(t)
	args := append([]string{"--log-level", "warn", "bench", "--quick", "--json", "--phases", "crash"}, c.flags()...)
	code, stdout, stderr := runCLIEnv(context.Background(), nil, args...)
	if code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var rep struct {
		Crash *struct {
			HandledByKilled int  `json:"handledByKilled"`
			Lost            int  `json:"lost"`
			Settled         bool `json:"settled"`
		} `json:"crash"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Crash == nil || rep.Crash.HandledByKilled == 0 || rep.Crash.Lost != 0 {
		t.Fatalf("report (%v):\n%s", err, stdout)
	}
}

// TestConnectionUsageErrors checks that every mistake in the connection
// settings is a usage error saying what to fix, found before dialling.
func TestConnectionUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ca := testcerts.NewCA(t, "ca")
	cert, _ := ca.Issue(t, "one").WriteFiles(t, dir, "one")
	_, otherKey := ca.Issue(t, "two").WriteFiles(t, dir, "two")
	pwFile := write("pw", "secret\n")
	emptyPW := write("empty", "\n")
	notPEM := write("ca.txt", "not a certificate")
	list := []string{"topics", "list", "--brokers", "127.0.0.1:1"}
	pw := map[string]string{EnvSASLPassword: "secret"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"unknown mechanism", nil, append(list, "--sasl-mechanism", "GSSAPI", "--sasl-user", "u"),
			[]string{`--sasl-mechanism "GSSAPI" is not a SASL mechanism; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`}},
		{"unknown mechanism from env", map[string]string{EnvSASLMechanism: "scram"}, list,
			[]string{EnvSASLMechanism + ` "SCRAM" is not a SASL mechanism`}},
		{"user without password", nil, append(list, "--sasl-mechanism", "PLAIN", "--sasl-user", "u"),
			[]string{`SASL user "u" needs a password: set ` + EnvSASLPassword + ", or give --sasl-password-file FILE"}},
		{"mechanism without user", pw, append(list, "--sasl-mechanism", "PLAIN"),
			[]string{"--sasl-mechanism PLAIN needs a user: give --sasl-user"}},
		{"user without mechanism", pw, append(list, "--sasl-user", "u"),
			[]string{`SASL user "u" needs --sasl-mechanism`}},
		{"password without user", pw, list,
			[]string{"a SASL password is set (" + EnvSASLPassword + ") but no user"}},
		{"two passwords", map[string]string{EnvSASLPassword: "a", EnvSASLPasswordFile: pwFile}, list,
			[]string{"both " + EnvSASLPassword + " and " + EnvSASLPasswordFile + " are set"}},
		{"missing password file", nil, append(list, "--sasl-password-file", "/no/such/pw"),
			[]string{"--sasl-password-file: cannot read the SASL password: open /no/such/pw"}},
		{"empty password file", map[string]string{EnvSASLPasswordFile: emptyPW}, append(list, "--sasl-mechanism", "PLAIN", "--sasl-user", "u"),
			[]string{EnvSASLPasswordFile + " " + emptyPW + " is empty"}},
		{"key without certificate", nil, append(list, "--tls-key", otherKey),
			[]string{"--tls-key needs --tls-cert"}},
		{"certificate without key", map[string]string{EnvTLSCert: cert}, list,
			[]string{EnvTLSCert + " needs --tls-key"}},
		{"unreadable CA", nil, append(list, "--tls-ca", "/no/such/ca.pem"),
			[]string{"--tls-ca: cannot read the CA certificates: open /no/such/ca.pem"}},
		{"CA file without certificate", nil, append(list, "--tls-ca", notPEM),
			[]string{"--tls-ca " + notPEM + " holds no PEM certificate"}},
		{"key of another certificate", nil, append(list, "--tls-cert", cert, "--tls-key", otherKey),
			[]string{"--tls-cert " + cert + " with --tls-key " + otherKey, "private key does not match public key"}},
		{"TLS off with a CA", nil, append(list, "--tls=false", "--tls-ca", notPEM),
			[]string{"--tls=false contradicts --tls-ca"}},
		{"bad TLS variable", map[string]string{EnvTLS: "maybe"}, list,
			[]string{EnvTLS + `="maybe" is not a boolean`}},
		{"serve embedded with TLS", nil, []string{"serve", "--in-memory", "--tls"},
			[]string{"--tls configures the connection to --brokers", "the embedded broker runs without SASL and TLS"}},
		{"serve with a bad CA", nil, []string{"serve", "--brokers", "127.0.0.1:1", "--tls-ca", "/no/such/ca.pem"},
			[]string{"--tls-ca: cannot read the CA certificates"}},
		{"bench embedded with SASL", nil, []string{"bench", "--sasl-user", "u"},
			[]string{"--sasl-user configures the connection to --brokers"}},
		{"bench with a bad mechanism", nil, []string{"bench", "--brokers", "127.0.0.1:1", "--sasl-mechanism", "MD5"},
			[]string{`"MD5" is not a SASL mechanism`}},
		{"bench consumer without password", nil, []string{"bench-consumer", "--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--sasl-mechanism", "PLAIN", "--sasl-user", "u"},
			[]string{"needs a password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLIEnv(context.Background(), tt.env, tt.args...)
			if code != ExitUsage || stdout != "" {
				t.Fatalf("exit %d, stdout %q; stderr:\n%s", code, stdout, stderr)
			}
			oneLineError(t, stderr, tt.want...)
		})
	}
}

// TestConnectionSettings checks what the connection flags and variables
// resolve to, that flags win over the environment, and that childEnv
// gives a child process the same settings.
func TestConnectionSettings(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "ca")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	cert, key := ca.Issue(t, "client").WriteFiles(t, dir, "client")
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(" from file \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resolve := func(env map[string]string, args ...string) brokerSettings {
		t.Helper()
		a := newApp(nil, nil)
		a.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		cmd := a.tailCmd()
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		s, err := a.resolveBrokers(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if s := resolve(nil); s.SASL != nil || s.TLS != nil || s.describe() != "" {
		t.Fatalf("no settings: %+v", s)
	}
	env := map[string]string{
		EnvSASLMechanism: "scram-sha-512", EnvSASLUser: "alice", EnvSASLPassword: "from env",
		EnvTLSCA: caFile, EnvTLSServerName: "kafka.internal", EnvTLSCert: "", EnvTLS: "",
	}
	s := resolve(env)
	if *s.SASL != (eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA512, Username: "alice", Password: "from env"}) || s.PasswordFrom != EnvSASLPassword {
		t.Fatalf("SASL from env: %+v from %q", s.SASL, s.PasswordFrom)
	}
	if s.TLS == nil || s.TLS.RootCAs == nil || s.TLS.ServerName != "kafka.internal" || len(s.TLS.Certificates) != 0 || s.TLS.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLS from env (--tls-ca turns TLS on): %+v", s.TLS)
	}
	if got := s.describe(); got != "TLS, SASL SCRAM-SHA-512 as alice" {
		t.Fatalf("describe: %q", got)
	}

	s = resolve(env, "--sasl-user", "bob", "--sasl-password-file", pwFile, "--tls-cert", cert, "--tls-key", key, "--tls-server-name", "other")
	if s.SASL.Username != "bob" || s.SASL.Password != " from file " || s.PasswordFrom != "--sasl-password-file "+pwFile {
		t.Fatalf("flags over env: %+v from %q", s.SASL, s.PasswordFrom)
	}
	if len(s.TLS.Certificates) != 1 || s.TLS.ServerName != "other" || s.TLSFiles.CA != caFile {
		t.Fatalf("TLS flags over env: %+v", s.TLSFiles)
	}

	// A child resolves the same settings from childEnv alone.
	child := map[string]string{}
	for _, kv := range s.childEnv() {
		k, v, _ := strings.Cut(kv, "=")
		child[k] = v
	}
	c := resolve(child)
	if *c.SASL != *s.SASL || c.TLSFiles != s.TLSFiles || len(c.TLS.Certificates) != 1 {
		t.Fatalf("child settings %+v %+v, want %+v %+v", c.SASL, c.TLSFiles, s.SASL, s.TLSFiles)
	}
	if plain := resolve(nil).childEnv(); !slices.Contains(plain, EnvTLS+"=false") || !slices.Contains(plain, EnvSASLPassword+"=") {
		t.Fatalf("plaintext child env: %q", plain)
	}
}
