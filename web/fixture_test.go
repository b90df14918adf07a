package web

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
)

// fixtureNow is shortly after the fixture logs' last line, so that the
// default ranges ("the last 24 hours") cover them.
var fixtureNow = time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)

// fixtureStore is a SQLite store in a temporary directory holding the
// fixture logs: esa1.log (one message of every outcome) and esa2.log (a
// second gateway, with markup in its log text) and esa3.log (a split, three
// days before the others: out of the default ranges).
func fixtureStore(t testing.TB) tracking.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tr := tracking.NewTracker(s, tracking.Options{})
	for _, f := range []struct{ host, file string }{
		{"esa1.example.com", "testdata/esa1.log"},
		{"esa2.example.com", "testdata/esa2.log"},
		{"esa3.example.com", "testdata/esa3.log"},
	} {
		im := &tracking.Importer{Tracker: tr, Host: f.host, Location: time.UTC}
		if err := im.ImportFile(ctx, f.file); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
