package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/eventbustest"
)

// runBinary runs the built eventbus binary to completion with args, stdin
// and extra environment (on top of the test's, without its EVENTBUS_*
// variables), and returns its exit code and output.
func runBinary(t *testing.T, stdin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, eventbusBinary(t), args...)
	cmd.Env = append(withoutEventbusEnv(os.Environ()), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("eventbus %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("eventbus %s did not finish within %s", strings.Join(args, " "), waitTimeout)
	}
	return code, out.String(), errOut.String()
}

// mustRun runs the binary and fails the test unless it exits 0.
func mustRun(t *testing.T, stdin string, env []string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runBinary(t, stdin, env, args...)
	if code != ExitOK {
		t.Fatalf("eventbus %s: exit code %d; stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// oneLineError checks that a failed command printed exactly one line on
// stderr (plus the --help hint for usage errors) that says all of want.
func oneLineError(t *testing.T, stderr string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) == 2 && strings.HasPrefix(lines[1], "Run '") {
		lines = lines[:1]
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "eventbus: ") {
		t.Fatalf("want one line starting with \"eventbus: \", got:\n%s", stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Fatalf("the error does not say %q:\n%s", w, stderr)
		}
	}
}

// waitStderr waits (bounded polling) until a process's stderr contains s.
func waitStderr(t *testing.T, stderr *eventbustest.LogBuffer, s string) {
	t.Helper()
	eventbustest.Eventually(t, fmt.Sprintf("stderr to say %q", s), func() error {
		if got := stderr.String(); !strings.Contains(got, s) {
			return fmt.Errorf("stderr so far:\n%s", got)
		}
		return nil
	})
}

// TestCommandsEndToEnd runs `eventbus serve` and drives topics, publish,
// tail and dlq against it, each as the built binary.
func TestCommandsEndToEnd(t *testing.T) {
	serve, serveLines, serveErr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory",
		"--admin-token", "admin-secret-0123456,acme-secret-01234567=tenant:acme", "--log-level", "warn")
	brokers, httpAddr := waitForServe(t, serveLines)
	brokerList := strings.Join(brokers, ",")
	env := []string{EnvBrokers + "=" + brokerList}

	t.Run("topics", func(t *testing.T) {
		out := mustRun(t, "", nil, "topics", "check", "plugin.crm.contact.note.added")
		for _, want := range []string{"valid plugin topic", "plugin:", "crm", "entity:", "contact.note", "action:", "added", "dlq.plugin.crm.contact.note.added"} {
			if !strings.Contains(out, want) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
		code, stdout, stderr := runBinary(t, "", nil, "topics", "check", "core.user.create")
		if code != ExitError || stdout != "" {
			t.Fatalf("check core.user.create: exit %d, stdout %q", code, stdout)
		}
		oneLineError(t, stderr, "past tense", `use "core.user.created"`)

		topic := eventbustest.UniqueTopic(t, "core.invoice.paid")
		out = mustRun(t, "", env, "topics", "create", topic, "--partitions", "2")
		if !strings.Contains(out, "created topic "+topic+" (2 partitions, replication 1)") {
			t.Fatalf("create said:\n%s", out)
		}
		out = mustRun(t, "", nil, "topics", "create", topic, "--brokers", brokerList)
		if !strings.Contains(out, "already exists") {
			t.Fatalf("second create said:\n%s", out)
		}
		out = mustRun(t, "", env, "topics", "list")
		if !strings.Contains(out, "NAME") || !regexpLine(out, topic, "core", "2", "1") {
			t.Fatalf("list lacks %s:\n%s", topic, out)
		}
		var infos []topicInfo
		if err := json.Unmarshal([]byte(mustRun(t, "", env, "topics", "list", "--json", topic)), &infos); err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 || infos[0] != (topicInfo{Name: topic, Kind: "core", Partitions: 2, Replication: 1}) {
			t.Fatalf("list --json %s: %+v", topic, infos)
		}
		code, _, stderr = runBinary(t, "", env, "topics", "create", topic+"x", "--replication", "3")
		if code != ExitUsage {
			t.Fatalf("create with a bad name: exit %d", code)
		}
		oneLineError(t, stderr, "invalid topic name")
	})

	t.Run("publish and tail", func(t *testing.T) {
		topic := eventbustest.UniqueTopic(t, "core.user.created")
		// The topic exists, so tail follows it from the start; the prefix
		// tail finds its topic only once it is created, on a refresh.
		mustRun(t, "", env, "topics", "create", topic)
		domain := "core." + strings.Split(eventbustest.UniqueTopic(t, "core.order.placed"), ".")[1]
		tail, tailOut, tailErr := startBinary(t, "tail", topic, "--tenant", "acme", "--max", "2", "--brokers", brokerList)
		prefixTail, prefixOut, prefixErr := startBinary(t, "tail", domain+".", "--json", "--max", "1", "--refresh", "100ms", "--brokers", brokerList)
		waitStderr(t, tailErr, "Ctrl-C to stop")
		waitStderr(t, prefixErr, "Ctrl-C to stop")
		waitStderr(t, prefixErr, "looking every") // the line after: two writes, read between them
		if !strings.Contains(tailErr.String(), "tenant acme") || !strings.Contains(prefixErr.String(), "new "+domain+".* topics") {
			t.Fatalf("tail's announcements:\n%s\n%s", tailErr, prefixErr)
		}

		file := filepath.Join(t.TempDir(), "data.json")
		if err := os.WriteFile(file, []byte("{\n  \"userId\": \"u-3\",\n  \"email\": \"c@acme.test\",\n  \"role\": \"admin\"\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		id1 := strings.TrimSpace(mustRun(t, "", env, "publish", topic, "--tenant", "acme", "--data", `{"userId":"u-1","email":"a@acme.test","role":"member"}`, "--header", "trace=t1"))
		id2 := strings.TrimSpace(mustRun(t, `{"userId":"u-2"}`, env, "publish", topic, "--tenant", "globex", "-"))
		id3 := strings.TrimSpace(mustRun(t, "", env, "publish", topic, "--tenant", "acme", "--workspace", "sales", "--file", file, "--key", "k1", "--source", "cli-test"))
		for _, id := range []string{id1, id2, id3} {
			if len(id) != 36 {
				t.Fatalf("publish printed %q, want an event ID", id)
			}
		}
		code, out := waitExit(t, tail, tailOut)
		if code != ExitOK {
			t.Fatalf("tail exit code %d; stderr:\n%s", code, tailErr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("tail --max 2 printed:\n%s", out)
		}
		if !regexpLine(lines[0], topic, "acme", id1, `{"userId":"u-1","email":"a@acme.test","role":"member"}`) ||
			!regexpLine(lines[1], topic, "acme/sales", id3, `{"userId":"u-3","email":"c@acme.test","role":"admin"}`) ||
			strings.Contains(out, id2) {
			t.Fatalf("tail --tenant acme printed:\n%s", out)
		}

		prefixTopic := domain + ".shipped"
		id4 := strings.TrimSpace(mustRun(t, "", env, "publish", prefixTopic, "--tenant", "acme", "--data", `[1,2]`))
		code, out = waitExit(t, prefixTail, prefixOut)
		if code != ExitOK {
			t.Fatalf("prefix tail exit code %d; stderr:\n%s", code, prefixErr)
		}
		var ev eventbus.RawEvent
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ev); err != nil {
			t.Fatalf("tail --json printed %q: %v", out, err)
		}
		if ev.ID != id4 || ev.Type != prefixTopic || ev.TenantID != "acme" || string(ev.Data) != "[1,2]" || ev.Metadata.Source != "core" {
			t.Fatalf("tail --json printed %+v", ev)
		}
		if !strings.Contains(prefixErr.String(), "now also tailing "+prefixTopic) {
			t.Fatalf("the prefix tail did not say it picked up %s:\n%s", prefixTopic, prefixErr)
		}

		// From the beginning, on a group of the caller's choosing.
		out = mustRun(t, "", env, "tail", topic, "--from-beginning", "--group", "audit", "--max", "3")
		if !strings.Contains(out, id1) || !strings.Contains(out, id2) || !strings.Contains(out, id3) {
			t.Fatalf("tail --from-beginning printed:\n%s", out)
		}

		// Ctrl-C stops a tail that has no --max, with exit code 0.
		tail, tailOut, tailErr = startBinary(t, "tail", "*", "--brokers", brokerList)
		waitStderr(t, tailErr, "Ctrl-C to stop")
		if err := tail.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if code, out := waitExit(t, tail, tailOut); code != ExitOK || out != "" {
			t.Fatalf("tail after SIGINT: exit %d, stdout %q; stderr:\n%s", code, out, tailErr)
		}

		// The tails' own groups are gone; the named group stays.
		adm, err := eventbustest.NewClient(t, brokers...).Admin()
		if err != nil {
			t.Fatal(err)
		}
		groups, err := adm.ListGroups(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups.Groups() {
			if strings.HasPrefix(g, "eventbus-tail-") {
				t.Errorf("tail left its group %s behind", g)
			}
		}
		if !slices.Contains(groups.Groups(), "audit") {
			t.Errorf("the group audit is gone: %v", groups.Groups())
		}
	})

	t.Run("publish errors", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"publish", "core.user.create", "--tenant", "acme"}, []string{"past tense", `use "core.user.created"`}},
			{[]string{"publish", "core.user.created"}, []string{"--tenant is required"}},
			{[]string{"publish", "core.user.created", "--tenant", "acme", "--data", `{"userId":}`}, []string{"--data is not valid JSON", "character 11"}},
		} {
			code, stdout, stderr := runBinary(t, "", env, tt.args...)
			if code != ExitUsage || stdout != "" {
				t.Fatalf("%v: exit %d, stdout %q", tt.args, code, stdout)
			}
			oneLineError(t, stderr, tt.want...)
		}
	})

	t.Run("dlq", func(t *testing.T) {
		// A consumer group that rejects every event, through the library.
		bus := eventbustest.NewBus(t, servesQueue(), brokers...)
		topic := eventbustest.UniqueTopic(t, "core.user.created")
		eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
			return eventbus.Permanent(errors.New("mailbox rejected"))
		}, eventbus.InGroup("mailer"))
		acme := strings.TrimSpace(mustRun(t, "", env, "publish", topic, "--tenant", "acme", "--data", `{"userId":"u-1","password":"hunter2"}`))
		mustRun(t, "", env, "publish", topic, "--tenant", "globex")
		id := deadletter.ID("mailer", topic, "acme", acme)

		api := []string{EnvAPI + "=" + httpAddr, EnvToken + "=admin-secret-0123456"}
		eventbustest.Eventually(t, "the two failures to reach the DLQ", func() error {
			var stats deadletter.Stats
			out := mustRun(t, "", api, "dlq", "stats", "--json")
			if err := json.Unmarshal([]byte(out), &stats); err != nil {
				t.Fatalf("dlq stats --json printed %q: %v", out, err)
			}
			if stats.ByTopic[topic] != 2 {
				return fmt.Errorf("%+v\nserve's stderr:\n%s", stats, serveErr)
			}
			return nil
		})
		out := mustRun(t, "", api, "dlq", "stats")
		if !regexpLine(out, "max-retries-exceeded", "2") || !regexpLine(out, topic, "2") {
			t.Fatalf("dlq stats:\n%s", out)
		}
		var acmeStats deadletter.Stats
		out = mustRun(t, "", api, "dlq", "stats", "--json", "--topic", topic, "--status", "max-retries-exceeded", "--tenant", "acme")
		if err := json.Unmarshal([]byte(out), &acmeStats); err != nil || acmeStats.Total != 1 || acmeStats.ByTopic[topic] != 1 {
			t.Fatalf("dlq stats --topic --status --tenant acme (%v):\n%s", err, out)
		}
		out = mustRun(t, "", api, "dlq", "list", "--topic", topic)
		if !regexpLine(out, id, "max-retries-exceeded", topic, "acme", "mailer", "0/3", "mailbox rejected") ||
			!strings.Contains(out, "page 1 of 1, 2 entries") {
			t.Fatalf("dlq list:\n%s", out)
		}
		var page dlqhttp.Page
		out = mustRun(t, "", api, "dlq", "list", "--json", "--topic", topic, "--tenant", "acme", "--status", "max-retries-exceeded", "--page-size", "1")
		if err := json.Unmarshal([]byte(out), &page); err != nil || page.Total != 1 || len(page.Items) != 1 || page.Items[0].ID != id {
			t.Fatalf("dlq list --json --tenant acme (%v):\n%s", err, out)
		}
		// A tenant token sees its tenant only.
		out = mustRun(t, "", []string{EnvAPI + "=http://" + httpAddr}, "dlq", "list", "--topic", topic, "--token", "acme-secret-01234567")
		if !strings.Contains(out, "page 1 of 1, 1 entry") {
			t.Fatalf("dlq list with acme's token:\n%s", out)
		}
		out = mustRun(t, "", api, "dlq", "show", "--", id)
		for _, want := range []string{"ID:", id, "Status:", "max-retries-exceeded (permanent failure)", "Group:", "mailer", "History:", "failed", "Original event:", deadletter.ID("mailer", topic, "acme", acme)} {
			if !strings.Contains(out, want) {
				t.Fatalf("dlq show lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "hunter2") {
			t.Fatalf("dlq show printed a password:\n%s", out)
		}
		out = mustRun(t, "", api, "dlq", "retry", "--", id)
		if !strings.Contains(out, "retry of "+id+" sent") {
			t.Fatalf("dlq retry:\n%s", out)
		}
		out = mustRun(t, "", api, "dlq", "retry-topic", topic)
		if !strings.Contains(out, "retried 2 entries of "+topic) {
			t.Fatalf("dlq retry-topic:\n%s", out)
		}
		// Both retries fail again (the handler is permanent); wait until the
		// entry has recorded that, or a late failure would record it anew
		// after the delete below.
		eventbustest.Eventually(t, "the retried entry to settle", func() error {
			var e deadletter.Entry
			out = mustRun(t, "", api, "dlq", "show", "--json", "--", id)
			if err := json.Unmarshal([]byte(out), &e); err == nil && e.RetryCount == 2 && e.Status == deadletter.StatusMaxRetriesExceeded {
				return nil
			}
			return fmt.Errorf("the retried entry never settled:\n%s", out)
		})
		out = mustRun(t, "", api, "dlq", "delete", "--", id)
		if !strings.Contains(out, "deleted "+id) {
			t.Fatalf("dlq delete:\n%s", out)
		}
		code, _, stderr := runBinary(t, "", api, "dlq", "show", "--", id)
		if code != ExitError {
			t.Fatalf("dlq show of a deleted entry: exit %d", code)
		}
		oneLineError(t, stderr, "404", "not_found", id)
		code, _, stderr = runBinary(t, "", []string{EnvAPI + "=" + httpAddr}, "dlq", "stats")
		if code != ExitError {
			t.Fatalf("dlq stats without a token: exit %d", code)
		}
		oneLineError(t, stderr, "401", "--token", EnvToken)
		code, _, stderr = runBinary(t, "", api, "dlq", "list", "--status", "stuck")
		if code != ExitUsage {
			t.Fatalf("dlq list --status stuck: exit %d", code)
		}
		oneLineError(t, stderr, `--status "stuck"`, "pending, retrying, resolved or max-retries-exceeded")
	})

	_ = serve.Process.Signal(syscall.SIGTERM)
	if code, _ := waitExit(t, serve, serveLines); code != ExitOK {
		t.Fatalf("serve exit code %d after SIGTERM; stderr:\n%s", code, serveErr)
	}
}

// regexpLine reports whether one line of out holds every part, in order.
func regexpLine(out string, parts ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestCommandsUnreachable checks the one line a person gets when nothing
// answers where the commands look.
func TestCommandsUnreachable(t *testing.T) {
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"publish", "core.user.created", "--tenant", "acme", "--brokers", addr, "--connect-timeout", "300ms"},
		{"tail", "core.user.created", "--brokers", addr, "--connect-timeout", "300ms"},
		{"topics", "list", "--brokers", addr, "--connect-timeout", "300ms"},
	} {
		code, stdout, stderr := runCLI(context.Background(), args...)
		if code != ExitError || stdout != "" {
			t.Fatalf("%v: exit %d, stdout %q", args, code, stdout)
		}
		oneLineError(t, stderr, "no broker answered at "+addr, "300ms", "eventbus serve", "--brokers")
	}
	code, _, stderr := runCLI(context.Background(), "dlq", "stats", "--api", addr, "--token", "x")
	if code != ExitError {
		t.Fatalf("dlq stats: exit %d", code)
	}
	oneLineError(t, stderr, "cannot reach the DLQ API at http://"+addr, "--api", EnvAPI)
}

