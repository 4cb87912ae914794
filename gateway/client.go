package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/plexica/eventbus"
)

// Client calls a gateway's subscription routes: what `eventbus
// subscriptions` uses.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the gateway at base ("http://host:port")
// presenting token; httpClient nil means http.DefaultClient.
func NewClient(base, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: gateway address %q is not http(s)://host:port", eventbus.ErrInvalidConfig, base)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), token: token, http: httpClient}, nil
}

// APIError is an error answer of the gateway.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Sentinel names the sentinel error ("ErrForbidden"); empty when the
	// answer was not the gateway's JSON.
	Sentinel string
	// Message is the error message (or the start of a foreign body).
	Message string
	// Fix says how to fix the request.
	Fix string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Sentinel)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Fix != "" {
		msg += " (" + e.Fix + ")"
	}
	return msg
}

// List returns the push subscriptions the token may see.
func (c *Client) List(ctx context.Context) ([]Subscription, error) {
	var out struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}
	err := c.do(ctx, http.MethodGet, "/api/subscriptions", nil, &out)
	return out.Subscriptions, err
}

// Declare declares (or replaces) a push subscription and returns it with
// its defaults filled in.
func (c *Client) Declare(ctx context.Context, s Subscription) (Subscription, error) {
	var out Subscription
	err := c.do(ctx, http.MethodPost, "/api/subscriptions", s, &out)
	return out, err
}

// Remove removes a push subscription declared over HTTP.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/subscriptions/"+url.PathEscape(name), nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", MediaJSON)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e errorBody
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		return &APIError{Status: resp.StatusCode, Sentinel: e.Sentinel, Message: e.Error, Fix: e.Fix}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("the gateway's answer to %s %s is not what was expected: %v", method, path, err)
		}
	}
	return nil
}
