package dlq

import (
	"encoding/binary"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/wire"
)

// HeaderIndex is on every entry version an owner writes: what the view's
// index keeps of the entry (indexEntryOf), so that a view loads an entry
// from its header alone, without decoding the entry, its event, or
// redacting its failure reason. A record without it (written before it
// existed, or by the TypeScript package) is decoded as a whole.
const HeaderIndex = "plexica-dlq-index"

// indexHeaderVersion starts the header's value.
const indexHeaderVersion = 1

// indexEntryOf is what the index keeps of entry e (its position aside).
func indexEntryOf(e *Entry, overlay, deleted bool) dlqindex.Entry {
	ie := dlqindex.Entry{Deleted: deleted, Overlay: overlay, Origin: e.Origin,
		Status: string(e.Status), Permanent: e.Permanent,
		Topic: e.OriginalTopic, SchedulerGroup: e.SchedulerGroup, Tenant: e.TenantID,
		ReasonLabel: reasonLabel(e.FailureReason),
		FailedAt:    e.FailedAt.UnixNano(), ChangedAt: e.UpdatedAt.UnixNano()}
	_, ie.TenantKnown = e.VerifiedTenant()
	if e.NextRetryAt != nil {
		ie.NextRetryAt = e.NextRetryAt.UnixNano()
	}
	return ie
}

// indexHeader is the HeaderIndex of e, one of the bus's own entries.
func indexHeader(e *Entry) kgo.RecordHeader {
	ie := indexEntryOf(e, false, false)
	b := []byte{indexHeaderVersion}
	for _, s := range [...]string{e.ID, ie.Status, ie.Topic, ie.SchedulerGroup, ie.Tenant, ie.ReasonLabel} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var flags byte
	if ie.Permanent {
		flags |= 1
	}
	if ie.TenantKnown {
		flags |= 2
	}
	b = append(b, flags)
	for _, n := range [...]int64{ie.FailedAt, ie.ChangedAt, ie.NextRetryAt} {
		b = binary.AppendVarint(b, n)
	}
	return kgo.RecordHeader{Key: HeaderIndex, Value: b}
}

var errIndexHeader = errors.New("malformed index header")

// parseIndexHeader reads the HeaderIndex of r, an entry version: the
// entry's ID and its index entry (position aside). ok is false when r has
// none, or one that is malformed.
func parseIndexHeader(r *kgo.Record) (id string, ie dlqindex.Entry, ok bool) {
	b, has := wire.HeaderValue(r.Headers, HeaderIndex)
	if !has || len(b) == 0 || b[0] != indexHeaderVersion {
		return "", ie, false
	}
	b = b[1:]
	var err error
	str := func() string {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			err = errIndexHeader
			return ""
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s
	}
	num := func() int64 {
		n, k := binary.Varint(b)
		if k <= 0 {
			err = errIndexHeader
			return 0
		}
		b = b[k:]
		return n
	}
	id = str()
	ie.Status, ie.Topic, ie.SchedulerGroup, ie.Tenant, ie.ReasonLabel = str(), str(), str(), str(), str()
	if err != nil || len(b) == 0 {
		return "", ie, false
	}
	flags := b[0]
	b = b[1:]
	ie.Permanent, ie.TenantKnown = flags&1 != 0, flags&2 != 0
	ie.FailedAt, ie.ChangedAt, ie.NextRetryAt = num(), num(), num()
	if err != nil || len(b) != 0 {
		return "", ie, false
	}
	return id, ie, true
}
