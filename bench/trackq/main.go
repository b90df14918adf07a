// Command trackq measures how fast the tracking store answers, on a store
// of a realistic size, for bench/track.sh:
//
//	trackq fill  -driver sqlite -dsn /tmp/t.db -messages 10000000
//	trackq query -driver sqlite -dsn /tmp/t.db -n 1000
//	trackq fill  -driver postgres -dsn 'postgres://root@127.0.0.1:5432/test?sslmode=disable&search_path=mg_bench' -reset
//
// fill writes synthetic records straight into the store with Store.Write,
// in batches, without going through a log: one gateway's month of mail,
// spread evenly over 30 days, ~200k senders with a Zipf skew (a few send
// much of the mail), ~1M recipients, two recipients a message on average,
// subjects from a vocabulary, the statuses of a normal day, and the
// message's own ~12 lines in the ESA's words, rendered by maillog. Lines and
// addresses are short so that ten million messages stay within a few tens
// of GB. Inbound connections (ICID) carry 1-5 messages and delivery
// connections (DCID) several, each with its own lines, so that Find loads
// what it does on a real store. It prints rows/s.
//
// query runs, against a filled store: -n MID lookups (tracking.Find of a
// random MID: the message and its connections, lines included), -n sender
// searches (Query{Sender: an address that exists, Limit 100}; the address is
// that of a random message, so busy senders are searched for as often as
// they send) and -subjects subject searches (Query{Subject: a word of a
// random message's subject, Limit 100}). It prints the median, 99th
// percentile and maximum of each kind, one line each:
//
//	trackq: mid n=1000 median=0.21ms p99=0.80ms max=3.10ms
//
// For PostgreSQL, name a schema of its own in the DSN (search_path=...):
// fill creates it, -reset drops it first, and drop drops it (for SQLite,
// -reset and drop remove the database file).
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/stores"
)

const usage = `usage:
  trackq fill  -driver sqlite|postgres -dsn DSN [-messages N] [-batch N] [-seed N] [-reset | -resume]
  trackq query -driver sqlite|postgres -dsn DSN [-n N] [-subjects N] [-seed N]
  trackq drop  -driver sqlite|postgres -dsn DSN`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	driver := fs.String("driver", "sqlite", "store: sqlite or postgres")
	dsn := fs.String("dsn", "", "the database file (sqlite) or connection URL (postgres; give search_path=SCHEMA)")
	host := fs.String("host", "esa1", "the gateway the records are of")
	seed := fs.Uint64("seed", 1, "random seed")
	var err error
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch os.Args[1] {
	case "fill":
		n := fs.Int("messages", 10_000_000, "messages to write")
		batch := fs.Int("batch", 2000, "messages per Store.Write (one transaction)")
		reset := fs.Bool("reset", false, "start from an empty store: remove the SQLite file, or drop the PostgreSQL schema")
		resume := fs.Bool("resume", false, "go on with a fill that was interrupted (same -messages and -seed)")
		fs.Parse(os.Args[2:])
		if *dsn == "" || *n < 1 || *batch < 1 || fs.NArg() > 0 || (*reset && *resume) {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		err = fill(ctx, *driver, *dsn, *host, *n, *batch, *seed, *reset, *resume)
	case "query":
		n := fs.Int("n", 1000, "MID lookups, and sender searches")
		subjects := fs.Int("subjects", 100, "subject searches")
		fs.Parse(os.Args[2:])
		if *dsn == "" || *n < 1 || fs.NArg() > 0 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		err = query(ctx, *driver, *dsn, *host, *n, *subjects, *seed)
	case "drop":
		fs.Parse(os.Args[2:])
		if *dsn == "" || fs.NArg() > 0 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		err = drop(ctx, *driver, *dsn)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trackq:", err)
		os.Exit(1)
	}
}

// prepare makes the place the store is to be opened in: for PostgreSQL the
// schema the DSN's search_path names (the store creates its tables, not
// the schema), dropped first with reset; for SQLite, with reset, no file.
func prepare(ctx context.Context, driver, dsn string, reset bool) error {
	if reset {
		if err := drop(ctx, driver, dsn); err != nil {
			return err
		}
	}
	if driver != "postgres" {
		return nil
	}
	return pgExec(ctx, dsn, `CREATE SCHEMA IF NOT EXISTS "%s"`)
}

// drop removes the store: the SQLite file, or the PostgreSQL schema.
func drop(ctx context.Context, driver, dsn string) error {
	if driver != "postgres" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(dsn + suffix); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		return nil
	}
	return pgExec(ctx, dsn, `DROP SCHEMA IF EXISTS "%s" CASCADE`)
}

// pgExec runs stmt, with the DSN's search_path schema for %s, over a
// connection without that search_path.
func pgExec(ctx context.Context, dsn, stmt string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	if schema == "" || strings.ContainsAny(schema, `", `) || schema == "public" {
		return fmt.Errorf("dsn: give search_path=SCHEMA (one plain name, not public), so that the benchmark's tables have a schema of their own")
	}
	q.Del("search_path")
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf(stmt, schema))
	return err
}

