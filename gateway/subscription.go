package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/plexica/eventbus"
)

// Defaults of a Subscription, each named in its field's documentation.
const (
	// DefaultTimeout is Subscription.Timeout's default: how long one push
	// request may take before it counts as failed (dead-lettered, with
	// automatic retries).
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConcurrency is Subscription.MaxConcurrency's default, the
	// library's (eventbus.DefaultMaxConcurrency).
	DefaultMaxConcurrency = eventbus.DefaultMaxConcurrency
	// DefaultRetryBackoff is the first wait before a 429 or 503 answer
	// without Retry-After is tried again; it doubles up to
	// MaxRetryBackoff.
	DefaultRetryBackoff = 500 * time.Millisecond
	// MaxRetryBackoff caps the wait between tries of a 429 or 503 answer,
	// including what Retry-After asks.
	MaxRetryBackoff = time.Minute
	// GroupPrefix starts the consumer group of a push subscription that
	// names none: "gateway.<name>".
	GroupPrefix = "gateway."
)

// Body values of Subscription.Body.
const (
	// BodyEvent sends the whole event, the bus's JSON envelope, as the
	// body (what a consumer of the bus reads from Kafka), with the
	// CloudEvents attributes in ce-* headers. The default.
	BodyEvent = "event"
	// BodyData sends only the event's data as the body: CloudEvents
	// binary mode to the letter, for Dapr and Knative receivers.
	BodyData = "data"
)

// Subscription declares a push subscription: the events it wants and the
// endpoint that receives them, each as one POST.
type Subscription struct {
	// Name identifies the subscription: lowercase letters, digits and
	// '-', 1 to 63 characters. Required.
	Name string `json:"name"`
	// Events are the event types (topics) delivered. At least one.
	Events []string `json:"events"`
	// Endpoint is the http or https URL each event is POSTed to; it must
	// be under Config.AllowedEndpoints. Required, unless Pull.
	Endpoint string `json:"endpoint,omitempty"`
	// Pull, instead of pushing to an endpoint, holds each event until a
	// client takes it (GET /api/subscriptions/{name}/events) and
	// acknowledges it (POST /api/subscriptions/{name}/ack), within
	// Timeout of taking it: for services that cannot open a port.
	Pull bool `json:"pull,omitempty"`
	// Group is the consumer group; gateway processes that run the same
	// subscription share its events as members of it. Default
	// GroupPrefix+Name.
	Group string `json:"group,omitempty"`
	// TenantID, when set, delivers only that tenant's events; a tenant
	// token may declare only subscriptions of its own tenant.
	TenantID string `json:"tenantId,omitempty"`
	// WorkspaceID, when set (with TenantID), delivers only that
	// workspace's events.
	WorkspaceID string `json:"workspaceId,omitempty"`
	// Ordering is "per-key" (the default: one event of a key at a time,
	// keys concurrently), "per-partition" or "none".
	Ordering string `json:"ordering,omitempty"`
	// MaxConcurrency caps the requests in flight for this subscription in
	// this process. Default DefaultMaxConcurrency (64).
	MaxConcurrency int `json:"maxConcurrency,omitempty"`
	// Timeout bounds one request, a Go duration ("10s"). Default
	// DefaultTimeout.
	Timeout Duration `json:"timeout,omitzero"`
	// Body is BodyEvent (the default) or BodyData.
	Body string `json:"body,omitempty"`
	// FromBeginning makes a new group start at the oldest retained event
	// instead of after the events published before it first ran.
	FromBeginning bool `json:"fromBeginning,omitempty"`
}

// Duration is a time.Duration written in JSON as Go writes durations
// ("10s", "1m30s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "10s" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a duration is a string such as \"10s\"")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as \"10s\" or \"1m30s\"", s)
	}
	*d = Duration(v)
	return nil
}

