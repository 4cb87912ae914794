package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
)

// clientStopTimeout bounds how long a short-lived command (publish, tail,
// topics) waits for its bus to stop cleanly.
const clientStopTimeout = 15 * time.Second

// addBrokerFlags adds the flags of the commands that talk to brokers:
// --brokers, --connect-timeout and the connection flags (addSecurityFlags).
// resolveBrokers reads them all.
func addBrokerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("brokers", DefaultBrokerAddr, "Kafka-protocol brokers, host:port,... (env "+EnvBrokers+"; eventbus serve prints its own as "+BrokersLinePrefix+"...)")
	f.Duration("connect-timeout", DefaultConnectTimeout, "how long to wait for a broker to answer")
	addSecurityFlags(cmd)
}

// securityFlags are the connection flags of addSecurityFlags.
var securityFlags = []string{"sasl-mechanism", "sasl-user", "sasl-password-file", "tls", "tls-ca", "tls-cert", "tls-key", "tls-server-name"}

// addSecurityFlags adds the connection flags, SASL and TLS. addBrokerFlags
// includes them; commands with a --brokers of their own (serve, bench,
// bench-consumer) call it directly and read them with resolveSecurity.
func addSecurityFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; none: no authentication (env "+EnvSASLMechanism+")")
	f.String("sasl-user", "", "SASL user name (env "+EnvSASLUser+"); the password comes from env "+EnvSASLPassword+" or --sasl-password-file, never from a flag")
	f.String("sasl-password-file", "", "file holding the SASL password (env "+EnvSASLPasswordFile+")")
	f.Bool("tls", false, "connect with TLS; any other --tls-* flag turns it on too (env "+EnvTLS+")")
	f.String("tls-ca", "", "PEM file of the CA certificates that signed the brokers' certificates; default: the system's (env "+EnvTLSCA+")")
	f.String("tls-cert", "", "PEM file of a client certificate, for brokers that require one; needs --tls-key (env "+EnvTLSCert+")")
	f.String("tls-key", "", "PEM file of the client certificate's private key (env "+EnvTLSKey+")")
	f.String("tls-server-name", "", "name to verify the brokers' certificates against; default: the host of each broker address (env "+EnvTLSServerName+")")
}

// brokerSettings are the resolved --brokers, --connect-timeout and
// connection flags: everything a client needs to reach the brokers.
type brokerSettings struct {
	Brokers        []string
	ConnectTimeout time.Duration
	// SASL authenticates every connection; nil: no authentication.
	SASL *eventbus.SASLConfig
	// TLS encrypts every connection; nil: plaintext.
	TLS *tls.Config
	// PasswordFrom names where the SASL password came from, for messages:
	// EVENTBUS_SASL_PASSWORD, or --sasl-password-file (or its variable)
	// with the file's path.
	PasswordFrom string
	// TLSFiles are the --tls-* values TLS was made from, for messages and
	// for child processes.
	TLSFiles tlsFiles
}

// tlsFiles are the --tls-* values: file paths and the server name.
type tlsFiles struct {
	CA, Cert, Key, ServerName string
}

// resolveBrokers reads and checks --brokers (or EVENTBUS_BROKERS),
// --connect-timeout and the connection flags; mistakes are usage errors.
func (a *app) resolveBrokers(cmd *cobra.Command) (brokerSettings, error) {
	s := brokerSettings{Brokers: splitList(a.stringSetting(cmd, "brokers", EnvBrokers))}
	s.ConnectTimeout, _ = cmd.Flags().GetDuration("connect-timeout")
	if len(s.Brokers) == 0 {
		return s, usageErrorf("--brokers is empty; give host:port of a broker (e.g. %s), or run `eventbus serve` and use the %s line it prints", DefaultBrokerAddr, BrokersLinePrefix)
	}
	for _, b := range s.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return s, usageErrorf("broker %q is not host:port (e.g. %s)", b, DefaultBrokerAddr)
		}
	}
	if s.ConnectTimeout <= 0 {
		return s, usageErrorf("--connect-timeout must be positive, e.g. 10s")
	}
	err := a.resolveSecurity(cmd, &s)
	return s, err
}

