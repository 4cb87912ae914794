package dlq

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/wire"
)

// Signed retries (Config.SigningKey): the retry carries the entry it
// retries, without its original event (that is the record itself), and an
// HMAC-SHA256 over the record's topic, the entry and the record's value. A
// subscriber that holds the key so trusts the retry, and records its
// outcome, without reading the dlq.* topics; a writer without the key can
// forge neither.

// retryMAC is the signature of a retry of entry (JSON, without its
// original event) sent to topic with value.
func retryMAC(key []byte, topic string, entry, value []byte) []byte {
	valueSum := sha256.Sum256(value)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(topic))
	m.Write([]byte{0})
	m.Write(entry)
	m.Write([]byte{0})
	m.Write(valueSum[:])
	return m.Sum(nil)
}

// signRetry returns the headers that sign a retry of e sent to topic with
// value, with Config.SigningKey (set: its caller checks).
func (q *Queue) signRetry(topic string, e Entry, value []byte) ([]kgo.RecordHeader, error) {
	e.OriginalEvent, e.OriginalHeaders = nil, nil
	entry, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return []kgo.RecordHeader{
		{Key: wire.HeaderDLQEntry, Value: entry},
		{Key: wire.HeaderDLQSignature, Value: []byte(hex.EncodeToString(retryMAC(q.cfg.SigningKey, topic, entry, value)))},
	}, nil
}

// verifySigned checks a signed retry: the signature, then that the entry
// it carries is the one its headers name, for r's event and for topic (the
// topic the retry is for). It rebuilds the full entry from r (its value is
// the original event, its headers the original headers).
func (q *Queue) verifySigned(r *kgo.Record, topic string, id, group []byte, attempt int) (Claim, bool) {
	entry, hasEntry := wire.HeaderValue(r.Headers, wire.HeaderDLQEntry)
	sig, hasSig := wire.HeaderValue(r.Headers, wire.HeaderDLQSignature)
	if !hasEntry || !hasSig {
		return Claim{}, false
	}
	want := retryMAC(q.cfg.SigningKey, r.Topic, entry, r.Value)
	got, err := hex.DecodeString(string(sig))
	if err != nil || !hmac.Equal(got, want) {
		return Claim{}, false
	}
	var e Entry
	if err := json.Unmarshal(entry, &e); err != nil {
		return Claim{}, false
	}
	if e.ID != string(id) || e.ConsumerGroup != string(group) || e.RetryCount != attempt || e.OriginalTopic != topic ||
		RetryTopicFor(e.ConsumerGroup, e.OriginalTopic) != r.Topic || e.EventID != wire.EventIDOf(r) {
		return Claim{}, false
	}
	original := q.newEntry(r, e.ConsumerGroup, e.EventID)
	e.OriginalEvent, e.OriginalHeaders = original.OriginalEvent, original.OriginalHeaders
	return Claim{ID: e.ID, Group: e.ConsumerGroup, Outstanding: true, attempt: attempt, entry: &e}, true
}
