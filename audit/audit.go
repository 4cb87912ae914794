// Package audit keeps the operators' audit trail: one entry for every
// action taken through the console or its APIs that changes what consumers
// see (a dead-letter entry retried or deleted, a consumer group's offsets
// reset), with the name of the token that took it.
//
// The trail is an append-only topic of the cluster, Topic, with one
// partition: the broker is where every piece of the bus's durable state
// lives, so the trail survives a restart of eventbus serve, is shared by
// every instance of it, and is in one total order (an entry's offset is
// its place in the trail). Entries are JSON records; the topic is deleted
// from only by retention (Config.Retention).
//
//	log, err := audit.Open(ctx, client, audit.Config{})
//	err = log.Record(ctx, audit.Entry{Actor: "ana", Action: audit.ActionGroupReset, Target: "billing"})
//	page, err := log.List(ctx, audit.Query{Limit: 50})
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
)

// Topic is the audit trail's topic. Names starting with "__" are reserved
// for the bus's internal topics: no bus topic can take it.
const Topic = "__eventbus_audit"

// Defaults of Config and Query.
const (
	// DefaultRetention is how long entries are kept.
	DefaultRetention = 365 * 24 * time.Hour
	// DefaultLimit is the page size of List when Query.Limit is 0.
	DefaultLimit = 50
	// MaxLimit is the largest page List answers.
	MaxLimit = 500
	// MaxScan is how many entries one List call reads at most, newest
	// first, looking for ones that match its filters; past it, the page
	// ends early and Page.Next says where to go on.
	MaxScan = 10000
)

// Actions recorded by the bus.
const (
	// ActionDLQRetry: a dead-letter entry sent again (Target: its ID).
	ActionDLQRetry = "dlq.retry"
	// ActionDLQRetryTopic: every entry of a topic sent again (Target: the topic).
	ActionDLQRetryTopic = "dlq.retry-topic"
	// ActionDLQDelete: a dead-letter entry deleted (Target: its ID).
	ActionDLQDelete = "dlq.delete"
	// ActionGroupReset: a consumer group's committed offsets moved
	// (Target: the group): a replay when they move back.
	ActionGroupReset = "group.reset"
	// ActionGroupReplay: one event delivered again to one group (Target:
	// the group; the detail names the event).
	ActionGroupReplay = "group.replay"
)

// Outcomes of an Entry.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
)

// ErrInvalidQuery is wrapped by List's errors about its Query.
var ErrInvalidQuery = errors.New("invalid audit query")

// Entry is one action in the trail.
type Entry struct {
	// Offset is the entry's place in the trail (its record's offset); set
	// by List, ignored by Record.
	Offset int64 `json:"offset"`
	// Time is when the action was taken; Record sets it when zero.
	Time time.Time `json:"time"`
	// Actor is who took it: the name of the token presented, or for a
	// command run against the brokers directly, "cli:" and the OS user.
	Actor string `json:"actor"`
	// ActorTenant is the tenant of a tenant-scoped token; empty for admins.
	ActorTenant string `json:"actorTenant,omitempty"`
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Target is what the action was taken on (see the Action constants).
	Target string `json:"target"`
	// TenantID is the tenant the action concerns, when there is one.
	TenantID string `json:"tenantId,omitempty"`
	// Outcome is OutcomeOK or OutcomeFailed.
	Outcome string `json:"outcome"`
	// Error says why the action failed, when it did.
	Error string `json:"error,omitempty"`
	// Detail holds the action's particulars (the topic and group of a
	// dead-letter entry, the partitions and offsets of a reset).
	Detail map[string]string `json:"detail,omitempty"`
}

// Config configures a Log.
type Config struct {
	// Retention is the topic's retention.ms when Open creates it. Default
	// DefaultRetention. An existing topic is left as it is.
	Retention time.Duration
	// ReplicationFactor of the topic when Open creates it. Default
	// min(3, brokers).
	ReplicationFactor int
}

// Query selects entries for List. Empty filters match everything.
type Query struct {
	Actor    string
	Action   string
	TenantID string
	// Before, when positive, lists entries with a lower offset (the Next
	// of the previous page); 0 starts at the newest entry.
	Before int64
	// Limit is the page size: DefaultLimit when 0, at most MaxLimit.
	Limit int
}

// Page is one answer of List: Items newest first.
type Page struct {
	Items []Entry `json:"items"`
	// Next, when positive, is the Before of the next (older) page; 0 when
	// the trail has nothing older.
	Next int64 `json:"next,omitempty"`
}

// Log is the audit trail on one cluster. It is safe for concurrent use.
type Log struct {
	opts     []kgo.Opt
	producer *kgo.Client
	adm      *kadm.Client
}

