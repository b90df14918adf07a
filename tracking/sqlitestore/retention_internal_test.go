package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/storetest"
)

// Pruning leaves no row of the messages deleted in any table, and their
// pages on the free list, which Usage does not count: the size bound is
// met.
func TestSQLitePruneLeavesNoRows(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(ctx, storetest.Messages("esa1", 1, 2000, true)); err != nil {
		t.Fatal(err)
	}
	full, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := &tracking.Retention{MaxSize: full.Bytes / 4, Batch: 700}
	if _, err := r.Enforce(ctx, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Bytes > r.MaxSize || u.Messages == 0 {
		t.Errorf("usage %+v after pruning to %d bytes (from %d)", u, r.MaxSize, full.Bytes)
	}
	// Each message has a row of details, two recipients and a delivery.
	for _, c := range []struct {
		table string
		per   int64
	}{{"messages", 1}, {"message_details", 1}, {"recipients", 2}, {"deliveries", 1}} {
		var n int64
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+c.table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != c.per*u.Messages {
			t.Errorf("%s: %d rows for %d messages, want %d", c.table, n, u.Messages, c.per*u.Messages)
		}
	}
}
