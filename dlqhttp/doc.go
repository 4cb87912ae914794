// Package dlqhttp serves the dead letter queue of an event bus as a REST
// API: an http.Handler that `eventbus serve` mounts, and that any service
// holding a *eventbus.Bus can mount too.
//
//	h, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{
//		AdminTokens:  []string{os.Getenv("DLQ_ADMIN_TOKEN")},
//		TenantTokens: map[string]string{os.Getenv("ACME_DLQ_TOKEN"): "acme"},
//	})
//	...
//	mux.Handle("/api/dlq/", h)
//
// # Routes
//
//	GET    /api/dlq/stats                  counts by status, topic and reason (filter below)
//	GET    /api/dlq/events                 a page of entries (filter and paging below)
//	GET    /api/dlq/events/{id}            one entry
//	POST   /api/dlq/events/{id}/retry      retry one entry: 202 {"id":..., "status":"retrying"}
//	POST   /api/dlq/retry/topic/{topic}    retry every unresolved entry of a topic (filter below): {"succeeded":n,"failed":m}
//	DELETE /api/dlq/events/{id}            delete one entry: 204
//
// The filter, of stats, events and a topic's retry, is the query
// parameters topic (an original topic, not its dlq.* topic; the retry of a
// topic takes it from its path), status (pending, retrying, resolved or
// max-retries-exceeded) and tenantId: the fields of deadletter.Query.
// Every answer covers only the entries the token may see (see
// Authentication).
//
// GET /api/dlq/stats answers an deadletter.Stats. Its byReason labels are
// failure reasons, scrubbed (see Redaction) and cut to their first line,
// at most 80 bytes.
//
// GET /api/dlq/events takes the filter, page (from 1), pageSize (default
// 20, at most 100) and sort (-failedAt, newest failure first, the default;
// or failedAt, oldest first). It answers
//
//	{"items":[...],"total":42,"page":1,"pageSize":20,"totalPages":3}
//
// where totalPages is 0 when nothing matches, and a page past the last has
// no items. An entry is an deadletter.Entry in its JSON form.
//
// POST /api/dlq/events/{id}/retry is a manual retry, which works in any
// status. With ?manual=false it is retried as the automatic schedule would,
// which a resolved entry or one out of retries refuses (409).
//
// # Authentication
//
// Every request needs Authorization: Bearer <token>. An admin token sees
// every tenant. A tenant token sees its tenant's entries only: the list,
// the stats and a topic retry are narrowed to them; asking for another
// tenant (tenantId=) is refused (403); and an entry outside them is not
// found (404) by GET, retry and DELETE, the answer an unknown ID gets, so
// the token learns nothing of it. An entry is a tenant's only when its
// record is an event of that tenant (its tenant-id header and the decoded
// event agree). An entry without a known tenant, above all a malformed
// record, whose bytes may hold anyone's data and whose tenant-id header,
// if any, nothing checks, is for admins only. Tokens are compared in
// constant time. See ParseNamedTokens for the --admin-token /
// EVENTBUS_ADMIN_TOKENS format.
//
// # Audit
//
// Tokens may be named (Token.Name; unnamed ones are named by their
// fingerprint). With Options.Audit (an audit.Log), every retry, retry of a
// topic and delete is recorded, with the name of the token that asked, its
// outcome, and the entry's topic, group and tenant, before the answer is
// sent. One Authenticator (Options.Authenticator) can serve this API and
// the console's other APIs (package consoleapi) with the same tokens.
//
// # Errors
//
// Errors are JSON:
//
//	{"error":{"code":"not_found","message":"no dead-letter entry \"x\""}}
//
// with code bad_request (400: bad page, pageSize, sort, status, manual or
// topic), unauthorized (401, with WWW-Authenticate: Bearer), forbidden
// (403: a tenant token asking for another tenant), not_found (404: unknown
// entry, or one outside a tenant token's tenant), conflict (409: retry not allowed in
// the entry's state), unavailable (503: the bus is shutting down or the
// brokers do not answer; Retry-After is set) or internal (500: the detail
// is logged, never sent). A known path with another method gets the mux's
// 405.
//
// # Redaction
//
// Responses hide secrets, to admins too, as "[REDACTED]".
//
// Keys: in an entry's originalEvent, at any depth, the value of every
// object member with a sensitive key is replaced whole (a string, number,
// object, ...); so is the value of every originalHeaders entry with a
// sensitive key. Keys are compared whatever their case and separators:
// privateKey, private_key, private-key, PRIVATE.KEY and "Private Key" are
// all the words private, key, joined as privatekey. A key is sensitive when
// it holds password, passwd, passphrase, secret, token, jwt, apikey,
// accesskey, privatekey, privkey, signingkey, encryptionkey, signature,
// authorization, cookie, credential, creditcard or cardnumber; when it
// starts or ends with pwd, ssn, cvv, cvc, pincode or pinnumber, or starts
// with session; or when one of its words is pin, pass, auth or otp (or
// any of the above). Short names never match inside other words: spinner,
// opinion, shipping, businessName, possession and author are not sensitive.
//
// Free text: every other string (a malformed record's bytes, kept as a
// JSON string; string values inside an event; failureReason; stackTrace;
// the attempts' errors; other header values; the byReason labels of the
// stats) is scrubbed of: the value of key=value, key: value,
// "key":"value", \"key\":\"value\" and key%3Dvalue pairs whose key is
// sensitive (query strings, form bodies, log lines, Go maps, JSON fragments
// that do not parse), quoted values keeping their quotes and the value of
// an Authorization or Cookie line hidden to the end of the line; Bearer
// and Basic credentials; the userinfo of URLs (https://[REDACTED]@host);
// JSON Web Tokens; and PEM private keys. Text is otherwise kept as it is,
// so "my password is wrong" stays.
//
// Only the response is redacted: the stored entry, and so a retry, keeps
// the original.
//
// # Client
//
// Client calls the API from Go in the words of eventbus.DeadLetterQueue:
// Get, List, Stats, Retry, RetryAll and Delete, with the same
// deadletter.Query, deadletter.RetryIfAllowed, deadletter.Stats and
// deadletter.Entry, one route per method; `eventbus dlq` is built on it:
//
//	c, err := dlqhttp.NewClient("http://localhost:8080", token, &http.Client{Timeout: 30 * time.Second})
//	...
//	items, total, err := c.List(ctx, deadletter.Query{Topic: "core.user.created", Status: deadletter.StatusMaxRetriesExceeded, Limit: 20})
//	...
//	err = c.Retry(ctx, items[0].ID)
//	if errors.Is(err, deadletter.ErrNotFound) { ... }
//
// An error answer is an *APIError with the status, code and message.
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
