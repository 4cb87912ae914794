package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/plexica/eventbus"
)

// Media types the gateway reads and writes.
const (
	// MediaJSON is application/json: the bus's envelope, or (with
	// ce-specversion and the other ce-* headers) a CloudEvent in binary
	// mode whose body is its data.
	MediaJSON = "application/json"
	// MediaCloudEvent is a CloudEvent in structured mode.
	MediaCloudEvent = "application/cloudevents+json"
	// MediaCloudEventBatch is a JSON array of structured CloudEvents.
	MediaCloudEventBatch = "application/cloudevents-batch+json"
)

// CloudEvents extension attributes that carry what the bus's envelope has
// and the CloudEvents core attributes do not. In binary mode each is a
// ce-<name> header (ce-tenantid); in structured mode a top-level member.
const (
	ExtTenantID      = "tenantid"
	ExtWorkspaceID   = "workspaceid"
	ExtPartitionKey  = "partitionkey" // the CloudEvents partitioning extension
	ExtUserID        = "userid"
	ExtCorrelationID = "correlationid"
	ExtCausationID   = "causationid"
	ExtEventVersion  = "eventversion"
)

// envelopeRequest is the bus's own JSON envelope as a publisher sends it:
// the wire format's fields, each optional but type and tenantId, plus the
// partition key (see eventReader.envelope).
type envelopeRequest struct {
	ID            string
	Type          string
	TenantID      string
	WorkspaceID   string
	Timestamp     *time.Time
	Data          []byte // a slice of the body
	DataCanonical bool   // Data is written as encoding/json writes it
	Metadata      metadataRequest
	PartitionKey  string
}

type metadataRequest struct {
	Source        string
	UserID        string
	CorrelationID string
	CausationID   string
	Version       string
}

// event is the envelope as the library publishes it.
func (e *envelopeRequest) event() eventbus.BatchEvent {
	ev := eventbus.BatchEvent{
		EventType: e.Type,
		Data:      dataOf(e.Data, e.DataCanonical),
		Metadata: eventbus.PublishMetadata{
			TenantID: e.TenantID, WorkspaceID: e.WorkspaceID,
			Source: e.Metadata.Source, UserID: e.Metadata.UserID,
			CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
			Version: e.Metadata.Version,
		},
	}
	if e.ID != "" {
		ev.Options = append(ev.Options, eventbus.WithEventID(e.ID))
	}
	if e.Timestamp != nil {
		ev.Options = append(ev.Options, eventbus.WithTimestamp(*e.Timestamp))
	}
	if e.PartitionKey != "" {
		ev.Options = append(ev.Options, eventbus.WithPartitionKey(e.PartitionKey))
	}
	return ev
}

// dataOf is the event data as the library takes it: absent data is null,
// as a Go caller passing nil writes it. The JSON is written as Go's
// encoding/json writes a value (compact, with <, >, & and U+2028/U+2029
// escaped), so that the record is byte for byte what a Go publisher of
// the same data writes. Data already written so (canonical, as the
// reader found it) is passed on as it is: a slice of the body, neither
// copied nor re-encoded.
func dataOf(raw []byte, canonical bool) any {
	if len(raw) == 0 {
		return nil
	}
	if canonical {
		return json.RawMessage(raw)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return json.RawMessage(raw) // the library reports the invalid JSON
	}
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compact.Bytes())
	return json.RawMessage(escaped.Bytes())
}

// position names an event of a request in error messages; it is turned
// into text only when an error is reported.
type position struct {
	what  string // "the body", "the CloudEvent"; "" in a batch
	index int    // in a batch
}

// String names the event: "the body", "batch event 3 (nothing was sent)".
func (p position) String() string {
	if p.what != "" {
		return p.what
	}
	return fmt.Sprintf("batch event %d (nothing was sent)", p.index)
}

// cloudEvent is a CloudEvent's attributes, from ce-* headers or a
// structured event's members.
type cloudEvent struct {
	attrs     map[string]string
	data      []byte
	canonical bool // data is written as encoding/json writes it
}

