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
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/httpjson"
)

// maxAnswer bounds the body of an answer the Client reads: a page of
// MaxPageSize entries, each with its original event, fits many times over.
const maxAnswer = 64 << 20

// Client calls the DLQ REST API that New serves, for example the one of
// `eventbus serve`. It speaks the words of eventbus.DeadLetterQueue (Get,
// List, Stats, Retry, RetryAll, Delete, with the same deadletter.Query and
// deadletter.RetryIfAllowed), one route per method. A Client is safe for
// concurrent use.
//
// Errors: an answer that is not a success is an *APIError, which errors.Is
// matches against deadletter.ErrNotFound (404) and
// deadletter.ErrRetryNotAllowed (409); a request that gets no answer (the
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
	Items      []deadletter.Entry `json:"items"`
	Total      int                `json:"total"`
	Page       int                `json:"page"`
	PageSize   int                `json:"pageSize"`
	TotalPages int                `json:"totalPages"`
}

// RetryCounts is the body of POST /api/dlq/retry/topic/{topic}: how many
// entries were sent again, and how many the brokers refused.
type RetryCounts struct {
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// filterValues is the query string of q's filter (topic, status,
// tenantId), or an error for what the routes cannot carry: VerifiedTenant
// (a tenant token implies it; an admin cannot ask for it), and, unless
// paged, the order and the page (Oldest, Offset, Limit are for List).
func filterValues(call string, q deadletter.Query, paged bool) (url.Values, error) {
	switch {
	case q.VerifiedTenant:
		return nil, fmt.Errorf("%w: dlqhttp: %s: the API takes no VerifiedTenant (a tenant token always implies it)", eventbus.ErrInvalidConfig, call)
	case !paged && (q.Oldest || q.Offset != 0 || q.Limit != 0):
		return nil, fmt.Errorf("%w: dlqhttp: %s takes every matching entry; Oldest, Offset and Limit are for List", eventbus.ErrInvalidConfig, call)
	case q.Offset < 0 || q.Limit < 0:
		return nil, fmt.Errorf("%w: dlqhttp: %s: offset %d and limit %d must not be negative", eventbus.ErrInvalidConfig, call, q.Offset, q.Limit)
	}
	v := url.Values{}
	set := func(key, value string) {
		if value != "" {
			v.Set(key, value)
		}
	}
	set("topic", q.Topic)
	set("status", string(q.Status))
	set("tenantId", q.TenantID)
	return v, nil
}

// Stats calls GET /api/dlq/stats (DeadLetterQueue.Stats): the counts of
// the entries that match q (Topic, Status, TenantID) and that the token
// may see. A query with Oldest, Offset, Limit or VerifiedTenant is
// refused with an error wrapping eventbus.ErrInvalidConfig.
func (c *Client) Stats(ctx context.Context, q deadletter.Query) (deadletter.Stats, error) {
	var s deadletter.Stats
	v, err := filterValues("Stats", q, false)
	if err == nil {
		err = c.call(ctx, http.MethodGet, "/stats", v, &s)
	}
	return s, err
}

// List calls GET /api/dlq/events (DeadLetterQueue.List): the entries that
// match q and that the token may see, newest failure first unless
// q.Oldest, from q.Offset on and at most q.Limit of them, and how many
// match in all. A Limit of 0 means all the rest, as for the queue itself:
// the answer is then read page after page (MaxPageSize entries each), as
// it is when Offset is not a multiple of a Limit of at most MaxPageSize;
// otherwise it is one request for one page. Pages read one after another
// may miss or repeat entries that change between them. The items are
// redacted as the API shows them; the slice is empty, not nil, when
// nothing is there. VerifiedTenant is refused with an error wrapping
// eventbus.ErrInvalidConfig.
func (c *Client) List(ctx context.Context, q deadletter.Query) (items []deadletter.Entry, total int, err error) {
	v, err := filterValues("List", q, true)
	if err != nil {
		return nil, 0, err
	}
	size := MaxPageSize
	if q.Limit > 0 && q.Limit <= MaxPageSize && q.Offset%q.Limit == 0 {
		size = q.Limit
	}
	v.Set("pageSize", strconv.Itoa(size))
	if q.Oldest {
		v.Set("sort", "failedAt")
	}
	items = []deadletter.Entry{}
	for page, skip := q.Offset/size+1, q.Offset%size; ; page, skip = page+1, 0 {
		v.Set("page", strconv.Itoa(page))
		var p Page
		if err := c.call(ctx, http.MethodGet, "/events", v, &p); err != nil {
			return nil, 0, err
		}
		total = p.Total
		if skip < len(p.Items) {
			items = append(items, p.Items[skip:]...)
		}
		if q.Limit > 0 && len(items) >= q.Limit {
			return items[:q.Limit], total, nil
		}
		if len(p.Items) < size || page >= p.TotalPages {
			return items, total, nil
		}
	}
}

// Get calls GET /api/dlq/events/{id} (DeadLetterQueue.Get): one entry,
// redacted as the API shows it. An unknown entry, or one outside a tenant
// token's tenant, is an *APIError that errors.Is matches against
// deadletter.ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (deadletter.Entry, error) {
	var e deadletter.Entry
	path, err := entryPath(id)
	if err == nil {
		err = c.call(ctx, http.MethodGet, path, nil, &e)
	}
	return e, err
}