// resolveSecurity reads and checks the connection flags (and their
// EVENTBUS_* variables) into s.SASL and s.TLS; mistakes are usage errors
// that say what to fix. Empty variables count as unset.
func (a *app) resolveSecurity(cmd *cobra.Command, s *brokerSettings) error {
	if err := a.resolveSASL(cmd, s); err != nil {
		return err
	}
	if err := a.resolveTLS(cmd, s); err != nil {
		return err
	}
	if s.SASL != nil && s.SASL.Mechanism == eventbus.SASLPlain && s.TLS == nil && a.log != nil {
		a.log.Warn("eventbus: SASL PLAIN without --tls sends the password in clear text; add --tls if the brokers offer it")
	}
	return nil
}

// saslMechanisms are the values --sasl-mechanism takes.
var saslMechanisms = []string{eventbus.SASLPlain, eventbus.SASLScramSHA256, eventbus.SASLScramSHA512}

func (a *app) resolveSASL(cmd *cobra.Command, s *brokerSettings) error {
	mech := strings.ToUpper(strings.TrimSpace(a.stringSetting(cmd, "sasl-mechanism", EnvSASLMechanism)))
	user := a.stringSetting(cmd, "sasl-user", EnvSASLUser)
	if mech != "" && !slices.Contains(saslMechanisms, mech) {
		return usageErrorf("%s %q is not a SASL mechanism; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
			a.settingName(cmd, "sasl-mechanism", EnvSASLMechanism), mech)
	}
	password, from, err := a.saslPassword(cmd)
	if err != nil {
		return err
	}
	switch {
	case mech == "" && user == "" && from == "":
		return nil // no SASL
	case user == "" && mech != "":
		return usageErrorf("%s %s needs a user: give --sasl-user (or %s) and the password (%s or --sasl-password-file)",
			a.settingName(cmd, "sasl-mechanism", EnvSASLMechanism), mech, EnvSASLUser, EnvSASLPassword)
	case user == "":
		return usageErrorf("a SASL password is set (%s) but no user: give --sasl-user and --sasl-mechanism, or unset it", from)
	case from == "":
		return usageErrorf("SASL user %q needs a password: set %s, or give --sasl-password-file FILE (there is no password flag: it would show in process lists)", user, EnvSASLPassword)
	case mech == "":
		return usageErrorf("SASL user %q needs --sasl-mechanism (or %s): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, as the cluster has this user", user, EnvSASLMechanism)
	}
	s.SASL = &eventbus.SASLConfig{Mechanism: mech, Username: user, Password: password}
	s.PasswordFrom = from
	return nil
}

// saslPassword returns the SASL password and where it came from ("" when
// none is set): --sasl-password-file, else EVENTBUS_SASL_PASSWORD or the
// file named by EVENTBUS_SASL_PASSWORD_FILE (not both). A file's trailing
// line break is not part of the password.
func (a *app) saslPassword(cmd *cobra.Command) (password, from string, err error) {
	var file, fileFrom string
	if f := cmd.Flags().Lookup("sasl-password-file"); f.Changed {
		file, fileFrom = f.Value.String(), "--sasl-password-file"
	} else {
		pw, pwSet := a.env(EnvSASLPassword)
		envFile, fileSet := a.env(EnvSASLPasswordFile)
		switch {
		case pwSet && fileSet:
			return "", "", usageErrorf("both %s and %s are set; unset one of them", EnvSASLPassword, EnvSASLPasswordFile)
		case pwSet:
			return pw, EnvSASLPassword, nil
		}
		file, fileFrom = envFile, EnvSASLPasswordFile
	}
	if file == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", usageErrorf("%s: cannot read the SASL password: %v", fileFrom, err)
	}
	password = strings.TrimRight(string(b), "\r\n")
	if password == "" {
		return "", "", usageErrorf("%s %s is empty; write the SASL password in it", fileFrom, file)
	}
	return password, fileFrom + " " + file, nil
}