// event maps a CloudEvent onto the bus's event: id, type, source and time
// onto the envelope's id, type, metadata.source and timestamp, and the
// extensions above onto the rest.
func (c cloudEvent) event(where fmt.Stringer) (eventbus.BatchEvent, error) {
	if v := c.attrs["specversion"]; v != "1.0" {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: specversion is %q; the gateway reads CloudEvents 1.0 (specversion \"1.0\")", ErrBadRequest, where, v)
	}
	for _, name := range []string{"id", "type", "source"} {
		if c.attrs[name] == "" {
			return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: the CloudEvent has no %s (required by CloudEvents 1.0)", ErrBadRequest, where, name)
		}
	}
	if ct := c.attrs["datacontenttype"]; ct != "" && !isJSONMedia(ct) {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: datacontenttype %q; event data must be JSON (application/json)", ErrUnsupportedMediaType, where, ct)
	}
	ev := eventbus.BatchEvent{
		EventType: c.attrs["type"],
		Data:      dataOf(c.data, c.canonical),
		Metadata: eventbus.PublishMetadata{
			TenantID: c.attrs[ExtTenantID], WorkspaceID: c.attrs[ExtWorkspaceID],
			Source: c.attrs["source"], UserID: c.attrs[ExtUserID],
			CorrelationID: c.attrs[ExtCorrelationID], CausationID: c.attrs[ExtCausationID],
			Version: c.attrs[ExtEventVersion],
		},
		Options: []eventbus.PublishOption{eventbus.WithEventID(c.attrs["id"])},
	}
	if t := c.attrs["time"]; t != "" {
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: time %q is not an RFC 3339 time (2026-11-27T17:06:55.916Z)", ErrBadRequest, where, t)
		}
		ev.Options = append(ev.Options, eventbus.WithTimestamp(ts))
	}
	if k := c.attrs[ExtPartitionKey]; k != "" {
		ev.Options = append(ev.Options, eventbus.WithPartitionKey(k))
	}
	return ev, nil
}

// binaryCloudEvent reads a CloudEvent in binary mode: attributes from the
// ce-* headers, data from the body.
func binaryCloudEvent(h http.Header, body []byte) (eventbus.BatchEvent, error) {
	c := cloudEvent{attrs: map[string]string{}}
	for k, v := range h {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "ce-"); ok && len(v) > 0 {
			c.attrs[name] = v[0]
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		c.attrs["datacontenttype"] = ct
	}
	if len(bytes.TrimSpace(body)) > 0 {
		r := jsonReader{b: body}
		r.ws()
		data, canonical, err := r.value(0)
		if err == nil {
			err = r.end()
		}
		if err != nil {
			return eventbus.BatchEvent{}, fmt.Errorf("%w: the body (the CloudEvent's data) is not valid JSON: %v", ErrBadRequest, err)
		}
		c.data, c.canonical = data, canonical
	}
	return c.event(position{what: "binary-mode CloudEvent"})
}

// eventReader reads the events of a body: envelopes or structured
// CloudEvents, one or a batch, in one pass over the body. It keeps the
// previous envelope's strings, so that the events of a batch share their
// type's, tenant's and source's instead of converting each again.
type eventReader struct {
	jsonReader
	prev envelopeRequest
}

// envelope reads one envelope, refusing a member it does not know.
// Member names are matched exactly (encoding/json would read tenantID as
// tenantId).
func (r *eventReader) envelope(depth int, where position) (eventbus.BatchEvent, error) {
	if r.ws(); r.peek() != '{' {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s is not the bus's JSON envelope ({\"type\",\"tenantId\",\"data\",...}): %v",
			ErrBadRequest, where, r.syntaxError("'{' (a JSON object)"))
	}
	var e envelopeRequest
	err := r.object(depth, func(name []byte) error {
		var err error
		switch string(name) {
		case "id":
			e.ID, err = r.stringValue(depth+1, "")
		case "type":
			e.Type, err = r.stringValue(depth+1, r.prev.Type)
		case "tenantId":
			e.TenantID, err = r.stringValue(depth+1, r.prev.TenantID)
		case "workspaceId":
			e.WorkspaceID, err = r.stringValue(depth+1, r.prev.WorkspaceID)
		case "partitionKey":
			e.PartitionKey, err = r.stringValue(depth+1, "")
		case "data":
			e.Data, e.DataCanonical, err = r.value(depth + 1)
		case "timestamp":
			var ts string
			if ts, err = r.stringValue(depth+1, ""); err == nil && ts != "" {
				var t time.Time
				if t, err = time.Parse(time.RFC3339Nano, ts); err == nil {
					e.Timestamp = &t
				} else {
					err = fmt.Errorf("%q is not an RFC 3339 time (2026-11-27T17:06:55.916Z)", ts)
				}
			}
		case "metadata":
			err = r.metadata(depth+1, &e.Metadata)
		default:
			err = fmt.Errorf("unknown member (members are id, type, tenantId, workspaceId, timestamp, data, metadata, partitionKey, spelt exactly so)")
		}
		if err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: %v", ErrBadRequest, where, err)
	}
	r.prev = e
	return e.event(), nil
}

