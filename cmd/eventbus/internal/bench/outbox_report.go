package bench

import "fmt"

// outboxRows writes the outbox and inbox phases' rows, when they ran.
func outboxRows(row func(...string), o *Outbox, in *Inbox) {
	if o != nil {
		latencyPair := func(name string, ours, raw Latency) {
			row(name+" p50 (ms)", fmt.Sprintf("%.3f", ours.P50), fmt.Sprintf("%.3f", raw.P50), ratio(ours.P50/raw.P50), "", "")
			row("  p95 (ms)", fmt.Sprintf("%.3f", ours.P95), fmt.Sprintf("%.3f", raw.P95), ratio(ours.P95/raw.P95), "", "")
		}
		latencyPair(fmt.Sprintf("outbox: tx with one row + one event (%d tx)", o.Transactions), o.TxOurs, o.TxRaw)
		row("  tx with the row alone p50 / p95 (ms)", fmt.Sprintf("%.3f / %.3f", o.TxRow.P50, o.TxRow.P95), "", "", "", "")
		row(fmt.Sprintf("outbox relay, %d rows, %d keys (events/s)", o.Backlog, o.Keys),
			fmt.Sprintf("%.0f", o.Relay.PerSecond), fmt.Sprintf("%.0f", o.RelayRaw.PerSecond), ratio(o.Ratio),
			fmt.Sprintf("≥ %d/s", TargetRelayPerSecond), verdict(o.Relay.PerSecond >= TargetRelayPerSecond))
		c := o.CommitToHandler
		row(fmt.Sprintf("outbox commit to handler @%d/s p50 (ms)", o.CommitRate), fmt.Sprintf("%.3f", c.P50), "", "", "", "")
		row("  p95 (ms)", fmt.Sprintf("%.3f", c.P95), "", "", fmt.Sprintf("≤ %.0f ms", TargetCommitP95Ms), verdict(c.P95 <= TargetCommitP95Ms))
		row("  arrived", fmt.Sprintf("%d/%d", c.Count, o.CommitSent), "", "", "all", verdict(c.Count == o.CommitSent))
	}
	if in != nil {
		row(fmt.Sprintf("inbox: handler %g ms + one insert, %d at a time (events/s)", in.HandlerMs, in.Concurrency),
			fmt.Sprintf("%.0f", in.Ours.PerSecond), fmt.Sprintf("%.0f", in.Raw.PerSecond), ratio(in.Ratio), "", "")
		row("  no deduplication (events/s)", "", fmt.Sprintf("%.0f", in.Plain.PerSecond), ratio(in.Ours.PerSecond/in.Plain.PerSecond), "", "")
		row("  duplicate effect rows", fmt.Sprintf("%d", in.DuplicateEffects), "", "", "0", verdict(in.DuplicateEffects == 0))
	}
}

// outboxNotes explains the outbox and inbox phases' rows.
func outboxNotes(o *Outbox, in *Inbox) []string {
	var notes []string
	if o != nil {
		notes = append(notes, "outbox: ours is outbox.Writer.Publish in the caller's pgx transaction and outbox.Relay with its defaults; "+
			"raw is the same record (built as the other raw sides build theirs) inserted with pgx into a plain table, "+
			"and a hand-written relay that selects the oldest 100 rows, produces them with franz-go ProduceSync and deletes them, "+
			"one batch after the other (no shards, locks, breaker or notifications). The relay figures drain a committed backlog; "+
			"commit to handler is one event per transaction, measured from just before the commit, with the relay woken by LISTEN/NOTIFY.")
	}
	if in != nil {
		notes = append(notes, fmt.Sprintf("inbox: %d events over %d tenants, each side a new group from the beginning, MaxConcurrency %d; "+
			"ours is outbox.Inbox.Handler (the inbox record and the effect in one transaction), raw a pgx transaction that inserts "+
			"(group, event ID) ON CONFLICT DO NOTHING and runs the handler when the row is new; \"no deduplication\" is the handler "+
			"alone, its insert on its own; each side timed from its first handler call.", in.Events, SlowKeys, in.Concurrency))
	}
	return notes
}
