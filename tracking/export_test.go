package tracking

// SetSubjectWindow sets how many messages a PostgreSQL subject search reads
// newest first before it searches them all, so that tests can take both
// paths with a few messages.
func SetSubjectWindow(s Store, n int) { s.(*Postgres).subjectWindow = n }
