package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
	"github.com/mailgate/mailgate/tracking/storetest"
)

func openSQLite(tb testing.TB) tracking.Store {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(tb.TempDir(), "tracking.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tracking.Store { return openSQLite(t) })
}

func BenchmarkSQLiteWrite(b *testing.B) { storetest.BenchmarkWrite(b, openSQLite(b)) }

func BenchmarkSQLiteFeedRound(b *testing.B) { storetest.BenchmarkFeedRound(b, openSQLite(b)) }
