package pgstore_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/pgstore"
	"github.com/mailgate/mailgate/tracking/storetest"
)

// postgresDSN is the test server: this machine's, unless
// MAILGATE_TEST_POSTGRES names another.
func postgresDSN() string {
	if dsn := os.Getenv("MAILGATE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://root@127.0.0.1:5432/test?sslmode=disable"
}

// connectPostgres connects to the test server. It skips the test when
// there is none, unless under CI, which must run it.
func connectPostgres(tb testing.TB) *pgx.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, postgresDSN())
	if err != nil {
		if os.Getenv("CI") == "1" {
			tb.Fatalf("PostgreSQL: %v", err)
		}
		tb.Skipf("no PostgreSQL (%v); MAILGATE_TEST_POSTGRES names the server", err)
	}
	return c
}

// postgresSchema creates a schema for the test alone, dropped at its end,
// so that tests and runs do not see each other's records, and returns the
// DSN that selects it.
func postgresSchema(tb testing.TB) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := postgresDSN()
	admin := connectPostgres(tb)
	defer admin.Close(context.Background())
	// The extension is one per database, and goes to the first schema of
	// the search_path when created: make it in the default one, or it
	// would belong to (and be dropped with) the first test's schema. An
	// error (no privilege, a concurrent run) leaves the store to do without.
	admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm`)
	schema := fmt.Sprintf("mg_test_%016x", rand.Uint64())
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("PostgreSQL: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("PostgreSQL: drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("PostgreSQL: drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(dsn, schema)
}

func openPostgres(tb testing.TB) tracking.Store {
	s, err := pgstore.Open(context.Background(), postgresSchema(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// withSearchPath adds the search_path run-time parameter to a URL or a
// keyword/value connection string.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

func TestPostgres(t *testing.T) {
	connectPostgres(t).Close(context.Background()) // skip (or fail) once, not in every subtest
	storetest.Run(t, func(t *testing.T) tracking.Store { return openPostgres(t) })
}

// TestPostgresMigrate opens one new schema from several gateways at once
// (the advisory lock must let one of them migrate and the others find it
// done), then again.
func TestPostgresMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := postgresSchema(t)
	const n = 6
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := pgstore.Open(ctx, dsn)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var versions []int32
	rows, _ := c.Query(ctx, `SELECT version FROM mailgate_schema`)
	if versions, err = pgx.CollectRows(rows, pgx.RowTo[int32]); err != nil || len(versions) != 1 || versions[0] < 1 {
		t.Errorf("mailgate_schema holds %v (%v), want one version", versions, err)
	}
	// This server has pg_trgm: the subject index must be there.
	var trgm bool
	if err := c.QueryRow(ctx, `SELECT to_regclass('messages_subject_trgm') IS NOT NULL`).Scan(&trgm); err != nil {
		t.Fatal(err)
	}
	var available bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_trgm')`).Scan(&available); err != nil {
		t.Fatal(err)
	}
	if available && !trgm {
		t.Error("pg_trgm is available but messages_subject_trgm was not made")
	}
}

