// Package outbox closes the edge between a service's PostgreSQL database
// and the event bus: a transactional outbox on the publishing side (an
// event is published if and only if the transaction that wrote it
// commits) and an idempotent inbox on the consuming side (a handler's
// database work is done once per event and consumer group, however often
// the event is delivered).
//
// # Why
//
// Publishing after the commit loses the event when the process dies
// between the two; publishing before it announces changes that a rollback
// undoes. At-least-once delivery redelivers the events a consumer
// finished after its last commit, so a handler that inserts a row does it
// twice. The outbox and the inbox make both edges exactly-once for the
// database's part of the work.
//
// # Schema
//
// Migrate creates both tables (names of your choosing, "table" or
// "schema.table"; see Config) and is idempotent: call it at startup.
//
//	err := outbox.Migrate(ctx, pool, outbox.Config{})
//
// # Writing events (the outbox)
//
// A Writer validates and encodes an event exactly as Bus.Publish does
// (the same sentinel errors, before anything is written), chooses its ID,
// and inserts it in the caller's pgx transaction:
//
//	w, _ := outbox.NewWriter(bus, outbox.Config{})
//	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		if _, err := tx.Exec(ctx, "INSERT INTO users (id, email) VALUES ($1, $2)", id, email); err != nil {
//			return err
//		}
//		_, err := outbox.Publish(ctx, tx, w, catalog.UserCreated, catalog.UserCreatedData{UserID: id}, meta)
//		return err
//	})
//
// The insert also notifies the relay (pg_notify, delivered at commit).
// Writer.PublishSQL and PublishSQL do the same in a database/sql
// transaction (*sql.Tx, any PostgreSQL driver).
//
// # Relaying (the relay)
//
// A Relay sends committed rows with PublishEncoded (the bus's wire format,
// the ID chosen at write time) and deletes them once the brokers
// acknowledged them; the table holds only what is not sent yet. Run it in
// the service (go relay.Run(ctx)) or in `eventbus serve --outbox-dsn`.
//
//   - No row is skipped: the relay keeps no cursor. It reads the oldest
//     rows that are still in the table, so a transaction that took a low
//     id and committed late is read on the next pass, whatever was sent
//     meanwhile.
//   - Order per key: each row carries the shard of its key (ShardOf, one
//     of Shards), and a relay reads only the shards whose session advisory
//     lock it holds (pg_try_advisory_lock), in id order. The events of one
//     key are therefore sent by one relay at a time, in the order they
//     were written (which is commit order for writes that one key's
//     transactions serialise, as they should). Several relays share the
//     shards: each relay holds a presence lock, and every PollInterval
//     (between two batches, so nothing of a shard is in flight) it gives
//     up what it holds beyond its fair share (Shards divided by the number
//     of relays, rounded up) and takes free shards, in random order, up to
//     it.
//   - Pipelining: the shards a relay holds are divided among
//     RelayConfig.MaxInFlight lanes (shard modulo MaxInFlight), and a round
//     sends at most one batch per lane, so a key's events still go one
//     batch after the other. While a round is in flight, one round trip
//     deletes what the brokers acknowledged and reads the next round (the
//     oldest rows not in flight), which starts once the whole round is
//     back. A row is deleted only after its acknowledgement; after a
//     failure the next round is dropped, and the failed rows are read
//     again, first, after a backoff.
//   - A relay that dies (or loses its session) releases its locks with the
//     session; another relay takes the shards at its next poll
//     (RelayConfig.PollInterval) and sends what is still there. Events the
//     dead relay sent but did not delete are sent again, under the same
//     IDs: delivery is at least once, and the inbox drops the duplicates.
//   - Latency: LISTEN/NOTIFY wakes an idle relay at once; the notification
//     carries no data and a poll every PollInterval is the fallback.
//   - Brokers down: the send fails (the bus's circuit breaker opens), the
//     rows stay, and the relay retries with a growing backoff. Database
//     down: the relay reconnects with a backoff. A row the bus refuses for
//     good (a topic or size that this bus's configuration does not allow)
//     is set aside with dead_at and last_error and counted in
//     RelayStats.Dead; it is never deleted silently.
//
// # Handling events once (the inbox)
//
// Inbox.Handler (Handle for typed events) wraps a handler that gets a
// transaction: it records (group, event ID) in the inbox table and runs
// the handler in the same transaction. Both commit only when the handler
// succeeds; a failure rolls both back and goes to the subscription's
// failure policy (retries, dead letter queue), and a redelivery whose
// record exists is acknowledged without running the handler (so is a dead
// letter queue retry of an event that was in fact handled).
//
//	in, _ := outbox.NewInbox(pool, outbox.InboxConfig{Retention: 7 * 24 * time.Hour})
//	go in.Run(ctx) // deletes records older than the retention
//	eventbus.Subscribe(ctx, bus, catalog.UserCreated,
//		outbox.Handle(in, "mailer", func(ctx context.Context, tx pgx.Tx, ev eventbus.Event[catalog.UserCreatedData]) error {
//			_, err := tx.Exec(ctx, "INSERT INTO welcome_mails (user_id) VALUES ($1)", ev.Data.UserID)
//			return err
//		}), eventbus.InGroup("mailer"))
//
// Records are kept for InboxConfig.Retention (default 7 days): an event
// redelivered after that is handled again. Only the work done in the
// transaction is exactly once; a mail sent from the handler is sent again
// if the transaction then rolls back.
package outbox
