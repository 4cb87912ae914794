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
// partition key (see envelopeOf).
type envelopeRequest struct {
	ID           string
	Type         string
	TenantID     string
	WorkspaceID  string
	Timestamp    *time.Time
	Data         json.RawMessage
	Metadata     metadataRequest
	PartitionKey string
}

type metadataRequest struct {
	Source        string
	UserID        string
	CorrelationID string
	CausationID   string
	Version       string
}

func (e envelopeRequest) event() eventbus.BatchEvent {
	ev := eventbus.BatchEvent{
		EventType: e.Type,
		Data:      dataOf(e.Data),
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
// the same data writes.
func dataOf(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	if !bytes.ContainsAny(raw, " \t\r\n<>&\u2028\u2029") {
		return raw // already as encoding/json writes it
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return raw // the library reports the invalid JSON
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return json.RawMessage(escaped.Bytes())
}

// jsonString reads a JSON string (null reads as ""). Most strings have
// no escapes and are taken as they are.
func jsonString(v json.RawMessage) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), nil
	}
	if string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("want a string, found %s", v)
	}
	return s, nil
}

// cloudEvent is a CloudEvent's attributes, from ce-* headers or a
// structured event's members.
type cloudEvent struct {
	attrs map[string]string
	data  json.RawMessage
}

// event maps a CloudEvent onto the bus's event: id, type, source and time
// onto the envelope's id, type, metadata.source and timestamp, and the
// extensions above onto the rest.
func (c cloudEvent) event(where string) (eventbus.BatchEvent, error) {
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
		Data:      dataOf(c.data),
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
		if !json.Valid(body) {
			return eventbus.BatchEvent{}, fmt.Errorf("%w: the body (the CloudEvent's data) is not valid JSON", ErrBadRequest)
		}
		c.data = body
	}
	return c.event("binary-mode CloudEvent")
}

// structuredCloudEvent reads one structured CloudEvent.
func structuredCloudEvent(raw json.RawMessage, where string) (eventbus.BatchEvent, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s is not a JSON object: %v", ErrBadRequest, where, errOrNull(err))
	}
	if _, ok := members["data_base64"]; ok {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s has data_base64; event data must be JSON, in data", ErrUnsupportedMediaType, where)
	}
	c := cloudEvent{attrs: map[string]string{}, data: members["data"]}
	for name, v := range members {
		if name == "data" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			// CloudEvents attributes may be integers or booleans too; the
			// bus's attributes are strings, others are kept as written.
			s = string(v)
		}
		c.attrs[name] = s
	}
	if string(c.data) == "null" {
		c.data = nil
	}
	return c.event(where)
}

func errOrNull(err error) error {
	if err == nil {
		return errors.New("null")
	}
	return err
}

// decodeEnvelope reads one envelope, refusing a member it does not know.
// Member names are matched exactly (encoding/json would read tenantID as
// tenantId).
func decodeEnvelope(raw []byte, where string) (eventbus.BatchEvent, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s is not the bus's JSON envelope ({\"type\",\"tenantId\",\"data\",...}): %v", ErrBadRequest, where, err)
	}
	return envelopeOf(members, where)
}

// envelopeOf reads an envelope from its members.
func envelopeOf(members map[string]json.RawMessage, where string) (eventbus.BatchEvent, error) {
	if members == nil {
		return eventbus.BatchEvent{}, fmt.Errorf("%w: %s is not a JSON object", ErrBadRequest, where)
	}
	var e envelopeRequest
	for name, v := range members {
		var err error
		switch name {
		case "id":
			e.ID, err = jsonString(v)
		case "type":
			e.Type, err = jsonString(v)
		case "tenantId":
			e.TenantID, err = jsonString(v)
		case "workspaceId":
			e.WorkspaceID, err = jsonString(v)
		case "partitionKey":
			e.PartitionKey, err = jsonString(v)
		case "data":
			e.Data = v
		case "timestamp":
			var ts string
			if ts, err = jsonString(v); err == nil && ts != "" {
				var t time.Time
				if t, err = time.Parse(time.RFC3339Nano, ts); err == nil {
					e.Timestamp = &t
				} else {
					err = fmt.Errorf("%q is not an RFC 3339 time (2026-11-27T17:06:55.916Z)", ts)
				}
			}
		case "metadata":
			err = e.Metadata.read(v)
		default:
			err = fmt.Errorf("unknown member (members are id, type, tenantId, workspaceId, timestamp, data, metadata, partitionKey, spelt exactly so)")
		}
		if err != nil {
			return eventbus.BatchEvent{}, fmt.Errorf("%w: %s: member %q: %v", ErrBadRequest, where, name, err)
		}
	}
	return e.event(), nil
}

// read reads the envelope's metadata object.
func (m *metadataRequest) read(raw json.RawMessage) error {
	if string(raw) == "null" {
		return nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return fmt.Errorf("want an object: %v", err)
	}
	for name, v := range members {
		var err error
		switch name {
		case "source":
			m.Source, err = jsonString(v)
		case "userId":
			m.UserID, err = jsonString(v)
		case "correlationId":
			m.CorrelationID, err = jsonString(v)
		case "causationId":
			m.CausationID, err = jsonString(v)
		case "version":
			m.Version, err = jsonString(v)
		default:
			err = fmt.Errorf("unknown member (members are source, userId, correlationId, causationId, version, spelt exactly so)")
		}
		if err != nil {
			return fmt.Errorf("%q: %v", name, err)
		}
	}
	return nil
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

// readEvents turns a request into the events it publishes: one for
// /api/events, up to eventbus.MaxBatchSize for /api/events/batch.
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
	switch {
	case mt == MediaJSON && !batch:
		ev, err := decodeEnvelope(body, "the body")
		if err != nil {
			return nil, err
		}
		return []eventbus.BatchEvent{ev}, nil
	case mt == MediaCloudEvent && !batch:
		ev, err := structuredCloudEvent(body, "the CloudEvent")
		if err != nil {
			return nil, err
		}
		return []eventbus.BatchEvent{ev}, nil
	case mt == MediaJSON && batch:
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("%w: a batch is a JSON array of envelopes: %v", ErrBadRequest, err)
		}
		if err := checkBatchSize(len(items)); err != nil {
			return nil, err
		}
		events := make([]eventbus.BatchEvent, len(items))
		for i, item := range items {
			if events[i], err = envelopeOf(item, fmt.Sprintf("batch event %d of %d (nothing was sent)", i, len(items))); err != nil {
				return nil, err
			}
		}
		return events, nil
	case mt == MediaCloudEventBatch && batch:
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("%w: a batch is a JSON array of events: %v", ErrBadRequest, err)
		}
		if err := checkBatchSize(len(items)); err != nil {
			return nil, err
		}
		events := make([]eventbus.BatchEvent, len(items))
		for i, item := range items {
			if events[i], err = structuredCloudEvent(item, fmt.Sprintf("batch event %d of %d (nothing was sent)", i, len(items))); err != nil {
				return nil, err
			}
		}
		return events, nil
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