var subscriptionName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// withDefaults fills in the zero fields.
func (s Subscription) withDefaults() Subscription {
	if s.Group == "" {
		s.Group = GroupPrefix + s.Name
	}
	if s.Ordering == "" {
		s.Ordering = eventbus.OrderPerKey.String()
	}
	if s.MaxConcurrency == 0 {
		s.MaxConcurrency = DefaultMaxConcurrency
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	if s.Body == "" {
		s.Body = BodyEvent
	}
	return s
}

// ordering is the library's Ordering of s.Ordering.
func (s Subscription) ordering() (eventbus.Ordering, error) {
	for _, o := range []eventbus.Ordering{eventbus.OrderPerKey, eventbus.OrderPerPartition, eventbus.OrderNone} {
		if s.Ordering == o.String() {
			return o, nil
		}
	}
	return 0, fmt.Errorf("%w: subscription %q: ordering %q; want per-key, per-partition or none", ErrInvalidSubscription, s.Name, s.Ordering)
}

// validate checks a subscription with its defaults filled in (not its
// endpoint against the allowlist, nor its topics: Subscribe does).
func (s Subscription) validate() error {
	if !subscriptionName.MatchString(s.Name) {
		return fmt.Errorf("%w: name %q: use 1 to 63 lowercase letters, digits and '-' (orders-webhook)", ErrInvalidSubscription, s.Name)
	}
	if len(s.Events) == 0 {
		return fmt.Errorf("%w: subscription %q has no events; list the event types it wants (core.user.created)", ErrInvalidSubscription, s.Name)
	}
	if s.WorkspaceID != "" && s.TenantID == "" {
		return fmt.Errorf("%w: subscription %q has workspaceId %q but no tenantId; workspaces belong to tenants", ErrInvalidSubscription, s.Name, s.WorkspaceID)
	}
	if _, err := s.ordering(); err != nil {
		return err
	}
	if s.MaxConcurrency < 0 || s.Timeout < 0 {
		return fmt.Errorf("%w: subscription %q: maxConcurrency and timeout must not be negative (0 means the default)", ErrInvalidSubscription, s.Name)
	}
	if s.Pull && s.Endpoint != "" {
		return fmt.Errorf("%w: subscription %q has both pull and an endpoint; a pull subscription's clients take its events", ErrInvalidSubscription, s.Name)
	}
	if s.Body != BodyEvent && s.Body != BodyData {
		return fmt.Errorf("%w: subscription %q: body %q; want %q or %q", ErrInvalidSubscription, s.Name, s.Body, BodyEvent, BodyData)
	}
	return nil
}

// allowedPrefix is one entry of Config.AllowedEndpoints.
type allowedPrefix struct {
	scheme, host, path string
}

func parseAllowlist(prefixes []string) ([]allowedPrefix, error) {
	out := make([]allowedPrefix, 0, len(prefixes))
	for i, p := range prefixes {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%w: gateway Config.AllowedEndpoints[%d] %q: want an http or https URL prefix without credentials, query or fragment (https://hooks.internal/plexica/)",
				eventbus.ErrInvalidConfig, i, p)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		out = append(out, allowedPrefix{scheme: u.Scheme, host: strings.ToLower(u.Host), path: path})
	}
	return out, nil
}

// checkEndpoint refuses an endpoint outside the allowlist.
func (g *Gateway) checkEndpoint(s Subscription) error {
	if s.Pull {
		return nil // no endpoint
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: subscription %q: endpoint %q is not an http or https URL without credentials or fragment (https://hooks.internal/orders)",
			ErrInvalidSubscription, s.Name, s.Endpoint)
	}
	if len(g.allow) == 0 {
		return nil
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	host := strings.ToLower(u.Host)
	for _, a := range g.allow {
		if a.scheme != u.Scheme || a.host != host {
			continue
		}
		// A prefix ending in "/" covers what is under it; one that does
		// not covers itself and what is under it as a directory.
		if path == a.path || strings.HasPrefix(path, strings.TrimSuffix(a.path, "/")+"/") {
			return nil
		}
	}
	return fmt.Errorf("%w: subscription %q: endpoint %q is not under any allowed prefix (%d configured)",
		ErrEndpointNotAllowed, s.Name, s.Endpoint, len(g.allow))
}

// subscriptionMembers are the JSON members of a Subscription.
var subscriptionMembers = []string{"name", "events", "endpoint", "pull", "group", "tenantId", "workspaceId", "ordering", "maxConcurrency", "timeout", "body", "fromBeginning"}

// decodeSubscription reads one Subscription, refusing members it does not
// have. Names are matched exactly (encoding/json would read tenantID as
// tenantId).
func decodeSubscription(raw []byte) (Subscription, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return Subscription{}, err
	}
	if members == nil {
		return Subscription{}, fmt.Errorf("a subscription is a JSON object")
	}
	for name := range members {
		if !slices.Contains(subscriptionMembers, name) {
			return Subscription{}, fmt.Errorf("unknown member %q (members are %s, spelt exactly so)", name, strings.Join(subscriptionMembers, ", "))
		}
	}
	var sub Subscription
	err := json.Unmarshal(raw, &sub)
	return sub, err
}

// SubscriptionsFile is the JSON file `eventbus serve --subscriptions`
// reads: {"subscriptions":[{...}, ...]}.
type SubscriptionsFile struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// LoadSubscriptions reads a SubscriptionsFile. Unknown fields are
// refused, so that a misspelt setting is not silently ignored; a bad file
// fails with ErrInvalidSubscription naming what is wrong.
func LoadSubscriptions(path string) ([]Subscription, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSubscription, err)
	}
	var file struct {
		Subscriptions []json.RawMessage `json:"subscriptions"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%w: %s: %v (want {\"subscriptions\":[{\"name\":...,\"events\":[...],\"endpoint\":...}]})", ErrInvalidSubscription, path, err)
	}
	var f SubscriptionsFile
	for i, raw := range file.Subscriptions {
		s, err := decodeSubscription(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: subscription %d: %v", ErrInvalidSubscription, path, i, err)
		}
		f.Subscriptions = append(f.Subscriptions, s)
	}
	seen := map[string]bool{}
	for i, s := range f.Subscriptions {
		if err := s.withDefaults().validate(); err != nil {
			return nil, fmt.Errorf("%s: subscription %d: %w", path, i, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: %s: subscription %d repeats the name %q", ErrInvalidSubscription, path, i, s.Name)
		}
		seen[s.Name] = true
	}
	return f.Subscriptions, nil
}
