package consoleapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/internal/httpjson"
	"github.com/plexica/eventbus/topic"
)

// fresh returns a context whose metadata requests reach a broker instead of
// being answered from the admin client's metadata cache (up to 5 s old,
// franz-go's MetadataMinAge), so that a topic created a moment ago is seen:
// asking for the authorized operations too, which the cache does not hold,
// does it.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

// TopicPartition is one partition of a Topic.
type TopicPartition struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	// Start and End are the first retained offset and the next to be written.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Topic is one topic of GET /api/topics.
type Topic struct {
	Name string `json:"name"`
	// Kind is core, plugin or dlq; "-" for a name that is not a bus topic.
	Kind              string `json:"kind"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replicationFactor"`
	// RetentionMs is retention.ms (-1: forever); CleanupPolicy cleanup.policy.
	RetentionMs   int64  `json:"retentionMs"`
	CleanupPolicy string `json:"cleanupPolicy"`
	// Events is the sum over partitions of End - Start: the events retained.
	Events int64 `json:"events"`
	// SizeBytes is the size of the leaders' logs, when the brokers report it.
	SizeBytes *int64           `json:"sizeBytes,omitempty"`
	Parts     []TopicPartition `json:"partitionDetails"`
}

// GET /api/topics[?internal=true] answers {"topics": [Topic]}, sorted by
// name; topics whose names start with "__" only with internal=true.
func (a *api) topicList(w http.ResponseWriter, r *http.Request, _ dlqhttp.Principal) error {
	internal := r.URL.Query().Get("internal") == "true"
	ctx := fresh(r.Context())
	details, err := a.Admin.ListTopics(ctx)
	if err != nil {
		return err
	}
	var names []string
	for name, d := range details {
		if d.Err != nil || (!internal && (strings.HasPrefix(name, "__") || d.IsInternal)) {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]Topic, 0, len(names))
	if len(names) == 0 {
		return httpjson.Write(w, http.StatusOK, map[string]any{"topics": out})
	}
	starts, err := a.Admin.ListStartOffsets(ctx, names...)
	if err != nil {
		return err
	}
	ends, err := a.Admin.ListEndOffsets(ctx, names...)
	if err != nil {
		return err
	}
	configs, err := a.Admin.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return err
	}
	sizes := map[string]int64{}
	logDirs, lerr := a.Admin.DescribeAllLogDirs(ctx, details.TopicsSet())
	if lerr != nil {
		a.Logger.Debug("consoleapi: the brokers did not describe their log dirs; topic sizes left out", "err", lerr)
	}
	if lerr == nil {
		logDirs.Each(func(dir kadm.DescribedLogDir) {
			dir.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if pd, ok := details[p.Topic].Partitions[p.Partition]; ok && pd.Leader == p.Broker {
					sizes[p.Topic] += p.Size
				}
			})
		})
	}
	for _, name := range names {
		d := details[name]
		t := Topic{Name: name, Kind: "-", Partitions: len(d.Partitions), ReplicationFactor: d.Partitions.NumReplicas(), RetentionMs: -1, Parts: []TopicPartition{}}
		if parsed, err := topic.Parse(name); err == nil {
			t.Kind = parsed.Kind.String()
		}
		for _, p := range d.Partitions.Sorted() {
			tp := TopicPartition{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas}
			if s, ok := starts.Lookup(name, p.Partition); ok && s.Err == nil {
				tp.Start = s.Offset
			}
			if e, ok := ends.Lookup(name, p.Partition); ok && e.Err == nil {
				tp.End = e.Offset
			}
			t.Events += tp.End - tp.Start
			t.Parts = append(t.Parts, tp)
		}
		if rc, err := configs.On(name, nil); err == nil {
			for _, c := range rc.Configs {
				if c.Value == nil {
					continue
				}
				switch c.Key {
				case "retention.ms":
					if n, err := strconv.ParseInt(*c.Value, 10, 64); err == nil {
						t.RetentionMs = n
					}
				case "cleanup.policy":
					t.CleanupPolicy = *c.Value
				}
			}
		}
		if size, ok := sizes[name]; ok {
			t.SizeBytes = &size
		}
		out = append(out, t)
	}
	return httpjson.Write(w, http.StatusOK, map[string]any{"topics": out})
}
