package httpjson_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plexica/eventbus/internal/httpjson"
)

func TestWriteErrorBody(t *testing.T) {
	rec := httptest.NewRecorder()
	httpjson.WriteError(rec, http.StatusConflict, httpjson.CodeConflict, `<"x">`)
	if rec.Code != http.StatusConflict || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got, want := rec.Body.String(), `{"error":{"code":"conflict","message":"\u003c\"x\"\u003e"}}`+"\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

func TestWriteRefusesWhatItCannotEncode(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := httpjson.Write(rec, http.StatusOK, func() {}); err == nil {
		t.Fatal("a func was encoded")
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Fatalf("something was written before the encoding failed: %v %q", rec.Header(), rec.Body)
	}
}

func TestBadRequest(t *testing.T) {
	var e *httpjson.Error
	if err := httpjson.BadRequest("page %d", 0); !errors.As(err, &e) || e.Status != 400 || e.Code != "bad_request" || err.Error() != "page 0" {
		t.Fatalf("%#v", err)
	}
}

func TestGuard(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rec := httptest.NewRecorder()
	httpjson.Guard(log, "api", func(http.ResponseWriter, *http.Request) { panic("nil map write") }).
		ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	h := rec.Header()
	if rec.Code != 500 || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v", rec.Code, h)
	}
	if got, want := rec.Body.String(), `{"error":{"code":"internal","message":"internal error; see the server log"}}`+"\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "api: handler panicked") || !strings.Contains(logs.String(), "nil map write") {
		t.Fatalf("the panic was not logged: %s", logs.String())
	}

	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler passed on", v)
		}
	}()
	httpjson.Guard(log, "api", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
}
