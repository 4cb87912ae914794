package consoleapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/plexica/eventbus/audit"
)

// Client calls the API of a running eventbus serve.
type Client struct {
	base, token string
	http        *http.Client
}

// NewClient returns a client of the API at baseURL (http://host:port)
// presenting token; httpClient nil means http.DefaultClient.
func NewClient(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, http: httpClient}
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Audit answers GET /api/audit for q.
func (c *Client) Audit(ctx context.Context, q audit.Query) (audit.Page, error) {
	v := url.Values{}
	for k, s := range map[string]string{"actor": q.Actor, "action": q.Action, "tenantId": q.TenantID} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before != 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	var page audit.Page
	err := c.get(ctx, "/api/audit?"+v.Encode(), &page)
	return page, err
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		e := &Error{Status: res.StatusCode}
		var b struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &b) == nil {
			e.Code, e.Message = b.Error.Code, b.Error.Message
		} else {
			e.Message = strings.TrimSpace(string(body))
		}
		return e
	}
	return json.Unmarshal(body, out)
}