func fill(ctx context.Context, driver, dsn, host string, n, batch int, seed uint64, reset, resume bool) error {
	if err := prepare(ctx, driver, dsn, reset); err != nil {
		return err
	}
	st, err := stores.Open(ctx, driver, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	g := newFiller(host, n, seed)
	var msgs, rows int64
	if m, err := st.Search(ctx, tracking.Query{Host: host, Limit: 1}); err != nil {
		return err
	} else if len(m) > 0 {
		if !resume {
			return fmt.Errorf("the store already holds messages of %s (give -reset, or -resume)", host)
		}
		// Each Write is one transaction, so the store holds whole
		// batches: make again, and drop, what it has; the filler is
		// deterministic, so what follows is what an uninterrupted fill
		// would have written.
		have := int64(m[0].MID - firstMID + 1)
		for msgs < have {
			msgs += int64(len(g.batch(min(batch, int(have-msgs))).Messages))
		}
		fmt.Fprintf(os.Stderr, "trackq: resuming after %d messages\n", msgs)
	}
	skipped := msgs
	// SQLite builds an index far faster sorted, once, than row by row: a
	// month of mail written through the gateway's six indexes slowed to a
	// crawl once they outgrew the cache. The store's bulk load drops them
	// and makes them again, before the queries.
	endBulk, err := tracking.BeginBulk(ctx, st, math.MaxInt64/2)
	if err != nil {
		return err
	}
	began := time.Now()
	last, lastRows := began, int64(0)
	for msgs < int64(n) {
		b := g.batch(min(batch, n-int(msgs)))
		if err := st.Write(ctx, b); err != nil {
			return fmt.Errorf("write at message %d: %w", msgs, err)
		}
		msgs += int64(len(b.Messages))
		rows += int64(len(b.Messages) + len(b.Conns))
		if now := time.Now(); now.Sub(last) >= 30*time.Second {
			fmt.Fprintf(os.Stderr, "trackq: %d messages, %d rows, %.0f rows/s lately\n",
				msgs, rows, float64(rows-lastRows)/now.Sub(last).Seconds())
			last, lastRows = now, rows
		}
	}
	t0 := time.Now()
	if err := endBulk(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "trackq: bulk load ended (indexes built) in %.1fs\n", time.Since(t0).Seconds())
	el := time.Since(began).Seconds()
	size := ""
	if driver != "postgres" {
		var total int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(dsn + suffix); err == nil {
				total += fi.Size()
			}
		}
		size = fmt.Sprintf(", %.2f GB on disk", float64(total)/1e9)
	}
	resumed := ""
	if skipped > 0 {
		resumed = fmt.Sprintf(" (resumed after %d messages: the rates are of this run's part)", skipped)
	}
	fmt.Printf("trackq: fill %s: %d messages + %d connections = %d rows in %.1fs: %.0f rows/s, %.0f messages/s%s%s\n",
		driver, msgs-skipped, rows-(msgs-skipped), rows, el, float64(rows)/el, float64(msgs-skipped)/el, size, resumed)
	return nil
}

func query(ctx context.Context, driver, dsn, host string, n, subjects int, seed uint64) error {
	st, err := stores.Open(ctx, driver, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	newest, err := st.Search(ctx, tracking.Query{Host: host, Limit: 1})
	if err != nil {
		return err
	}
	if len(newest) == 0 {
		return fmt.Errorf("no messages of %s in the store (run trackq fill)", host)
	}
	lo, hi := uint64(firstMID), newest[0].MID
	r := rand.New(rand.NewPCG(seed, 0x7261636b71))
	mid := func() uint64 { return lo + r.Uint64N(hi-lo+1) }

	var senders, words []string
	midT := make([]time.Duration, 0, n)
	for range n {
		id := mid()
		t0 := time.Now()
		m, conns, err := st.Find(ctx, host, id)
		midT = append(midT, time.Since(t0))
		if err != nil {
			return fmt.Errorf("find MID %d: %w", id, err)
		}
		if len(m.Lines) == 0 || len(conns) == 0 {
			return fmt.Errorf("MID %d: %d lines, %d connections: not a filled store?", id, len(m.Lines), len(conns))
		}
		senders = append(senders, m.Sender)
		if f := strings.Fields(m.Subject); len(f) > 0 {
			w := f[r.IntN(len(f))]
			if len(w) >= 4 && !strings.ContainsAny(w, "#:0123456789") {
				words = append(words, w)
			}
		}
	}
	report("mid", midT)

	senderT := make([]time.Duration, 0, n)
	var found int
	for _, s := range senders {
		t0 := time.Now()
		ms, err := st.Search(ctx, tracking.Query{Sender: s, Limit: 100})
		senderT = append(senderT, time.Since(t0))
		if err != nil {
			return fmt.Errorf("search sender %s: %w", s, err)
		}
		if len(ms) == 0 {
			return fmt.Errorf("search sender %s: nothing found", s)
		}
		found += len(ms)
	}
	report("sender", senderT, fmt.Sprintf("avg_found=%.1f", float64(found)/float64(len(senders))))

	if subjects > len(words) {
		subjects = len(words)
	}
	subjT := make([]time.Duration, 0, subjects)
	found = 0
	for _, w := range words[:subjects] {
		t0 := time.Now()
		ms, err := st.Search(ctx, tracking.Query{Subject: w, Limit: 100})
		subjT = append(subjT, time.Since(t0))
		if err != nil {
			return fmt.Errorf("search subject %q: %w", w, err)
		}
		found += len(ms)
	}
	if subjects > 0 {
		report("subject", subjT, fmt.Sprintf("avg_found=%.1f", float64(found)/float64(subjects)))
	}
	return nil
}

// report prints one kind's figures: median, p99 (nearest rank) and max.
func report(kind string, d []time.Duration, extra ...string) {
	slices.Sort(d)
	q := func(p float64) time.Duration {
		i := int(float64(len(d))*p+0.999999) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	ms := func(x time.Duration) string { return fmt.Sprintf("%.2fms", float64(x)/1e6) }
	fmt.Printf("trackq: %s n=%d median=%s p99=%s max=%s %s\n", kind, len(d), ms(q(0.5)), ms(q(0.99)), ms(d[len(d)-1]),
		strings.Join(extra, " "))
}
