package embedded_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest/testcerts"
)

// retained sums what the broker reports holding per topic through
// DescribeLogDirs.
func retained(t *testing.T, adm *kadm.Client) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64)
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			out[p.Topic] += p.Size
		})
	})
	return out
}

func sum(m map[string]int64, skip string) int64 {
	var n int64
	for t, b := range m {
		if t != skip {
			n += b
		}
	}
	return n
}

// produce writes n records of size bytes to topic, keys k0..kn-1 (mod keys).
func produce(t *testing.T, cl *kgo.Client, topic string, n, size, keys int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%keys), Value: bytes.Repeat([]byte{'x'}, size)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func clients(t *testing.T, b *embedded.Broker) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// TestMaxBytesFlood floods the broker past a small cap: after every round
// what it retains is back under the cap, the oldest records of the large
// topic are gone (its start offsets moved and nothing below them can be
// read), the small topic keeps more of its records, and a compacted topic
// keeps everything compaction keeps.
func TestMaxBytesFlood(t *testing.T) {
	t.Parallel()
	const maxBytes = 1 << 20
	b, err := embedded.Start(embedded.Config{MaxBytes: maxBytes, CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, adm := clients(t, b)
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "state"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, "flood", "trickle"); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, "state", 100, 1000, 100) // 100 keys, all kept by compaction

	var peak int64
	for round := range 40 { // 40 × 300 KiB = 12 MiB into a 1 MiB cap
		produce(t, cl, "flood", 280, 1000, 1<<30)
		produce(t, cl, "trickle", 20, 1000, 1<<30)
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := retained(t, adm)
			total := sum(r, "state")
			peak = max(peak, total)
			if total <= maxBytes {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the broker retains %d bytes (per topic %v), cap %d", round, total, r, maxBytes)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	r := retained(t, adm)
	t.Logf("produced %d bytes of records; retained after the flood: %d (per topic %v), highest seen right after a round: %d, cap %d",
		40*300*1000, sum(r, "state"), r, peak, maxBytes)
	if r["state"] < 100*1000 {
		t.Errorf("the compacted topic holds %d bytes, less than its 100 records of 1,000 bytes", r["state"])
	}

	starts, err := adm.ListStartOffsets(ctx, "flood", "trickle", "state")
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Topic == "state" && o.Offset != 0 {
			t.Errorf("the compacted topic was trimmed: partition %d starts at %d", o.Partition, o.Offset)
		}
		if o.Topic == "flood" && o.Offset == 0 {
			t.Errorf("flood partition %d still starts at 0", o.Partition)
		}
	})
	// Reading flood from offset 0 starts at the new start: the records
	// below it are gone.
	rd, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"flood": {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := rd.PollRecords(fctx, 1)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	start, _ := starts.Lookup("flood", 0)
	if recs := fs.Records(); len(recs) == 0 || recs[0].Offset != start.Offset {
		t.Fatalf("fetching flood/0 from 0 gave %v, want the first record at the start offset %d", recs, start.Offset)
	}
}

// TestRetentionBytes checks that a topic's retention.bytes is applied per
// partition within a check interval, as Kafka applies it (kfake alone
// applies it once an hour).
func TestRetentionBytes(t *testing.T) {
	t.Parallel()
	b, err := embedded.Start(embedded.Config{CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, adm := clients(t, b)
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.bytes": kadm.StringPtr("20000")}, "bounded"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		produce(t, cl, "bounded", 50, 1000, 1<<30)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		over := false
		for _, pi := range b.Cluster().PartitionInfos("bounded") {
			if pi.NumBytes > 20000 {
				over = true
			}
		}
		if !over {
			break
		}
		if time.Now().After(deadline) {
			for _, pi := range b.Cluster().PartitionInfos("bounded") {
				t.Errorf("partition %d holds %d bytes, retention.bytes 20000 (start %d)", pi.Partition, pi.NumBytes, pi.LogStartOffset)
			}
			t.FailNow()
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, pi := range b.Cluster().PartitionInfos("bounded") {
		if pi.LogStartOffset == 0 {
			t.Errorf("partition %d starts at 0 after 1 MB into 20 KB", pi.Partition)
		}
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMaxBytesOnDisk checks that the cap bounds the data directory too:
// trimmed segments are deleted; at most the segment being written (a 64th
// of the cap, at least 1 MiB) per partition stays on top of the cap.
func TestMaxBytesOnDisk(t *testing.T) {
	t.Parallel()
	const maxBytes = 2 << 20
	dir := t.TempDir()
	b, err := embedded.Start(embedded.Config{MaxBytes: maxBytes, CheckInterval: 20 * time.Millisecond, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, adm := clients(t, b)
	if _, err := adm.CreateTopics(context.Background(), 3, 1, nil, "flood"); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		produce(t, cl, "flood", 300, 1000, 1<<30)
	}
	limit := int64(maxBytes + 3*(1<<20) + 1<<20) // cap, one open segment per partition, indexes and metadata
	deadline := time.Now().Add(5 * time.Second)
	for dirBytes(t, dir) > limit {
		if time.Now().After(deadline) {
			t.Fatalf("the data directory holds %d bytes after 12 MB into a %d-byte cap; want at most %d", dirBytes(t, dir), maxBytes, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("data directory after 12 MB into a %d-byte cap: %d bytes", maxBytes, dirBytes(t, dir))
}

// TestMaxBytesSASLAndTLS floods a broker with SASL and ACLs (the janitor
// lists topics as the superuser) and one with TLS (the janitor learns the
// topics from produce requests) past the cap.
func TestMaxBytesSASLAndTLS(t *testing.T) {
	t.Parallel()
	const maxBytes = 1 << 20
	ca := testcerts.NewCA(t, "test CA")
	su := &embedded.User{Mechanism: "SCRAM-SHA-256", Name: "admin", Password: "admin-secret"}
	for _, tc := range []struct {
		name   string
		cfg    embedded.Config
		client []kgo.Opt
	}{
		{"sasl", embedded.Config{Superuser: su, EnableACLs: true},
			[]kgo.Opt{kgo.SASL(scram.Auth{User: su.Name, Pass: su.Password}.AsSha256Mechanism())}},
		{"tls", embedded.Config{TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", "127.0.0.1").TLS}}},
			[]kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.MaxBytes, tc.cfg.CheckInterval = maxBytes, 20*time.Millisecond
			b, err := embedded.Start(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cl, err := kgo.NewClient(append(tc.client, kgo.SeedBrokers(b.Addrs()...), kgo.ProducerBatchCompression(kgo.NoCompression()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			if _, err := adm.CreateTopics(context.Background(), 3, 1, nil, "flood"); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			for range 10 {
				produce(t, cl, "flood", 300, 1000, 1<<30)
			}
			produced := time.Since(began)
			deadline := time.Now().Add(5 * time.Second)
			for {
				total := sum(retained(t, adm), "")
				if total <= maxBytes {
					t.Logf("3 MB produced in %s; %d bytes retained %s later", produced.Round(time.Millisecond), total, (time.Since(began) - produced).Round(time.Millisecond))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the broker retains %d bytes after 3 MB into a %d-byte cap", total, maxBytes)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