func (a *app) resolveTLS(cmd *cobra.Command, s *brokerSettings) error {
	on, explicit, err := a.boolSetting(cmd, "tls", EnvTLS)
	if err != nil {
		return err
	}
	files := tlsFiles{
		CA:         a.stringSetting(cmd, "tls-ca", EnvTLSCA),
		Cert:       a.stringSetting(cmd, "tls-cert", EnvTLSCert),
		Key:        a.stringSetting(cmd, "tls-key", EnvTLSKey),
		ServerName: a.stringSetting(cmd, "tls-server-name", EnvTLSServerName),
	}
	given := ""
	for _, v := range []struct{ flag, env, value string }{
		{"tls-ca", EnvTLSCA, files.CA}, {"tls-cert", EnvTLSCert, files.Cert},
		{"tls-key", EnvTLSKey, files.Key}, {"tls-server-name", EnvTLSServerName, files.ServerName},
	} {
		if v.value != "" && given == "" {
			given = a.settingName(cmd, v.flag, v.env)
		}
	}
	switch {
	case explicit && !on && given != "":
		return usageErrorf("%s=false contradicts %s, which is for TLS; drop one of them", a.settingName(cmd, "tls", EnvTLS), given)
	case !on && given == "":
		return nil // plaintext
	case files.Cert != "" && files.Key == "":
		return usageErrorf("%s needs --tls-key (or %s): the client certificate's private key", a.settingName(cmd, "tls-cert", EnvTLSCert), EnvTLSKey)
	case files.Key != "" && files.Cert == "":
		return usageErrorf("%s needs --tls-cert (or %s): the certificate of that private key", a.settingName(cmd, "tls-key", EnvTLSKey), EnvTLSCert)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: files.ServerName}
	if files.CA != "" {
		name := a.settingName(cmd, "tls-ca", EnvTLSCA)
		pem, err := os.ReadFile(files.CA)
		if err != nil {
			return usageErrorf("%s: cannot read the CA certificates: %v", name, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return usageErrorf("%s %s holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA certificate that signed the brokers' certificates", name, files.CA)
		}
	}
	if files.Cert != "" {
		pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return usageErrorf("%s %s with %s %s: %v; give a PEM certificate and its private key",
				a.settingName(cmd, "tls-cert", EnvTLSCert), files.Cert, a.settingName(cmd, "tls-key", EnvTLSKey), files.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	s.TLS = cfg
	s.TLSFiles = files
	return nil
}

// boolSetting returns the value of bool flag name: the flag when given on
// the command line, else the environment variable env when set (to a value
// strconv.ParseBool takes), else the default; explicit is false for the
// default.
func (a *app) boolSetting(cmd *cobra.Command, name, env string) (value, explicit bool, err error) {
	if f := cmd.Flags().Lookup(name); f.Changed {
		value, _ = cmd.Flags().GetBool(name)
		return value, true, nil
	}
	if v, ok := a.env(env); ok {
		value, err := strconv.ParseBool(v)
		if err != nil {
			return false, false, usageErrorf("%s=%q is not a boolean; use true or false", env, v)
		}
		return value, true, nil
	}
	value, _ = cmd.Flags().GetBool(name)
	return value, false, nil
}

// env returns the environment variable name when it is set and not empty.
func (a *app) env(name string) (string, bool) {
	v, ok := a.lookupEnv(name)
	return v, ok && v != ""
}

// settingName names where a setting came from, for messages: --flag when
// given on the command line, else env when set there, else --flag.
func (a *app) settingName(cmd *cobra.Command, flag, env string) string {
	if cmd.Flags().Lookup(flag).Changed {
		return "--" + flag
	}
	if _, ok := a.env(env); ok {
		return env
	}
	return "--" + flag
}

// securityFlagGiven returns the first connection flag given on the command
// line, or "".
func securityFlagGiven(cmd *cobra.Command) string {
	for _, name := range securityFlags {
		if cmd.Flags().Changed(name) {
			return "--" + name
		}
	}
	return ""
}

// clientConfig is the configuration of a client named clientID on s.
func (s brokerSettings) clientConfig(clientID string, log *slog.Logger) eventbus.ClientConfig {
	return eventbus.ClientConfig{
		Brokers:        s.Brokers,
		ClientID:       clientID,
		Logger:         log,
		ConnectTimeout: s.ConnectTimeout,
		SASL:           s.SASL,
		TLS:            s.TLS,
	}
}

// childEnv is the environment that gives a child eventbus process (the
// bench's crash consumer) the same connection settings: every connection
// variable, set or emptied, so that the parent's own environment does not
// leak through. The password passes as EVENTBUS_SASL_PASSWORD.
func (s brokerSettings) childEnv() []string {
	var mech, user, password string
	if s.SASL != nil {
		mech, user, password = s.SASL.Mechanism, s.SASL.Username, s.SASL.Password
	}
	return []string{
		EnvSASLMechanism + "=" + mech,
		EnvSASLUser + "=" + user,
		EnvSASLPassword + "=" + password,
		EnvSASLPasswordFile + "=",
		EnvTLS + "=" + strconv.FormatBool(s.TLS != nil),
		EnvTLSCA + "=" + s.TLSFiles.CA,
		EnvTLSCert + "=" + s.TLSFiles.Cert,
		EnvTLSKey + "=" + s.TLSFiles.Key,
		EnvTLSServerName + "=" + s.TLSFiles.ServerName,
	}
}

// describe says how s connects, for serve's banner: "" for plaintext
// without authentication, else e.g. "TLS, SASL SCRAM-SHA-256 as alice".
func (s brokerSettings) describe() string {
	var parts []string
	if s.TLS != nil {
		parts = append(parts, "TLS")
	}
	if s.SASL != nil {
		parts = append(parts, fmt.Sprintf("SASL %s as %s", s.SASL.Mechanism, s.SASL.Username))
	}
	return strings.Join(parts, ", ")
}

// connect returns a connected client named clientID, or one line saying
// what to do when no broker answers or the connection settings are wrong.
func (a *app) connect(ctx context.Context, s brokerSettings, clientID string) (*eventbus.Client, error) {
	client, err := eventbus.NewClient(s.clientConfig(clientID, a.libLog))
	if err != nil {
		return nil, err
	}
	if err := client.Connect(ctx); err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		if e := s.connectFailure(err); e != nil {
			return nil, e
		}
		if errors.Is(err, eventbus.ErrBrokerUnavailable) {
			return nil, fmt.Errorf("no broker answered at %s within %s: start one with `eventbus serve` (it prints %s...), or point --brokers or %s at your cluster (raise --connect-timeout if it is slow)%s",
				strings.Join(s.Brokers, ","), s.ConnectTimeout, BrokersLinePrefix, EnvBrokers, s.tlsPortHint())
		}
		return nil, err
	}
	return client, nil
}

// tlsPortHint ends a "no broker answered" message when TLS is on: a TLS
// client on a plaintext port may get no answer at all.
func (s brokerSettings) tlsPortHint() string {
	if s.TLS == nil {
		return ""
	}
	return "; with --tls, check that the port is the brokers' TLS listener"
}

// connectFailure turns a failed Connect that retrying could not fix (an
// *eventbus.ConnectError) into one line saying which setting to fix; it
// returns nil for other errors.
func (s brokerSettings) connectFailure(err error) error {
	ce, ok := errors.AsType[*eventbus.ConnectError](err)
	if !ok {
		return nil
	}
	switch ce.Reason {
	case eventbus.ErrAuthenticationFailed:
		var user, mech string
		if s.SASL != nil {
			user, mech = s.SASL.Username, s.SASL.Mechanism
		}
		return fmt.Errorf("SASL authentication failed for user %q (%s) at %s: check --sasl-user and the password (%s or --sasl-password-file; this one came from %s), and that the cluster has this user for --sasl-mechanism %s",
			user, mech, ce.Broker, EnvSASLPassword, s.PasswordFrom, mech)
	case eventbus.ErrTLSHandshake:
		return fmt.Errorf("TLS handshake with %s failed: %s", ce.Broker, s.tlsAdvice(ce.Err))
	default:
		return fmt.Errorf("the broker at %s closed every connection at once: %s", ce.Broker, s.closedAdvice())
	}
}

// tlsAdvice says what a TLS handshake failure means and what to change.
func (s brokerSettings) tlsAdvice(err error) string {
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		if s.TLSFiles.CA != "" {
			return fmt.Sprintf("the server's certificate is not signed by the CA in --tls-ca %s; give the CA certificate that signed the brokers' certificates", s.TLSFiles.CA)
		}
		return "the server's certificate is not signed by a CA this machine trusts; give the CA certificate that signed the brokers' certificates with --tls-ca (or " + EnvTLSCA + ")"
	}
	if he, ok := errors.AsType[x509.HostnameError](err); ok {
		what := strings.TrimPrefix(he.Error(), "x509: ")
		if s.TLSFiles.ServerName != "" {
			return fmt.Sprintf("the server's %s (--tls-server-name); set --tls-server-name to a name the certificate holds", what)
		}
		return fmt.Sprintf("the server's %s; connect with a name the certificate holds, or set --tls-server-name to one", what)
	}
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return fmt.Sprintf("the server's certificate is not valid (%s); have it renewed, or check this machine's clock", strings.TrimPrefix(ci.Error(), "x509: "))
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return "the broker does not speak TLS on that port; drop --tls, or use the brokers' TLS listener"
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		if s.TLSFiles.Cert == "" {
			return fmt.Sprintf("the broker refused the connection (%v): it wants a client certificate; give --tls-cert and --tls-key", op.Err)
		}
		return fmt.Sprintf("the broker refused the connection (%v): it does not accept the client certificate in --tls-cert %s; use one signed by a CA the brokers trust", op.Err, s.TLSFiles.Cert)
	}
	return fmt.Sprintf("%v; check --tls-ca, --tls-cert, --tls-key and --tls-server-name", err)
}

