package tracking_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailgate/mailgate/tracking"
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
	s, err := tracking.OpenPostgres(context.Background(), postgresSchema(tb))
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
			s, err := tracking.OpenPostgres(ctx, dsn)
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
	s, err := tracking.OpenPostgres(ctx, dsn)
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

func BenchmarkPostgresWrite(b *testing.B) { storetest.BenchmarkWrite(b, openPostgres(b)) }
