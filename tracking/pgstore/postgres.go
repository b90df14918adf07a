// Package pgstore is the tracking.Store in PostgreSQL, which many
// gateways share.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailgate/mailgate/event"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
)

// pgSchema holds the migrations, in order; mailgate_schema records how many
// have run. The tables are those of SQLite. Where SQLite has COLLATE
// NOCASE, the indexes are on lower(), and use text_pattern_ops: such an
// index serves both an exact match (its "=" is text's) and a prefix
// pattern ("bob*"), whatever the database's collation, so one index does
// the work of two on every insert.
var pgSchema = []string{
	`CREATE TABLE messages (
		host text NOT NULL, mid bigint NOT NULL, icid bigint NOT NULL, dcids text NOT NULL,
		remote_ip text NOT NULL, remote_host text NOT NULL, sender_group text NOT NULL,
		sender text NOT NULL, recipients text NOT NULL,
		subject text NOT NULL, message_id text NOT NULL, size bigint NOT NULL,
		started bigint NOT NULL, finished bigint NOT NULL, status text NOT NULL,
		abort text NOT NULL, abort_reason text NOT NULL, abort_state text NOT NULL, abort_bytes bigint NOT NULL,
		bounce_of bigint NOT NULL, updated bigint NOT NULL, lines text NOT NULL,
		PRIMARY KEY (host, mid));
	CREATE INDEX messages_started ON messages (started);
	CREATE INDEX messages_sender ON messages (lower(sender) text_pattern_ops, started);
	CREATE INDEX messages_icid ON messages (icid);
	CREATE INDEX messages_message_id ON messages (message_id);
	CREATE INDEX messages_remote_ip ON messages (remote_ip, started);
	CREATE INDEX messages_status ON messages (status, started);
	-- The key of SQLite's (address, host, mid), in the order rows come
	-- (by message): SQLite reads addresses from its key, PostgreSQL from
	-- recipients_address, and inserts in key order are cheaper.
	CREATE TABLE recipients (
		address text NOT NULL, host text NOT NULL, mid bigint NOT NULL,
		PRIMARY KEY (host, mid, address));
	CREATE INDEX recipients_address ON recipients (lower(address) text_pattern_ops);
	CREATE TABLE deliveries (
		host text NOT NULL, dcid bigint NOT NULL, mid bigint NOT NULL,
		PRIMARY KEY (host, dcid, mid));
	-- A search by DCID names no host; the key leads with it.
	CREATE INDEX deliveries_dcid ON deliveries (dcid);
	CREATE TABLE conns (
		host text NOT NULL, kind smallint NOT NULL, id bigint NOT NULL,
		remote_ip text NOT NULL, remote_host text NOT NULL, sender_group text NOT NULL,
		started bigint NOT NULL, finished bigint NOT NULL, lost boolean NOT NULL,
		cause text NOT NULL, state text NOT NULL, last_command text NOT NULL,
		data_bytes bigint NOT NULL, mids text NOT NULL, lines text NOT NULL,
		PRIMARY KEY (host, kind, id));
	CREATE TABLE watermarks (host text PRIMARY KEY, time bigint NOT NULL);`,
	// Retention deletes the oldest connections (retention.go), and the
	// feed records the stretches of log it lost.
	`CREATE INDEX conns_started ON conns (started);
	CREATE TABLE gaps (host text NOT NULL, lost_from bigint NOT NULL, lost_to bigint NOT NULL, noted bigint NOT NULL);
	CREATE INDEX gaps_to ON gaps (lost_to);`,
	// The sender-authentication results, as in SQLite (whose
	// message_details holds auth; here the row is the message's).
	`ALTER TABLE messages ADD COLUMN spf text NOT NULL DEFAULT '',
		ADD COLUMN dkim text NOT NULL DEFAULT '', ADD COLUMN dmarc text NOT NULL DEFAULT '',
		ADD COLUMN dnslist text NOT NULL DEFAULT '', ADD COLUMN auth text NOT NULL DEFAULT '';
	ALTER TABLE conns ADD COLUMN dnslist text NOT NULL DEFAULT '';`,
}

