package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/groups"
	"github.com/plexica/eventbus/topic"
)

// TestConsolePagesEndToEnd drives the console's groups, topics and audit
// pages of a real `eventbus serve` in headless Chromium: a group's lag
// appears and drains while a consumer runs and the chart has points; a
// reset previewed and applied in the page redelivers exactly the previewed
// events to that group only; the topics page shows the topic's events; the
// audit trail shows the reset with the token's name; a group name made of
// HTML stays text.
func TestConsolePagesEndToEnd(t *testing.T) {
	artifacts := needChromium(t)
	const token, acmeOps = "ops-console-token-0001", "acme-console-token-001"
	_, lines, stderr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory",
		"--admin-token", "ana:"+token+",acme-ops:"+acmeOps+"=tenant:acme", "--lag-sample-interval", "200ms")
	brokers, httpAddr := waitForServe(t, lines)
	if httpAddr == "" {
		t.Fatalf("serve printed no %s line; stderr:\n%s", HTTPLinePrefix, stderr)
	}
	base := "http://" + httpAddr

	client := eventbustest.NewClient(t, brokers...)
	adm, err := client.Admin()
	if err != nil {
		t.Fatal(err)
	}
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	tp := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	evil := `<img src=x onerror="window.__xss=1">` + eventbustest.UniqueID("g")
	const events = 12
	for i := range events {
		eventbustest.MustPublish(t, bus, tp, map[string]any{"n": i, "html": "<script>window.__xss=2</script>"}, eventbus.PublishMetadata{TenantID: "acme"})
	}
	// The group and the HTML-named one start at the oldest event: lag 12.
	ctx := context.Background()
	for _, g := range []string{group, evil} {
		plan, err := groups.PlanReset(ctx, adm, g, []string{tp}, groups.Target{Kind: groups.ToEarliest})
		if err != nil {
			t.Fatal(err)
		}
		if err := groups.Reset(ctx, adm, plan); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t, artifacts)
	b.do("sign in",
		chromedp.Navigate(base+"/#/groups"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token+kb.Enter),
	)
	b.waitFor("the groups with their lag", fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('#groups tbody tr')].find(r => r.dataset.group === %q);
		return !document.querySelector('#groups-view').hidden && r && r.querySelector('.lag').textContent === '%d' })()`, group, events))
	// The HTML-named group is text, and nothing ran.
	b.waitFor("the HTML-named group as text", fmt.Sprintf(`[...document.querySelectorAll('#groups tbody tr')].some(r => r.dataset.group === %q && r.cells[0].textContent === %q)`, evil, evil))
	if x := b.text(`String(window.__xss)`); x != "undefined" {
		t.Errorf("a group name ran as HTML: window.__xss = %s", x)
	}

	b.do("open the group", chromedp.Navigate(base+"/#/group/"+encodeURIComponent(group)))
	b.waitFor("the group's lag and a chart", fmt.Sprintf(`document.querySelector('#g-sub').dataset.lag === '%d' &&
		Number(document.querySelector('#g-chart').dataset.points) >= 1 && document.querySelectorAll('#g-partitions tbody tr').length === %d`, events, topic.DefaultPartitions))

	// A consumer runs: the lag drains to 0 in the page, the chart grows.
	consumer := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	first := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, consumer, tp, first.Handle, eventbus.InGroup(group))
	first.WaitFor(t, events)
	b.waitFor("the lag drained, with a member", `document.querySelector('#g-sub').dataset.lag === '0' &&
		document.querySelectorAll('#g-members tbody tr td').length === 4 && Number(document.querySelector('#g-chart').dataset.points) >= 2`)
	b.screenshot("console-group.png", true)

	// While it runs, a preview is refused (409) in the page.
	b.do("preview with a member", chromedp.Click(chromedp.CSS("#r-preview")))
	b.waitFor("the refusal", `document.querySelector('#r-result').textContent.includes('409') && document.querySelector('#r-execute').disabled`)
	if err := consumer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the group idle", `document.querySelector('#g-state').textContent === 'Empty'`)

	// Preview a reset to the oldest event, then apply it.
	b.do("preview the reset", chromedp.Click(chromedp.CSS("#r-preview")))
	b.waitFor("the preview", fmt.Sprintf(`document.querySelector('#r-result').textContent.includes('%d events would be delivered again') &&
		!document.querySelector('#r-plan').hidden && !document.querySelector('#r-execute').disabled`, events))
	previewed, _ := strconv.Atoi(b.text(`String([...document.querySelectorAll('#r-plan tbody tr')].reduce((n, r) => n + Number(r.cells[4].textContent), 0))`))
	b.do("apply it",
		chromedp.Click(chromedp.CSS("#r-execute")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
	)
	b.waitFor("the reset applied", fmt.Sprintf(`document.querySelector('#r-result').textContent.includes('Reset applied') &&
		document.querySelector('#g-sub').dataset.lag === '%d'`, events))

	// Exactly the previewed events come back, to this group only.
	again := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	second := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, again, tp, second.Handle, eventbus.InGroup(group))
	second.WaitFor(t, previewed)
	b.waitFor("the lag drained again", `document.querySelector('#g-sub').dataset.lag === '0'`)
	if n := second.Len(); n != previewed || previewed != events {
		t.Errorf("after the reset the group handled %d events; the preview said %d (want %d)", n, previewed, events)
	}
	if g, err := groups.Describe(ctx, adm, evil); err != nil || g.Lag != events {
		t.Errorf("the other group: lag %d (%v), want %d: the reset touched it", g.Lag, err, events)
	}

	// While it runs, one event goes to it again, to it only.
	partition := b.text(`[...document.querySelectorAll('#g-partitions tbody tr')].find(r => Number(r.cells[3].textContent) > 0).cells[1].textContent`)
	b.do("replay the first event",
		chromedp.SetValue(chromedp.CSS("#p-topic"), tp),
		chromedp.SetValue(chromedp.CSS("#p-partition"), partition),
		chromedp.SetValue(chromedp.CSS("#p-offset"), "0"),
		chromedp.Click(chromedp.CSS("#p-replay")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
	)
	b.waitFor("the replay sent", `document.querySelector('#p-result').textContent.includes('Sent event')`)
	if again := second.WaitFor(t, events+1); again[events].ID != first.Events()[0].ID {
		t.Errorf("the replay delivered %s, want the first event %s", again[events].ID, first.Events()[0].ID)
	}

	if err := again.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	b.do("open the topics", chromedp.Navigate(base+"/#/topics"))
	// The events; the replay's record went to the group's own retry topic
	// (dlq.retry.<group>.<topic>), which only that group reads.
	b.waitFor("the topic with its events", fmt.Sprintf(`[...document.querySelectorAll('#topics tbody tr')].some(r => r.dataset.topic === %q &&
		r.querySelector('.events').textContent === '%d')`, tp, events))
	b.waitFor("the group's retry topic", fmt.Sprintf(`[...document.querySelectorAll('#topics tbody tr')].some(r => r.dataset.topic.startsWith('dlq.retry.') &&
		r.dataset.topic.endsWith(%q))`, "."+tp))
	b.screenshot("console-topics.png", true)
	b.do("follow the topic from its row", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#topics tr[data-topic=%q] a`, tp))))
	b.waitFor("the tail of that topic", fmt.Sprintf(`!document.querySelector('#tail-view').hidden && document.querySelector('#t-type').value === %q`, tp))

	// A reset of the HTML-named group, so that the audit trail shows its name.
	if code := callJSON(t, "POST", base+"/api/groups/"+encodeURIComponent(evil)+"/reset", token, `{"to":"latest","execute":true}`); code != 200 {
		t.Fatalf("reset of the HTML-named group: %d", code)
	}
	b.do("open the audit trail", chromedp.Navigate(base+"/#/audit"))
	b.waitFor("the HTML-named group as text in the trail", fmt.Sprintf(`[...document.querySelectorAll('#audit tbody tr')].some(r => r.cells[3].textContent === %q)`, evil))
	b.waitFor("the reset in the trail", fmt.Sprintf(`[...document.querySelectorAll('#audit tbody tr')].some(r => r.dataset.actor === 'ana' &&
		r.dataset.action === 'group.reset' && r.cells[3].textContent === %q && r.innerText.includes('redeliver=%d'))`, group, events))
	b.screenshot("console-audit.png", true)

	// The live tail: an event published once it is live shows up, its HTML
	// as text; pause stops it.
	b.do("open the tail", chromedp.Navigate(base+"/#/tail"), chromedp.WaitVisible(chromedp.CSS("#t-type")))
	b.do("start it", chromedp.SetValue(chromedp.CSS("#t-type"), tp), chromedp.Click(chromedp.CSS("#t-start")))
	b.waitFor("the tail live", `document.querySelector('#tail-view').dataset.live === 'true'`)
	html := `<img src=x onerror="window.__xss=3">`
	live := eventbustest.MustPublish(t, bus, tp, map[string]any{"comment": html, "password": "hunter2"}, eventbus.PublishMetadata{TenantID: "globex"},
		eventbus.WithHeader("x-note", html), eventbus.WithPartitionKey(html))
	b.waitFor("the event in the tail", fmt.Sprintf(`(() => { const r = document.querySelector('#tail tbody tr[data-id=%q]');
		return r && r.innerText.includes(%q) && r.innerText.includes('[REDACTED]') && !r.innerText.includes('hunter2') })()`, live, html))
	b.screenshot("console-tail.png", true)
	b.do("pause", chromedp.Click(chromedp.CSS("#t-pause")))
	b.waitFor("paused", `document.querySelector('#tail-state').textContent.startsWith('Paused')`)

	// A tenant token sees its tenant's events only.
	b.do("sign in as a tenant",
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('eventbus.dlq.token', '`+acmeOps+`')`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#t-type")),
	)
	b.do("start the tenant's tail", chromedp.SetValue(chromedp.CSS("#t-type"), tp), chromedp.Click(chromedp.CSS("#t-start")))
	b.waitFor("the tenant's tail live", `document.querySelector('#tail-view').dataset.live === 'true'`)
	hidden := eventbustest.MustPublish(t, bus, tp, map[string]any{"n": "globex's"}, eventbus.PublishMetadata{TenantID: "globex"})
	own := eventbustest.MustPublish(t, bus, tp, map[string]any{"n": "acme's"}, eventbus.PublishMetadata{TenantID: "acme"})
	b.waitFor("the tenant's own event", fmt.Sprintf(`!!document.querySelector('#tail tbody tr[data-id=%q]')`, own))
	if got := b.text(fmt.Sprintf(`String(!!document.querySelector('#tail tbody tr[data-id=%q]'))`, hidden)); got != "false" {
		t.Errorf("the tenant token's tail shows another tenant's event")
	}
	b.do("the tenant opens the groups", chromedp.Navigate(base+"/#/groups"))
	b.waitFor("the groups refused", `document.querySelector('#groups-error').textContent.includes('403')`)

	if x := b.text(`String(window.__xss)`); x != "undefined" {
		t.Errorf("something ran as HTML: window.__xss = %s", x)
	}
	if !strings.Contains(b.text(`document.querySelector('#nav').innerText`), "Audit trail") {
		t.Error("no navigation between the pages")
	}
	b.checkConsole()
}

// encodeURIComponent is JavaScript's, for the group names of these tests.
func encodeURIComponent(s string) string {
	var out strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			out.WriteByte(c)
		} else {
			fmt.Fprintf(&out, "%%%02X", c)
		}
	}
	return out.String()
}

// TestConsoleAuditAfterRestart: an action taken through the API is on the
// console's audit page, with the token's name, after serve restarts on its
// data.
func TestConsoleAuditAfterRestart(t *testing.T) {
	artifacts := needChromium(t)
	const token = "ops-console-token-0002"
	dir := t.TempDir()
	serve := func() (*eventbusProc, []string, string) {
		cmd, lines, stderr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", dir, "--admin-token", "bo:"+token)
		brokers, httpAddr := waitForServe(t, lines)
		if httpAddr == "" {
			t.Fatalf("serve printed no %s line; stderr:\n%s", HTTPLinePrefix, stderr)
		}
		return &eventbusProc{cmd: cmd, lines: lines}, brokers, httpAddr
	}
	proc, brokers, httpAddr := serve()
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.invoice.paid")
	group := eventbustest.UniqueID("ledger")
	eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	if code := callJSON(t, "POST", "http://"+httpAddr+"/api/groups/"+group+"/reset", token, `{"to":"earliest","topics":["`+topic+`"],"execute":true}`); code != 200 {
		t.Fatalf("reset: %d", code)
	}
	if err := bus.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := waitExit(t, proc.cmd, proc.lines); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	_, _, httpAddr = serve()
	b := newBrowser(t, artifacts)
	b.do("sign in on the audit page",
		chromedp.Navigate("http://"+httpAddr+"/#/audit"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token+kb.Enter),
	)
	b.waitFor("the reset, by bo, after the restart", fmt.Sprintf(`[...document.querySelectorAll('#audit tbody tr')].some(r =>
		r.dataset.actor === 'bo' && r.dataset.action === 'group.reset' && r.cells[3].textContent === %q)`, group))
	b.checkConsole()
}