// metadata reads the envelope's metadata object (or null).
func (r *eventReader) metadata(depth int, m *metadataRequest) error {
	switch r.peek() {
	case 'n':
		return r.literal("null")
	case '{':
	default:
		return fmt.Errorf("want an object: %v", r.syntaxError("'{'"))
	}
	return r.object(depth, func(name []byte) error {
		var err error
		switch string(name) {
		case "source":
			m.Source, err = r.stringValue(depth+1, r.prev.Metadata.Source)
		case "userId":
			m.UserID, err = r.stringValue(depth+1, r.prev.Metadata.UserID)
		case "correlationId":
			m.CorrelationID, err = r.stringValue(depth+1, "")
		case "causationId":
			m.CausationID, err = r.stringValue(depth+1, "")
		case "version":
			m.Version, err = r.stringValue(depth+1, r.prev.Metadata.Version)
		default:
			err = fmt.Errorf("unknown member (members are source, userId, correlationId, causationId, version, spelt exactly so)")
		}
		if err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
		return nil
	})
}

// structuredCloudEvent reads one structured CloudEvent.
func (r *eventReader) structuredCloudEvent(depth int, where position) (eventbus.BatchEvent, error) {
	if r.ws(); r.peek() != '{' {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s is not a JSON object: %v", ErrBadRequest, where, r.syntaxError("'{'"))
	}
	c := cloudEvent{attrs: make(map[string]string, 12)}
	base64 := false
	err := r.object(depth, func(name []byte) error {
		switch string(name) {
		case "data":
			raw, canonical, err := r.value(depth + 1)
			if string(raw) == "null" {
				raw = nil
			}
			c.data, c.canonical = raw, canonical
			return err
		case "data_base64":
			base64 = true
			_, _, err := r.value(depth + 1)
			return err
		}
		var s string
		if r.peek() == '"' {
			var err error
			if s, err = r.stringValue(depth+1, ""); err != nil {
				return err
			}
		} else {
			// CloudEvents attributes may be integers or booleans too; the
			// bus's attributes are strings, others are kept as written.
			raw, _, err := r.value(depth + 1)
			if err != nil {
				return err
			}
			if string(raw) != "null" {
				s = string(raw)
			}
		}
		c.attrs[string(name)] = s
		return nil
	})
	if err != nil {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: %v", ErrBadRequest, where, err)
	}
	if base64 {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s has data_base64; event data must be JSON, in data", ErrUnsupportedMediaType, where)
	}
	return c.event(where)
}

// batch reads a JSON array of events, each with read, as it goes: the
// events are not first decoded into generic values. More than
// eventbus.MaxBatchSize events are counted, not read.
func (r *eventReader) batch(what string, read func(depth int, where position) (eventbus.BatchEvent, error)) ([]eventbus.BatchEvent, error) {
	if r.ws(); r.peek() != '[' {
		return nil, fmt.Errorf("%w: a batch is a JSON array of %s: %v", ErrBadRequest, what, r.syntaxError("'[' (a JSON array)"))
	}
	r.pos++
	r.ws()
	var events []eventbus.BatchEvent
	n := 0
	if r.peek() == ']' {
		r.pos++
	} else {
		for {
			if n < eventbus.MaxBatchSize {
				if events == nil {
					events = (*eventsPool.Get().(*[]eventbus.BatchEvent))[:0]
				}
				ev, err := read(1, position{index: n})
				if err != nil {
					releaseEvents(events)
					return nil, err
				}
				events = append(events, ev)
			} else if _, _, err := r.value(1); err != nil { // counted only
				return nil, fmt.Errorf("%w: a batch is a JSON array of %s: %v", ErrBadRequest, what, err)
			}
			n++
			r.ws()
			if r.peek() == ']' {
				r.pos++
				break
			}
			if r.peek() != ',' {
				return nil, fmt.Errorf("%w: a batch is a JSON array of %s: %v", ErrBadRequest, what, r.syntaxError("',' or ']'"))
			}
			r.pos++
			r.ws()
		}
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("%w: a batch is a JSON array of %s: %v", ErrBadRequest, what, err)
	}
	if err := checkBatchSize(n); err != nil {
		return nil, err
	}
	return events, nil
}

// mediaType returns the request's media type, lowercase, without
// parameters; "" when there is none.
func mediaType(h http.Header) (string, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("%w: Content-Type %q: %v", ErrUnsupportedMediaType, ct, err)
	}
	return mt, nil
}

func isJSONMedia(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == MediaJSON || strings.HasSuffix(mt, "+json"))
}

// eventsPool holds the slices batches are read into (see releaseEvents).
var eventsPool = sync.Pool{New: func() any {
	s := make([]eventbus.BatchEvent, 0, eventbus.MaxBatchSize)
	return &s
}}