// pgSchemaLock is the pg_advisory_xact_lock key under which gateways
// migrate: "mailgate" in ASCII. Advisory locks are per database, so two
// gateways starting at once take turns, and the second finds the work done.
const pgSchemaLock = 0x6d61696c67617465

// pgDialect folds case with lower(), as the indexes do, and searches the
// subject with ILIKE, which the trigram index (when there is one) serves.
var pgDialect = sqlrow.Dialect{
	Recipients: "recipients",
	Arg:        func(n int) string { return "$" + strconv.Itoa(n) },
	Fold:       func(col string) string { return "lower(" + col + ")" },
	Ilike:      "ILIKE",
}

// Store is the store shared by many gateways: a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool

	// subjectWindow is how many of the newest messages matching a
	// search's other filters a subject search reads before it searches
	// them all; 0 searches them all at once.
	subjectWindow int
}

// defaultSubjectWindow: reading 50,000 messages newest first takes tens of
// milliseconds, and finds 100 matches of any word in one subject of 500.
const defaultSubjectWindow = 50000

// Open connects to the database dsn names (a connection string or
// URL; a search_path parameter selects the schema) and brings its schema up
// to date.
func Open(ctx context.Context, dsn string) (tracking.Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("tracking: postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tracking: postgres: %w", err)
	}
	p := &Store{pool: pool, subjectWindow: defaultSubjectWindow}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return migratePostgres(ctx, tx) }); err != nil {
		pool.Close()
		return nil, fmt.Errorf("tracking: postgres: migrate: %w", err)
	}
	return p, nil
}

func migratePostgres(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgSchemaLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mailgate_schema (version integer NOT NULL)`); err != nil {
		return err
	}
	var v int
	err := tx.QueryRow(ctx, `SELECT version FROM mailgate_schema`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO mailgate_schema (version) VALUES (0)`)
	}
	if err != nil {
		return err
	}
	if v > len(pgSchema) {
		return fmt.Errorf("schema version %d is newer than this mailgate knows (%d)", v, len(pgSchema))
	}
	for i := v; i < len(pgSchema); i++ {
		if _, err := tx.Exec(ctx, pgSchema[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if v < len(pgSchema) {
		if _, err := tx.Exec(ctx, `UPDATE mailgate_schema SET version = $1`, len(pgSchema)); err != nil {
			return err
		}
	}
	return trigramIndex(ctx, tx)
}

// trigramIndex adds a pg_trgm index for subject searches (ILIKE '%...%',
// which no btree serves) when it can. Creating the extension takes
// privileges a gateway's role may not have; without the index a subject
// search reads the table, slower but with the same answer. It is tried at
// every start until it works, so an administrator who installs pg_trgm
// later gets the index with the next start.
func trigramIndex(ctx context.Context, tx pgx.Tx) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('messages_subject_trgm') IS NOT NULL`).Scan(&exists); err != nil || exists {
		return err
	}
	// A savepoint, so that a refusal does not abort the migration.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := sp.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm`); err != nil {
		return sp.Rollback(ctx)
	}
	// The extension may live in a schema outside our search_path (it is
	// per database, our tables per schema): name its operator class fully.
	var schema string
	if err := sp.QueryRow(ctx, `SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'`).Scan(&schema); err != nil {
		return sp.Rollback(ctx)
	}
	if _, err := sp.Exec(ctx, `CREATE INDEX messages_subject_trgm ON messages USING gin (subject `+schema+`.gin_trgm_ops)`); err != nil {
		return sp.Rollback(ctx)
	}
	return sp.Commit(ctx)
}

// Close closes the connections.
func (p *Store) Close() error {
	p.pool.Close()
	return nil
}

