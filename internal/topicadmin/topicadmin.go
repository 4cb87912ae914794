// Package topicadmin creates topics and lists them as the brokers see them
// now: a creation waits until the topic is listed, concurrent creations of
// one name make one request, and listings bypass the client's metadata
// cache.
package topicadmin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus/internal/backoff"
)

// Settings are how a topic is created. Replication 0 is min(3, brokers).
type Settings struct {
	Partitions  int32
	Replication int16
	Retention   time.Duration
	Configs     map[string]string
}

// Admin creates and lists topics through one client.
type Admin struct {
	cl      *kgo.Client
	adm     *kadm.Client
	ensured sync.Map // topic name -> *ensureCall
}

type ensureCall struct {
	done chan struct{}
	err  error
}

// New returns an Admin over cl.
func New(cl *kgo.Client) *Admin { return &Admin{cl: cl, adm: kadm.NewClient(cl)} }

// Ensure creates topic with s unless it exists, once per Admin: later calls
// for the name return the first call's result at once, and concurrent calls
// share one request. A failure is forgotten, so the next call tries again.
// settings is called only when a request is made.
func (a *Admin) Ensure(ctx context.Context, topic string, settings func() Settings) error {
	call := &ensureCall{done: make(chan struct{})}
	if v, loaded := a.ensured.LoadOrStore(topic, call); loaded {
		prev := v.(*ensureCall)
		select {
		case <-prev.done:
			return prev.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	call.err = a.create(ctx, topic, settings())
	if call.err != nil {
		a.ensured.Delete(topic)
	}
	close(call.done)
	return call.err
}

func (a *Admin) create(ctx context.Context, topic string, s Settings) error {
	if s.Replication == 0 {
		brokers, err := a.adm.ListBrokers(ctx)
		if err != nil {
			return fmt.Errorf("ensure topic %q: list brokers: %w", topic, err)
		}
		s.Replication = int16(min(3, max(1, len(brokers))))
	}
	configs := map[string]*string{}
	retention := strconv.FormatInt(s.Retention.Milliseconds(), 10)
	configs["retention.ms"] = &retention
	for k, v := range s.Configs {
		configs[k] = &v
	}
	resp, err := a.adm.CreateTopic(ctx, s.Partitions, s.Replication, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		// A client allowed to use the topic but not to create it (a plugin
		// reading a core topic under its ACLs) is fine when it exists.
		if topics, listErr := a.Fresh(ctx, topic); listErr == nil && slices.Contains(topics, topic) {
			return nil
		}
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("ensure topic %q (%d partitions, replication %d): %w", topic, s.Partitions, s.Replication, err)
	}
	return a.waitListed(ctx, topic)
}

// waitListed returns once a broker lists topic in its metadata. On Kafka,
// CreateTopics is answered by the controller before every broker's metadata
// shows the new topic, so without this a lookup, a subscription or a client
// in another process could miss a topic just created. It waits at most 10 s
// (and ctx); after that the topic is left to appear.
func (a *Admin) waitListed(parent context.Context, topic string) error {
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()
	for {
		topics, err := a.Fresh(ctx, topic)
		if err == nil && slices.Contains(topics, topic) {
			return nil
		}
		if !backoff.Sleep(ctx, 20*time.Millisecond) {
			return parent.Err()
		}
	}
}

// Fresh asks a broker which of names exist (all topics when none is
// given). It sends its own metadata request rather than using kadm's
// ListTopics, which answers from the client's metadata cache (up to
// MetadataMinAge, 5 s, old) and so misses a topic another process has just
// created.
func (a *Admin) Fresh(ctx context.Context, names ...string) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, a.cl)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []string
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case err == nil:
			out = append(out, *t.Topic)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
		default:
			return nil, fmt.Errorf("list topics: %s: %w", *t.Topic, err)
		}
	}
	return out, nil
}
