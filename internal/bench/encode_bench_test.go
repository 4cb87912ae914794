package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/wire"
)

// BenchmarkEventBuild measures, step by step, the per-event work of the
// bus's publish path (eventbus.(*Bus).prepare does these same calls), and
// what the steps would cost done the way proposed in the bench report:
//
//	go test ./internal/bench -run '^$' -bench EventBuild -benchmem
func BenchmarkEventBuild(b *testing.B) {
	src := newEventSource(time.Now())
	const topic = "core.bench_00000000_tput_ours.recorded"
	data, _ := json.Marshal(src.data(1, 0))
	env := wire.Envelope{
		ID: uuid.Must(uuid.NewV7()).String(), Type: topic, TenantID: "tenant-01",
		Timestamp: time.Now().Truncate(time.Millisecond), Data: data,
		Source: "core", CorrelationID: uuid.Must(uuid.NewV7()).String(), Version: "1.0",
	}
	var sink any

	b.Run("uuid-v7-string", func(b *testing.B) {
		for b.Loop() {
			sink = uuid.Must(uuid.NewV7()).String()
		}
	})
	b.Run("json-marshal-payload", func(b *testing.B) {
		p := any(src.data(1, 0))
		for b.Loop() {
			sink, _ = json.Marshal(p)
		}
	})
	b.Run("time-now-truncate", func(b *testing.B) {
		for b.Loop() {
			sink = time.Now().Truncate(time.Millisecond)
		}
	})
	b.Run("wire-append-time", func(b *testing.B) {
		buf := make([]byte, 0, 32)
		for b.Loop() {
			buf = wire.AppendTime(buf[:0], env.Timestamp)
		}
		sink = buf
	})
	b.Run("fast-append-time", func(b *testing.B) {
		buf := make([]byte, 0, 32)
		for b.Loop() {
			buf = appendISOTime(buf[:0], env.Timestamp)
		}
		sink = buf
	})
	b.Run("wire-append-cap-256+data", func(b *testing.B) { // as prepare sizes it
		for b.Loop() {
			sink = wire.Append(make([]byte, 0, 256+len(env.Data)), &env)
		}
	})
	b.Run("wire-append-cap-exact", func(b *testing.B) {
		for b.Loop() {
			sink = wire.Append(make([]byte, 0, envelopeOverhead+len(topic)+len(env.TenantID)+len(env.Data)), &env)
		}
	})
	b.Run("wire-append-headers", func(b *testing.B) {
		for b.Loop() {
			sink = wire.AppendHeaders(make([]kgo.RecordHeader, 0, 6), &env)
		}
	})
	b.Run("one-buffer-headers", func(b *testing.B) {
		for b.Loop() {
			sink = oneBufferHeaders(&env)
		}
	})
	b.Run("all-as-bus", func(b *testing.B) { // the steps of prepare, as they are
		p := any(src.data(1, 0))
		for b.Loop() {
			sink = buildAsBus(topic, "tenant-01", p)
		}
	})
	b.Run("all-proposed", func(b *testing.B) { // the same bytes, built as proposed
		p := any(src.data(1, 0))
		for b.Loop() {
			sink = buildProposed(topic, "tenant-01", p)
		}
	})
	_ = sink
}

// TestProposedBuildSameBytes checks that the proposed way of building a
// record writes exactly what the bus writes today.
func TestProposedBuildSameBytes(t *testing.T) {
	src := newEventSource(time.Now())
	p := any(src.data(1, 0))
	a := buildAsBus("core.user.created", "tenant-01", p)
	b := buildProposed("core.user.created", "tenant-01", p)
	// IDs and timestamps differ between calls: compare the shapes.
	if len(a.Value) != len(b.Value) || len(a.Headers) != len(b.Headers) || string(a.Key) != string(b.Key) {
		t.Fatalf("as bus: %s\nproposed: %s", a.Value, b.Value)
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || len(a.Headers[i].Value) != len(b.Headers[i].Value) {
			t.Fatalf("header %d: %q vs %q", i, a.Headers[i], b.Headers[i])
		}
	}
	for _, ts := range []time.Time{time.Now(), time.Date(1999, 12, 31, 23, 59, 59, 999e6, time.UTC), time.Unix(0, 0)} {
		if got, want := string(appendISOTime(nil, ts)), wire.FormatTime(ts); got != want {
			t.Fatalf("appendISOTime(%v) = %s, want %s", ts, got, want)
		}
	}
}

