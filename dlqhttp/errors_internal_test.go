package dlqhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/httpjson"
)

func testAPI(t *testing.T) (*api, *bytes.Buffer) {
	t.Helper()
	auth, err := NewAuthenticator(Options{AdminTokens: []string{"adm"}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	return &api{auth: auth, log: slog.New(slog.NewTextHandler(&logs, nil))}, &logs
}

func serve(a *api, e endpoint) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/dlq/stats", nil)
	req.Header.Set("Authorization", "Bearer adm")
	a.route(e).ServeHTTP(rec, req)
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) (code, message string) {
	t.Helper()
	var b httpjson.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return b.Error.Code, b.Error.Message
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: x", deadletter.ErrNotFound), 404, "not_found"},
		{fmt.Errorf("%w: x", deadletter.ErrRetryNotAllowed), 409, "conflict"},
		{fmt.Errorf("%w: x", eventbus.ErrInvalidTopic), 400, "bad_request"},
		{fmt.Errorf("%w: x", eventbus.ErrInvalidConfig), 400, "bad_request"},
		{fmt.Errorf("%w: x", eventbus.ErrShuttingDown), 503, "unavailable"},
		{fmt.Errorf("%w: x", eventbus.ErrBrokerUnavailable), 503, "unavailable"},
		{httpjson.BadRequest("nope"), 400, "bad_request"},
	}
	for _, tt := range tests {
		a, _ := testAPI(t)
		rec := serve(a, func(http.ResponseWriter, *http.Request, Principal) error { return tt.err })
		if code, _ := errorCode(t, rec); rec.Code != tt.status || code != tt.code {
			t.Errorf("%v: %d %s, want %d %s", tt.err, rec.Code, code, tt.status, tt.code)
		}
	}
}

func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	a, logs := testAPI(t)
	detail := "dial tcp 10.0.0.7:9092: connection refused\ngoroutine 7 [running]:\nmain.main()"
	rec := serve(a, func(http.ResponseWriter, *http.Request, Principal) error { return errors.New(detail) })
	code, msg := errorCode(t, rec)
	if rec.Code != 500 || code != "internal" || strings.Contains(rec.Body.String(), "10.0.0.7") || strings.Contains(msg, "goroutine") {
		t.Fatalf("500 response %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "10.0.0.7") {
		t.Fatalf("the detail was not logged: %s", logs)
	}

	a, logs = testAPI(t)
	rec = serve(a, func(http.ResponseWriter, *http.Request, Principal) error { panic("nil map write") })
	code, _ = errorCode(t, rec)
	if rec.Code != 500 || code != "internal" || strings.Contains(rec.Body.String(), "nil map") || strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatalf("panic response %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "nil map write") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("the panic was not logged with its stack: %s", logs)
	}
}
