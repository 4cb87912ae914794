package dlq

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
)

// One writer per entry. Nobody but the entry's owner writes an entry: the
// member of Config.SchedulerGroup that owns the entry's dlq.* partition
// (owner.go). Everyone else (a subscriber that failed an event or answered
// a retry, an operator's retry or delete) appends a command to that same
// partition; the owner applies the partition's commands in offset order,
// each in a Kafka transaction that writes the entry's next version and
// the command's tombstone, and sends a retry in the same transaction. A
// command is applied exactly when its tombstone follows it: a new owner
// applies what the last one left, never twice. Its tombstone carries the
// result (header HeaderCommandResult), which the sender may wait for.

// Command kinds.
const (
	// CommandFailed: a group failed an event. Attempt 0 is an ordinary
	// delivery (Entry holds the entry to create); Attempt n > 0 answers
	// retry n of entry ID.
	CommandFailed = "failed"
	// CommandResolved: retry Attempt of entry ID succeeded.
	CommandResolved = "resolved"
	// CommandRetry: send entry ID again (Manual, or as the schedule
	// would).
	CommandRetry = "retry"
	// CommandDelete: remove entry ID.
	CommandDelete = "delete"
)

// Record headers of commands and their results.
const (
	// HeaderCommand marks a command record; its value is the scheduler
	// group whose owner applies it.
	HeaderCommand = "plexica-dlq-command"
	// HeaderCommandResult is on a command's tombstone: "ok", or
	// "not-found: …" / "not-allowed: …".
	HeaderCommandResult = "plexica-dlq-result"
)

// command is one change to an entry, asked of its owner.
type command struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Attempt is the retry a CommandFailed or CommandResolved answers.
	Attempt int `json:"attempt,omitempty"`
	// Entry is the entry a CommandFailed of an ordinary delivery creates.
	Entry   *Entry   `json:"entry,omitempty"`
	Failure *Failure `json:"failure,omitempty"`
	// Manual: a CommandRetry in any status, not counted against
	// MaxRetries' schedule; otherwise it retries only as the schedule may.
	Manual bool      `json:"manual,omitempty"`
	At     time.Time `json:"at"`
}

// commandKey is the key of a command on entry id: the entry's ID, a "/"
// and a random nonce. entryPartitioner places it on the entry's partition.
func commandKey(id string) []byte {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return []byte(id + "/" + hex.EncodeToString(nonce[:]))
}

// isCommandKey reports whether key is a command's (or its tombstone's).
func isCommandKey(key []byte) bool {
	i := bytes.IndexByte(key, '/')
	return i > 0 && isEntryID(string(key[:i]))
}

// commandRecord builds the record of c on dlqTopic for schedulerGroup.
func commandRecord(dlqTopic, schedulerGroup string, c *command) (*kgo.Record, error) {
	v, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic:   dlqTopic,
		Key:     commandKey(c.ID),
		Value:   v,
		Headers: []kgo.RecordHeader{{Key: HeaderCommand, Value: []byte(schedulerGroup)}},
	}, nil
}

// decodeCommand reads a command record.
func decodeCommand(r *kgo.Record) (command, error) {
	var c command
	if err := json.Unmarshal(r.Value, &c); err != nil {
		return c, fmt.Errorf("dead-letter command at %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	if !bytes.HasPrefix(r.Key, []byte(c.ID+"/")) {
		return c, fmt.Errorf("dead-letter command at %s/%d@%d keyed %q names entry %q", r.Topic, r.Partition, r.Offset, r.Key, c.ID)
	}
	return c, nil
}

// Results of a command, on its tombstone.
const (
	resultOK         = "ok"
	resultNotFound   = "not-found"
	resultNotAllowed = "not-allowed"
)

// resultError turns a command's result back into the error the sender
// returns (nil for ok).
func resultError(id, result string) error {
	kind, detail, _ := bytes.Cut([]byte(result), []byte(": "))
	switch string(kind) {
	case resultOK:
		return nil
	case resultNotFound:
		return notFound(id)
	case resultNotAllowed:
		return fmt.Errorf("%w: %s", deadletter.ErrRetryNotAllowed, detail)
	}
	return fmt.Errorf("dead letter queue: entry %s: %s", id, result)
}

// entryPartitioner places every record of an entry on one partition of its
// dlq.* topic: the entry's versions (keyed by its ID), its commands and
// their tombstones (keyed "<ID>/<nonce>") all go where Kafka's default
// partitioner puts the ID; any other record where that partitioner puts
// its key.
type entryPartitioner struct{ kafka kgo.Partitioner }

func newEntryPartitioner() kgo.Partitioner {
	return entryPartitioner{kgo.StickyKeyPartitioner(nil)}
}

func (p entryPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return entryTopicPartitioner{p.kafka.ForTopic(topic)}
}

type entryTopicPartitioner struct{ kafka kgo.TopicPartitioner }

func (p entryTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return p.kafka.RequiresConsistency(r)
}

func (p entryTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if isCommandKey(r.Key) {
		i := bytes.IndexByte(r.Key, '/')
		return p.kafka.Partition(&kgo.Record{Key: r.Key[:i]}, n)
	}
	return p.kafka.Partition(r, n)
}
