package dlqhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/plexica/eventbus"
)

// maxAnswer bounds the body of an answer the Client reads: a page of
// MaxPageSize entries, each with its original event, fits many times over.
const maxAnswer = 64 << 20

// Client calls the DLQ REST API that New serves, for example the one of
// `eventbus serve`. Its methods mirror the routes and answer the types the
// API encodes. A Client is safe for concurrent use.
//
// Errors: an answer that is not a success is an *APIError, which errors.Is
// matches against eventbus.ErrFailedEventNotFound (404) and
// eventbus.ErrRetryNotAllowed (409); a request that gets no answer (the
// server is down, the context ended, ...) fails with an error wrapping the
// *url.Error that names the request's method and URL; an answer that is not
// the API's JSON fails with an error wrapping the decoding error.
type Client struct {
	base  string // scheme://host[/prefix], escaped, without a trailing slash
	token string
	http  *http.Client
}

// NewClient returns a client of the API served at baseURL, with the routes
// under baseURL + "/api/dlq/": the server's address ("http://127.0.0.1:8080"),
// with a path prefix if a proxy mounts the API under one. A baseURL that
// already ends in /api/dlq is taken as the API's own address.
//
// Every request presents token as its bearer token; an empty token sends
// none, for a server with AllowUnauthenticated. httpClient sends the
// requests (nil means http.DefaultClient, which has no timeout: bound the
// calls with their context, or give a client with a Timeout).
//
// NewClient fails, with an error wrapping eventbus.ErrInvalidConfig, when
// baseURL is not an absolute http or https URL without credentials, query
// or fragment, or when token holds characters no HTTP header can carry.
func NewClient(baseURL, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: dlqhttp client: base URL %q: %v", eventbus.ErrInvalidConfig, baseURL, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("%w: dlqhttp client: base URL %q is not an http(s) address, e.g. http://127.0.0.1:8080", eventbus.ErrInvalidConfig, baseURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: dlqhttp client: base URL %s holds credentials; pass the bearer token as the token", eventbus.ErrInvalidConfig, u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%w: dlqhttp client: base URL %q has a query or fragment; give the server's address only", eventbus.ErrInvalidConfig, baseURL)
	}
	if strings.ContainsFunc(token, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return nil, fmt.Errorf("%w: dlqhttp client: the token holds a control character", eventbus.ErrInvalidConfig)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	prefix := strings.TrimSuffix(strings.TrimSuffix(u.EscapedPath(), "/"), "/api/dlq")
	return &Client{base: u.Scheme + "://" + u.Host + prefix, token: token, http: httpClient}, nil
}

// Page is the body of GET /api/dlq/events: one page of entries, newest
// failure first unless asked otherwise. TotalPages is 0 when nothing
// matches; a page past the last has no items (and Items is empty, not nil).
type Page struct {
	Items      []eventbus.FailedEvent `json:"items"`
	Total      int                    `json:"total"`
	Page       int                    `json:"page"`
	PageSize   int                    `json:"pageSize"`
	TotalPages int                    `json:"totalPages"`
}

// RetryCounts is the body of POST /api/dlq/retry/topic/{topic}: how many
// entries were sent again, and how many the brokers refused.
type RetryCounts struct {
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// ListQuery selects the entries of Client.List. Zero fields are left out
// of the request, for the server's defaults.
type ListQuery struct {
	// Topic is an original topic (not its dlq.* topic).
	Topic  string
	Status eventbus.FailedEventStatus
	// TenantID narrows an admin's list to one tenant. A tenant token may
	// give only its own tenant.
	TenantID string
	// Page counts from 1; 0 means the first.
	Page int
	// PageSize is at most MaxPageSize; 0 means DefaultPageSize.
	PageSize int
	// Oldest lists the oldest failure first (sort=failedAt) instead of the
	// newest.
	Oldest bool
}

func (q ListQuery) values() url.Values {
	v := url.Values{}
	set := func(key, value string) {
		if value != "" {
			v.Set(key, value)
		}
	}
	set("topic", q.Topic)
	set("status", string(q.Status))
	set("tenantId", q.TenantID)
	if q.Page != 0 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if q.PageSize != 0 {
		v.Set("pageSize", strconv.Itoa(q.PageSize))
	}
	if q.Oldest {
		v.Set("sort", "failedAt")
	}
	return v
}

// Stats calls GET /api/dlq/stats: the counts of the entries the token may
// see, of tenant tenantID only unless it is empty.
func (c *Client) Stats(ctx context.Context, tenantID string) (eventbus.DLQStats, error) {
	var q url.Values
	if tenantID != "" {
		q = url.Values{"tenantId": {tenantID}}
	}
	var s eventbus.DLQStats
	err := c.call(ctx, http.MethodGet, "/stats", q, &s)
	return s, err
}

// List calls GET /api/dlq/events: one page of the entries that match q.
func (c *Client) List(ctx context.Context, q ListQuery) (Page, error) {
	var p Page
	err := c.call(ctx, http.MethodGet, "/events", q.values(), &p)
	return p, err
}

// Get calls GET /api/dlq/events/{id}: one entry, redacted as the API shows
// it. An unknown entry, or one outside a tenant token's tenant, is an
// *APIError that errors.Is matches against eventbus.ErrFailedEventNotFound.
func (c *Client) Get(ctx context.Context, id string) (eventbus.FailedEvent, error) {
	var e eventbus.FailedEvent
	path, err := entryPath(id)
	if err == nil {
		err = c.call(ctx, http.MethodGet, path, nil, &e)
	}
	return e, err
}

// Retry calls POST /api/dlq/events/{id}/retry: it sends the entry again,
// by hand, to the consumer group that failed it, whatever its status
// (DeadLetterQueue.RetryFailedEvent).
func (c *Client) Retry(ctx context.Context, id string) error {
	return c.retry(ctx, id, nil)
}

// RetryIfAllowed calls POST /api/dlq/events/{id}/retry?manual=false: it
// retries the entry as the automatic schedule would
// (DeadLetterQueue.RetryFailedEventIfAllowed); an entry that is resolved or
// out of retries refuses with an *APIError that errors.Is matches against
// eventbus.ErrRetryNotAllowed.
func (c *Client) RetryIfAllowed(ctx context.Context, id string) error {
	return c.retry(ctx, id, url.Values{"manual": {"false"}})
}

func (c *Client) retry(ctx context.Context, id string, q url.Values) error {
	path, err := entryPath(id)
	if err != nil {
		return err
	}
	// The answer, 202 {"id":..., "status":"retrying"}, says nothing the
	// caller does not know; it is decoded only to check it is the API's.
	var answer struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	return c.call(ctx, http.MethodPost, path+"/retry", q, &answer)
}

// RetryTopic calls POST /api/dlq/retry/topic/{topic}: it retries, manually,
// every entry of the original topic (not its dlq.* topic) that is not
// resolved and that the token may see.
func (c *Client) RetryTopic(ctx context.Context, topic string) (RetryCounts, error) {
	var n RetryCounts
	if topic == "" {
		return n, fmt.Errorf("dlqhttp: retry of a topic: %w: empty topic", eventbus.ErrInvalidTopic)
	}
	err := c.call(ctx, http.MethodPost, "/retry/topic/"+pathSegment(topic), nil, &n)
	return n, err
}

// Delete calls DELETE /api/dlq/events/{id}: the entry is forgotten, and
// will not be retried.
func (c *Client) Delete(ctx context.Context, id string) error {
	path, err := entryPath(id)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, path, nil, nil)
}

