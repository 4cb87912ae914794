package consoleapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/groups"
	"github.com/plexica/eventbus/topic"
)

const (
	adminToken = "ana:admin-0123456789abcdef"
	adminSec   = "admin-0123456789abcdef"
	acmeSec    = "acme-0123456789abcdef"
)

type fixture struct {
	srv   *httptest.Server
	bus   *eventbus.Bus
	adm   *kadm.Client
	audit *audit.Log
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// The trail and the group list are the cluster's: a broker of the test's own.
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	client := eventbustest.NewClient(t, broker.Addrs()...)
	adm, err := client.Admin()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := dlqhttp.ParseNamedTokens(adminToken + ",acme-ops:" + acmeSec + "=tenant:acme")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := dlqhttp.NewAuthenticator(dlqhttp.Options{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(context.Background(), client, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	hist, err := groups.NewHistory(adm, groups.HistoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	if err := bus.DLQ().Start(t.Context()); err != nil { // the queue's owner, as in eventbus serve
		t.Fatal(err)
	}
	h, err := consoleapi.New(consoleapi.Options{Auth: auth, Admin: adm, Audit: log, History: hist, KafkaOpts: client.KafkaOpts(), DLQ: bus.DLQ(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, bus: bus, adm: adm, audit: log}
}

// call sends a request and decodes a JSON answer into out (unless nil);
// it returns the status and, for an error, its code.
func (f *fixture) call(t *testing.T, method, path, token string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Error.Message == "" {
			t.Fatalf("%s %s: %d with a body that is not the error shape: %s", method, path, res.StatusCode, raw)
		}
		return res.StatusCode, e.Error.Code
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return res.StatusCode, ""
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/api/audit", "/api/groups", "/api/groups/x", "/api/topics"} {
		if code, c := f.call(t, "GET", path, "", nil, nil); code != 401 || c != "unauthorized" {
			t.Errorf("GET %s without a token: %d %s", path, code, c)
		}
		if code, _ := f.call(t, "GET", path, "wrong-0123456789abcdef", nil, nil); code != 401 {
			t.Errorf("GET %s with a wrong token: %d", path, code)
		}
	}
	for _, path := range []string{"/api/groups", "/api/groups/x", "/api/topics"} {
		if code, c := f.call(t, "GET", path, acmeSec, nil, nil); code != 403 || c != "forbidden" {
			t.Errorf("GET %s with a tenant token: %d %s, want 403", path, code, c)
		}
	}
	if code, _ := f.call(t, "POST", "/api/groups/x/reset", acmeSec, consoleapi.ResetRequest{To: "earliest"}, nil); code != 403 {
		t.Errorf("a reset with a tenant token: %d, want 403", code)
	}
}

func TestAuditAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, e := range []audit.Entry{
		{Actor: "ana", Action: audit.ActionDLQRetry, Target: "a1", TenantID: "acme"},
		{Actor: "bo", Action: audit.ActionDLQDelete, Target: "g1", TenantID: "globex"},
		{Actor: "ana", Action: audit.ActionGroupReset, Target: "billing"},
	} {
		if err := f.audit.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var page audit.Page
	f.call(t, "GET", "/api/audit", adminSec, nil, &page)
	if len(page.Items) != 3 || page.Items[0].Target != "billing" {
		t.Errorf("admin sees %+v, want all three, newest first", page.Items)
	}
	f.call(t, "GET", "/api/audit?actor=ana&limit=1", adminSec, nil, &page)
	if len(page.Items) != 1 || page.Items[0].Target != "billing" || page.Next == 0 {
		t.Errorf("first page of ana's: %+v", page)
	}
	f.call(t, "GET", "/api/audit?actor=ana&limit=1&before="+strconv.FormatInt(page.Next, 10), adminSec, nil, &page)
	if len(page.Items) != 1 || page.Items[0].Target != "a1" {
		t.Errorf("second page of ana's: %+v", page)
	}
	f.call(t, "GET", "/api/audit", acmeSec, nil, &page)
	if len(page.Items) != 1 || page.Items[0].TenantID != "acme" {
		t.Errorf("tenant acme sees %+v, want its one entry", page.Items)
	}
	if code, c := f.call(t, "GET", "/api/audit?tenantId=globex", acmeSec, nil, nil); code != 403 || c != "forbidden" {
		t.Errorf("tenant acme asking for globex: %d %s", code, c)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "before=0", "before=x"} {
		if code, c := f.call(t, "GET", "/api/audit?"+q, adminSec, nil, nil); code != 400 || c != "bad_request" {
			t.Errorf("?%s: %d %s, want 400", q, code, c)
		}
	}
}

func TestGroupsAPI(t *testing.T) {
	f := newFixture(t)
	name := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	for i := range 4 {
		eventbustest.MustPublish(t, f.bus, name, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	// Preview for a group that does not exist yet, on a named topic.
	var plan consoleapi.ResetResponse
	if code, _ := f.call(t, "POST", "/api/groups/"+group+"/reset", adminSec, consoleapi.ResetRequest{To: "earliest", Topics: []string{name}}, &plan); code != 200 {
		t.Fatalf("preview: %d", code)
	}
	if plan.Executed || plan.Redeliver != 4 {
		t.Errorf("preview %+v, want 4 to redeliver, not executed", plan)
	}
	if code, _ := f.call(t, "GET", "/api/groups/"+group, adminSec, nil, nil); code != 404 {
		t.Errorf("a preview created the group: GET answers %d", code)
	}
	f.call(t, "POST", "/api/groups/"+group+"/reset", adminSec, consoleapi.ResetRequest{To: "earliest", Topics: []string{name}, Execute: true}, &plan)
	if !plan.Executed {
		t.Fatalf("execute: %+v", plan)
	}
	var list struct{ Groups []groups.Summary }
	f.call(t, "GET", "/api/groups", adminSec, nil, &list)
	if len(list.Groups) != 1 || list.Groups[0].Group != group || list.Groups[0].Lag != 4 {
		t.Errorf("groups %+v, want %s with lag 4", list.Groups, group)
	}
	var detail consoleapi.GroupDetail
	f.call(t, "GET", "/api/groups/"+group, adminSec, nil, &detail)
	if detail.Lag != 4 || len(detail.Partitions) != topic.DefaultPartitions || detail.SampleInterval != groups.DefaultSampleInterval.Seconds() {
		t.Errorf("detail %+v", detail)
	}
	page, err := f.audit.List(context.Background(), audit.Query{Action: audit.ActionGroupReset})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Actor != "ana" || page.Items[0].Target != group || page.Items[0].Detail["redeliver"] != "4" || page.Items[0].Detail["to"] != "earliest" {
		t.Errorf("the trail holds %+v, want ana's reset of %s (previews are not recorded)", page.Items, group)
	}

	// A running member: 409, and the failed attempt is not an action taken.
	eventbustest.MustSubscribe(t, f.bus, name, eventbustest.NewRecorder().Handle, eventbus.InGroup(group))
	if code, c := f.call(t, "POST", "/api/groups/"+group+"/reset", adminSec, consoleapi.ResetRequest{To: "latest"}, nil); code != 409 || c != "conflict" {
		t.Errorf("reset of a running group: %d %s, want 409", code, c)
	}
	for _, body := range []any{map[string]any{"to": "sideways"}, map[string]any{"to": "earliest", "force": true}, "not an object"} {
		if code, c := f.call(t, "POST", "/api/groups/"+group+"/reset", adminSec, body, nil); code != 400 || c != "bad_request" {
			t.Errorf("reset with %v: %d %s, want 400", body, code, c)
		}
	}
	if code, _ := f.call(t, "GET", "/api/groups/no-such-group", adminSec, nil, nil); code != 404 {
		t.Errorf("unknown group: %d, want 404", code)
	}
}

func TestTopicsAPI(t *testing.T) {
	f := newFixture(t)
	name := eventbustest.UniqueTopic(t, "core.invoice.paid")
	for i := range 5 {
		eventbustest.MustPublish(t, f.bus, name, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	var out struct{ Topics []consoleapi.Topic }
	f.call(t, "GET", "/api/topics", adminSec, nil, &out)
	var got *consoleapi.Topic
	for i, tp := range out.Topics {
		if strings.HasPrefix(tp.Name, "__") {
			t.Errorf("internal topic %s listed", tp.Name)
		}
		if tp.Name == name {
			got = &out.Topics[i]
		}
	}
	if got == nil {
		t.Fatalf("%s not in %+v", name, out.Topics)
	}
	if got.Kind != "core" || got.Partitions != topic.DefaultPartitions || got.ReplicationFactor != 1 || got.Events != 5 ||
		got.RetentionMs != (7*24*time.Hour).Milliseconds() || got.CleanupPolicy != "delete" || len(got.Parts) != topic.DefaultPartitions {
		t.Errorf("topic %+v", *got)
	}
	f.call(t, "GET", "/api/topics?internal=true", adminSec, nil, &out)
	found := false
	for _, tp := range out.Topics {
		found = found || tp.Name == audit.Topic
	}
	if !found {
		t.Errorf("?internal=true lacks %s", audit.Topic)
	}
}