// Open returns the trail of client's cluster, creating Topic if it does not
// exist. client must be connected. Close the Log when done.
func Open(ctx context.Context, client *eventbus.Client, cfg Config) (*Log, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: audit.Open needs a connected client", eventbus.ErrInvalidConfig)
	}
	if cfg.Retention < 0 || cfg.ReplicationFactor < 0 {
		return nil, fmt.Errorf("%w: audit.Config: Retention and ReplicationFactor may not be negative", eventbus.ErrInvalidConfig)
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	opts := client.KafkaOpts()
	producer, err := kgo.NewClient(append(opts[:len(opts):len(opts)],
		kgo.DefaultProduceTopic(Topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", eventbus.ErrInvalidConfig, err)
	}
	l := &Log{opts: opts, producer: producer, adm: kadm.NewClient(producer)}
	if err := l.ensureTopic(ctx, cfg); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) ensureTopic(ctx context.Context, cfg Config) error {
	rf := cfg.ReplicationFactor
	if rf == 0 {
		brokers, err := l.adm.ListBrokers(ctx)
		if err != nil {
			return fmt.Errorf("%w: audit: list brokers: %v", eventbus.ErrBrokerUnavailable, err)
		}
		rf = min(3, len(brokers))
	}
	retention := fmt.Sprint(cfg.Retention.Milliseconds())
	policy := "delete"
	resp, err := l.adm.CreateTopic(ctx, 1, int16(rf), map[string]*string{"retention.ms": &retention, "cleanup.policy": &policy}, Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("audit: create topic %s: %w", Topic, err)
	}
	return nil
}

// Close releases the Log's connections.
func (l *Log) Close() { l.producer.Close() }

// Record appends e to the trail and returns once the brokers acknowledged
// it. It sets e.Time to now when zero and e.Outcome to OutcomeOK when empty.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Actor == "" || e.Action == "" {
		return fmt.Errorf("%w: an audit entry needs an Actor and an Action", eventbus.ErrInvalidConfig)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	e.Offset = 0
	value, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode entry: %w", err)
	}
	if err := l.producer.ProduceSync(ctx, &kgo.Record{Topic: Topic, Key: []byte(e.Target), Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("audit: record %s of %q by %s: %w", e.Action, e.Target, e.Actor, err)
	}
	return nil
}

func (q Query) matches(e Entry) bool {
	return (q.Actor == "" || e.Actor == q.Actor) && (q.Action == "" || e.Action == q.Action) && (q.TenantID == "" || e.TenantID == q.TenantID)
}

// window is how many entries List reads in one go.
const window = 500

// List answers the entries matching q, newest first. It reads at most
// MaxScan entries; Page.Next says where the next page starts.
func (l *Log) List(ctx context.Context, q Query) (Page, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxLimit:
		return Page{}, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalidQuery, q.Limit, MaxLimit)
	case q.Before < 0:
		return Page{}, fmt.Errorf("%w: before %d is negative; give the next of the previous page, or 0 for the newest entries", ErrInvalidQuery, q.Before)
	case q.Limit == 0:
		q.Limit = DefaultLimit
	}
	starts, err := l.adm.ListStartOffsets(ctx, Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return Page{}, fmt.Errorf("audit: list the start of %s: %w", Topic, err)
	}
	ends, err := l.adm.ListEndOffsets(ctx, Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return Page{}, fmt.Errorf("audit: list the end of %s: %w", Topic, err)
	}
	start, _ := starts.Lookup(Topic, 0)
	end, _ := ends.Lookup(Topic, 0)
	lo, hi := start.Offset, end.Offset
	if q.Before > 0 && q.Before < hi {
		hi = q.Before
	}
	page := Page{Items: []Entry{}}
	for scanned := int64(0); hi > lo && scanned < MaxScan; {
		from := max(lo, hi-window)
		entries, err := l.read(ctx, from, hi)
		if err != nil {
			return Page{}, err
		}
		for i := len(entries) - 1; i >= 0; i-- {
			if !q.matches(entries[i]) {
				continue
			}
			page.Items = append(page.Items, entries[i])
			if len(page.Items) == q.Limit {
				if entries[i].Offset > lo {
					page.Next = entries[i].Offset
				}
				return page, nil
			}
		}
		scanned += hi - from
		hi = from
	}
	if hi > lo {
		page.Next = hi
	}
	return page, nil
}

// read returns the entries at offsets [from, to), oldest first. A record
// that is not an entry is skipped.
func (l *Log) read(ctx context.Context, from, to int64) ([]Entry, error) {
	cl, err := kgo.NewClient(append(l.opts[:len(l.opts):len(l.opts)],
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{Topic: {0: kgo.NewOffset().At(from)}}))...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", eventbus.ErrInvalidConfig, err)
	}
	defer cl.Close()
	out := make([]Entry, 0, to-from)
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("audit: read %s: %w", Topic, ferr)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to {
				done = true
				return
			}
			var e Entry
			if json.Unmarshal(r.Value, &e) == nil {
				e.Offset = r.Offset
				out = append(out, e)
			}
			if r.Offset+1 >= to {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}