// closedAdvice says what to check when the brokers close every connection
// at once, as they do to clients without the TLS or SASL they require.
func (s brokerSettings) closedAdvice() string {
	var fixes []string
	if s.TLS == nil {
		fixes = append(fixes, "add --tls if its listener uses TLS")
	} else {
		fixes = append(fixes, "drop --tls if its listener is plaintext")
	}
	if s.SASL == nil {
		fixes = append(fixes, "set --sasl-mechanism, --sasl-user and the password ("+EnvSASLPassword+" or --sasl-password-file) if it requires SASL")
	}
	return strings.Join(fixes, "; ")
}

// errInterrupted is what a command returns when a signal stopped it
// before it finished its work.
var errInterrupted = errors.New("interrupted")

// stopBus shuts bus down and closes client (when not nil), bounded by
// clientStopTimeout, logging what went wrong.
func (a *app) stopBus(ctx context.Context, bus *eventbus.Bus, client *eventbus.Client) {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clientStopTimeout)
	defer cancel()
	if bus != nil {
		if err := bus.Shutdown(stopCtx); err != nil {
			a.log.Warn("eventbus: could not stop cleanly", "err", err)
		}
	}
	if client != nil {
		client.Close()
	}
}

// argsUsage checks the number of positional arguments and explains a
// mismatch with an example.
func argsUsage(minArgs, maxArgs int, what, example string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		if len(args) < minArgs {
			return usageErrorf("%s needs %s, e.g. %s", name, what, example)
		}
		if maxArgs >= 0 && len(args) > maxArgs {
			return usageErrorf("%s takes %s, but got %d arguments (%s); e.g. %s", name, what, len(args), strings.Join(args, " "), example)
		}
		return nil
	}
}

