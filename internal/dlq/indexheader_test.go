package dlq

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
)

// TestIndexHeaderHoldsWhatTheIndexKeeps: an entry read from its index
// header indexes as the entry decoded as a whole does.
func TestIndexHeaderHoldsWhatTheIndexKeeps(t *testing.T) {
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	next := now.Add(time.Second)
	e := &Entry{
		ID: deadletter.ID("g", "core.user.created", "acme", "ev-1"), OriginalTopic: "core.user.created",
		OriginalEvent: json.RawMessage(`{"id":"ev-1","type":"core.user.created","tenantId":"acme","timestamp":"2026-12-07T06:00:00.000Z","data":{},"metadata":{"source":"core","version":"1.0"}}`),
		TenantID:      "acme", FailureReason: "token=secret failed\nsecond line", FailedAt: now, UpdatedAt: now.Add(time.Millisecond),
		Status: deadletter.StatusPending, Permanent: true, NextRetryAt: &next, SchedulerGroup: "sched", ConsumerGroup: "g",
	}
	v, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: "dlq.core.user.created", Partition: 2, Offset: 9, Key: []byte(e.ID), Value: v,
		Headers: []kgo.RecordHeader{indexHeader(e)}}
	q := New(nil, Config{})
	vw := newView(q)
	id, fromHeader, ok := vw.decodeIndex(r)
	if !ok || id != e.ID {
		t.Fatalf("decodeIndex = %q, %v", id, ok)
	}
	r.Headers = nil
	_, decoded, _ := vw.decodeIndex(r)
	if fromHeader != decoded {
		t.Fatalf("from the header %+v\nwhole entry     %+v", fromHeader, decoded)
	}
	r.Headers = []kgo.RecordHeader{{Key: HeaderIndex, Value: []byte{indexHeaderVersion, 40}}}
	if _, _, ok := parseIndexHeader(r); ok {
		t.Fatal("a truncated header parsed")
	}
}
