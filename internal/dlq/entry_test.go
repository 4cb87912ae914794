package dlq

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/wire"
)

// TestDecodeRecord: each kind of DLQ record decodes as before the fallback
// path reused the first parse: this bus's entries, the TypeScript
// package's, our overlays of the latter, and what is none of them.
func TestDecodeRecord(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	tsID := "dlq-ev-1-1764399600000"
	ts := `{"id":"` + tsID + `","originalEvent":{"id":"ev-1"},"originalTopic":"core.user.created","failureReason":"smtp down","failureTimestamp":"2026-11-29T06:00:00.000Z","retryCount":0,"maxRetries":3,"consumerGroup":"ts-mailer","partition":1,"offset":"17"}`
	overlay := func(entryID string, deleted bool) string {
		v, _ := json.Marshal(map[string]any{"typescriptOverlay": legacyOverlay{Entry: Entry{ID: entryID, Origin: deadletter.OriginTypeScript, Status: deadletter.StatusResolved}, Deleted: deleted}})
		return string(v)
	}
	var typeErr *json.UnmarshalTypeError
	for _, tt := range []struct {
		name, key, value string
		wantID           string
		overlay, deleted bool
		wantErr, typeErr bool
		origin           string
		status           Status
		retryCount       int
		offset           int64
	}{
		{name: "ours", key: id, value: `{"id":"` + id + `","status":"pending","retryCount":2}`, wantID: id, status: deadletter.StatusPending, retryCount: 2},
		{name: "ours without status", key: id, value: `{"id":"` + id + `","retryCount":1}`, wantID: id, retryCount: 1},
		{name: "ours keyed otherwise", key: "acme", value: `{"id":"` + id + `","status":"pending"}`, wantID: id, status: deadletter.StatusPending, wantErr: true},
		{name: "ours with a field of the wrong type", key: id, value: `{"id":"` + id + `","status":"pending","retryCount":"two"}`, wantID: id, status: deadletter.StatusPending, wantErr: true, typeErr: true},
		{name: "TypeScript", key: "acme", value: ts, wantID: tsID, origin: deadletter.OriginTypeScript, status: deadletter.StatusPending, offset: 17},
		{name: "overlay", key: overlayKey(tsID), value: overlay(tsID, false), wantID: tsID, overlay: true, origin: deadletter.OriginTypeScript, status: deadletter.StatusResolved},
		{name: "deleting overlay", key: overlayKey(tsID), value: overlay(tsID, true), wantID: tsID, overlay: true, deleted: true, origin: deadletter.OriginTypeScript, status: deadletter.StatusResolved},
		{name: "overlay keyed otherwise", key: tsID, value: overlay(tsID, false), wantErr: true},
		{name: "not JSON", key: id, value: `not json`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, overlay, deleted, err := decodeRecord(&kgo.Record{Key: []byte(tt.key), Value: []byte(tt.value)})
			if (err != nil) != tt.wantErr || errors.As(err, &typeErr) != tt.typeErr {
				t.Fatalf("err %v; want error %v (a type error %v)", err, tt.wantErr, tt.typeErr)
			}
			if e.ID != tt.wantID || overlay != tt.overlay || deleted != tt.deleted || e.Origin != tt.origin || e.Status != tt.status || e.RetryCount != tt.retryCount {
				t.Fatalf("decoded %+v, overlay %v, deleted %v", e, overlay, deleted)
			}
			if tt.origin == deadletter.OriginTypeScript && !tt.overlay && e.Offset != tt.offset {
				t.Fatalf("offset %d; want %d", e.Offset, tt.offset)
			}
		})
	}
}

// TestNoRetries: a queue configured with deadletter.NoRetries records its
// entries with no automatic retry, and a first failure leaves them out of
// retries at once (sent again only by hand); the zero MaxRetries is the
// default.
func TestNoRetries(t *testing.T) {
	rec := &kgo.Record{Key: []byte("acme"), Value: []byte(`{}`), Headers: []kgo.RecordHeader{{Key: wire.HeaderTenantID, Value: []byte("acme")}}}
	now := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	q := New(nil, Config{Config: deadletter.Config{MaxRetries: deadletter.NoRetries}})
	e := q.newEntry(rec, "core.user.created", "mailer", "ev-1")
	if e.MaxRetries != 0 {
		t.Fatalf("MaxRetries = %d with NoRetries, want 0", e.MaxRetries)
	}
	q.applyFailure(e, Failure{Reason: "smtp down"}, now)
	if e.Status != deadletter.StatusMaxRetriesExceeded || e.NextRetryAt != nil {
		t.Fatalf("after a failure with NoRetries: %s, next retry %v; want max-retries-exceeded, none", e.Status, e.NextRetryAt)
	}
	if got := New(nil, Config{}).newEntry(rec, "core.user.created", "mailer", "ev-1").MaxRetries; got != deadletter.DefaultMaxRetries {
		t.Fatalf("MaxRetries = %d with the zero Config, want DefaultMaxRetries", got)
	}
}
