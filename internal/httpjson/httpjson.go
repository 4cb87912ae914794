// Package httpjson holds the JSON answers that the DLQ API (dlqhttp) and
// the console's other APIs (consoleapi) share: the error with its status
// and code, the error body {"error":{"code":code,"message":message}}, a
// JSON answer, and the wrapper that keeps their answers out of caches and
// turns a panic into a 500.
package httpjson

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Codes of the JSON error body.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// Error is an error with the HTTP status and code it is answered with;
// its message is shown to the client as it is.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is the body's error.code, one of the Code constants.
	Code string
	// Message is the body's error.message.
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// BadRequest is a 400 Error with code bad_request and the message
// fmt.Sprintf(format, args...).
func BadRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError answers status with the JSON error body
// {"error":{"code":code,"message":message}}.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, message
	_ = Write(w, status, b)
}

// Write answers status with v as JSON, followed by a newline. Its error is
// the encoding's, before anything was written, so the caller can still
// answer with a 500.
func Write(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// Guard wraps an API handler: its answers are never cached nor
// content-sniffed, and a panic (other than http.ErrAbortHandler) is logged
// with its stack under name and answered 500 with the JSON error body.
func Guard(log *slog.Logger, name string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error(name+": handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				WriteError(w, http.StatusInternalServerError, CodeInternal, "internal error; see the server log")
			}
		}()
		next(w, r)
	})
}