// BulkLoad prepares for a large import. PostgreSQL takes one as it is
// (COPY; its indexes stay), and done analyzes the tables, so that the
// planner knows their new contents at once rather than when autovacuum
// gets to them: on 10 million messages just written, a subject search
// planned on the statistics of an empty table took 13 s, and 13 ms after
// ANALYZE.
func (p *Store) BulkLoad(ctx context.Context, size int64) (done func(context.Context) error, err error) {
	return func(ctx context.Context) error {
		if _, err := p.pool.Exec(ctx, "ANALYZE messages, recipients, deliveries, conns"); err != nil {
			return fmt.Errorf("tracking: postgres: bulk load: analyze: %w", err)
		}
		return nil
	}, nil
}

// Write stores the batch in one transaction. Messages and connections are
// copied (COPY, streamed while they are encoded) into temporary tables,
// then upserted from there in one statement each; recipients and
// deliveries, short rows, travel as one array per column, unnested by the
// server. (The messages too as arrays, measured, took longer: the client
// built the whole statement before the server saw a byte of it.)
func (p *Store) Write(ctx context.Context, b *tracking.Batch) error {
	msgs, conns := sqlrow.Latest(b)
	if len(msgs) == 0 && len(conns) == 0 && len(b.Watermarks) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// The temporary tables last as long as the connection (or until
		// the transaction that made them is rolled back); ON COMMIT DELETE
		// ROWS empties them after each write.
		if len(msgs) > 0 || len(conns) > 0 {
			if _, err := tx.Exec(ctx, `
				CREATE TEMP TABLE IF NOT EXISTS mailgate_messages_in (LIKE messages) ON COMMIT DELETE ROWS;
				CREATE TEMP TABLE IF NOT EXISTS mailgate_conns_in (LIKE conns) ON COMMIT DELETE ROWS`); err != nil {
				return err
			}
		}
		var batch pgx.Batch
		if len(msgs) > 0 {
			if err := copyMessages(ctx, tx, msgs); err != nil {
				return fmt.Errorf("copy messages: %w", err)
			}
			queueMessages(&batch, msgs)
		}
		if len(conns) > 0 {
			if err := copyConns(ctx, tx, conns); err != nil {
				return fmt.Errorf("copy connections: %w", err)
			}
			batch.Queue(`INSERT INTO conns (` + sqlrow.ConnCols + `) SELECT ` + sqlrow.ConnCols + ` FROM mailgate_conns_in
				ON CONFLICT (host, kind, id) DO UPDATE SET remote_ip = excluded.remote_ip,
				remote_host = excluded.remote_host, sender_group = excluded.sender_group, started = excluded.started,
				finished = excluded.finished, lost = excluded.lost, cause = excluded.cause, state = excluded.state,
				last_command = excluded.last_command, data_bytes = excluded.data_bytes, mids = excluded.mids,
				lines = excluded.lines, dnslist = excluded.dnslist`)
		}
		if len(b.Watermarks) > 0 {
			var hosts []string
			var times []int64
			for h, t := range b.Watermarks {
				hosts, times = append(hosts, pgText(h)), append(times, sqlrow.UnixNano(t))
			}
			batch.Queue(`INSERT INTO watermarks (host, time) SELECT * FROM unnest($1::text[], $2::bigint[])
				ON CONFLICT (host) DO UPDATE SET time = greatest(watermarks.time, excluded.time)`, hosts, times)
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("tracking: postgres: write: %w", err)
	}
	return nil
}

// copyIn copies rows into the temporary table temp.
func copyIn(ctx context.Context, tx pgx.Tx, temp string, cols []string, n int, row func(i int) []any) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{temp}, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
	return err
}

var (
	messageColNames = strings.Fields(strings.ReplaceAll(sqlrow.MessageCols+", lines", ",", " "))
	connColNames    = strings.Fields(strings.ReplaceAll(sqlrow.ConnCols, ",", " "))
)

