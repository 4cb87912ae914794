package consoleapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/internal/httpjson"
	"github.com/plexica/eventbus/internal/redact"
	"github.com/plexica/eventbus/topic"
)

// Limits of GET /api/tail.
const (
	// DefaultMaxTailStreams is how many live tails may run at once; one
	// more is answered 503.
	DefaultMaxTailStreams = 16
	// DefaultTailRate is how many events per second one tail sends at most;
	// the ones over it are counted and reported, not sent.
	DefaultTailRate = 50
	// tailHeartbeat is how often an idle tail sends a comment, so that
	// proxies keep the connection open.
	tailHeartbeat = 15 * time.Second
)

// TailFilter selects the events of a live tail. Every set field must match.
// The text, key and header filters are applied to what is shown, after
// redaction, so that a filter cannot probe a secret.
type TailFilter struct {
	// Types are event types (topics) or prefixes ending in "."; none: every
	// core and plugin topic.
	Types []string
	// TenantID: only this tenant's events (the tenant in the event itself;
	// the tenant-id header is an unchecked claim).
	TenantID string
	// Key: only records with this key.
	Key string
	// Header is "name=value": only records with this header and value;
	// "name": only records with this header.
	Header string
	// Text: only records whose shown JSON contains this, ignoring case.
	Text string
}

// TailRecord is one event of a live tail, as sent in its "record" events.
type TailRecord struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       string    `json:"key"`
	// Headers are the record's headers, sensitive values redacted.
	Headers []deadletter.Header `json:"headers"`
	// TenantID is the event's tenant; empty for a record that is not an
	// event (Malformed), which only admin tokens see.
	TenantID  string `json:"tenantId,omitempty"`
	Malformed bool   `json:"malformed,omitempty"`
	// Value is the event's JSON with secrets redacted; for a malformed
	// record, its bytes as a scrubbed JSON string.
	Value json.RawMessage `json:"value"`
}

// topicFollowed reports whether f follows topic.
func (f TailFilter) topicFollowed(name string) bool {
	t, err := topic.Parse(name)
	if err != nil || t.Kind == topic.KindDLQ {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, typ := range f.Types {
		if typ == name || (strings.HasSuffix(typ, ".") && strings.HasPrefix(name, typ)) {
			return true
		}
	}
	return false
}

// show turns a record into what the tail shows, or false when f (or the
// principal's scope, tenant) leaves it out.
func (f TailFilter) show(r *kgo.Record, tenant string) (TailRecord, bool) {
	out := TailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(), Key: redact.Text(string(r.Key)), Headers: []deadletter.Header{}}
	var ev eventbus.RawEvent
	if err := json.Unmarshal(r.Value, &ev); err != nil || ev.TenantID == "" {
		if tenant != "" || f.TenantID != "" {
			return out, false // not an event of any tenant: admins only, unfiltered by tenant
		}
		out.Malformed = true
		s, _ := json.Marshal(redact.Text(string(r.Value)))
		out.Value = s
	} else {
		out.TenantID = ev.TenantID
		if (tenant != "" && ev.TenantID != tenant) || (f.TenantID != "" && ev.TenantID != f.TenantID) {
			return out, false
		}
		out.Value = redact.JSON(r.Value)
	}
	if f.Key != "" && out.Key != f.Key {
		return out, false
	}
	wantName, wantValue, withValue := strings.Cut(f.Header, "=")
	headerOK := f.Header == ""
	for _, h := range r.Headers {
		v := redact.Text(string(h.Value))
		if redact.SensitiveKey(h.Key) {
			v = redact.Redacted
		}
		out.Headers = append(out.Headers, deadletter.Header{Key: h.Key, Value: v})
		if !headerOK && h.Key == wantName && (!withValue || v == wantValue) {
			headerOK = true
		}
	}
	if !headerOK {
		return out, false
	}
	if f.Text != "" {
		shown, _ := json.Marshal(out)
		if !strings.Contains(strings.ToLower(string(shown)), strings.ToLower(f.Text)) {
			return out, false
		}
	}
	return out, true
}

