package eventbus

// SetDLQReadFault makes fault run before each read of the dead-letter
// records that b's subscribers check retries against; an error it returns
// fails that read (see dlq.Queue.SetReadFault). nil removes it.
func SetDLQReadFault(b *Bus, fault func() error) { b.dlq.q.SetReadFault(fault) }