// TestCommandsUsageErrors checks the new commands' usage errors in
// process: exit code 2, one line saying what to do, nothing on stdout.
func TestCommandsUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"publish without type", []string{"publish"}, "publish needs an event type"},
		{"publish bad type", []string{"publish", "orders", "--tenant", "a"}, "a topic must be core.<domain>.<action>"},
		{"publish dlq topic", []string{"publish", "dlq.core.user.created", "--tenant", "a"}, `publish "core.user.created"`},
		{"publish no tenant", []string{"publish", "core.user.created"}, "--tenant is required"},
		{"publish bad json", []string{"publish", "core.user.created", "--tenant", "a", "--data", "{'a':1}"}, "--data is not valid JSON: invalid character '\\''"},
		{"publish truncated json", []string{"publish", "core.user.created", "--tenant", "a", "--data", `{"a":[1`}, "ends too early"},
		{"publish empty data", []string{"publish", "core.user.created", "--tenant", "a", "--data", " "}, "--data is empty"},
		{"publish two data sources", []string{"publish", "core.user.created", "--tenant", "a", "--data", "{}", "-"}, "one way only"},
		{"publish stray argument", []string{"publish", "core.user.created", "x", "--tenant", "a"}, `unexpected argument "x"`},
		{"publish missing file", []string{"publish", "core.user.created", "--tenant", "a", "--file", "/no/such.json"}, "--file: open /no/such.json"},
		{"publish bad header", []string{"publish", "core.user.created", "--tenant", "a", "--header", "novalue"}, `--header "novalue" is not key=value`},
		{"publish reserved header", []string{"publish", "core.user.created", "--tenant", "a", "--header", "Tenant-ID=b"}, "the bus sets that header itself"},
		{"publish bad brokers", []string{"publish", "core.user.created", "--tenant", "a", "--brokers", "kafka"}, `broker "kafka" is not host:port`},
		{"publish empty brokers", []string{"publish", "core.user.created", "--tenant", "a", "--brokers", ""}, "--brokers is empty"},
		{"tail nothing", []string{"tail"}, "tail needs at least one event type or prefix"},
		{"tail bad type", []string{"tail", "core.user.create"}, `use "core.user.created"`},
		{"tail dlq prefix", []string{"tail", "dlq."}, "eventbus dlq list"},
		{"tail bad prefix", []string{"tail", "orders."}, "prefixes start with core. or plugin."},
		{"tail workspace without tenant", []string{"tail", "core.user.", "--workspace", "w"}, "--workspace needs --tenant"},
		{"tail negative max", []string{"tail", "core.user.", "--max", "-1"}, "--max -1 is negative"},
		{"tail zero timeout", []string{"tail", "core.user.", "--connect-timeout", "0s"}, "--connect-timeout must be positive"},
		{"topics alone", []string{"topics"}, "topics needs a subcommand"},
		{"topics check nothing", []string{"topics", "check"}, "topics check needs one topic name"},
		{"topics check bad action", []string{"topics", "check", "core.a.b", "--allow-action", "Bad"}, "--allow-action"},
		{"topics create negative", []string{"topics", "create", "core.a.created", "--partitions", "-1"}, "--partitions -1 is negative"},
		{"dlq alone", []string{"dlq"}, "dlq needs a subcommand"},
		{"dlq show nothing", []string{"dlq", "show"}, "dlq show needs one entry ID"},
		{"dlq bad status", []string{"dlq", "list", "--status", "done"}, `--status "done" is not a status`},
		{"dlq bad page", []string{"dlq", "list", "--page", "0"}, "--page must be at least 1"},
		{"dlq bad page size", []string{"dlq", "list", "--page-size", "500"}, "--page-size must be between 1 and 100"},
		{"dlq bad api", []string{"dlq", "stats", "--api", "ftp://x"}, "is not an http(s) address"},
		{"dlq retry-topic bad", []string{"dlq", "retry-topic", "core.user.create"}, `use "core.user.created"`},
		{"demo negative pace", []string{"demo", "--pace", "-1s"}, "--pace -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(context.Background(), tt.args...)
			if code != ExitUsage {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout should be empty, got:\n%s", stdout)
			}
			oneLineError(t, stderr, tt.want)
		})
	}
}