// entryPath is the path of the entry id, under /api/dlq.
func entryPath(id string) (string, error) {
	if id == "" {
		// The route needs a segment: no entry has an empty ID.
		return "", fmt.Errorf("dlqhttp: empty dead-letter entry ID: %w", eventbus.ErrFailedEventNotFound)
	}
	return "/events/" + pathSegment(id), nil
}

// pathSegment escapes s as one segment of a URL path: a slash in it is
// %2F, and a segment of dots is escaped too, or it would be resolved as
// the current or parent directory.
func pathSegment(s string) string {
	if strings.Trim(s, ".") == "" {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// call sends one request and decodes its JSON answer into out, unless out
// is nil (the answer is then ignored).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, out any) error {
	u := c.base + "/api/dlq" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("dlqhttp: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("dlqhttp: %w", err) // a *url.Error, naming the method and URL
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("dlqhttp: %s %s: read the answer: %w", method, u, err)
	}
	if len(body) > maxAnswer {
		return fmt.Errorf("dlqhttp: %s %s: the answer is over %d MiB", method, u, maxAnswer>>20)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return newAPIError(res.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("dlqhttp: %s %s: the answer (status %d) is not the API's JSON: %w", method, u, res.StatusCode, err)
	}
	return nil
}

// APIError is an answer of the API that is not a success.
//
// It wraps the eventbus error the server answered for: for a 404
// not_found, eventbus.ErrFailedEventNotFound (an unknown entry, or one
// outside a tenant token's tenant); for a 409 conflict,
// eventbus.ErrRetryNotAllowed. So errors.Is(err,
// eventbus.ErrFailedEventNotFound) holds for an entry that is not there.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the error code of the API's JSON error body: bad_request,
	// unauthorized, forbidden, not_found, conflict, unavailable or internal
	// (see the package documentation). It is empty when the body was not
	// the API's error, as when a proxy, another server or the mux (405 for
	// a method a route does not have) answered.
	Code string
	// Message is the API's explanation, or, when Code is empty, the first
	// line of the body (empty when the body was).
	Message string
}

// newAPIError reads the error answer body of status.
func newAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var b errorBody
	if json.Unmarshal(body, &b) == nil && b.Error.Code != "" {
		e.Code, e.Message = b.Error.Code, b.Error.Message
		return e
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	first = strings.TrimSpace(first)
	if r := []rune(first); len(r) > 200 {
		first = string(r[:199]) + "…"
	}
	e.Message = first
	return e
}

// Error tells the status, the code and the message, as in
//
//	dlqhttp: 404 not_found: no dead-letter entry "x"
//
// or, for an answer that is not the API's error,
//
//	dlqhttp: 502 Bad Gateway (not the DLQ API's error): <first line of the body>
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dlqhttp: %d ", e.Status)
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		if text := http.StatusText(e.Status); text != "" {
			b.WriteString(text + " ")
		}
		b.WriteString("(not the DLQ API's error)")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the eventbus error the answer stands for:
// eventbus.ErrFailedEventNotFound for a 404 not_found,
// eventbus.ErrRetryNotAllowed for a 409 conflict, and nil otherwise.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound && e.Code == codeNotFound:
		return eventbus.ErrFailedEventNotFound
	case e.Status == http.StatusConflict && e.Code == codeConflict:
		return eventbus.ErrRetryNotAllowed
	}
	return nil
}
