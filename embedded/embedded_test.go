package embedded_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest/testcerts"
)

// advertised returns the broker addresses the cluster's metadata names.
func advertised(t *testing.T, seed string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range meta.Brokers {
		out = append(out, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	return out
}

func TestAdvertisedHost(t *testing.T) {
	t.Parallel()
	b, err := embedded.Start(embedded.Config{Addr: "0.0.0.0:0", AdvertisedHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addrs()[0]
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatalf("Addrs() = %v, want the advertised host", b.Addrs())
	}
	if got := advertised(t, addr); len(got) != 1 || got[0] != addr {
		t.Fatalf("metadata advertises %v, want [%s]", got, addr)
	}
}

func TestAdvertisedHostDefaults(t *testing.T) {
	t.Parallel()
	local, err := embedded.Start(embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if host, _, _ := net.SplitHostPort(local.Addrs()[0]); host != "127.0.0.1" {
		t.Errorf("listening on 127.0.0.1, Addrs() = %v", local.Addrs())
	}

	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	all, err := embedded.Start(embedded.Config{Addr: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if host, _, _ := net.SplitHostPort(all.Addrs()[0]); host != name {
		t.Errorf("listening on every interface, Addrs() = %v, want host %q", all.Addrs(), name)
	}
}

func TestAdvertisedHostRejectsAPort(t *testing.T) {
	if b, err := embedded.Start(embedded.Config{AdvertisedHost: "bus.internal:9092"}); err == nil {
		b.Close()
		t.Fatal("AdvertisedHost with a port was accepted")
	}
}

// TestTLS checks that Config.TLS makes the listener speak TLS only.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "test CA")
	b, err := embedded.Start(embedded.Config{TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", "127.0.0.1").TLS}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ping := func(opts ...kgo.Opt) error {
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(b.Addrs()...))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := ping(kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()})); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	if err := ping(); err == nil {
		t.Fatal("a plaintext client reached a TLS listener")
	}
}