// GET /api/tail?type=&tenantId=&key=&header=&text= streams the events
// published from now on as server-sent events:
//
//	event: ready    data: {"topics": [...]}      once the tail reads every topic
//	event: record   data: TailRecord
//	event: dropped  data: {"dropped": n}         events over the rate limit, not sent
//
// A tenant token sees its tenant's events only. Topics created after the
// tail started are not followed: reconnect to follow them.
func (a *api) tail(w http.ResponseWriter, r *http.Request, who dlqhttp.Principal) error {
	q := r.URL.Query()
	f := TailFilter{Types: q["type"], TenantID: q.Get("tenantId"), Key: q.Get("key"), Header: q.Get("header"), Text: q.Get("text")}
	for _, typ := range f.Types {
		if strings.HasSuffix(typ, ".") {
			if !strings.HasPrefix(typ, "core.") && !strings.HasPrefix(typ, "plugin.") {
				return httpjson.BadRequest("type prefix %q matches no event: prefixes start with core. or plugin. (e.g. core.user.)", typ)
			}
			continue
		}
		if err := topic.Validate(typ); err != nil {
			return err
		}
	}
	if !who.Admin() {
		if f.TenantID != "" && f.TenantID != who.Tenant {
			return &httpjson.Error{Status: http.StatusForbidden, Code: httpjson.CodeForbidden, Message: "this token may not tail the events of other tenants"}
		}
	}
	if len(a.KafkaOpts) == 0 {
		return &httpjson.Error{Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable, Message: "live tails are not enabled on this server"}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("consoleapi: the response writer cannot stream")
	}
	select {
	case a.tails <- struct{}{}:
		defer func() { <-a.tails }()
	default:
		w.Header().Set("Retry-After", "10")
		return &httpjson.Error{Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable, Message: fmt.Sprintf("%d live tails run already; close one or try again later", cap(a.tails))}
	}
	ctx := r.Context()
	topics, start, err := a.tailStart(ctx, f)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(a.KafkaOpts[:len(a.KafkaOpts):len(a.KafkaOpts)], kgo.ConsumePartitions(start))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Ends the poller below before the client closes (deferred calls run
	// last first).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		b, _ := json.Marshal(v)
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		flusher.Flush()
		return err == nil
	}
	if !send("ready", map[string]any{"topics": topics}) {
		return nil
	}
	if len(start) == 0 {
		select {
		case <-ctx.Done():
		case <-a.Stop:
		}
		return nil
	}
	tenant := ""
	if !who.Admin() {
		tenant = who.Tenant
	}
	limiter := newRate(a.TailRate, time.Now)
	fetches := make(chan kgo.Fetches)
	go func() {
		defer close(fetches)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			select {
			case fetches <- fs:
			case <-ctx.Done():
				return
			}
		}
	}()
	beat := time.NewTicker(tailHeartbeat)
	defer beat.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	dropped := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.Stop:
			return nil
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case <-report.C:
			if dropped > 0 {
				if !send("dropped", map[string]int{"dropped": dropped}) {
					return nil
				}
				dropped = 0
			}
		case fs, ok := <-fetches:
			if !ok {
				return nil
			}
			for _, rec := range fs.Records() {
				shown, ok := f.show(rec, tenant)
				if !ok {
					continue
				}
				if !limiter.take() {
					dropped++
					continue
				}
				if !send("record", shown) {
					return nil
				}
			}
		}
	}
}

// tailStart lists the topics f follows and their end offsets: the tail
// starts there.
func (a *api) tailStart(ctx context.Context, f TailFilter) ([]string, map[string]map[int32]kgo.Offset, error) {
	ctx = fresh(ctx)
	details, err := a.Admin.ListTopics(ctx)
	if err != nil {
		return nil, nil, err
	}
	var topics []string
	for name, d := range details {
		if d.Err == nil && f.topicFollowed(name) {
			topics = append(topics, name)
		}
	}
	slices.Sort(topics)
	start := map[string]map[int32]kgo.Offset{}
	if len(topics) == 0 {
		return []string{}, start, nil
	}
	ends, err := a.Admin.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, err
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if start[o.Topic] == nil {
			start[o.Topic] = map[int32]kgo.Offset{}
		}
		start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	return topics, start, nil
}

// rate is a token bucket of perSecond tokens a second, as many at most.
type rate struct {
	perSecond float64
	tokens    float64
	last      time.Time
	now       func() time.Time
}

func newRate(perSecond int, now func() time.Time) *rate {
	return &rate{perSecond: float64(perSecond), tokens: float64(perSecond), last: now(), now: now}
}

func (r *rate) take() bool {
	t := r.now()
	r.tokens = min(r.perSecond, r.tokens+t.Sub(r.last).Seconds()*r.perSecond)
	r.last = t
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