// TestTopicsCheckInProcess covers check's output for each kind.
func TestTopicsCheckInProcess(t *testing.T) {
	code, out, _ := runCLI(context.Background(), "topics", "check", "dlq.core.workspace.member_added")
	if code != ExitOK || !regexpLine(out, "holds failures of:", "core.workspace.member_added") || !regexpLine(out, "domain:", "workspace") ||
		!regexpLine(out, "action:", "member_added") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI(context.Background(), "topics", "check", "plugin.crm.deal.sync", "--allow-action", "sync")
	if code != ExitOK || !regexpLine(out, "action:", "sync") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestTopicsCheckPastForms checks that topics check accepts the irregular
// past forms of issue 25 in core and plugin topics, and suggests real words
// for present-tense actions (not "holded", "buyed", "submited").
func TestTopicsCheckPastForms(t *testing.T) {
	for _, name := range []string{
		"core.payment.held", "core.order.kept", "plugin.shop.item.sold", "core.order.bought",
		"core.option.chosen", "core.doc.written", "core.order.made", "core.item.found",
		"core.course.taught", "core.note.said", "core.job.stuck", "core.account.frozen",
		"core.doc.read", "core.flag.set", "core.file.put", "core.order.split", "core.app.rebuilt",
		"plugin.crm.offer.withdrawn", "core.ruling.upheld", "plugin.crm.deal.price_overridden",
		"core.order.submitted", "core.order.cancelled", "core.order.canceled",
	} {
		code, out, stderr := runCLI(context.Background(), "topics", "check", name)
		if code != ExitOK || !strings.Contains(out, name+" is a valid") {
			t.Errorf("topics check %s: exit %d\n%s%s", name, code, out, stderr)
		}
	}
	for name, want := range map[string]string{
		"core.payment.hold":           "core.payment.held",
		"core.order.buy":              "core.order.bought",
		"plugin.shop.item.sell":       "plugin.shop.item.sold",
		"core.order.submit":           "core.order.submitted",
		"core.doc.write":              "core.doc.written",
		"core.item.find":              "core.item.found",
		"plugin.crm.deal.member_keep": "plugin.crm.deal.member_kept",
	} {
		code, out, stderr := runCLI(context.Background(), "topics", "check", name)
		if code != ExitError || out != "" {
			t.Errorf("topics check %s: exit %d, want %d\n%s", name, code, ExitError, out)
			continue
		}
		oneLineError(t, stderr, "must be past tense", `use "`+want+`"`)
	}
	// No suggestion rather than an invented word: the rule's example instead
	// (not "paymented" for a noun).
	for _, name := range []string{"core.order.creating", "core.order.payment", "plugin.shop.cart.checkout"} {
		code, _, stderr := runCLI(context.Background(), "topics", "check", name)
		if code != ExitError {
			t.Fatalf("topics check %s: exit %d", name, code)
		}
		oneLineError(t, stderr, "must be past tense", "(e.g. ")
		if strings.Contains(stderr, `; use "`) {
			t.Errorf("topics check %s suggests a name: %s", name, stderr)
		}
	}
}

func TestTailArguments(t *testing.T) {
	cmd := newApp(nil, nil).tailCmd()
	if err := cmd.ParseFlags([]string{"--tenant", "acme"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := resolveTail(cmd, []string{"core.user.", "plugin.crm.*", "core.user.created", "core.user.created"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Prefixes, []string{"core.user.", "plugin.crm."}) || !slices.Equal(cfg.Types, []string{"core.user.created"}) ||
		!cfg.Generated || !strings.HasPrefix(cfg.Group, "eventbus-tail-") {
		t.Fatalf("%+v", cfg)
	}
	for topic, want := range map[string]bool{
		"core.user.deleted":          true,
		"core.user.created":          true,
		"plugin.crm.deal.updated":    true,
		"core.tenant.created":        false,
		"dlq.core.user.created":      false,
		"plugin.crm-admin.x.created": false,
		"core.user.bad_name":         false,
	} {
		if got := cfg.matches(topic); got != want {
			t.Errorf("matches(%q) = %t, want %t", topic, got, want)
		}
	}
	all, err := resolveTail(cmd, []string{"*"})
	if err != nil || !all.matches("plugin.x.y.created") || all.matches("__consumer_offsets") || all.matches("orders") {
		t.Fatalf("* : %+v, %v", all, err)
	}
}

func TestFormatEventLine(t *testing.T) {
	ev := eventbus.RawEvent{
		ID: "01a2", Type: "core.user.created", TenantID: "acme", WorkspaceID: "sales",
		Timestamp: time.Date(2026, 11, 27, 17, 6, 55, 916e6, time.UTC),
		Data:      json.RawMessage("{ \"userId\" : \"u-1\" }"),
	}
	want := `2026-11-27T17:06:55.916Z  core.user.created  acme/sales  01a2  {"userId":"u-1"}`
	if got := formatEventLine(ev); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	ev.Data = json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)
	if got := formatEventLine(ev); !strings.HasSuffix(got, "… (1002 bytes)") {
		t.Fatalf("long data not cut: %s", got[len(got)-40:])
	}
}
