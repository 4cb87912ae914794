package cli

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

const (
	anaToken  = "console-ana-token-0001"
	acmeToken = "console-acme-token-001"
)

// TestGroupsResetAndAuditEndToEnd: `eventbus groups` lists, describes and
// resets a group (a dry run changes nothing, --execute does); a reset
// through serve's API and one from the command are in `eventbus audit` with
// their actors' names, and still are after serve restarts on its data.
func TestGroupsResetAndAuditEndToEnd(t *testing.T) {
	dir := t.TempDir()
	tokens := "ana:" + anaToken + ",acme-ops:" + acmeToken + "=tenant:acme"
	serve := func() (*eventbusProc, []string, string) {
		cmd, lines, stderr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", dir, "--admin-token", tokens)
		brokers, httpAddr := waitForServe(t, lines)
		if httpAddr == "" {
			t.Fatalf("no HTTP line; stderr:\n%s", stderr)
		}
		return &eventbusProc{cmd: cmd, lines: lines}, brokers, httpAddr
	}
	proc, brokers, httpAddr := serve()
	b := strings.Join(brokers, ",")

	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	name := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, name, rec.Handle, eventbus.InGroup(group))
	for i := range 5 {
		eventbustest.MustPublish(t, bus, name, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	rec.WaitFor(t, 5)
	if err := bus.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, "", nil, "groups", "list", "--brokers", b)
	if !regexpLine(out, group, "Empty", "0", "0", name) {
		t.Errorf("groups list lacks %s (Empty, 0 members, lag 0):\n%s", group, out)
	}
	out = mustRun(t, "", nil, "groups", "describe", group, "--brokers", b)
	if !strings.Contains(out, "CURRENT-OFFSET  LOG-END-OFFSET  LAG") || strings.Count(out, " "+name+" ") != topic.DefaultPartitions { // not its retry topic's row (dlq.retry.<group>.<topic>)
		t.Errorf("groups describe:\n%s", out)
	}
	out = mustRun(t, "", nil, "groups", "reset", group, "--brokers", b, "--to-earliest")
	if !strings.Contains(out, "Dry run: nothing changed. Resetting "+group+" to earliest would deliver 5 events again and skip 0. Add --execute to apply.") ||
		!strings.Contains(out, "NEW-OFFSET") {
		t.Errorf("dry run:\n%s", out)
	}
	var g consoleapi.GroupDetail
	if code := call(t, "GET", "http://"+httpAddr+"/api/groups/"+group, anaToken, &g); code != 200 || g.Lag != 0 {
		t.Fatalf("after a dry run: %d, lag %d; want 200, 0", code, g.Lag)
	}
	mustRun(t, "", nil, "groups", "reset", group, "--brokers", b, "--to-earliest", "--execute", "--actor", "ops-bot")
	if code := call(t, "GET", "http://"+httpAddr+"/api/groups/"+group, anaToken, &g); code != 200 || g.Lag != 5 {
		t.Fatalf("after --execute: %d, lag %d; want 200, 5", code, g.Lag)
	}
	if code := callJSON(t, "POST", "http://"+httpAddr+"/api/groups/"+group+"/reset", anaToken, `{"to":"latest","execute":true}`); code != 200 {
		t.Fatalf("reset through the API: %d", code)
	}
	if code := call(t, "GET", "http://"+httpAddr+"/api/groups/"+group, acmeToken, nil); code != 403 {
		t.Errorf("a tenant token reads a group: %d, want 403", code)
	}

	checkAudit := func(when, addr string) {
		t.Helper()
		out := mustRun(t, "", nil, "audit", "--api", addr, "--token", anaToken, "--action", "group.reset")
		if !regexpLine(out, "ana", "group.reset", group, "ok", "to=latest") || !regexpLine(out, "ops-bot", "group.reset", group, "ok", "redeliver=5", "to=earliest") {
			t.Errorf("%s: eventbus audit lacks the two resets with their actors:\n%s", when, out)
		}
		if out := mustRun(t, "", nil, "audit", "--api", addr, "--token", acmeToken); !strings.Contains(out, "no audit entries") {
			t.Errorf("%s: the tenant token sees:\n%s", when, out)
		}
	}
	checkAudit("before a restart", httpAddr)

	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := waitExit(t, proc.cmd, proc.lines); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	_, _, httpAddr = serve()
	checkAudit("after a restart", httpAddr)

	for _, args := range [][]string{
		{"groups", "reset", group, "--brokers", b},
		{"groups", "reset", group, "--brokers", b, "--to-earliest", "--to-latest"},
		{"groups", "reset", group, "--brokers", b, "--to-offset", "x"},
		{"groups", "describe"},
		{"audit", "--limit", "0"},
		{"audit", "--action", "nope"},
	} {
		if code, _, stderr := runBinary(t, "", nil, args...); code != ExitUsage {
			t.Errorf("eventbus %s: exit %d, want %d; stderr %s", strings.Join(args, " "), code, ExitUsage, stderr)
		}
	}
}

// eventbusProc is a running eventbus process and its stdout lines.
type eventbusProc struct {
	cmd   *exec.Cmd
	lines <-chan string
}

// callJSON makes one API request with a JSON body and returns the status.
func callJSON(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
