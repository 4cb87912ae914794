package eventbustest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// RawClient returns a franz-go client of brokers logged in with
// SCRAM-SHA-256 as user, with none of the bus's checks: what a plugin that
// bypasses the bus can do, to test what the brokers' ACLs allow. A write
// gives up after 3 s and two retries, so that a refusal is answered fast.
// opts are added to the client's options; it is closed when the test ends.
func RawClient(t testing.TB, brokers []string, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	auth := scram.Auth{User: user, Pass: password}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.SASL(auth.AsSha256Mechanism()),
		kgo.RecordDeliveryTimeout(3 * time.Second),
		kgo.RecordRetries(2),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ProduceRaw writes one record, {"raw":true}, to topic through cl and
// returns the brokers' answer (an ACL refusal is a kerr error), within
// WaitTimeout.
func ProduceRaw(t testing.TB, cl *kgo.Client, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{"raw":true}`)}).FirstErr()
}
