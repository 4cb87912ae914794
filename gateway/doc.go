// Package gateway is the bus's HTTP gateway, for services without a Kafka
// client: publishing over HTTP with the library's guarantees, and push
// subscriptions that deliver events to HTTP endpoints on the library's
// consumer engine. `eventbus serve` mounts it; any service holding a
// *eventbus.Bus can too:
//
//	gw, err := gateway.New(gateway.Config{Bus: bus, AdminTokens: []string{token}})
//	...
//	mux.Handle("/api/events", gw)
//	mux.Handle("/api/events/", gw)
//	mux.Handle("/api/subscriptions", gw)
//	err = gw.Subscribe(ctx, gateway.Subscription{
//		Name: "crm-users", Events: []string{"core.user.created"},
//		Endpoint: "http://crm:3000/events",
//	})
//
// # Publishing
//
//	POST /api/events        one event:   200 {"id":"..."}
//	POST /api/events/batch  ≤ 100 events: 200 {"results":[{"id":"..."},...]}
//
// Each answers once the brokers acknowledged every event, exactly as
// eventbus.Bus.Publish and eventbus.Bus.PublishBatch return: what is
// written to Kafka (key, value, headers) is byte for byte what the Go
// library writes for the same event, so Go and TypeScript consumers read
// it unchanged. A batch is validated whole before anything is sent.
//
// A body is one of:
//
//   - the bus's JSON envelope (Content-Type application/json):
//     {"type","tenantId","workspaceId"?,"id"?,"timestamp"?,"data",
//     "metadata"?:{"source","userId","correlationId","causationId",
//     "version"},"partitionKey"?}. Omitted fields get the library's
//     defaults (a new UUIDv7 id, now, source "core", ...); unknown fields
//     are refused.
//   - a CloudEvent in binary mode: Content-Type application/json, the
//     attributes in ce-* headers, the data as the body.
//   - a CloudEvent in structured mode (application/cloudevents+json), or
//     for a batch a JSON array of them
//     (application/cloudevents-batch+json; a batch may also be an array
//     of envelopes as application/json).
//
// CloudEvents map onto the event as: id → id, type → type (the topic),
// source → metadata.source, time → timestamp, and the extensions
// tenantid, workspaceid, partitionkey (the record key), userid,
// correlationid, causationid and eventversion → the fields of the same
// name. Event data must be JSON (no data_base64). A traceparent header
// (W3C trace context) continues the caller's trace into the event's
// headers.
//
// # Errors
//
// Every error answer is JSON naming the sentinel error a Go caller would
// test with errors.Is, and how to fix the request:
//
//	{"error":"invalid topic: ...","sentinel":"ErrInvalidTopic","fix":"name the event core.<domain>.<action> ..."}
//
// 400 for bad input (ErrInvalidTopic, ErrTenantRequired,
// ErrInvalidTenantID, ErrInvalidWorkspaceID, ErrInvalidEvent,
// ErrBadRequest), 401 ErrUnauthorized, 403 ErrForbidden, 413
// ErrEventTooLarge, ErrBatchTooLarge and ErrBodyTooLarge, 415
// ErrUnsupportedMediaType, 503 with Retry-After for ErrBrokerUnavailable,
// ErrCircuitOpen and ErrShuttingDown, 504 when the request's deadline
// ended first. Bad input publishes nothing. A batch whose events the
// brokers did not all acknowledge answers with the first failure's status
// and every event's outcome in "results".
//
// # Push subscriptions
//
// A Subscription (declared in the JSON file `eventbus serve
// --subscriptions` reads, or with Gateway.Subscribe) joins its own
// consumer group ("gateway.<name>") and POSTs each event to its endpoint
// with the library's delivery: per-key order, concurrency across keys up
// to MaxConcurrency, back-pressure, bounded shutdown. Two gateway
// processes with the same subscription share its events as members of
// the group. The request is a CloudEvent in binary mode: the ce-*
// headers above, traceparent, and as body the whole event (the bus's
// envelope; Body "data" sends the data alone). The answer steers the
// event:
//
//   - 2xx: done.
//   - 429 or 503: tried again in place after Retry-After (or a backoff
//     from DefaultRetryBackoff, capped at MaxRetryBackoff); only that
//     event's key waits.
//   - any other 4xx: permanent; dead-lettered at once as
//     max-retries-exceeded, retried only by hand.
//   - 5xx, other answers, timeouts and connection errors: dead-lettered
//     with the bus's automatic retries, which reach this subscription's
//     group only.
//
// # Pull subscriptions
//
// A Subscription with Pull holds each event until a client takes it (GET
// /api/subscriptions/{name}/events?max=&wait=) and settles it (POST
// /api/subscriptions/{name}/ack with {"ack":[leaseId...],
// "nack":[{"leaseId","reason","permanent"}]}) within Timeout: one event per
// key at a time, as with push; a nack or an expired lease is
// dead-lettered as the answers above are.
//
// Subscriptions declared at run time (POST /api/subscriptions, DELETE
// /api/subscriptions/{name}) are kept in Config.SubscriptionsTopic; see
// Gateway.Start.
//
// # Authentication
//
// Every route needs a bearer token: an admin token acts for every tenant;
// a tenant token publishes only events of its tenant, and sees only its
// tenant's subscriptions. Tokens are compared in constant time.
// Endpoints must be under Config.AllowedEndpoints when it is set.
package gateway
