package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown command", []string{"nope"}, `unknown command "nope"`},
		{"unknown flag", []string{"serve", "--bogus"}, "unknown flag: --bogus"},
		{"stray argument", []string{"serve", "extra"}, "unknown command"},
		{"bad log level", []string{"--log-level", "loud", "serve"}, `log level "loud" is unknown`},
		{"brokers with embedded flags", []string{"serve", "--brokers", "127.0.0.1:9092", "--data", "x"}, "--data configures the embedded broker"},
		{"brokers with advertised host", []string{"serve", "--brokers", "127.0.0.1:9092", "--advertised-host", "bus.internal"}, "--advertised-host configures the embedded broker"},
		{"advertised host with a port", []string{"serve", "--broker-addr", "127.0.0.1:0", "--in-memory", "--advertised-host", "bus.internal:9092"}, "without a port"},
		{"in-memory with data", []string{"serve", "--in-memory", "--data", "./x"}, "contradict"},
		{"broker-addr not host:port", []string{"serve", "--broker-addr", "9092"}, "is not host:port"},
		{"broker not host:port", []string{"serve", "--brokers", "kafka"}, `broker "kafka" is not host:port`},
		{"zero connect timeout", []string{"serve", "--connect-timeout", "0s"}, "--connect-timeout must be positive"},
		{"bad duration", []string{"bench", "--duration", "soon"}, `invalid argument "soon"`},
		{"negative duration", []string{"bench", "--duration", "-1s"}, "--duration -1s is negative"},
		{"negative events", []string{"bench", "--events", "-5"}, "--events -5 is negative"},
		{"zero rate", []string{"bench", "--rates", "1000,0"}, "0 is not a positive rate"},
		{"no publishers", []string{"bench", "--publishers", "0"}, "--publishers must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(context.Background(), tt.args...)
			if code != ExitUsage {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "--help' for usage") {
				t.Fatalf("stderr does not say %q and point at --help:\n%s", tt.want, stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout should be empty, got:\n%s", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runCLI(context.Background(), "serve", "--help")
	if code != ExitOK || !strings.Contains(stdout, "--broker-addr") || !strings.Contains(stdout, EnvBrokers) {
		t.Fatalf("exit %d, help:\n%s", code, stdout)
	}
}

// resolveServe parses args as serve's flags with env as the environment.
func resolveServe(t *testing.T, env map[string]string, args ...string) (serveConfig, error) {
	t.Helper()
	a := newApp(io.Discard, io.Discard)
	a.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cmd := a.serveCmd()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return a.resolveServeConfig(cmd)
}

func TestServeSettings(t *testing.T) {
	env := map[string]string{
		EnvBrokerAddr: "127.0.0.1:19092",
		EnvData:       "/var/lib/eventbus",
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want serveConfig
	}{
		{"defaults", nil, nil,
			serveConfig{BrokerAddr: DefaultBrokerAddr, DataDir: DefaultDataDir, brokerSettings: brokerSettings{ConnectTimeout: DefaultConnectTimeout}}},
		{"env", env, nil,
			serveConfig{BrokerAddr: "127.0.0.1:19092", DataDir: "/var/lib/eventbus", brokerSettings: brokerSettings{ConnectTimeout: DefaultConnectTimeout}}},
		{"flags win over env", env, []string{"--broker-addr", "127.0.0.1:0", "--data", "./d"},
			serveConfig{BrokerAddr: "127.0.0.1:0", DataDir: "./d", brokerSettings: brokerSettings{ConnectTimeout: DefaultConnectTimeout}}},
		{"in-memory beats env data", env, []string{"--in-memory"},
			serveConfig{BrokerAddr: "127.0.0.1:19092", brokerSettings: brokerSettings{ConnectTimeout: DefaultConnectTimeout}}},
		{"empty data is in memory", nil, []string{"--data", ""},
			serveConfig{BrokerAddr: DefaultBrokerAddr, brokerSettings: brokerSettings{ConnectTimeout: DefaultConnectTimeout}}},
		{"brokers from env", map[string]string{EnvBrokers: " k1:9092, k2:9092 ,"}, nil,
			serveConfig{BrokerAddr: DefaultBrokerAddr, DataDir: DefaultDataDir, brokerSettings: brokerSettings{Brokers: []string{"k1:9092", "k2:9092"}, ConnectTimeout: DefaultConnectTimeout}}},
		{"brokers flag wins over env", map[string]string{EnvBrokers: "k1:9092"}, []string{"--brokers", "k9:9092"},
			serveConfig{BrokerAddr: DefaultBrokerAddr, DataDir: DefaultDataDir, brokerSettings: brokerSettings{Brokers: []string{"k9:9092"}, ConnectTimeout: DefaultConnectTimeout}}},
		{"empty brokers flag runs embedded despite env", map[string]string{EnvBrokers: "k1:9092"}, []string{"--brokers", ""},
			serveConfig{BrokerAddr: DefaultBrokerAddr, DataDir: DefaultDataDir, brokerSettings: brokerSettings{ConnectTimeout: DefaultConnectTimeout}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveServe(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Brokers, tt.want.Brokers) || got.BrokerAddr != tt.want.BrokerAddr ||
				got.DataDir != tt.want.DataDir || got.ConnectTimeout != tt.want.ConnectTimeout {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestServePortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	code, stdout, stderr := runCLI(context.Background(), "serve", "--broker-addr", addr, "--http-addr", "127.0.0.1:0", "--in-memory")
	if code != ExitError {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitError, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
		t.Fatalf("want one line saying what to do, got:\n%s", stderr)
	}
	for _, want := range []string{addr, "in use", "--broker-addr", "--brokers " + addr} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if stdout != "" {
		t.Fatalf("nothing should be printed on stdout, got:\n%s", stdout)
	}
}

func TestServeUnreachableBrokers(t *testing.T) {
	addr := closedAddr(t)
	start := time.Now()
	code, _, stderr := runCLI(context.Background(), "serve", "--brokers", addr, "--connect-timeout", "500ms")
	if code != ExitError {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitError, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
		t.Fatalf("want one line, got:\n%s", stderr)
	}
	for _, want := range []string{"no broker answered at " + addr, "500ms", "drop --brokers"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %s to give up; --connect-timeout was 500ms", d)
	}
}

// TestServeInProcess runs serve with a data directory, waits for its
// ready line, and stops it by ending the context, as a signal does.
func TestServeInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stdout, lines := pipeWriter(t)
	var stderr eventbustest.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--log-level", "warn", "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", dir}, stdout, &stderr)
	}()
	var banner []string
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for len(banner) == 0 || !strings.HasPrefix(banner[len(banner)-1], BrokersLinePrefix) {
		select {
		case line := <-lines:
			banner = append(banner, line)
		case code := <-done:
			t.Fatalf("serve exited with %d before it was ready; stderr:\n%s", code, stderr.String())
		case <-timer.C:
			t.Fatalf("serve not ready within %s; stdout so far: %q", waitTimeout, banner)
		}
	}
	last := banner[len(banner)-1]
	brokers, ok := parseBrokersLine(last)
	if !ok || len(brokers) != 1 || strings.HasSuffix(brokers[0], ":0") {
		t.Fatalf("last banner line %q is not the brokers line", last)
	}
	httpLine := banner[len(banner)-2]
	if !strings.HasPrefix(httpLine, HTTPLinePrefix) || strings.HasSuffix(httpLine, ":0") {
		t.Fatalf("banner line %q is not the HTTP address line", httpLine)
	}
	for _, want := range []string{"/api/dlq", "/metrics", "/readyz", "admin token (generated"} {
		if !strings.Contains(strings.Join(banner, "\n"), want) {
			t.Fatalf("banner does not mention %s:\n%s", want, strings.Join(banner, "\n"))
		}
	}
	if !strings.Contains(banner[0], "embedded broker listening on "+brokers[0]) || !strings.Contains(banner[0], "data in "+dir) {
		t.Fatalf("banner %q does not say where the broker listens and where its data is", banner[0])
	}
	if banner[1] != "connect with: brokers="+brokers[0] {
		t.Fatalf("banner line %q", banner[1])
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit code %d after stop, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("serve did not stop within %s", waitTimeout)
	}
}

func TestReadyWatcher(t *testing.T) {
	w := newReadyWatcher()
	for _, chunk := range []string{"eventbus: embedded broker listening\nconnect with: b", "rokers=x\nEVENTBUS_BRO", "KERS=127.0.0.1:1,127.0.0.1:2\n", "more\n"} {
		if _, err := io.WriteString(w, chunk); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-w.brokers:
		if want := []string{"127.0.0.1:1", "127.0.0.1:2"}; !slices.Equal(got, want) {
			t.Fatalf("brokers %q, want %q", got, want)
		}
	default:
		t.Fatal("the brokers line was not seen")
	}
	if _, ok := parseBrokersLine("EVENTBUS_BROKERS="); ok {
		t.Fatal("an empty brokers line must not count")
	}
}

// TestServeHelpShowsTheLibraryDefaults: serve --help states the library's
// defaults from its constants.
func TestServeHelpShowsTheLibraryDefaults(t *testing.T) {
	cmd := (&app{}).serveCmd()
	want := []string{
		fmt.Sprintf("up to %d automatic", deadletter.DefaultMaxRetries),
		"doubling up to " + shortDuration(deadletter.DefaultMaxRetryBackoff),
		deadletter.DefaultSchedulerGroup,
	}
	for _, w := range want {
		if !strings.Contains(cmd.Long, w) {
			t.Errorf("serve --help does not say %q:\n%s", w, cmd.Long)
		}
	}
	if got := cmd.Flags().Lookup("connect-timeout").DefValue; got != eventbus.DefaultConnectTimeout.String() {
		t.Errorf("--connect-timeout default %s, want eventbus.DefaultConnectTimeout (%s)", got, eventbus.DefaultConnectTimeout)
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 30 * time.Second: "30s", 90 * time.Minute: "1h30m", time.Minute: "1m"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