func copyMessages(ctx context.Context, tx pgx.Tx, ms []*tracking.Message) error {
	return copyIn(ctx, tx, "mailgate_messages_in", messageColNames, len(ms), func(i int) []any {
		m := ms[i]
		return []any{pgText(m.Host), int64(m.MID), int64(m.ICID), sqlrow.EncodeIDs(m.DCIDs), pgText(m.RemoteIP),
			pgText(m.RemoteHost), pgText(m.SenderGroup), pgText(m.Sender), pgText(sqlrow.EncodeRecipients(m.Recipients)),
			pgText(m.Subject), pgText(m.MessageID), m.Size, sqlrow.UnixNano(m.Started), sqlrow.UnixNano(m.Finished),
			pgText(string(m.Status)), pgText(string(m.Abort)), pgText(m.AbortReason), pgText(m.AbortState),
			m.AbortBytes, int64(m.BounceOf), sqlrow.UnixNano(m.Updated), pgText(m.MailFromSPF()), pgText(m.DKIMResultList()),
			pgText(m.DMARCResult()), pgText(m.DNSList), pgText(sqlrow.EncodeAuth(m)), pgText(sqlrow.EncodeLines(m.Lines))}
	})
}

func copyConns(ctx context.Context, tx pgx.Tx, cs []*tracking.Conn) error {
	return copyIn(ctx, tx, "mailgate_conns_in", connColNames, len(cs), func(i int) []any {
		c := cs[i]
		return []any{pgText(c.Host), int16(c.Kind), int64(c.ID), pgText(c.RemoteIP), pgText(c.RemoteHost),
			pgText(c.SenderGroup), sqlrow.UnixNano(c.Started), sqlrow.UnixNano(c.Finished), c.Lost, pgText(c.Cause),
			pgText(c.State), pgText(c.LastCommand), c.DataBytes, sqlrow.EncodeIDs(c.MIDs), pgText(sqlrow.EncodeLines(c.Lines)),
			pgText(c.DNSList)}
	})
}

// queueMessages queues the upsert of the copied messages and the insert of
// their recipients and deliveries. A message's recipients and deliveries
// are only ever added to, so their rows are inserted, never deleted.
func queueMessages(batch *pgx.Batch, ms []*tracking.Message) {
	batch.Queue(`INSERT INTO messages (` + sqlrow.MessageCols + `, lines) SELECT ` + sqlrow.MessageCols + `, lines FROM mailgate_messages_in
		ON CONFLICT (host, mid) DO UPDATE SET icid = excluded.icid, dcids = excluded.dcids,
		remote_ip = excluded.remote_ip, remote_host = excluded.remote_host, sender_group = excluded.sender_group,
		sender = excluded.sender, recipients = excluded.recipients, subject = excluded.subject,
		message_id = excluded.message_id, size = excluded.size, started = excluded.started,
		finished = excluded.finished, status = excluded.status, abort = excluded.abort,
		abort_reason = excluded.abort_reason, abort_state = excluded.abort_state,
		abort_bytes = excluded.abort_bytes, bounce_of = excluded.bounce_of, updated = excluded.updated,
		spf = excluded.spf, dkim = excluded.dkim, dmarc = excluded.dmarc, dnslist = excluded.dnslist,
		auth = excluded.auth, lines = excluded.lines`)
	var rAddr, rHost, dHost []string
	var rMID, dDCID, dMID []int64
	for _, m := range ms {
		host := pgText(m.Host)
		for _, r := range m.Recipients {
			if r.Address != "" {
				rAddr, rHost, rMID = append(rAddr, pgText(r.Address)), append(rHost, host), append(rMID, int64(m.MID))
			}
		}
		for _, d := range m.DCIDs {
			dHost, dDCID, dMID = append(dHost, host), append(dDCID, int64(d)), append(dMID, int64(m.MID))
		}
	}
	if len(rAddr) > 0 {
		batch.Queue(`INSERT INTO recipients (address, host, mid) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
			ON CONFLICT DO NOTHING`, rAddr, rHost, rMID)
	}
	if len(dHost) > 0 {
		batch.Queue(`INSERT INTO deliveries (host, dcid, mid) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
			ON CONFLICT DO NOTHING`, dHost, dDCID, dMID)
	}
}

