package gateway_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/gateway"
)

// TestPublishAnswersAfterTheBrokerAcknowledged holds the broker's first
// produce request of an HTTP publish: the gateway writes its answer only
// after the request was released. It holds requests with the embedded
// broker's control functions, so it runs on an embedded broker of its own.
func TestPublishAnswersAfterTheBrokerAcknowledged(t *testing.T) {
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{}, broker.Addrs()...)
	gw, err := gateway.New(gateway.Config{Bus: bus, AdminTokens: []string{adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	var released, answeredEarly atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw.ServeHTTP(&watchWriter{ResponseWriter: w, onWrite: func() {
			if !released.Load() {
				answeredEarly.Store(true)
			}
		}}, r)
	}))
	defer srv.Close()
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	eventbustest.MustPublish(t, bus, topic, map[string]int{"n": 0}, eventbus.PublishMetadata{TenantID: "acme"}) // the topic exists

	held, release := holdFirstProduce(t, broker.Cluster())
	answer := make(chan string, 1)
	go func() {
		status, body := send(t, srv, http.MethodPost, "/api/events", adminToken, fmt.Sprintf(`{"type":%q,"tenantId":"acme","data":{"n":1}}`, topic))
		answer <- fmt.Sprintf("%d %s", status, body)
	}()
	<-held
	released.Store(true)
	release()
	if got := <-answer; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("answer %s", got)
	}
	if answeredEarly.Load() {
		t.Fatal("the gateway answered before the broker acknowledged the event")
	}
}

// holdFirstProduce holds the first produce request the broker receives
// until release; held is closed when it arrived.
func holdFirstProduce(t *testing.T, c *kfake.Cluster) (held <-chan struct{}, release func()) {
	heldC, releaseC := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(releaseC) })
	var first atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if first.CompareAndSwap(false, true) {
			close(heldC)
			c.SleepControl(func() { <-releaseC })
		}
		c.DropControl()
		return nil, nil, false
	})
	t.Cleanup(release)
	return heldC, release
}

// watchWriter calls onWrite before an answer's status is written.
type watchWriter struct {
	http.ResponseWriter
	onWrite func()
	once    sync.Once
}

func (w *watchWriter) WriteHeader(status int) {
	w.once.Do(w.onWrite)
	w.ResponseWriter.WriteHeader(status)
}

func (w *watchWriter) Write(b []byte) (int, error) {
	w.once.Do(w.onWrite)
	return w.ResponseWriter.Write(b)
}
