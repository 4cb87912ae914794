// Package dlqhttp serves the dead letter queue of an event bus as a REST
// API: an http.Handler that `eventbus serve` mounts, and that any service
// holding a *eventbus.Bus can mount too.
//
//	h, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{
//		AdminTokens:  []string{os.Getenv("DLQ_ADMIN_TOKEN")},
//		TenantTokens: map[string]string{os.Getenv("ACME_DLQ_TOKEN"): "acme"},
//		TopicRules:   bus.Client().Topics().Rules(),
//	})
//	...
//	mux.Handle("/api/dlq/", h)
//
// # Routes
//
//	GET    /api/dlq/stats                  counts by status, topic and reason
//	GET    /api/dlq/events                 a page of entries (query below)
//	GET    /api/dlq/events/{id}            one entry
//	POST   /api/dlq/events/{id}/retry      retry one entry: 202 {"id":..., "status":"retrying"}
//	POST   /api/dlq/retry/topic/{topic}    retry every unresolved entry of a topic: {"succeeded":n,"failed":m}
//	DELETE /api/dlq/events/{id}            delete one entry: 204
//
// GET /api/dlq/stats answers an eventbus.DLQStats; an admin may narrow it
// with ?tenantId=.
//
// GET /api/dlq/events takes topic, status (pending, retrying, resolved or
// max-retries-exceeded), tenantId, page (from 1), pageSize (default 20, at
// most 100) and sort (-failedAt, newest failure first, the default; or
// failedAt, oldest first). It answers
//
//	{"items":[...],"total":42,"page":1,"pageSize":20,"totalPages":3}
//
// where totalPages is 0 when nothing matches, and a page past the last has
// no items. An entry is an eventbus.FailedEvent in its JSON form.
//
// POST /api/dlq/events/{id}/retry is a manual retry, which works in any
// status. With ?manual=false it is retried as the automatic schedule would,
// which a resolved entry or one out of retries refuses (409).
//
// # Authentication
//
// Every request needs Authorization: Bearer <token>. An admin token sees
// every tenant. A tenant token sees its tenant only: the list and the stats
// are narrowed to it, asking for another tenant (tenantId=) or another
// tenant's entry is refused (403), and retrying a topic retries only its
// tenant's entries. Entries without a tenant (a malformed record without a
// tenant-id header) are for admins. Tokens are compared in constant time.
// See ParseTokens for the --admin-token / EVENTBUS_ADMIN_TOKENS format.
//
// # Errors
//
// Errors are JSON:
//
//	{"error":{"code":"not_found","message":"no dead-letter entry \"x\""}}
//
// with code bad_request (400: bad page, pageSize, sort, status, manual or
// topic), unauthorized (401, with WWW-Authenticate: Bearer), forbidden
// (403), not_found (404: unknown entry), conflict (409: retry not allowed in
// the entry's state), unavailable (503: the bus is shutting down or the
// brokers do not answer; Retry-After is set) or internal (500: the detail
// is logged, never sent). A known path with another method gets the mux's
// 405.
//
// # Redaction
//
// Responses never show secrets inside payloads. In an entry's
// originalEvent, the value of every object member whose lowercased key
// contains password, passwd, secret, token, apikey, api_key, authorization,
// credential, private_key or ssn ("-" counts as "_", so X-Api-Key matches),
// at any depth, is replaced by "[REDACTED]"; so are the values of
// originalHeaders with such keys. Only the response is redacted: the stored
// entry, and so a retry, keeps the original.
//
// # Examples with curl
//
//	TOKEN=k8Qz1vXw9mR2pL7a
//	API=http://localhost:8080/api/dlq
//
//	curl -H "Authorization: Bearer $TOKEN" $API/stats
//	curl -H "Authorization: Bearer $TOKEN" "$API/events?topic=core.user.created&status=max-retries-exceeded&page=2&pageSize=50"
//	curl -H "Authorization: Bearer $TOKEN" "$API/events?tenantId=acme&sort=failedAt"
//	curl -H "Authorization: Bearer $TOKEN" $API/events/Zr2x0Qm4V3n8k1pT6yWc5A
//	curl -X POST -H "Authorization: Bearer $TOKEN" $API/events/Zr2x0Qm4V3n8k1pT6yWc5A/retry
//	curl -X POST -H "Authorization: Bearer $TOKEN" "$API/events/Zr2x0Qm4V3n8k1pT6yWc5A/retry?manual=false"
//	curl -X POST -H "Authorization: Bearer $TOKEN" $API/retry/topic/core.user.created
//	curl -X DELETE -H "Authorization: Bearer $TOKEN" $API/events/Zr2x0Qm4V3n8k1pT6yWc5A
package dlqhttp
