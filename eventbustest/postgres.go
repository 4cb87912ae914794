package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the environment variable that points tests at an
// existing PostgreSQL server: a connection string (URL or key=value) of a
// user allowed to create databases. When it is empty, Postgres starts a
// throwaway cluster with the machine's PostgreSQL server binaries.
const PostgresEnv = "EVENTBUS_TEST_POSTGRES"

// RequirePostgresEnv names the environment variable that makes Postgres
// fail a test instead of skipping it when no PostgreSQL is available
// (.ci/run sets it).
const RequirePostgresEnv = "EVENTBUS_REQUIRE_POSTGRES"

// PostgresInstall is the command that installs the PostgreSQL server
// binaries Postgres looks for (Debian, Ubuntu).
const PostgresInstall = "apt-get install -y postgresql"

// Postgres returns the connection string of a new, empty database for this
// test, dropped when the test ends. The database lives on the server named
// by EVENTBUS_TEST_POSTGRES, or else on a throwaway cluster that the first
// call of the test process starts: initdb and postgres from PATH or
// /usr/lib/postgresql/*/bin, in a temp dir, listening on a free 127.0.0.1
// port, trusting local connections. The cluster is stopped when the test
// process exits (the server gets SIGQUIT as its parent dies); its
// directory is removed by the next process that starts one. As root, the
// cluster runs as the "postgres" system user (initdb refuses root).
//
// Where no server binaries are found the test is skipped with the install
// command (PostgresInstall), unless EVENTBUS_REQUIRE_POSTGRES is set: then
// it fails.
func Postgres(t testing.TB) string {
	t.Helper()
	admin, err := postgresServer()
	if err != nil {
		var missing *postgresMissingError
		if errors.As(err, &missing) && os.Getenv(RequirePostgresEnv) == "" {
			t.Skipf("%v (%s is not set, so the test is skipped)", err, RequirePostgresEnv)
		}
		t.Fatalf("postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres: connect to %s: %v", redactDSN(admin), err)
	}
	defer conn.Close(context.Background())
	name := "eventbus_test_" + randomSuffix() + randomSuffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("postgres: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("postgres: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("postgres: drop database %s: %v", name, err)
		}
	})
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return withDatabase(admin, cfg, name)
}

// withDatabase returns dsn naming database name instead of its own.
func withDatabase(dsn string, cfg *pgx.ConnConfig, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		i := strings.Index(dsn, "://") + 3
		rest := dsn[i:]
		q := ""
		if j := strings.IndexByte(rest, '?'); j >= 0 {
			rest, q = rest[:j], rest[j:]
		}
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		return dsn[:i] + rest + "/" + name + q
	}
	_ = cfg
	return dsn + " dbname=" + name
}

func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i >= 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

type postgresMissingError struct{ why string }

func (e *postgresMissingError) Error() string {
	return "no PostgreSQL for this test: " + e.why + "; install the server binaries (" + PostgresInstall +
		") or name a server in " + PostgresEnv
}

var (
	pgOnce  sync.Once
	pgAdmin string
	pgErr   error
)

// postgresServer returns the admin connection string of the test server,
// starting the throwaway cluster on the first call.
func postgresServer() (string, error) {
	if dsn := strings.TrimSpace(os.Getenv(PostgresEnv)); dsn != "" {
		return dsn, nil
	}
	pgOnce.Do(func() { pgAdmin, pgErr = startCluster() })
	return pgAdmin, pgErr
}

// postgresBinGlob is where Debian's packages install the server binaries.
var postgresBinGlob = "/usr/lib/postgresql/*/bin"

// postgresBin returns the directory of initdb and postgres.
func postgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(postgresBinGlob)
	for i := len(dirs) - 1; i >= 0; i-- { // the newest version first
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
				return dirs[i], nil
			}
		}
	}
	return "", &postgresMissingError{why: "initdb and postgres are neither on PATH nor in /usr/lib/postgresql/*/bin"}
}

const clusterPrefix = "eventbus-pg-"

func startCluster() (string, error) {
	bin, err := postgresBin()
	if err != nil {
		return "", err
	}
	var cred *syscall.Credential
	var uid, gid = -1, -1
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", &postgresMissingError{why: fmt.Sprintf("running as root, which initdb refuses, and there is no system user \"postgres\" to run the cluster as (%v)", err)}
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	removeStaleClusters()
	dir, err := os.MkdirTemp("", clusterPrefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return "", err
	}
	if cred != nil {
		for _, p := range []string{dir, data} {
			if err := os.Chown(p, uid, gid); err != nil {
				return "", err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		dsn, err := runPostgres(bin, dir, data, port, cred)
		if err == nil {
			return dsn, nil
		}
		lastErr = err
	}
	return "", lastErr
}

// runPostgres starts the postmaster as a child that gets SIGQUIT (an
// immediate shutdown) when this process dies, and waits until it accepts
// connections.
func runPostgres(bin, dir, data string, port int, cred *syscall.Credential) (string, error) {
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig is tied to the thread that started the child: start it
	// from a thread that never exits.
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
		logFile.Close()
		select {} // keep the thread
	}()
	if err := <-started; err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(WaitTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return dsn, nil
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return "", fmt.Errorf("postgres exited (%v): %s", werr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			return "", fmt.Errorf("postgres did not accept connections within %s: %v", WaitTimeout, err)
		}
	}
}

// removeStaleClusters removes the directories of clusters whose test
// process is gone (their server died with it).
func removeStaleClusters() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), clusterPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); err == nil {
				continue // its server may still be shutting down
			}
			_ = os.RemoveAll(d)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PostgresServer returns the admin connection string of the server that
// Postgres creates its databases on: EVENTBUS_TEST_POSTGRES, or the
// throwaway cluster, started on the first call and stopped when the
// process exits. It is for programs that are not tests (`eventbus bench`);
// tests call Postgres. Without server binaries the error says how to
// install them.
func PostgresServer() (string, error) { return postgresServer() }
