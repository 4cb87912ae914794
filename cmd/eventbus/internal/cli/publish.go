package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/topic"
	"github.com/plexica/eventbus/wire"
)

// reservedHeaders are the record headers the bus writes itself (and the
// retry headers that route a retry to one group): --header may not set them.
var reservedHeaders = []string{
	wire.HeaderEventID, wire.HeaderEventType, wire.HeaderTenantID, wire.HeaderWorkspaceID, wire.HeaderCorrelationID, wire.HeaderTimestamp,
	wire.HeaderDLQID, wire.HeaderRetryGroup, wire.HeaderRetryAttempt,
}

// publishRequest is what `eventbus publish` sends, resolved from its
// arguments, flags and input.
type publishRequest struct {
	EventType string
	Data      json.RawMessage
	Meta      eventbus.PublishMetadata
	Key       string
	Headers   [][2]string
	// Compression is the --compression codec.
	Compression eventbus.Compression
}

func (a *app) publishCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish EVENT_TYPE [-]",
		Short: "Publish one event and print its ID",
		Long: `Publish one event of type EVENT_TYPE (which is also its topic) for a tenant,
and print its ID once the broker acknowledged it.

The data is JSON: --data '{...}', --file data.json, or "-" (or --file -) to
read standard input. Without any, the data is {}. Data of a core event from the
catalog (core.user.created, ...) is checked against its Go type; a mismatch is
reported as a warning and the event is still published.

Topic names follow the bus's rules: core.<domain>.<action> or
plugin.<pluginId>.<entity>.<action>, lowercase, past-tense actions.`,
		Example: `  eventbus publish core.user.created --tenant acme --data '{"userId":"u-1","email":"ada@acme.test","role":"member"}'
  echo '{"dealId":"d-1","stage":"won","amount":1200}' | eventbus publish plugin.crm.deal.updated --tenant acme -
  eventbus publish core.user.login --tenant acme --workspace sales --file login.json --header trace=abc`,
		Args: argsUsage(1, 2, "an event type (and optionally - to read the data from standard input)",
			`eventbus publish core.user.created --tenant acme --data '{"userId":"u-1"}'`),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := a.resolvePublish(cmd, args)
			if err != nil {
				return err
			}
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			return a.publish(cmd.Context(), bs, req)
		},
	}
	f := cmd.Flags()
	f.String("tenant", "", "tenant the event belongs to (required)")
	f.String("workspace", "", "workspace of the tenant the event belongs to")
	f.String("data", "", `the event's data as JSON, e.g. '{"userId":"u-1"}'`)
	f.String("file", "", `read the data from this JSON file ("-": standard input)`)
	f.String("key", "", "partition key (default: the tenant ID, which keeps each tenant's events in order)")
	f.StringArray("header", nil, "extra record header key=value (repeatable)")
	f.String("source", "", `metadata source: who publishes (default "core")`)
	f.String("user", "", "metadata user ID: the acting user")
	f.String("correlation-id", "", "metadata correlation ID (default: a new UUID)")
	addBrokerFlags(cmd)
	addCompressionFlag(cmd)
	return cmd
}

// resolvePublish checks everything publish can check without a broker: the
// event type, the tenant, the headers and the data.
func (a *app) resolvePublish(cmd *cobra.Command, args []string) (publishRequest, error) {
	f := cmd.Flags()
	req := publishRequest{EventType: args[0]}
	req.Meta.TenantID, _ = f.GetString("tenant")
	req.Meta.WorkspaceID, _ = f.GetString("workspace")
	req.Meta.Source, _ = f.GetString("source")
	req.Meta.UserID, _ = f.GetString("user")
	req.Meta.CorrelationID, _ = f.GetString("correlation-id")
	req.Key, _ = f.GetString("key")
	var err error
	if req.Compression, err = a.resolveCompression(cmd); err != nil {
		return req, err
	}

	if err := checkEventType(req.EventType); err != nil {
		return req, err
	}
	if strings.TrimSpace(req.Meta.TenantID) == "" {
		return req, usageErrorf("--tenant is required: every event belongs to a tenant (e.g. --tenant acme)")
	}
	headers, _ := f.GetStringArray("header")
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return req, usageErrorf("--header %q is not key=value (e.g. --header trace=abc123)", h)
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(k, r) {
				return req, usageErrorf("--header %s: the bus sets that header itself; pick another name (use --tenant, --workspace or --correlation-id for those)", k)
			}
		}
		req.Headers = append(req.Headers, [2]string{k, v})
	}

	data, from, err := readData(cmd, args)
	if err != nil {
		return req, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return req, usageErrorf("%s is empty; give JSON, e.g. --data '{\"userId\":\"u-1\"}' (leave the data out for {})", from)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		var v any
		if uerr := json.Unmarshal(data, &v); uerr != nil {
			err = uerr // its syntax errors say where
		}
		return req, usageErrorf("%s is not valid JSON: %s; quote keys and strings, e.g. --data '{\"userId\":\"u-1\"}'", from, jsonErrorDetail(data, err))
	}
	req.Data = compact.Bytes()
	if typed, ok := catalog.NewData(req.EventType); ok {
		if err := json.Unmarshal(req.Data, typed); err != nil {
			fmt.Fprintf(a.stderr, "eventbus: warning: the data does not match the catalog's type for %s (%v); typed consumers will fail on it; publishing anyway\n", req.EventType, err)
		}
	}
	return req, nil
}

