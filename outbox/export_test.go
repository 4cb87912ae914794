package outbox

// SetSendHooks sets the relay's test hooks: before runs before a batch is
// sent, with its event IDs, and fails the send when it returns an error;
// after runs once the brokers answered, with the batch's event IDs and
// those they acknowledged, before those rows are deleted. Either may be
// nil. Set them before Run.
func SetSendHooks(r *Relay, before func(ids []string) error, after func(ids, acked []string)) {
	r.beforeSend, r.afterSend = before, after
}

// SetVacuumEvery sets how many deleted rows start a VACUUM, and returns
// how many the relay ran so far.
func SetVacuumEvery(r *Relay, rows int) func() int64 {
	r.vacuumEvery = rows
	return r.vacuums.Load
}