// releaseEvents gives a batch's slice back for reuse once the library has
// encoded its events.
func releaseEvents(events []eventbus.BatchEvent) {
	if cap(events) != eventbus.MaxBatchSize {
		return // not from eventsPool
	}
	clear(events[:cap(events)])
	events = events[:0]
	eventsPool.Put(&events)
}

// readEvents turns a request into the events it publishes: one for
// /api/events, up to eventbus.MaxBatchSize for /api/events/batch. The
// events' data are slices of body.
func readEvents(r *http.Request, body []byte, batch bool) ([]eventbus.BatchEvent, error) {
	mt, err := mediaType(r.Header)
	if err != nil {
		return nil, err
	}
	binary := r.Header.Get("ce-specversion") != ""
	switch {
	case binary && batch:
		return nil, fmt.Errorf("%w: a batch cannot be a binary-mode CloudEvent; send a JSON array of envelopes (application/json) or of CloudEvents (%s)", ErrBadRequest, MediaCloudEventBatch)
	case binary && (mt == MediaJSON || mt == ""):
		ev, err := binaryCloudEvent(r.Header, body)
		if err != nil {
			return nil, err
		}
		return []eventbus.BatchEvent{ev}, nil
	case binary:
		return nil, fmt.Errorf("%w: Content-Type %q with ce-* headers; a binary-mode CloudEvent's data must be JSON (application/json)", ErrUnsupportedMediaType, mt)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: the request has no body", ErrBadRequest)
	}
	rd := &eventReader{jsonReader: jsonReader{b: body}}
	one := func(read func(int, position) (eventbus.BatchEvent, error), where position) ([]eventbus.BatchEvent, error) {
		ev, err := read(0, where)
		if err == nil {
			if err = rd.end(); err != nil {
				err = fmt.Errorf("%w: %s: %v", ErrBadRequest, where, err)
			}
		}
		if err != nil {
			return nil, err
		}
		return []eventbus.BatchEvent{ev}, nil
	}
	switch {
	case mt == MediaJSON && !batch:
		return one(rd.envelope, position{what: "the body"})
	case mt == MediaCloudEvent && !batch:
		return one(rd.structuredCloudEvent, position{what: "the CloudEvent"})
	case mt == MediaJSON && batch:
		return rd.batch("envelopes", rd.envelope)
	case mt == MediaCloudEventBatch && batch:
		return rd.batch("events", rd.structuredCloudEvent)
	case mt == "":
		return nil, fmt.Errorf("%w: the request has no Content-Type", ErrUnsupportedMediaType)
	case batch:
		return nil, fmt.Errorf("%w: Content-Type %q on a batch; send application/json (envelopes) or %s", ErrUnsupportedMediaType, mt, MediaCloudEventBatch)
	default:
		return nil, fmt.Errorf("%w: Content-Type %q; send application/json (an envelope, or a binary-mode CloudEvent) or %s", ErrUnsupportedMediaType, mt, MediaCloudEvent)
	}
}

// checkBatchSize refuses an empty batch and one over
// eventbus.MaxBatchSize.
func checkBatchSize(n int) error {
	if n > eventbus.MaxBatchSize {
		return fmt.Errorf("%w: %d events given, at most %d per batch; split it into several requests (nothing was sent)",
			eventbus.ErrBatchTooLarge, n, eventbus.MaxBatchSize)
	}
	if n == 0 {
		return fmt.Errorf("%w: the batch is empty", ErrBadRequest)
	}
	return nil
}

// readBody reads at most limit bytes of the request's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: the body is larger than %d bytes (Config.MaxBodyBytes); nothing was sent", ErrBodyTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading the body: %v", ErrBadRequest, err)
	}
	return body, nil
}

// bodyPool holds the buffers publish requests are read into: an event's
// data is a slice of its request's buffer until the library has encoded
// it, and the buffer is reused once the request is answered.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer kept for reuse; a larger one (a
// request near Config.MaxBodyBytes) is left to the garbage collector.
const maxPooledBody = 1 << 20

// readPooledBody reads at most limit bytes of the request's body into a
// buffer from bodyPool; give it back with releaseBody once nothing refers
// to its bytes.
func readPooledBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	if n := r.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead) // one read to the end, no regrowth
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		releaseBody(buf)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: the body is larger than %d bytes (Config.MaxBodyBytes); nothing was sent", ErrBodyTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading the body: %v", ErrBadRequest, err)
	}
	return buf, nil
}

// releaseBody gives a buffer of readPooledBody back for reuse.
func releaseBody(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	bodyPool.Put(buf)
}
