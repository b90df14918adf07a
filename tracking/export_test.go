package tracking

// InMemory is the number of message and connection records t holds.
func InMemory(t *Tracker) (msgs, conns int) { return len(t.msgs), len(t.conns) }

// Hosts is the number of hosts whose newest entry time t keeps.
func Hosts(t *Tracker) int { return len(t.newest) }
