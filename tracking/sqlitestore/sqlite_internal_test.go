package sqlitestore

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
	"github.com/mailgate/mailgate/tracking/storetest"
)

// A database made by the first schema (recipients and lines in the
// messages table, lines as text) keeps its messages whole through the
// migration that moves them to message_details.
func TestSQLiteMigratesDetails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracking.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	want := &tracking.Message{Host: "esa1", MID: 7, ICID: 3, Sender: "a@example.com", Subject: "hello",
		Recipients: []tracking.Recipient{{RID: 0, Address: "b@example.com", Status: tracking.Delivered, DCID: 9, Response: "250 ok", Time: start.Add(time.Second)}},
		Status:     tracking.Delivered, Started: start, Finished: start.Add(time.Second), Updated: start.Add(time.Second),
		Lines: []tracking.Line{{Time: start, Level: 3, Text: "Start MID 7 ICID 3"}, {Time: start.Add(time.Second), Level: 3, Text: "Message finished MID 7 done"}}}
	for _, q := range []string{sqliteSchema[0], "PRAGMA user_version = 1"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO messages (host, mid, icid, dcids, remote_ip, remote_host, sender_group, sender,
		recipients, subject, message_id, size, started, finished, status, abort, abort_reason, abort_state, abort_bytes,
		bounce_of, updated, lines) VALUES ('esa1', 7, 3, '', '', '', '', 'a@example.com', ?, 'hello', '', 0, ?, ?,
		'delivered', '', '', '', 0, 0, ?, ?)`,
		sqlrow.EncodeRecipients(want.Recipients), sqlrow.UnixNano(want.Started), sqlrow.UnixNano(want.Finished), sqlrow.UnixNano(want.Updated),
		sqlrow.EncodeLines(want.Lines)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO recipients (address, host, mid) VALUES ('b@example.com', 'esa1', 7)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _, err := s.Find(ctx, "esa1", 7)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != want.Subject || len(got.Recipients) != 1 || got.Recipients[0].Response != "250 ok" ||
		len(got.Lines) != 2 || got.Lines[1].Text != want.Lines[1].Text || !got.Lines[0].Time.Equal(start) {
		t.Fatalf("after migration: %+v", got)
	}
	ms, err := s.Search(ctx, tracking.Query{Recipient: "b@example.com"})
	if err != nil || len(ms) != 1 || len(ms[0].Recipients) != 1 {
		t.Fatalf("search after migration: %v, %+v", err, ms)
	}
}

func indexes(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.db.Query(`SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'messages_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// A bulk load into an empty store drops the secondary indexes and makes
// them again at its end; one cut short (the process killed) leaves them
// to the next open. A bulk load smaller than the store keeps them.
func TestSQLiteBulkLoadIndexes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracking.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	all := indexes(t, s)
	if len(all) != len(sqliteIndexes) {
		t.Fatalf("indexes of a new store: %v", all)
	}
	var ps int
	if err := s.db.QueryRow("PRAGMA page_size").Scan(&ps); err != nil || ps != 16384 {
		t.Errorf("page size of a new store: %d, %v", ps, err)
	}

	done, err := s.BulkLoad(ctx, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, s); len(got) != 0 {
		t.Fatalf("indexes during a bulk load into an empty store: %v", got)
	}
	b := &tracking.Batch{}
	for mid := uint64(1); mid <= 100; mid++ {
		b.Messages = append(b.Messages, &tracking.Message{Host: "esa1", MID: mid, Sender: "s@example.com", Status: tracking.Delivered,
			Started: time.Unix(int64(mid), 0), Recipients: []tracking.Recipient{{Address: "r@example.com"}}})
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Written twice, as a message whose lines span two batches is.
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.Search(ctx, tracking.Query{Sender: "s@example.com", Limit: 1000}); err != nil || len(ms) != 100 {
		t.Fatalf("search during a bulk load: %d, %v", len(ms), err)
	}
	recipients := func(when string, stored, staged int) {
		t.Helper()
		var n, m int
		if err := s.db.QueryRow("SELECT (SELECT count(*) FROM recipients), (SELECT count(*) FROM recipients_new)").Scan(&n, &m); err != nil {
			t.Fatal(err)
		}
		if n != stored || m != staged {
			t.Errorf("%s: %d recipient rows and %d staged, want %d and %d", when, n, m, stored, staged)
		}
		if ms, err := s.Search(ctx, tracking.Query{Recipient: "R@example.com", Limit: 1000}); err != nil || len(ms) != 100 {
			t.Errorf("%s: recipient search found %d messages (%v), want 100", when, len(ms), err)
		}
	}
	recipients("during a bulk load", 0, 200)
	if err := done(ctx); err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, s); !slices.Equal(got, all) {
		t.Fatalf("indexes after a bulk load: %v, want %v", got, all)
	}
	recipients("after a bulk load", 100, 0)

	// Cut short: no done, the store closed.
	if _, err := s.BulkLoad(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, s); len(got) != 0 {
		t.Fatalf("indexes during a bulk load larger than the store: %v", got)
	}
	for _, m := range b.Messages {
		m.Recipients = append(m.Recipients, tracking.Recipient{RID: 1, Address: "r2@example.com"})
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	recipients("during a second bulk load", 100, 200)
	s.Close()
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := indexes(t, s); !slices.Equal(got, all) {
		t.Fatalf("indexes after a bulk load cut short and an open: %v, want %v", got, all)
	}
	recipients("after a bulk load cut short and an open", 200, 0)

	// Smaller than the store: the indexes stay.
	done, err = s.BulkLoad(ctx, 10*bytesPerMessage)
	if err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, s); !slices.Equal(got, all) {
		t.Fatalf("indexes during a small bulk load: %v, want %v", got, all)
	}
	if err := done(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPackedLines(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 123000, time.UTC)
	for _, lines := range [][]tracking.Line{
		nil,
		{{Time: at, Level: 3, Text: "Start MID 1 ICID 2"}},
		{{Time: at, Level: 3, Text: "a"}, {Time: at.Add(time.Hour), Level: 1, Text: "b 'quoted' \\x00"}},
	} {
		packed, _ := sqlrow.PackLines(nil, lines)
		got, err := sqlrow.UnpackLines(string(packed))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(lines) {
			t.Fatalf("%v: got %v", lines, got)
		}
		for i := range got {
			if !got[i].Time.Equal(lines[i].Time) || got[i].Level != lines[i].Level || got[i].Text != lines[i].Text {
				t.Fatalf("%v: got %v", lines, got)
			}
		}
		// Text rows (PostgreSQL's, SQLite's before packing) read the same.
		if back, err := sqlrow.UnpackLines(sqlrow.EncodeLines(lines)); err != nil || len(back) != len(lines) {
			t.Fatalf("text %v: %v, %v", lines, back, err)
		}
	}
	if _, err := sqlrow.UnpackLines("\x00garbage"); err == nil {
		t.Error("corrupt packed lines read without an error")
	}
}

// A database of the schema before the authentication results (version 4)
// keeps its records through the migration that adds them, and a record
// gets its results from its lines when it is next written.
func TestSQLiteMigratesAuth(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracking.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(slices.Clone(sqliteSchema[:4]), "PRAGMA user_version = 4") {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	m := storetest.OldAuthMessage()
	lines, _ := sqlrow.PackLines(nil, m.Lines)
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO messages (host, mid, icid, dcids, remote_ip, remote_host, sender_group, sender, subject, message_id,
			size, started, finished, status, abort, abort_reason, abort_state, abort_bytes, bounce_of, updated)
			VALUES (?, ?, ?, '', '', '', '', ?, '', '', 0, ?, 0, ?, '', '', '', 0, 0, ?)`,
			[]any{m.Host, int64(m.MID), int64(m.ICID), m.Sender, sqlrow.UnixNano(m.Started), string(m.Status), sqlrow.UnixNano(m.Updated)}},
		{`INSERT INTO message_details (host, mid, recipients, lines) VALUES (?, ?, ?, ?)`,
			[]any{m.Host, int64(m.MID), sqlrow.EncodeRecipients(m.Recipients), lines}},
		{`INSERT INTO recipients (address, host, mid) VALUES ('b@example.net', ?, ?)`, []any{m.Host, int64(m.MID)}},
		{`INSERT INTO conns (host, kind, id, remote_ip, remote_host, sender_group, started, finished, lost, cause, state,
			last_command, data_bytes, mids, lines) VALUES (?, 1, 15, '192.0.2.7', '', 'SUSPECTLIST', 0, 0, 0, '', '', '', 0, '16', '')`,
			[]any{m.Host}},
	} {
		if _, err := db.ExecContext(ctx, st.q, st.args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckAuthMigrated(t, s)
}

// TestStorable: Load leaves out, before any lookup, the keys above the
// highest stored for their host and kind, and only those; the highest
// stored itself is looked up. One index seek finds each highest key.
func TestStorable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := storetest.Messages("esa1", 10, 5, true) // MIDs 10-14, ICIDs 6-8
	b.Messages = append(b.Messages, storetest.Messages("esa2", 3, 1, false).Messages...)
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	mk := func(host string, mid uint64) tracking.MessageKey { return tracking.MessageKey{Host: host, MID: mid} }
	ck := func(host string, kind event.ConnKind, id uint64) tracking.ConnKey {
		return tracking.ConnKey{Host: host, Kind: kind, ID: id}
	}
	in := tracking.Keys{
		Messages: []tracking.MessageKey{mk("esa1", 9), mk("esa1", 14), mk("esa1", 15), mk("esa2", 3), mk("esa2", 4), mk("esa3", 1)},
		Conns: []tracking.ConnKey{ck("esa1", event.InboundConn, 8), ck("esa1", event.InboundConn, 9),
			ck("esa1", event.OutboundConn, 1), ck("esa2", event.InboundConn, 1)},
	}
	got, err := s.storable(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := tracking.Keys{
		Messages: []tracking.MessageKey{mk("esa1", 9), mk("esa1", 14), mk("esa2", 3)},
		Conns:    []tracking.ConnKey{ck("esa1", event.InboundConn, 8)},
	}
	if !slices.Equal(got.Messages, want.Messages) || !slices.Equal(got.Conns, want.Conns) {
		t.Errorf("storable(%+v) = %+v, want %+v", in, got, want)
	}
	loaded, err := s.Load(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Messages) != 2 || len(loaded.Conns) != 1 {
		t.Errorf("Load: %d messages, %d connections; want 2 and 1", len(loaded.Messages), len(loaded.Conns))
	}
	for _, q := range []string{`SELECT max(mid) FROM messages WHERE host = 'esa1'`, `SELECT max(id) FROM conns WHERE host = 'esa1' AND kind = 1`} {
		var plan []string
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if len(plan) != 1 || !strings.HasPrefix(plan[0], "SEARCH ") {
			t.Errorf("%s: plan %q, want one SEARCH", q, plan)
		}
	}
}

// TestStatementsKept: the writes' statements are prepared once and kept,
// a bounded few of them whatever the batches' sizes.
func TestStatementsKept(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next := uint64(1)
	for n := 1; n <= 600; n += 37 {
		if err := s.Write(ctx, storetest.Messages("esa1", next, n, true)); err != nil {
			t.Fatal(err)
		}
		next += uint64(n)
	}
	// Five tables, nine sizes of part (256 down to 1), each inserting and
	// (messages, details, conns) deleting.
	if n := len(s.stmts); n == 0 || n > 5*9+3*9 {
		t.Errorf("%d statements kept", n)
	}
	before := maps.Clone(s.stmts)
	if err := s.Write(ctx, storetest.Messages("esa1", next, 600, true)); err != nil {
		t.Fatal(err)
	}
	for k, st := range s.stmts {
		if before[k] != st {
			t.Errorf("a second batch of 600 prepared %v again", k)
		}
	}
	all, err := s.Search(ctx, tracking.Query{Host: "esa1", Limit: 100000})
	if err != nil || len(all) != int(next)-1+600 {
		t.Fatalf("%d messages stored (%v), want %d", len(all), err, int(next)-1+600)
	}
}
