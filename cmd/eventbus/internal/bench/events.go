package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/wire"
)

// poolSize is how many distinct events are built before a phase starts and
// then sent over and over.
const poolSize = 1024

// tenantCount is how many tenants the events are spread over; the tenant is
// the record key, so this spreads them over the partitions.
const tenantCount = 12

// payload is the data of every bench event. With the envelope and its two
// UUIDs it makes a record value of about 330 bytes.
type payload struct {
	// SentAt is when the event was handed to the publisher, in nanoseconds
	// since the run began; delivery latency is measured from it.
	SentAt   int64  `json:"sentAt"`
	OrderID  string `json:"orderId"`
	Amount   int    `json:"amount"`
	Currency string `json:"currency"`
}

// eventSource makes the events both sides send.
type eventSource struct {
	base        time.Time
	tenants     [tenantCount]string
	payloads    [poolSize]payload
	valueBytes  int // size of one record value
	headerBytes int // size of one record's headers (keys and values)
}

func newEventSource(base time.Time) *eventSource {
	s := &eventSource{base: base}
	for i := range s.tenants {
		s.tenants[i] = fmt.Sprintf("tenant-%02d", i)
	}
	for i := range s.payloads {
		s.payloads[i] = payload{
			OrderID:  fmt.Sprintf("ord-%08d", i),
			Amount:   4200 + i,
			Currency: "EUR",
		}
	}
	sample := s.rawRecord("core.bench_00000000_tput_ours.recorded", 0, 0)
	s.valueBytes = len(sample.Value)
	for _, h := range sample.Headers {
		s.headerBytes += len(h.Key) + len(h.Value)
	}
	return s
}

// tenantNames returns n tenant IDs, "tenant-0000", "tenant-0001", ...: the
// keys of the phases that spread events over many tenants.
func tenantNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("tenant-%04d", i)
	}
	return out
}

// now is the time since the run began, the clock of SentAt.
func (s *eventSource) now() int64 { return int64(time.Since(s.base)) }

// data returns event i's payload, sent at sentAt. It is built before the
// clock starts, so the publisher's cost is only the bus's.
func (s *eventSource) data(i int, sentAt int64) payload {
	p := s.payloads[i%poolSize]
	p.SentAt = sentAt
	return p
}

// meta returns event i's publish metadata: its tenant, nothing else, as
// most publishers give.
func (s *eventSource) meta(i int) eventbus.PublishMetadata {
	return eventbus.PublishMetadata{TenantID: s.tenants[i%tenantCount]}
}

// rawRecord builds event i as the bus builds it, the way an application
// using franz-go directly would: the payload as JSON, the wire envelope with
// a UUIDv7 ID and correlation ID, the bus's headers, the tenant as key.
func (s *eventSource) rawRecord(topic string, i int, sentAt int64) *kgo.Record {
	return s.rawRecordOf(topic, i, sentAt, s.tenants[i%tenantCount])
}

// rawRecordOf is rawRecord for a tenant of the caller's choosing (the
// phases that spread events over many more tenants than the dozen of
// rawRecord).
func (s *eventSource) rawRecordOf(topic string, i int, sentAt int64, tenant string) *kgo.Record {
	data, err := json.Marshal(s.data(i, sentAt))
	if err != nil {
		panic(err) // a fixed struct of strings and ints always encodes
	}
	env := wire.Envelope{
		ID:            uuid.Must(uuid.NewV7()).String(),
		Type:          topic,
		TenantID:      tenant,
		Timestamp:     time.Now().Truncate(time.Millisecond),
		Data:          data,
		Source:        "core",
		CorrelationID: uuid.Must(uuid.NewV7()).String(),
		Version:       "1.0",
	}
	return &kgo.Record{
		Topic:     topic,
		Key:       []byte(tenant),
		Value:     wire.Append(make([]byte, 0, envelopeOverhead+len(topic)+len(tenant)+len(data)), &env),
		Headers:   wire.AppendHeaders(make([]kgo.RecordHeader, 0, 6), &env),
		Timestamp: env.Timestamp,
	}
}

// envelopeOverhead is the size of an envelope without its type, tenant and
// data: field names, two UUIDs, the timestamp, source and version.
const envelopeOverhead = 256

// rawPool builds poolSize records for topic before any clock starts; the raw
// throughput and latency phases send copies of them, so they measure the
// client alone.
func (s *eventSource) rawPool(topic string) []*kgo.Record {
	pool := make([]*kgo.Record, poolSize)
	for i := range pool {
		pool[i] = s.rawRecord(topic, i, 0)
	}
	return pool
}

// fresh returns a new record with the bytes of r (a record may be produced
// only once, but its bytes may be shared).
func fresh(r *kgo.Record) *kgo.Record {
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
}

var sentAtField = []byte(`"sentAt":`)

// sentAtOf finds the SentAt of an event's JSON (its data, or the whole
// envelope) without decoding the rest.
func sentAtOf(b []byte) (int64, bool) {
	i := bytes.Index(b, sentAtField)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(sentAtField):]
	end := 0
	for end < len(b) && b[end] >= '0' && b[end] <= '9' {
		end++
	}
	v, err := strconv.ParseInt(string(b[:end]), 10, 64)
	return v, err == nil
}
