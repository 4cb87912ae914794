// Package cli holds the commands of the eventbus binary. cmd/eventbus only
// calls Main; everything else lives here so that it can be tested in
// process: NewRoot builds the command tree for given output streams, and
// Run executes it and turns its outcome into an exit code.
//
// Exit codes: 0 success (serve stopped by SIGINT or SIGTERM included),
// 1 failure (an interrupted bench included), 2 bad usage (unknown command or
// flag, bad flag value).
//
// Settings come from flags and, for some, from EVENTBUS_* environment
// variables; a flag given on the command line wins over the environment.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes returned by Run and Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Environment variables read by the commands.
const (
	EnvBrokers    = "EVENTBUS_BROKERS"
	EnvBrokerAddr = "EVENTBUS_BROKER_ADDR"
	// EnvAdvertisedHost is serve's --advertised-host.
	EnvAdvertisedHost = "EVENTBUS_ADVERTISED_HOST"
	EnvData           = "EVENTBUS_DATA"
	EnvLogLevel       = "EVENTBUS_LOG_LEVEL"
	EnvHTTPAddr       = "EVENTBUS_HTTP_ADDR"
	EnvTokens         = "EVENTBUS_ADMIN_TOKENS"
)

// Environment variables of the connection flags that every command talking
// to brokers takes (see addSecurityFlags). The SASL password has no flag:
// it comes from EnvSASLPassword, or from a file (--sasl-password-file or
// EnvSASLPasswordFile), so that it stays out of process lists.
const (
	EnvCompression      = "EVENTBUS_COMPRESSION"
	EnvSASLMechanism    = "EVENTBUS_SASL_MECHANISM"
	EnvSASLUser         = "EVENTBUS_SASL_USER"
	EnvSASLPassword     = "EVENTBUS_SASL_PASSWORD"
	EnvSASLPasswordFile = "EVENTBUS_SASL_PASSWORD_FILE"
	EnvTLS              = "EVENTBUS_TLS"
	EnvTLSCA            = "EVENTBUS_TLS_CA"
	EnvTLSCert          = "EVENTBUS_TLS_CERT"
	EnvTLSKey           = "EVENTBUS_TLS_KEY"
	EnvTLSServerName    = "EVENTBUS_TLS_SERVER_NAME"
)

// HTTPLinePrefix starts the line `eventbus serve` prints with the HTTP
// listener's address, for scripts to parse:
//
//	EVENTBUS_HTTP=127.0.0.1:8080
const HTTPLinePrefix = "EVENTBUS_HTTP="

// BrokersLinePrefix starts the line `eventbus serve` prints on standard
// output once the brokers are ready, for scripts to parse:
//
//	EVENTBUS_BROKERS=127.0.0.1:9092
const BrokersLinePrefix = EnvBrokers + "="

// Main runs the eventbus command with args (without the program name) on
// the process's standard streams, stopping on SIGINT or SIGTERM, and returns
// the exit code. A second signal kills the process the default way.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the next signal is not caught: a second Ctrl-C ends the process
	}()
	return Run(ctx, args, os.Stdout, os.Stderr)
}

// Run executes the eventbus command with args, writing to stdout and
// stderr, and returns the exit code. Commands stop cleanly when ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := newApp(stdout, stderr)
	return a.run(ctx, args)
}

// NewRoot returns the eventbus command tree writing to stdout and stderr,
// with settings from the process environment.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	return newApp(stdout, stderr).root()
}

// app is what every command shares: output streams and the environment.
// Tests build it with a fake environment and executable.
type app struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	// executable is the path of this binary, which bench re-executes to run
	// the embedded broker in a separate process.
	executable func() (string, error)
	// log is the commands' logger, on stderr at --log-level; set before any
	// command runs.
	log *slog.Logger
	// libLog is the logger handed to the eventbus client and bus: their
	// Kafka client's retries are info-level chatter, shown only at debug.
	libLog  *slog.Logger
	started bool // a command's hooks were reached: its errors are not usage errors
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv, executable: os.Executable}
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.root()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var usage *usageError
	if errors.As(err, &usage) || !a.started {
		path := "eventbus"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(a.stderr, "eventbus: %v\nRun '%s --help' for usage.\n", err, path)
		return ExitUsage
	}
	fmt.Fprintf(a.stderr, "eventbus: %v\n", err)
	return ExitError
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "eventbus",
		Short: "Plexica's multi-tenant event bus on Kafka-protocol brokers",
		Long: `eventbus runs the service side of the Plexica event bus.

Without --brokers, "eventbus serve" starts an embedded Kafka-protocol broker for
development; with --brokers it works against a Redpanda or Kafka cluster.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			level, err := parseLevel(a.stringSetting(cmd, "log-level", EnvLogLevel))
			if err != nil {
				return usageErrorf("%v", err)
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			a.libLog = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: libraryLevel(level)}))
			return nil
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.PersistentFlags().String("log-level", "info",
		"log level on stderr: debug, info, warn or error (env "+EnvLogLevel+")")
	root.AddCommand(a.serveCmd(), a.benchCmd(), a.publishCmd(), a.tailCmd(), a.topicsCmd(), a.dlqCmd(), a.demoCmd(), a.benchConsumerCmd(), a.soakCmd(), a.pluginsCmd(), a.outboxCmd(), a.subscriptionsCmd(), a.groupsCmd(), a.auditCmd())
	return root
}

// stringSetting returns the value of flag name: the flag when given on the
// command line, else the environment variable env when set, else the flag's
// default.
func (a *app) stringSetting(cmd *cobra.Command, name, env string) string {
	f := cmd.Flags().Lookup(name)
	if f.Changed {
		return f.Value.String()
	}
	if v, ok := a.lookupEnv(env); ok {
		return v
	}
	return f.Value.String()
}

// libraryLevel is the level of libLog for the commands' level: warnings
// and errors unless debugging.
func libraryLevel(l slog.Level) slog.Level {
	if l <= slog.LevelDebug {
		return l
	}
	return max(l, slog.LevelWarn)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q is unknown; use debug, info, warn or error", s)
	}
	return l, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// usageError is a mistake in how a command was called; it exits with
// ExitUsage and points at --help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}