// Retry calls POST /api/dlq/events/{id}/retry (DeadLetterQueue.Retry): it
// sends the entry again, by hand, to the consumer group that failed it,
// whatever its status. With deadletter.RetryIfAllowed() (?manual=false) it
// retries the entry as the automatic schedule would; an entry that is
// resolved or out of retries refuses with an *APIError that errors.Is
// matches against deadletter.ErrRetryNotAllowed.
func (c *Client) Retry(ctx context.Context, id string, opts ...deadletter.RetryOption) error {
	path, err := entryPath(id)
	if err != nil {
		return err
	}
	var q url.Values
	for _, o := range opts {
		if o == deadletter.RetryIfAllowed() { // the one option there is; RetryOption{} changes nothing
			q = url.Values{"manual": {"false"}}
		}
	}
	// The answer, 202 {"id":..., "status":"retrying"}, says nothing the
	// caller does not know; it is decoded only to check it is the API's.
	var answer struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	return c.call(ctx, http.MethodPost, path+"/retry", q, &answer)
}

// RetryAll calls POST /api/dlq/retry/topic/{topic}
// (DeadLetterQueue.RetryAll): it retries, manually, every entry that
// matches q, is not resolved and that the token may see, and returns how
// many retries were sent and how many the brokers refused. The route is
// per topic: q.Topic, an original topic (not its dlq.* topic), is
// required (an error wrapping eventbus.ErrInvalidTopic without it); Status
// and TenantID narrow it further. A query with Oldest, Offset, Limit or
// VerifiedTenant is refused with an error wrapping
// eventbus.ErrInvalidConfig.
func (c *Client) RetryAll(ctx context.Context, q deadletter.Query) (succeeded, failed int, err error) {
	if q.Topic == "" {
		return 0, 0, fmt.Errorf("dlqhttp: retry of a topic: %w: empty topic", eventbus.ErrInvalidTopic)
	}
	v, err := filterValues("RetryAll", q, false)
	if err != nil {
		return 0, 0, err
	}
	v.Del("topic") // it is in the path
	var n RetryCounts
	err = c.call(ctx, http.MethodPost, "/retry/topic/"+pathSegment(q.Topic), v, &n)
	return n.Succeeded, n.Failed, err
}

// Delete calls DELETE /api/dlq/events/{id} (DeadLetterQueue.Delete): the
// entry is forgotten, and will not be retried.
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
		return "", fmt.Errorf("dlqhttp: empty dead-letter entry ID: %w", deadletter.ErrNotFound)
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
// not_found, deadletter.ErrNotFound (an unknown entry, or one
// outside a tenant token's tenant); for a 409 conflict,
// deadletter.ErrRetryNotAllowed. So errors.Is(err,
// deadletter.ErrNotFound) holds for an entry that is not there.
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
	var b httpjson.ErrorBody
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
// deadletter.ErrNotFound for a 404 not_found,
// deadletter.ErrRetryNotAllowed for a 409 conflict, and nil otherwise.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound && e.Code == httpjson.CodeNotFound:
		return deadletter.ErrNotFound
	case e.Status == http.StatusConflict && e.Code == httpjson.CodeConflict:
		return deadletter.ErrRetryNotAllowed
	}
	return nil
}
