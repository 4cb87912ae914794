package embedded

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultCheckInterval is how often the embedded broker applies retention
// (retention.ms, retention.bytes) and Config.MaxBytes when
// Config.CheckInterval is zero.
const DefaultCheckInterval = time.Second

// capLowWater is the fraction of MaxBytes the janitor trims down to once
// the total is past MaxBytes, so that it does not trim on every check
// under a steady flow.
const capLowWater = 0.9

// janitor applies retention and the server-wide size cap of an embedded
// broker from its own goroutine, through kfake's admin API.
type janitor struct {
	cluster  *kfake.Cluster
	maxBytes int64
	// lister, when set, lists the broker's topics through a client of its
	// own; else the janitor learns them from produce requests.
	lister *kgo.Client

	mu     sync.Mutex
	names  map[string]struct{}   // topics records were produced to (or found in DataDir)
	ids    map[[16]byte]struct{} // topics produced to by ID (Produce v13+), resolved on the next check
	stop   chan struct{}
	done   chan struct{}
	ticker *time.Ticker
}

func newJanitor(c *kfake.Cluster, maxBytes int64, interval time.Duration, dataDir string, lister *kgo.Client) *janitor {
	j := &janitor{
		cluster:  c,
		maxBytes: maxBytes,
		lister:   lister,
		names:    make(map[string]struct{}),
		ids:      make(map[[16]byte]struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ticker:   time.NewTicker(interval),
	}
	if maxBytes > 0 && lister == nil {
		// kfake has no listing of topics of its own: learn them from what
		// is produced, and from the data directory for what a previous
		// run kept there.
		for _, t := range persistedTopics(dataDir) {
			j.names[t] = struct{}{}
		}
		c.ControlKey(int16(kmsg.Produce), j.observeProduce)
	}
	go j.run()
	return j
}

// observeProduce notes the topics of a produce request and lets the
// broker handle it as usual.
func (j *janitor) observeProduce(req kmsg.Request) (kmsg.Response, error, bool) {
	p, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return nil, nil, false
	}
	j.mu.Lock()
	for i := range p.Topics {
		if t := p.Topics[i].Topic; t != "" {
			j.names[t] = struct{}{}
		} else {
			j.ids[p.Topics[i].TopicID] = struct{}{}
		}
	}
	j.mu.Unlock()
	return nil, nil, false
}

// persistedTopics lists the topics that have partitions under dataDir
// (kfake keeps them in partitions/<url-escaped topic>-<partition>).
func persistedTopics(dataDir string) []string {
	if dataDir == "" {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "partitions"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if i <= 0 {
			continue
		}
		if _, err := strconv.Atoi(name[i+1:]); err != nil {
			continue
		}
		if t, err := url.PathUnescape(name[:i]); err == nil {
			out = append(out, t)
		}
	}
	return out
}

func (j *janitor) run() {
	defer close(j.done)
	defer j.ticker.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-j.ticker.C:
			j.check()
		}
	}
}

// check applies retention.ms and retention.bytes now (kfake on its own
// does so only every log.cleaner.backoff.ms, an hour by default), then
// the size cap.
func (j *janitor) check() {
	j.cluster.ApplyRetention()
	if j.maxBytes > 0 {
		j.enforceCap()
	}
}

// close stops the janitor and waits for a running check to end.
func (j *janitor) close() {
	close(j.stop)
	<-j.done
	if j.lister != nil {
		j.lister.Close()
	}
}

// listTopics adds the broker's topics, as its client lists them, to the
// known ones.
func (j *janitor) listTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A metadata request of its own each time: kadm's ListTopics answers
	// from the client's cache, which would miss new topics for seconds.
	req := kmsg.NewPtrMetadataRequest() // no Topics: all of them
	resp, err := req.RequestWith(ctx, j.lister)
	if err != nil {
		return // the next check tries again; the known topics stay
	}
	j.mu.Lock()
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == 0 {
			j.names[*t.Topic] = struct{}{}
		}
	}
	j.mu.Unlock()
}

// partSize is one partition the cap may trim.
type partSize struct {
	topic     string
	partition int32
	bytes     int64
	start, hw int64
}

// cappedPartitions lists the partitions of the known topics that the cap
// may trim: every topic but those compacted without deletion
// (cleanup.policy=compact), which keep what compaction keeps.
func (j *janitor) cappedPartitions() []partSize {
	if j.lister != nil {
		j.listTopics()
	}
	j.mu.Lock()
	for id := range j.ids {
		if ti := j.cluster.TopicIDInfo(id); ti != nil {
			j.names[ti.Topic] = struct{}{}
		}
		delete(j.ids, id)
	}
	names := make([]string, 0, len(j.names))
	for t := range j.names {
		names = append(names, t)
	}
	j.mu.Unlock()

	var parts []partSize
	for _, t := range names {
		ti := j.cluster.TopicInfo(t)
		if ti == nil { // deleted
			j.mu.Lock()
			delete(j.names, t)
			j.mu.Unlock()
			continue
		}
		if compactOnly(ti.Configs["cleanup.policy"]) {
			continue
		}
		for _, pi := range j.cluster.PartitionInfos(t) {
			parts = append(parts, partSize{topic: t, partition: pi.Partition, bytes: pi.NumBytes, start: pi.LogStartOffset, hw: pi.HighWatermark})
		}
	}
	return parts
}

// compactOnly reports whether a cleanup.policy keeps records by compaction
// alone (no "delete").
func compactOnly(policy *string) bool {
	if policy == nil {
		return false
	}
	p := *policy
	return strings.Contains(p, "compact") && !strings.Contains(p, "delete")
}

// enforceCap trims the largest partitions, oldest records first, until
// what they hold together is back under capLowWater × maxBytes.
func (j *janitor) enforceCap() {
	parts := j.cappedPartitions()
	var total int64
	for _, p := range parts {
		total += p.bytes
	}
	if total <= j.maxBytes {
		return
	}
	level := waterLevel(parts, int64(float64(j.maxBytes)*capLowWater))
	for _, p := range parts {
		if p.bytes <= level || p.hw <= p.start {
			continue
		}
		perRecord := float64(p.bytes) / float64(p.hw-p.start)
		drop := int64((float64(p.bytes-level) + perRecord - 1) / perRecord)
		to := min(p.start+max(drop, 1), p.hw)
		// An error means the partition went away or moved meanwhile:
		// the next check sees it as it is then.
		_ = j.cluster.DeleteRecords(p.topic, p.partition, to)
	}
}

// waterLevel returns the largest size L such that the partitions, each
// cut down to at most L bytes, hold at most target bytes together: cutting
// to L takes from the largest partitions first.
func waterLevel(parts []partSize, target int64) int64 {
	sizes := make([]int64, len(parts))
	for i, p := range parts {
		sizes[i] = p.bytes
	}
	slices.Sort(sizes)
	lo, hi := int64(0), sizes[len(sizes)-1]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		var sum int64
		for _, s := range sizes {
			sum += min(s, mid)
		}
		if sum <= target {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