// TestPostgresSubjectWindow checks subject searches against the messages
// themselves, whichever way the store answers them: from a window of the
// newest messages, or over all when the window holds too few matches. The
// words are placed so that both happen: "alpha" in every third message,
// "beta" only in the oldest, "gamma" twice.
func TestPostgresSubjectWindow(t *testing.T) {
	ctx := context.Background()
	s := openPostgres(t)
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var all []*tracking.Message
	b := &tracking.Batch{Watermarks: map[string]time.Time{}}
	for i := range 300 {
		words := []string{"Report"}
		if i%3 == 0 {
			words = append(words, "ALPHA")
		}
		if i < 40 {
			words = append(words, "beta")
		}
		if i == 17 || i == 250 {
			words = append(words, "gamma")
		}
		m := &tracking.Message{
			Host: []string{"esa1", "esa2"}[i%2], MID: uint64(1000 + i), Sender: "a@example.com",
			Subject: strings.Join(words, " ") + fmt.Sprint(" #", i), Status: []tracking.Status{tracking.Delivered, tracking.Bounced}[i%5/4],
			Started: base.Add(time.Duration(i/2) * time.Second), // pairs share a second: mid breaks the tie
		}
		m.Updated = m.Started
		all = append(all, m)
		b.Messages = append(b.Messages, m)
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// want is what a reader of the messages would list: those that match,
	// newest first (the higher MID first within a time), at most limit.
	want := func(q tracking.Query) []string {
		var ms []tracking.Message
		for _, m := range all {
			if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(q.Subject)) &&
				(q.Host == "" || m.Host == q.Host) && (q.Status == "" || m.Status == q.Status) &&
				(q.Until.IsZero() || m.Started.Before(q.Until)) {
				ms = append(ms, *m)
			}
		}
		slices.SortFunc(ms, func(a, b tracking.Message) int {
			return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(b.MID, a.MID))
		})
		return mids(ms[:min(len(ms), cmp.Or(q.Limit, tracking.DefaultLimit))])
	}
	queries := []tracking.Query{
		{Subject: "alpha", Limit: 10},
		{Subject: "alpha"},
		{Subject: "alpha", Limit: 1000},
		{Subject: "beta", Limit: 10},
		{Subject: "gamma"},
		{Subject: "delta"},
		{Subject: "alpha", Host: "esa2", Limit: 5},
		{Subject: "report", Status: tracking.Bounced, Limit: 7},
		{Subject: "beta", Until: base.Add(10 * time.Second), Limit: 3},
		{Subject: "#1", Limit: 20},
	}
	for _, window := range []int{0, 1, 7, 50, 100000} {
		pgstore.SetSubjectWindow(s, window)
		for _, q := range queries {
			got, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := mids(got), want(q); !slices.Equal(g, w) {
				t.Errorf("window %d: Search(%+v) = %v,\nwant %v", window, q, g, w)
			}
		}
	}
}

// mids names messages as host/MID.
func mids(ms []tracking.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s/%d", m.Host, m.MID)
	}
	return out
}

func BenchmarkPostgresWrite(b *testing.B) { storetest.BenchmarkWrite(b, openPostgres(b)) }

// A schema of the version before the authentication results keeps its
// records through the migration that adds them (storetest.CheckAuthMigrated).
func TestPostgresMigratesAuth(t *testing.T) {
	ctx := context.Background()
	dsn := postgresSchema(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	old := pgstore.Migrations()[:2]
	m := storetest.OldAuthMessage()
	for _, st := range []struct {
		q    string
		args []any
	}{
		{old[0], nil}, {old[1], nil},
		{`CREATE TABLE mailgate_schema (version integer NOT NULL); INSERT INTO mailgate_schema VALUES (2)`, nil},
		{`INSERT INTO messages (host, mid, icid, dcids, remote_ip, remote_host, sender_group, sender, recipients, subject,
			message_id, size, started, finished, status, abort, abort_reason, abort_state, abort_bytes, bounce_of, updated, lines)
			VALUES ($1, $2, $3, '', '', '', '', $4, $5, '', '', 0, $6, 0, $7, '', '', '', 0, 0, $8, $9)`,
			[]any{m.Host, int64(m.MID), int64(m.ICID), m.Sender, `[{"rid":0,"address":"b@example.net","status":"queued"}]`,
				m.Started.UnixNano(), string(m.Status), m.Updated.UnixNano(), encodeLines(m.Lines)}},
		{`INSERT INTO recipients (address, host, mid) VALUES ('b@example.net', $1, $2)`, []any{m.Host, int64(m.MID)}},
	} {
		if _, err := c.Exec(ctx, st.q, st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckAuthMigrated(t, s)
}

// encodeLines is the lines column's text (sqlrow.EncodeLines, which this
// package cannot import): "unixnano level text" per line.
func encodeLines(ls []tracking.Line) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%d %d %s\n", l.Time.UnixNano(), l.Level, l.Text)
	}
	return b.String()
}