// pgText makes s storable in a text column. PostgreSQL refuses NUL and
// invalid UTF-8, where SQLite takes any bytes, and one such string would
// fail its whole batch, again at every retry. Those bytes are written as
// the mail log writes them, \xNN; valid text (all of it, in practice: the
// mail log escapes what it logs) is left as it is.
func pgText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0 || (r == utf8.RuneError && n == 1) {
			fmt.Fprintf(&b, `\x%02x`, s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// pgChunk is the number of keys Load sends in one statement.
const pgChunk = 5000

// Load returns the stored records of keys.
func (p *Store) Load(ctx context.Context, keys tracking.Keys) (*tracking.Batch, error) {
	b := &tracking.Batch{}
	for i := 0; i < len(keys.Messages); i += pgChunk {
		part := keys.Messages[i:min(i+pgChunk, len(keys.Messages))]
		hosts, mids := make([]string, len(part)), make([]int64, len(part))
		for j, k := range part {
			hosts[j], mids[j] = pgText(k.Host), int64(k.MID)
		}
		ms, err := p.queryMessages(ctx, `SELECT `+sqlrow.MessageCols+`, lines FROM messages
			WHERE (host, mid) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`, []any{hosts, mids}, true)
		if err != nil {
			return nil, fmt.Errorf("tracking: postgres: load: %w", err)
		}
		b.Messages = append(b.Messages, ms...)
	}
	for i := 0; i < len(keys.Conns); i += pgChunk {
		part := keys.Conns[i:min(i+pgChunk, len(keys.Conns))]
		hosts, kinds, ids := make([]string, len(part)), make([]int16, len(part)), make([]int64, len(part))
		for j, k := range part {
			hosts[j], kinds[j], ids[j] = pgText(k.Host), int16(k.Kind), int64(k.ID)
		}
		rows, err := p.pool.Query(ctx, `SELECT `+sqlrow.ConnCols+` FROM conns
			WHERE (host, kind, id) IN (SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[]))`, hosts, kinds, ids)
		if err != nil {
			return nil, fmt.Errorf("tracking: postgres: load: %w", err)
		}
		cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tracking.Conn, error) { return sqlrow.ScanConn(r) })
		if err != nil {
			return nil, fmt.Errorf("tracking: postgres: load: %w", err)
		}
		b.Conns = append(b.Conns, cs...)
	}
	return b, nil
}

