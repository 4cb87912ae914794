package consoleapi

import (
	"bufio"
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

// Tail follows GET /api/tail with filter f, calling onRecord for each
// event and onDropped with each count of events over the rate limit, until
// ctx ends (then it returns nil) or the stream breaks. ready is called once
// the server reads every followed topic, with their names.
func (c *Client) Tail(ctx context.Context, f TailFilter, ready func(topics []string), onRecord func(TailRecord), onDropped func(int)) error {
	v := url.Values{}
	for _, t := range f.Types {
		v.Add("type", t)
	}
	for k, s := range map[string]string{"tenantId": f.TenantID, "key": f.Key, "header": f.Header, "text": f.Text} {
		if s != "" {
			v.Set(k, s)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/tail?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// A stream has no overall deadline: only ctx ends it.
	hc := *c.http
	hc.Timeout = 0
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		e := &Error{Status: res.StatusCode}
		var b struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &b) == nil {
			e.Code, e.Message = b.Error.Code, b.Error.Message
		}
		return e
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		case line == "":
			switch event {
			case "ready":
				var r struct{ Topics []string }
				if json.Unmarshal([]byte(data), &r) == nil && ready != nil {
					ready(r.Topics)
				}
			case "record":
				var r TailRecord
				if err := json.Unmarshal([]byte(data), &r); err != nil {
					return fmt.Errorf("consoleapi: a tail record that is not JSON: %w", err)
				}
				onRecord(r)
			case "dropped":
				var d struct{ Dropped int }
				if json.Unmarshal([]byte(data), &d) == nil && onDropped != nil {
					onDropped(d.Dropped)
				}
			}
			event, data = "", ""
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("consoleapi: the tail broke off: %w", err)
	}
	return fmt.Errorf("consoleapi: the server ended the tail")
}
