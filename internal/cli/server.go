package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
)

// server is what `eventbus serve` runs: the brokers (an embedded one, or a
// connection to a cluster), a client and a bus on them.
//
// It is built in three steps so that the service side can grow here: Start
// brings up everything that must work before the process reports ready
// (later: the DLQ view rebuilt from the dlq.* topics), Run serves until the
// context ends (later: the HTTP listener with the DLQ REST API and /metrics,
// and the DLQ retry worker, each a goroutine whose error ends Run), and Close
// stops them in reverse order.
type server struct {
	cfg    serveConfig
	log    *slog.Logger // the server's own messages
	libLog *slog.Logger // the broker's, client's and bus's

	broker *embedded.Broker // nil with an external cluster
	client *eventbus.Client
	bus    *eventbus.Bus
}

func newServer(cfg serveConfig, log, libLog *slog.Logger) *server {
	return &server{cfg: cfg, log: log, libLog: libLog}
}

// Start starts the embedded broker (unless brokers were given), connects a
// client and builds the bus. On error, call Close to release what started.
func (s *server) Start(ctx context.Context) error {
	brokers := s.cfg.Brokers
	if s.cfg.embedded() {
		if err := s.startEmbedded(); err != nil {
			return err
		}
		brokers = s.broker.Addrs()
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{
		Brokers:        brokers,
		ClientID:       "eventbus-serve",
		Logger:         s.libLog,
		ConnectTimeout: s.cfg.ConnectTimeout,
	})
	if err != nil {
		return err
	}
	s.client = client
	if err := client.Connect(ctx); err != nil {
		return s.connectError(ctx, err)
	}
	s.bus, err = eventbus.NewBus(client, eventbus.Config{Logger: s.libLog})
	return err
}

func (s *server) startEmbedded() error {
	b, err := embedded.Start(embedded.Config{Addr: s.cfg.BrokerAddr, DataDir: s.cfg.DataDir, Logger: s.libLog})
	if errors.Is(err, embedded.ErrAddrInUse) {
		return fmt.Errorf("cannot listen on %s: the address is in use (another eventbus or Kafka broker?); stop it, pick another address with --broker-addr (port 0 picks a free one), or use it with --brokers %s",
			s.cfg.BrokerAddr, s.cfg.BrokerAddr)
	}
	if err != nil {
		return err
	}
	s.broker = b
	return nil
}

// connectError turns a failed Connect into one line saying what to do.
func (s *server) connectError(ctx context.Context, err error) error {
	if ctx.Err() != nil || !errors.Is(err, eventbus.ErrBrokerUnavailable) {
		return err
	}
	if s.cfg.embedded() {
		return fmt.Errorf("the embedded broker on %s did not answer within %s; try again, or run with --log-level debug to see why",
			strings.Join(s.broker.Addrs(), ","), s.cfg.ConnectTimeout)
	}
	return fmt.Errorf("no broker answered at %s within %s: check the addresses and that the brokers run (or raise --connect-timeout), or drop --brokers to start an embedded broker",
		strings.Join(s.cfg.Brokers, ","), s.cfg.ConnectTimeout)
}

// Brokers returns the addresses clients connect to.
func (s *server) Brokers() []string {
	if s.broker != nil {
		return s.broker.Addrs()
	}
	return s.cfg.Brokers
}

// PrintBanner writes how to connect, ending with the line scripts parse.
func (s *server) PrintBanner(w io.Writer) {
	brokers := strings.Join(s.Brokers(), ",")
	switch {
	case s.broker == nil:
		fmt.Fprintf(w, "eventbus: connected to brokers %s\n", brokers)
	case s.cfg.DataDir == "":
		fmt.Fprintf(w, "eventbus: embedded broker listening on %s (in memory: data is lost at exit)\n", brokers)
	default:
		fmt.Fprintf(w, "eventbus: embedded broker listening on %s (data in %s)\n", brokers, s.cfg.DataDir)
	}
	fmt.Fprintf(w, "connect with: brokers=%s\n", brokers)
	fmt.Fprintf(w, "%s%s\n", BrokersLinePrefix, brokers)
}

// Run serves until ctx ends. It returns nil on a normal stop.
func (s *server) Run(ctx context.Context) error {
	s.log.Info("eventbus: ready; stop with Ctrl-C or SIGTERM")
	<-ctx.Done()
	return nil
}

// Close stops the bus (bounded by ctx), then closes the client and the
// embedded broker. It is safe after a failed Start.
func (s *server) Close(ctx context.Context) error {
	var err error
	if s.bus != nil {
		if e := s.bus.Shutdown(ctx); e != nil {
			err = fmt.Errorf("shut down the bus: %w", e)
		}
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	return err
}