// buildAsBus repeats eventbus.(*Bus).prepare's encoding steps.
func buildAsBus(topic, tenant string, data any) *kgo.Record {
	payload, _ := json.Marshal(data)
	env := wire.Envelope{
		ID: uuid.Must(uuid.NewV7()).String(), Type: topic, TenantID: tenant,
		Timestamp: time.Now().Truncate(time.Millisecond), Data: payload,
		Source: "core", CorrelationID: uuid.Must(uuid.NewV7()).String(), Version: "1.0",
	}
	key := []byte(tenant)
	headers := wire.AppendHeaders(make([]kgo.RecordHeader, 0, 6), &env)
	value := wire.Append(make([]byte, 0, 256+len(payload)), &env)
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers, Timestamp: env.Timestamp}
}

// buildProposed writes the same bytes with: the value buffer sized for the
// whole envelope, the header values and key in one buffer, the timestamp
// formatted once by a fixed-layout formatter.
func buildProposed(topic, tenant string, data any) *kgo.Record {
	payload, _ := json.Marshal(data)
	env := wire.Envelope{
		ID: uuid.Must(uuid.NewV7()).String(), Type: topic, TenantID: tenant,
		Timestamp: time.Now().Truncate(time.Millisecond), Data: payload,
		Source: "core", CorrelationID: uuid.Must(uuid.NewV7()).String(), Version: "1.0",
	}
	headers := oneBufferHeaders(&env)
	value := make([]byte, 0, envelopeOverhead+len(topic)+len(tenant)+len(payload))
	value = wire.Append(value, &env)
	return &kgo.Record{Topic: topic, Key: headers[2].Value, Value: value, Headers: headers, Timestamp: env.Timestamp}
}

// oneBufferHeaders is wire.AppendHeaders with every value in one allocation.
func oneBufferHeaders(e *wire.Envelope) []kgo.RecordHeader {
	buf := make([]byte, 0, len(e.ID)+len(e.Type)+len(e.TenantID)+len(e.WorkspaceID)+len(e.CorrelationID)+len(wire.TimeLayout))
	cut := func(s string) []byte {
		start := len(buf)
		buf = append(buf, s...)
		return buf[start:len(buf):len(buf)]
	}
	id, typ, tenant, ws, corr := cut(e.ID), cut(e.Type), cut(e.TenantID), cut(e.WorkspaceID), cut(e.CorrelationID)
	start := len(buf)
	buf = appendISOTime(buf, e.Timestamp)
	return []kgo.RecordHeader{
		{Key: wire.HeaderEventID, Value: id},
		{Key: wire.HeaderEventType, Value: typ},
		{Key: wire.HeaderTenantID, Value: tenant},
		{Key: wire.HeaderWorkspaceID, Value: ws},
		{Key: wire.HeaderCorrelationID, Value: corr},
		{Key: wire.HeaderTimestamp, Value: buf[start:]},
	}
}

// appendISOTime appends t as JavaScript's toISOString writes it, without
// time.Format's layout parsing.
func appendISOTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	pad := func(dst []byte, v, width int) []byte {
		var b [4]byte
		for i := width - 1; i >= 0; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
		return append(dst, b[:width]...)
	}
	dst = pad(dst, year, 4)
	dst = append(dst, '-')
	dst = pad(dst, int(month), 2)
	dst = append(dst, '-')
	dst = pad(dst, day, 2)
	dst = append(dst, 'T')
	dst = pad(dst, hour, 2)
	dst = append(dst, ':')
	dst = pad(dst, minute, 2)
	dst = append(dst, ':')
	dst = pad(dst, sec, 2)
	dst = append(dst, '.')
	dst = pad(dst, ms, 3)
	return append(dst, 'Z')
}
