package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/plexica/eventbus"
)

// Sentinel errors of the gateway itself. The bus's own sentinels
// (eventbus.ErrInvalidTopic, eventbus.ErrTenantRequired, ...) keep their
// meaning over HTTP: see the Errors section of the package documentation.
var (
	// ErrBadRequest: a request body is not what its Content-Type says (not
	// JSON, not a CloudEvent, a CloudEvent without a required attribute),
	// or the request has no body. Nothing was published.
	ErrBadRequest = errors.New("bad request")

	// ErrUnsupportedMediaType: a request's Content-Type is neither
	// application/json, application/cloudevents+json nor
	// application/cloudevents-batch+json. Nothing was published.
	ErrUnsupportedMediaType = errors.New("unsupported media type")

	// ErrBodyTooLarge: a request body is larger than Config.MaxBodyBytes.
	// Nothing was published.
	ErrBodyTooLarge = errors.New("request body too large")

	// ErrUnauthorized: a request has no bearer token, or one the gateway
	// does not know.
	ErrUnauthorized = errors.New("unauthorized")

	// ErrForbidden: a token acts outside its scope (a tenant token
	// publishing another tenant's event, or subscribing to it).
	ErrForbidden = errors.New("forbidden")

	// ErrEndpointNotAllowed: a push subscription's endpoint is not under
	// any of Config.AllowedEndpoints.
	ErrEndpointNotAllowed = errors.New("endpoint not allowed")

	// ErrInvalidSubscription: a push subscription declaration is missing a
	// field or has a bad value (the message names it).
	ErrInvalidSubscription = errors.New("invalid subscription")
)

// errorBody is the JSON body of every error answer.
type errorBody struct {
	// Error is the full message, saying what was wrong.
	Error string `json:"error"`
	// Sentinel names the sentinel error it wraps, as Go callers would test
	// it: "ErrInvalidTopic", "ErrTenantRequired", ...
	Sentinel string `json:"sentinel,omitempty"`
	// Fix says how to fix the request.
	Fix string `json:"fix,omitempty"`
	// Results are a batch's per-event outcomes, when some were sent.
	Results []result `json:"results,omitempty"`
}

// errorClass is what one sentinel means over HTTP.
type errorClass struct {
	err    error
	name   string
	status int
	fix    string
}

// classes maps sentinels to HTTP answers, first match wins.
var classes = []errorClass{
	{ErrUnauthorized, "ErrUnauthorized", http.StatusUnauthorized, "send Authorization: Bearer <token> with a token the gateway was given (--admin-token)"},
	{ErrForbidden, "ErrForbidden", http.StatusForbidden, "use a token whose scope covers the event's tenant, or an admin token"},
	{ErrBodyTooLarge, "ErrBodyTooLarge", http.StatusRequestEntityTooLarge, "send a smaller body, or split a batch into several requests"},
	{ErrUnsupportedMediaType, "ErrUnsupportedMediaType", http.StatusUnsupportedMediaType, "send Content-Type application/json (the bus's envelope, or a CloudEvent in binary mode with ce-* headers), application/cloudevents+json or application/cloudevents-batch+json"},
	{ErrBadRequest, "ErrBadRequest", http.StatusBadRequest, "send a JSON body as docs/gateway.md shows"},
	{ErrEndpointNotAllowed, "ErrEndpointNotAllowed", http.StatusForbidden, "declare an endpoint under one of the allowed prefixes (--push-allow), or ask the operator to allow it"},
	{ErrInvalidSubscription, "ErrInvalidSubscription", http.StatusBadRequest, "fix the field the message names"},
	{ErrNotStarted, "ErrNotStarted", http.StatusServiceUnavailable, "retry shortly; the gateway is reading its declarations"},
	{eventbus.ErrSubscriptionNotFound, "ErrSubscriptionNotFound", http.StatusNotFound, "list the subscriptions with GET /api/subscriptions"},
	{eventbus.ErrBatchTooLarge, "ErrBatchTooLarge", http.StatusRequestEntityTooLarge, fmt.Sprintf("send at most %d events per batch", eventbus.MaxBatchSize)},
	{eventbus.ErrEventTooLarge, "ErrEventTooLarge", http.StatusRequestEntityTooLarge, "make the event smaller (store large payloads elsewhere and publish a reference)"},
	{eventbus.ErrInvalidTopic, "ErrInvalidTopic", http.StatusBadRequest, "name the event core.<domain>.<action> or plugin.<pluginId>.<entity>.<action>, lowercase, past-tense action (core.user.created)"},
	{eventbus.ErrTenantRequired, "ErrTenantRequired", http.StatusBadRequest, "give the tenant: tenantId in the envelope, or the CloudEvents extension tenantid (ce-tenantid)"},
	{eventbus.ErrInvalidTenantID, "ErrInvalidTenantID", http.StatusBadRequest, "use 1 to 128 letters, digits, '-' or '_' (acme-corp)"},
	{eventbus.ErrInvalidWorkspaceID, "ErrInvalidWorkspaceID", http.StatusBadRequest, "use 1 to 128 letters, digits, '-' or '_' (ws-1)"},
	{eventbus.ErrPluginScope, "ErrPluginScope", http.StatusForbidden, "publish only the plugin's own plugin.<id>.* events for its own tenant"},
	{eventbus.ErrInvalidEvent, "ErrInvalidEvent", http.StatusBadRequest, "fix the field the message names"},
	{eventbus.ErrCircuitOpen, "ErrCircuitOpen", http.StatusServiceUnavailable, "the brokers failed repeatedly; retry after the Retry-After delay"},
	{eventbus.ErrBrokerUnavailable, "ErrBrokerUnavailable", http.StatusServiceUnavailable, "the brokers did not acknowledge in time; retry later (the event may have been written: retry with the same id)"},
	{eventbus.ErrShuttingDown, "ErrShuttingDown", http.StatusServiceUnavailable, "the gateway is stopping; retry on another instance"},
	{eventbus.ErrInvalidConfig, "ErrInvalidConfig", http.StatusBadRequest, "fix the value the message names"},
	{context.DeadlineExceeded, "context.DeadlineExceeded", http.StatusGatewayTimeout, "the brokers did not acknowledge before the request's deadline; retry with the same id"},
	{context.Canceled, "context.Canceled", 499, "the request was cancelled before the brokers acknowledged; retry with the same id"},
}

// classify returns the HTTP meaning of err.
func classify(err error) errorClass {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c
		}
	}
	return errorClass{name: "", status: http.StatusInternalServerError, fix: "see the gateway's log"}
}

// writeError answers err as JSON with the status its sentinel means.
func writeError(w http.ResponseWriter, err error) {
	c := classify(err)
	writeErrorBody(w, c.status, errorBody{Error: err.Error(), Sentinel: c.name, Fix: c.fix})
}

func writeErrorBody(w http.ResponseWriter, status int, body errorBody) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventbus"`)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
