package pgstore

import "github.com/mailgate/mailgate/tracking"

// SetSubjectWindow sets how many messages a PostgreSQL subject search reads
// newest first before it searches them all, so that tests can take both
// paths with a few messages.
func SetSubjectWindow(s tracking.Store, n int) { s.(*Store).subjectWindow = n }

// Migrations returns the schema's migrations, so that a test can make a
// database of an older version.
func Migrations() []string { return pgSchema }