// Find returns one message with its lines, and its connections, in one
// round trip: both queries in one batch, the connections found on the
// server through the message's ICID and DCIDs. Two round trips (Load,
// then Load) put a MID lookup's 99th percentile at the 5 ms line on 10
// million messages.
func (p *Store) Find(ctx context.Context, host string, mid uint64) (*tracking.Message, []*tracking.Conn, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+sqlrow.MessageCols+`, lines FROM messages WHERE host = $1 AND mid = $2`, pgText(host), int64(mid))
	// The DCIDs come from the message's own list: deliveries has no index
	// by message.
	b.Queue(`SELECT `+sqlrow.ConnCols+` FROM conns WHERE host = $1 AND (kind, id) IN (
		SELECT $3::smallint, icid FROM messages WHERE host = $1 AND mid = $2
		UNION ALL
		SELECT $4::smallint, unnest(string_to_array(nullif(dcids, ''), ' ')::bigint[]) FROM messages WHERE host = $1 AND mid = $2)`,
		pgText(host), int64(mid), int16(event.InboundConn), int16(event.OutboundConn))
	br := p.pool.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("tracking: postgres: find: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tracking.Message, error) { return sqlrow.ScanMessage(r, true) })
	if err != nil {
		return nil, nil, fmt.Errorf("tracking: postgres: find: %w", err)
	}
	if rows, err = br.Query(); err != nil {
		return nil, nil, fmt.Errorf("tracking: postgres: find: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tracking.Conn, error) { return sqlrow.ScanConn(r) })
	if err != nil {
		return nil, nil, fmt.Errorf("tracking: postgres: find: %w", err)
	}
	if len(ms) == 0 {
		return nil, nil, fmt.Errorf("%w: MID %d on %s", tracking.ErrNotFound, mid, host)
	}
	return ms[0], cs, nil
}

// Search returns the messages that match q, newest first.
//
// A subject search first reads the newest messages that match the other
// filters (subjectWindow of them), and searches all only when those hold
// fewer matches than the limit. Left to choose, the planner takes the
// trigram index for a word it believes rare, and for a common one then
// reads and sorts every message that holds it: seconds on ten million
// messages, where walking them newest first finds the 100 newest at once.
// A word that is truly rare costs one wasted window.
func (p *Store) Search(ctx context.Context, q tracking.Query) ([]tracking.Message, error) {
	limit := sqlrow.Limit(q)
	if q.Subject != "" && p.subjectWindow > 0 {
		rest := q
		rest.Subject = ""
		where, args := sqlrow.WhereClause(pgDialect, rest, nil)
		args = append(args, sqlrow.SubstringPattern(q.Subject))
		stmt := `SELECT ` + sqlrow.MessageCols + ` FROM (SELECT ` + sqlrow.MessageCols + ` FROM messages` + where +
			sqlrow.Newest(p.subjectWindow) + `) recent` +
			fmt.Sprintf(` WHERE subject ILIKE $%d ESCAPE '\'`, len(args)) + sqlrow.Newest(limit)
		ms, err := p.queryMessages(ctx, stmt, args, false)
		if err != nil {
			return nil, fmt.Errorf("tracking: postgres: search: %w", err)
		}
		if len(ms) == limit {
			return sqlrow.DerefMessages(ms), nil
		}
	}
	where, args := sqlrow.WhereClause(pgDialect, q, nil)
	ms, err := p.queryMessages(ctx, `SELECT `+sqlrow.MessageCols+` FROM messages`+where+sqlrow.Newest(limit), args, false)
	if err != nil {
		return nil, fmt.Errorf("tracking: postgres: search: %w", err)
	}
	return sqlrow.DerefMessages(ms), nil
}

// Histogram counts the messages that match q by interval.
func (p *Store) Histogram(ctx context.Context, q tracking.Query, step time.Duration) ([]tracking.Bucket, error) {
	if step <= 0 {
		return nil, fmt.Errorf("tracking: histogram step %v", step)
	}
	where, args := sqlrow.WhereClause(pgDialect, q, []any{int64(step)})
	rows, err := p.pool.Query(ctx, `SELECT started / $1 AS b, status, abort, count(*) FROM messages`+where+
		` GROUP BY b, status, abort ORDER BY b`, args...)
	if err != nil {
		return nil, fmt.Errorf("tracking: postgres: histogram: %w", err)
	}
	defer rows.Close()
	var out []tracking.Bucket
	for rows.Next() {
		var b, n int64
		var status, abort string
		if err := rows.Scan(&b, &status, &abort, &n); err != nil {
			return nil, fmt.Errorf("tracking: postgres: histogram: %w", err)
		}
		out = sqlrow.AddBucket(out, sqlrow.FromUnixNano(b*int64(step)), tracking.Status(status), tracking.Abort(abort), int(n))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tracking: postgres: histogram: %w", err)
	}
	return out, nil
}

// Watermark returns the time of the newest line stored for host.
func (p *Store) Watermark(ctx context.Context, host string) (time.Time, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT time FROM watermarks WHERE host = $1`, pgText(host)).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("tracking: postgres: watermark of %s: %w", host, err)
	}
	return sqlrow.FromUnixNano(n), nil
}

func (p *Store) queryMessages(ctx context.Context, q string, args []any, withLines bool) ([]*tracking.Message, error) {
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tracking.Message, error) { return sqlrow.ScanMessage(r, withLines) })
}
