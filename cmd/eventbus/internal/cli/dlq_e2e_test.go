package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

// waitForServe reads serve's banner up to its EVENTBUS_BROKERS= line and
// returns the brokers and the HTTP address.
func waitForServe(t *testing.T, lines <-chan string) (brokers []string, httpAddr string) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("serve's output ended before its banner")
			}
			if addr, ok := strings.CutPrefix(line, HTTPLinePrefix); ok {
				httpAddr = addr
			}
			if b, ok := parseBrokersLine(line); ok {
				return b, httpAddr
			}
		case <-timer.C:
			t.Fatalf("serve printed no banner within %s", waitTimeout)
		}
	}
}

// call makes one API request and decodes a JSON answer into out (if given).
func call(t *testing.T, method, url, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, body)
		}
	}
	return resp.StatusCode
}

// TestServeBinaryDLQAPI drives the DLQ REST API of two real `eventbus serve`
// processes on one broker: both report the same entries, and every route
// answers good and bad input with the right status.
func TestServeBinaryDLQAPI(t *testing.T) {
	t.Parallel()
	first, lines, stderr := startBinary(t, "serve", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory",
		"--admin-token", "admin-secret-0123456,acme-secret-01234567=tenant:acme")
	brokers, api1 := waitForServe(t, lines)
	second, lines2, _ := startBinary(t, "serve", "--brokers", strings.Join(brokers, ","), "--http-addr", "127.0.0.1:0",
		"--admin-token", "admin-secret-0123456")
	_, api2 := waitForServe(t, lines2)

	// A consumer group that rejects every event, through the library.
	bus := eventbustest.NewBus(t, servesQueue(), brokers...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		return eventbus.Permanent(errors.New("email rejected"))
	}, eventbus.InGroup("mailer"))
	acme := eventbustest.MustPublish(t, bus, topic, map[string]string{"password": "hunter2"}, eventbus.PublishMetadata{TenantID: "acme"})
	globex := eventbustest.MustPublish(t, bus, topic, 2, eventbus.PublishMetadata{TenantID: "globex"})

	// Both instances converge on the same two entries (bounded poll).
	var p1, p2 dlqhttp.Page
	eventbustest.Eventually(t, "both instances to hold the two entries", func() error {
		call(t, "GET", "http://"+api1+"/api/dlq/events?topic="+topic, "admin-secret-0123456", &p1)
		call(t, "GET", "http://"+api2+"/api/dlq/events?topic="+topic, "admin-secret-0123456", &p2)
		if p1.Total != 2 || p2.Total != 2 {
			return fmt.Errorf("entries: first instance %d, second %d, want 2 each; stderr:\n%s", p1.Total, p2.Total, stderr)
		}
		return nil
	})
	for i := range p1.Items {
		if p1.Items[i].ID != p2.Items[i].ID || p1.Items[i].Status != p2.Items[i].Status {
			t.Fatalf("instances disagree: %+v vs %+v", p1.Items[i], p2.Items[i])
		}
	}
	id := deadletter.ID("mailer", topic, "acme", acme)
	// The delete is checked on the entry no retry touches: a retry that
	// fails again after a delete rightly records the entry anew.
	untouched := deadletter.ID("mailer", topic, "globex", globex)
	base := "http://" + api1 + "/api/dlq"
	var entry deadletter.Entry
	checks := []struct {
		method, path, token string
		want                int
		out                 any
	}{
		{"GET", "/stats", "", http.StatusUnauthorized, nil},
		{"GET", "/stats", "wrong", http.StatusUnauthorized, nil},
		{"GET", "/stats", "admin-secret-0123456", http.StatusOK, nil},
		{"GET", "/events/" + id, "admin-secret-0123456", http.StatusOK, &entry},
		{"GET", "/events/" + id, "acme-secret-01234567", http.StatusOK, nil},
		{"GET", "/events?tenantId=globex", "acme-secret-01234567", http.StatusForbidden, nil},
		{"GET", "/events?status=broken", "admin-secret-0123456", http.StatusBadRequest, nil},
		{"GET", "/events?page=0", "admin-secret-0123456", http.StatusBadRequest, nil},
		{"GET", "/events/no-such-id", "admin-secret-0123456", http.StatusNotFound, nil},
		{"POST", "/events/" + id + "/retry?manual=false", "admin-secret-0123456", http.StatusConflict, nil},
		{"POST", "/events/no-such-id/retry", "admin-secret-0123456", http.StatusNotFound, nil},
		{"POST", "/retry/topic/orders", "admin-secret-0123456", http.StatusBadRequest, nil},
		{"POST", "/events/" + id + "/retry", "admin-secret-0123456", http.StatusAccepted, nil},
		{"POST", "/retry/topic/" + topic, "acme-secret-01234567", http.StatusOK, nil},
		{"DELETE", "/events/no-such-id", "admin-secret-0123456", http.StatusNotFound, nil},
		{"DELETE", "/events/" + untouched, "acme-secret-01234567", http.StatusNotFound, nil},
		{"DELETE", "/events/" + untouched, "admin-secret-0123456", http.StatusNoContent, nil},
		{"GET", "/events/" + untouched, "admin-secret-0123456", http.StatusNotFound, nil},
	}
	for _, c := range checks {
		if got := call(t, c.method, base+c.path, c.token, c.out); got != c.want {
			t.Errorf("%s %s (token %q) = %d, want %d", c.method, c.path, c.token, got, c.want)
		}
	}
	if entry.Status != deadletter.StatusMaxRetriesExceeded || entry.ConsumerGroup != "mailer" || entry.TenantID != "acme" {
		t.Errorf("entry %+v", entry)
	}
	if strings.Contains(string(entry.OriginalEvent), "hunter2") {
		t.Errorf("the API returned a password: %s", entry.OriginalEvent)
	}
	// The retries were sent by the entries' owner, either instance.
	var metrics string
	for _, api := range []string{api1, api2} {
		resp, err := http.Get("http://" + api + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics += string(b)
		}
	}
	for _, series := range []string{"eventbus_dlq_entries", "eventbus_breaker_state", "eventbus_dlq_retries_sent_total"} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := call(t, "GET", "http://"+api1+path, "", nil); code != http.StatusOK {
			t.Errorf("%s = %d", path, code)
		}
	}
	for _, p := range []struct {
		cmd   *exec.Cmd
		lines <-chan string
	}{{second, lines2}, {first, lines}} {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code, out := waitExit(t, p.cmd, p.lines); code != ExitOK {
			t.Errorf("serve exited with %d after SIGTERM:\n%s", code, out)
		}
	}
}