// fresh returns a context whose metadata requests (listing and describing
// topics) reach a broker instead of being answered from the client's
// metadata cache, which may be up to 5 s old (franz-go's MetadataMinAge):
// a topic created a moment ago by another process is seen at once. It does
// so by asking for the authorized operations too, which the cache does not
// hold.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

// addCompressionFlag adds --compression to a command that publishes.
func addCompressionFlag(cmd *cobra.Command) {
	cmd.Flags().String("compression", "", "codec of published batches: snappy, none, lz4, zstd or gzip (default "+string(eventbus.DefaultCompression)+"); none serves consumers without a Snappy codec, such as a plain KafkaJS (env "+EnvCompression+")")
}

// resolveCompression reads --compression (or EVENTBUS_COMPRESSION).
func (a *app) resolveCompression(cmd *cobra.Command) (eventbus.Compression, error) {
	c := eventbus.Compression(strings.ToLower(strings.TrimSpace(a.stringSetting(cmd, "compression", EnvCompression))))
	switch c {
	case "", eventbus.CompressionSnappy, eventbus.CompressionNone, eventbus.CompressionLZ4, eventbus.CompressionZstd, eventbus.CompressionGzip:
		return c, nil
	}
	return "", usageErrorf("--compression %q is unknown; use snappy, none, lz4, zstd or gzip", string(c))
}