// checkEventType checks that name is a core or plugin topic, as a usage
// error that names the rule and shows a valid name.
func checkEventType(name string) error {
	t, err := topic.Parse(name)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if t.Kind == topic.KindDLQ {
		return usageErrorf("%q is a dead-letter topic, which the bus writes itself; publish %q, or use `eventbus dlq retry` to retry a failed event", name, t.Original.Name)
	}
	return nil
}

// readData returns the data given by --data, --file or "-", and how to name
// its origin in an error.
func readData(cmd *cobra.Command, args []string) ([]byte, string, error) {
	f := cmd.Flags()
	data, _ := f.GetString("data")
	file, _ := f.GetString("file")
	stdinArg := len(args) == 2
	if stdinArg && args[1] != "-" {
		return nil, "", usageErrorf("unexpected argument %q: give the data with --data '{...}', --file FILE, or - for standard input", args[1])
	}
	given := 0
	for _, b := range []bool{f.Changed("data"), f.Changed("file"), stdinArg} {
		if b {
			given++
		}
	}
	if given > 1 {
		return nil, "", usageErrorf("give the data one way only: --data, --file or - (standard input)")
	}
	switch {
	case f.Changed("data"):
		return []byte(data), "--data", nil
	case stdinArg || file == "-":
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, "", fmt.Errorf("read the data from standard input: %w", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, "", usageErrorf("standard input was empty; pipe the data in as JSON, e.g. echo '{\"userId\":\"u-1\"}' | eventbus publish ... -")
		}
		return b, "the data on standard input", nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", usageErrorf("--file: %v", err)
		}
		return b, "--file " + file, nil
	}
	return []byte("{}"), "the data", nil
}

// jsonErrorDetail describes a JSON syntax error with its position.
func jsonErrorDetail(data []byte, err error) string {
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return err.Error()
	}
	if strings.Contains(syn.Error(), "unexpected end") {
		return "it ends too early (a missing }, ] or \"?)"
	}
	if bytes.Contains(data, []byte("\n")) {
		line := 1 + bytes.Count(data[:syn.Offset], []byte("\n"))
		return fmt.Sprintf("%v (line %d)", err, line)
	}
	return fmt.Sprintf("%v (at character %d)", err, syn.Offset)
}

// publish connects, publishes req and prints the event's ID.
func (a *app) publish(ctx context.Context, bs brokerSettings, req publishRequest) error {
	client, err := a.connect(ctx, bs, "eventbus-publish")
	if err != nil {
		return err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Logger: a.libLog, Compression: req.Compression})
	if err != nil {
		client.Close()
		return err
	}
	defer a.stopBus(ctx, bus, client)
	var opts []eventbus.PublishOption
	if req.Key != "" {
		opts = append(opts, eventbus.WithPartitionKey(req.Key))
	}
	for _, h := range req.Headers {
		opts = append(opts, eventbus.WithHeader(h[0], h[1]))
	}
	id, err := bus.Publish(ctx, req.EventType, req.Data, req.Meta, opts...)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return errInterrupted
		case errors.Is(err, eventbus.ErrInvalidTopic), errors.Is(err, eventbus.ErrTenantRequired),
			errors.Is(err, eventbus.ErrInvalidEvent), errors.Is(err, eventbus.ErrEventTooLarge):
			return &usageError{err: err}
		}
		return fmt.Errorf("publish %s: %w", req.EventType, err)
	}
	fmt.Fprintln(a.stdout, id)
	return nil
}