// TestReadyzNamesWhatIsNotReady: /readyz answers 200 "ready" while the
// brokers answer and the DLQ view is loaded, and 503 naming the reason once
// the brokers are gone.
func TestReadyzNamesWhatIsNotReady(t *testing.T) {
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	_, lines, stderr := startBinary(t, "serve", "--brokers", strings.Join(broker.Addrs(), ","), "--http-addr", "127.0.0.1:0", "--admin-token", "readyz-test-token-0001")
	_, httpAddr := waitForServe(t, lines)
	if httpAddr == "" {
		t.Fatalf("serve printed no %s line; stderr:\n%s", HTTPLinePrefix, stderr)
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The DLQ view loads in the background.
	eventbustest.Eventually(t, "/readyz to say ready", func() error {
		if code, body := readyz(); code != http.StatusOK || body != "ready\n" {
			return fmt.Errorf("/readyz = %d %q; want 200 ready", code, body)
		}
		return nil
	})
	broker.Close()
	eventbustest.Eventually(t, "/readyz to name the brokers gone", func() error {
		if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "the brokers do not answer") {
			return fmt.Errorf("/readyz with the brokers gone = %d %q; want 503 naming the brokers", code, body)
		}
		return nil
	})
}

// servesQueue is the config of a library bus whose failures the queue of
// an `eventbus serve` applies: serve's scheduler group, the default.
func servesQueue() eventbus.Config {
	return eventbus.Config{DLQ: deadletter.Config{SchedulerGroup: deadletter.DefaultSchedulerGroup}}
}
