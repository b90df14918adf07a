package queue

// Load is what backpressure watches, cheaply (no walk of the index): the
// live messages and the bytes of their records.
func (s *Spool) Load() (messages int64, bytes int64) {
	s.mu.RLock()
	n := len(s.x.msgs)
	s.mu.RUnlock()
	return int64(n), s.liveBytes.Load()
}
