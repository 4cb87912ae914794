package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

// TestPublishCompression: --compression picks the codec of what publish
// sends (none serves consumers without a Snappy codec, such as a plain
// KafkaJS); the default stays Snappy; an unknown codec is a usage error.
func TestPublishCompression(t *testing.T) {
	t.Parallel()
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	brokers := strings.Join(broker.Addrs(), ",")
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	for _, args := range [][]string{
		{"--compression", "none"},
		nil, // the default
	} {
		cmd := append([]string{"publish", topic, "--tenant", "acme", "--data", `{"n":1}`, "--brokers", brokers}, args...)
		if code, _, stderr := runCLI(context.Background(), cmd...); code != ExitOK {
			t.Fatalf("eventbus %s: exit %d\n%s", strings.Join(cmd, " "), code, stderr)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var codecs []uint8
	for len(codecs) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { codecs = append(codecs, r.Attrs.CompressionType()) })
	}
	// The two events may land on different partitions: compare as a set.
	got := map[uint8]bool{}
	for _, c := range codecs {
		got[c] = true
	}
	if len(codecs) != 2 || !got[0] || !got[2] {
		t.Fatalf("record codecs %v; want one uncompressed (0) and one Snappy (2)", codecs)
	}
	code, _, stderr := runCLI(context.Background(), "publish", topic, "--tenant", "acme", "--data", "{}", "--brokers", brokers, "--compression", "brotli")
	if code != ExitUsage || !strings.Contains(stderr, `--compression "brotli" is unknown`) {
		t.Fatalf("unknown codec: exit %d, stderr %q", code, stderr)
	}
}
