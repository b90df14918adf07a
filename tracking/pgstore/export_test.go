package pgstore

import "github.com/mailgate/mailgate/tracking"

// SetSubjectWindow sets how many messages a PostgreSQL subject search reads
// newest first before it searches them all, so that tests can take both
// paths with a few messages.
func SetSubjectWindow(s tracking.Store, n int) { s.(*Store).subjectWindow = n }
