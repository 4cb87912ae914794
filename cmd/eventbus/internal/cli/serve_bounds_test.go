package cli

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
)

// TestServeMaxBytesAndInstanceID checks how serve reads
// --broker-max-bytes and --instance-id, from flags and from the
// environment.
func TestServeMaxBytesAndInstanceID(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		maxBytes int64
		instance string
	}{
		{"defaults", nil, nil, 512 << 20, ""},
		{"env", map[string]string{EnvBrokerMaxBytes: "64MiB", EnvInstanceID: "eventbus-7f9c-0"}, nil, 64 << 20, "eventbus-7f9c-0"},
		{"flags win over env", map[string]string{EnvBrokerMaxBytes: "64MiB", EnvInstanceID: "pod-a"}, []string{"--broker-max-bytes", "2GB", "--instance-id", "pod-b"}, 2e9, "pod-b"},
		{"no cap", nil, []string{"--broker-max-bytes", "0"}, 0, ""},
		{"plain bytes", map[string]string{EnvBrokerMaxBytes: "1048576"}, nil, 1 << 20, ""},
		{"instance ID with --brokers", map[string]string{EnvInstanceID: "pod-c"}, []string{"--brokers", "k1:9092"}, 512 << 20, "pod-c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveServe(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got.BrokerMaxBytes != tt.maxBytes || got.InstanceID != tt.instance {
				t.Fatalf("BrokerMaxBytes %d, InstanceID %q; want %d, %q", got.BrokerMaxBytes, got.InstanceID, tt.maxBytes, tt.instance)
			}
		})
	}
	for _, bad := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--broker-max-bytes", "lots"}, "is not a size"},
		{map[string]string{EnvBrokerMaxBytes: "-1"}, nil, "is not a size"},
		{nil, []string{"--brokers", "k1:9092", "--broker-max-bytes", "1GiB"}, "--broker-max-bytes configures the embedded broker"},
	} {
		if _, err := resolveServe(t, bad.env, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("env %v args %v: error %v, want %q", bad.env, bad.args, err, bad.want)
		}
	}
}

// TestServeUsesInstanceID checks that the bus serve runs joins its groups
// as a static member with the instance ID it was given.
func TestServeUsesInstanceID(t *testing.T) {
	cfg, err := resolveServe(t, map[string]string{EnvInstanceID: "eventbus-0", EnvBrokerMaxBytes: "8MiB"},
		"--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newServer(cfg, log, log)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close(context.Background()) }()
	if _, err := eventbus.Subscribe(ctx, s.bus, "core.invoice.paid", func(context.Context, eventbus.RawEvent) error { return nil }, eventbus.InGroup("billing")); err != nil {
		t.Fatal(err)
	}
	for {
		g := s.broker.Cluster().GroupInfo("billing")
		if g != nil && len(g.Members) == 1 {
			if id := g.Members[0].InstanceID; id == nil || *id != "eventbus-0" {
				t.Fatalf("the group's member has instance ID %v, want eventbus-0", id)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the subscription's group has no member within %s: %+v", waitTimeout, g)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeBrokerMaxBytes floods serve's embedded broker past
// --broker-max-bytes: within a few checks it retains less than the cap.
func TestServeBrokerMaxBytes(t *testing.T) {
	const maxBytes = 1 << 20
	cfg, err := resolveServe(t, nil, "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--in-memory", "--broker-max-bytes", "1MiB")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newServer(cfg, log, log)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close(context.Background()) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 1000)
	for range 8 {
		recs := make([]*kgo.Record, 1000)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: "flood", Value: value}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	for {
		dirs, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		dirs.Each(func(d kadm.DescribedLogDir) { total += d.Size() })
		if total <= maxBytes {
			t.Logf("8 MB produced, %d bytes retained under a %d-byte cap", total, maxBytes)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("serve's broker retains %d bytes, cap %d", total, maxBytes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
