package eventbus_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/eventbustest/testcerts"
)

// TestConnectSecurity connects to a broker that requires SCRAM and TLS:
// with the right settings, then with a wrong password, a CA that did not
// sign the broker's certificate, and neither TLS nor SASL. The failures
// come at once, as a *ConnectError naming the broker, without franz-go's
// complaints in the logs.
func TestConnectSecurity(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "test CA")
	b := eventbustest.StartEmbedded(t, embedded.Config{
		Superuser: &embedded.User{Mechanism: eventbus.SASLScramSHA512, Name: "svc", Password: "right"},
		TLS:       &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", "127.0.0.1").TLS}},
	})
	addr := b.Addrs()[0]
	good := &eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA512, Username: "svc", Password: "right"}
	connect := func(sasl *eventbus.SASLConfig, tlsCfg *tls.Config) (c *eventbus.Client, logs string, err error) {
		t.Helper()
		var buf bytes.Buffer
		c, err = eventbus.NewClient(eventbus.ClientConfig{
			Brokers: b.Addrs(), SASL: sasl, TLS: tlsCfg, ConnectTimeout: 20 * time.Second,
			Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		start := time.Now()
		err = c.Connect(context.Background())
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("Connect took %s: a failure retrying cannot fix must come at once", d)
		}
		return c, buf.String(), err
	}

	c, _, err := connect(good, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	// A raw franz-go client built from KafkaOpts reaches the cluster too.
	raw, err := kgo.NewClient(c.KafkaOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Ping(context.Background()); err != nil {
		t.Fatalf("raw client from KafkaOpts: %v", err)
	}

	for _, tc := range []struct {
		name   string
		sasl   *eventbus.SASLConfig
		tls    *tls.Config
		reason error
	}{
		{"wrong password", &eventbus.SASLConfig{Mechanism: eventbus.SASLScramSHA512, Username: "svc", Password: "wrong"}, &tls.Config{RootCAs: ca.Pool()}, eventbus.ErrAuthenticationFailed},
		{"wrong CA", good, &tls.Config{RootCAs: testcerts.NewCA(t, "other").Pool()}, eventbus.ErrTLSHandshake},
		{"plaintext", nil, nil, eventbus.ErrBrokerUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, logs, err := connect(tc.sasl, tc.tls)
			ce, ok := errors.AsType[*eventbus.ConnectError](err)
			if !ok || !errors.Is(err, tc.reason) || ce.Broker != addr {
				t.Fatalf("got %v (%T), want a *ConnectError for %s wrapping %v", err, err, addr, tc.reason)
			}
			if tc.reason == eventbus.ErrTLSHandshake {
				if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok {
					t.Fatalf("%v does not wrap x509.UnknownAuthorityError", err)
				}
			}
			if logs != "" {
				t.Fatalf("Connect logged while trying; its error says it all:\n%s", logs)
			}
		})
	}
}
