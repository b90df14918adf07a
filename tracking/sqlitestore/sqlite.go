// Package sqlitestore is the tracking.Store in an SQLite database file,
// for one gateway.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite: no cgo, one static binary

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
)

// sqliteSchema holds the migrations, in order; the database records how
// many it has run (PRAGMA user_version).
var sqliteSchema = []string{
	`CREATE TABLE messages (
		host TEXT NOT NULL, mid INTEGER NOT NULL, icid INTEGER NOT NULL, dcids TEXT NOT NULL,
		remote_ip TEXT NOT NULL, remote_host TEXT NOT NULL, sender_group TEXT NOT NULL,
		sender TEXT NOT NULL COLLATE NOCASE, recipients TEXT NOT NULL,
		subject TEXT NOT NULL, message_id TEXT NOT NULL, size INTEGER NOT NULL,
		started INTEGER NOT NULL, finished INTEGER NOT NULL, status TEXT NOT NULL,
		abort TEXT NOT NULL, abort_reason TEXT NOT NULL, abort_state TEXT NOT NULL, abort_bytes INTEGER NOT NULL,
		bounce_of INTEGER NOT NULL, updated INTEGER NOT NULL, lines TEXT NOT NULL,
		PRIMARY KEY (host, mid));
	CREATE TABLE recipients (
		address TEXT NOT NULL COLLATE NOCASE, host TEXT NOT NULL, mid INTEGER NOT NULL,
		PRIMARY KEY (address, host, mid)) WITHOUT ROWID;
	CREATE TABLE deliveries (
		host TEXT NOT NULL, dcid INTEGER NOT NULL, mid INTEGER NOT NULL,
		PRIMARY KEY (host, dcid, mid)) WITHOUT ROWID;
	CREATE TABLE conns (
		host TEXT NOT NULL, kind INTEGER NOT NULL, id INTEGER NOT NULL,
		remote_ip TEXT NOT NULL, remote_host TEXT NOT NULL, sender_group TEXT NOT NULL,
		started INTEGER NOT NULL, finished INTEGER NOT NULL, lost INTEGER NOT NULL,
		cause TEXT NOT NULL, state TEXT NOT NULL, last_command TEXT NOT NULL,
		data_bytes INTEGER NOT NULL, mids TEXT NOT NULL, lines TEXT NOT NULL,
		PRIMARY KEY (host, kind, id));
	CREATE TABLE watermarks (host TEXT PRIMARY KEY, time INTEGER NOT NULL);`,
	// The recipients and the timeline leave the messages table, which
	// searches scan and from which a bulk load makes six indexes: it
	// becomes a fifth of its size. Together they are about 1 KB (the
	// lines compressed), which a 16 KiB page keeps in the key's B-tree
	// itself (WITHOUT ROWID), where rows arrive in MID order, appended.
	`CREATE TABLE message_details (
		host TEXT NOT NULL, mid INTEGER NOT NULL, recipients TEXT NOT NULL, lines BLOB NOT NULL,
		PRIMARY KEY (host, mid)) WITHOUT ROWID;
	INSERT INTO message_details SELECT host, mid, recipients, lines FROM messages;
	ALTER TABLE messages DROP COLUMN recipients;
	ALTER TABLE messages DROP COLUMN lines;`,
	// A bulk load appends the recipient rows to recipients_new and merges
	// them into recipients, in key order, at its end: inserted where their
	// addresses sort, they touched most of the table's pages in every
	// transaction (5 M lines: 249k lines/s staged, 216k inserted in place).
	// Searches read both, through the view.
	`CREATE TABLE recipients_new (address TEXT NOT NULL COLLATE NOCASE, host TEXT NOT NULL, mid INTEGER NOT NULL);
	CREATE VIEW recipients_all AS
		SELECT address, host, mid FROM recipients UNION ALL SELECT address, host, mid FROM recipients_new;`,
	// Retention deletes the oldest connections (retention.go), and the
	// feed records the stretches of log it lost.
	`CREATE INDEX conns_started ON conns (started);
	CREATE TABLE gaps (host TEXT NOT NULL, lost_from INTEGER NOT NULL, lost_to INTEGER NOT NULL, noted INTEGER NOT NULL);
	CREATE INDEX gaps_to ON gaps (lost_to);`,
	// The sender-authentication results: what searches match in messages
	// (the MAIL FROM identity's SPF result, each DKIM signature's, the
	// DMARC result, the DNS list that placed the client), the whole
	// results in message_details. Rows stored before have ''; a record
	// gets its results from its lines when it is next written.
	`ALTER TABLE messages ADD COLUMN spf TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN dkim TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN dmarc TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN dnslist TEXT NOT NULL DEFAULT '';
	ALTER TABLE message_details ADD COLUMN auth TEXT NOT NULL DEFAULT '';
	ALTER TABLE conns ADD COLUMN dnslist TEXT NOT NULL DEFAULT '';`,
}

// sqliteIndexes are the messages' secondary indexes: made at every open
// when missing (a bulk load that was cut short leaves them dropped), and
// dropped and made again around a bulk load (BulkLoad).
var sqliteIndexes = []struct{ name, def string }{
	{"messages_started", "messages (started)"},
	{"messages_sender", "messages (sender, started)"},
	{"messages_icid", "messages (icid)"},
	{"messages_message_id", "messages (message_id)"},
	{"messages_remote_ip", "messages (remote_ip, started)"},
	{"messages_status", "messages (status, started)"},
}

// Store is the embedded store: one database file.
type Store struct {
	db   *sql.DB
	bulk atomic.Pointer[sqliteBulk] // during a bulk load
	// writing holds one token: the process's writers (the feed, the syslog
	// receiver, an import) take turns here instead of in SQLite's busy
	// handler, whose timeout a long batch on a loaded machine outlasts
	// (SQLITE_BUSY). Other processes still meet the busy timeout.
	writing chan struct{}

	smu   sync.Mutex
	stmts map[stmtKey]*sql.Stmt // the writes' statements (see prepared)
}

// sqliteCacheKiB is each connection's page cache.
const sqliteCacheKiB = 65536

// Open opens (creating it and its directory) the database file and
// brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if p, ok := strings.CutPrefix(path, "file:"); ok {
		path, _, _ = strings.Cut(p, "?") // our own pragmas follow
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("tracking: %w", err)
		}
	}
	// WAL lets the page and the CLI read while the gateway writes;
	// synchronous=NORMAL is safe with WAL (a crash loses at most the last
	// transactions, which the mail log replays).
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(OFF)", fmt.Sprintf("cache_size(-%d)", sqliteCacheKiB)} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("tracking: open %s: %w", path, err)
	}
	s := &Store{db: db, writing: make(chan struct{}, 1), stmts: make(map[stmtKey]*sql.Stmt)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("tracking: %s: %w", path, err)
	}
	if err := s.completeBulk(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("tracking: %s: %w", path, err)
	}
	return s, nil
}

// completeBulk does what the end of a bulk load does, whatever of it a
// load cut short left undone: it makes the missing indexes and merges the
// staged recipients.
//
// Both are sorts, which SQLite's sorter spreads over worker threads when
// its memory is small enough to fill more than once: 5 M lines, the
// indexes took 1.5-2.0 s that way, 2.7-3.1 s in one thread with all the
// cache.
func (s *Store) completeBulk(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	sorter := func(threads, cacheKiB int) error {
		_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA threads = %d; PRAGMA cache_size = -%d", threads, cacheKiB))
		return err
	}
	if err := sorter(min(runtime.NumCPU(), 8), 4096); err != nil {
		return err
	}
	defer func() {
		if e := sorter(0, sqliteCacheKiB); err == nil {
			err = e
		}
	}()
	for _, ix := range sqliteIndexes {
		if _, err := conn.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+ix.name+" ON "+ix.def); err != nil {
			return fmt.Errorf("index %s: %w", ix.name, err)
		}
	}
	// Only a write when there is something to merge: every open comes here.
	var staged bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM recipients_new)`).Scan(&staged); err != nil || !staged {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`INSERT OR IGNORE INTO recipients (address, host, mid)
			SELECT address, host, mid FROM recipients_new ORDER BY address, host, mid`,
		`DELETE FROM recipients_new`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("merge recipients: %w", err)
		}
	}
	return tx.Commit()
}

// bytesPerMessage is about how many bytes of ESA mail log one message
// takes (esagen's mixed traffic: 1,480; a message delivered at once, with
// its connection's lines, about 1,200).
const bytesPerMessage = 1500

// bulkCheckpoint is the WAL's length, in pages, that makes a bulk load's
// writer start it over (see checkpointer), instead of SQLite's 1,000:
// 256 MiB with 16 KiB pages.
const bulkCheckpoint = 16384

// sqliteBulk is the state of a bulk load.
type sqliteBulk struct {
	large bool // more messages to come than are stored: indexes dropped, recipients staged
	ckpt  *checkpointer
}

// BulkLoad prepares for an import of about size bytes of log. Checkpoints
// move off the writer (see checkpointer). When the import will add more
// messages than the store holds, the messages' secondary indexes are
// dropped and recipient rows staged, and done makes the indexes again and
// merges the recipients: sorting once beats inserting row by row into six
// B-trees (+20 % on a million lines of log). Searches work meanwhile, the
// indexed ones by scanning. done must be called; if the process dies
// first, the next open does what done would have.
func (s *Store) BulkLoad(ctx context.Context, size int64) (done func(context.Context) error, err error) {
	var rows sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(rowid) FROM messages`).Scan(&rows); err != nil {
		return nil, fmt.Errorf("tracking: bulk load: %w", err)
	}
	large := size/bytesPerMessage > rows.Int64
	if large {
		for _, ix := range sqliteIndexes {
			if _, err := s.db.ExecContext(ctx, "DROP INDEX IF EXISTS "+ix.name); err != nil {
				return nil, fmt.Errorf("tracking: bulk load: %w", err)
			}
		}
	}
	b := &sqliteBulk{large: large, ckpt: startCheckpointer(s.db)}
	s.bulk.Store(b)
	return func(ctx context.Context) error {
		s.bulk.Store(nil)
		if err := b.ckpt.close(); err != nil {
			return fmt.Errorf("tracking: bulk load: %w", err)
		}
		if err := s.completeBulk(ctx); err != nil {
			return fmt.Errorf("tracking: bulk load: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return fmt.Errorf("tracking: bulk load: checkpoint: %w", err)
		}
		return nil
	}, nil
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A new database gets 16 KiB pages: an import writes its pages twice
	// (the WAL, then the database) in 10% less time than with 4 KiB ones.
	// The page size is set before the first table, outside WAL mode.
	var pages int
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if pages <= 1 {
		// Best effort: when another process has just opened the new
		// database too, leaving WAL mode is refused, and 4 KiB pages do.
		for _, p := range []string{"PRAGMA journal_mode = DELETE", "PRAGMA page_size = 16384", "VACUUM"} {
			if _, err := conn.ExecContext(ctx, p); err != nil {
				break
			}
		}
		if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	// BEGIN IMMEDIATE: two processes opening a new database at once must
	// not both create the tables.
	err = immediateOn(ctx, conn, func(conn *sql.Conn) error {
		var v int
		if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if v > len(sqliteSchema) {
			return fmt.Errorf("schema version %d is newer than this mailgate knows (%d)", v, len(sqliteSchema))
		}
		for i := v; i < len(sqliteSchema); i++ {
			if _, err := conn.ExecContext(ctx, sqliteSchema[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(sqliteSchema)))
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// writeTurn waits for the process's turn to write (see Store.writing) and
// returns the function that gives it back.
func (s *Store) writeTurn(ctx context.Context) (func(), error) {
	select {
	case s.writing <- struct{}{}:
		return func() { <-s.writing }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close closes the database.
func (s *Store) Close() error {
	var err error
	if b := s.bulk.Swap(nil); b != nil { // a bulk load cut short
		err = b.ckpt.close()
	}
	s.smu.Lock()
	for k, st := range s.stmts {
		err = errors.Join(err, st.Close())
		delete(s.stmts, k)
	}
	s.smu.Unlock()
	return errors.Join(err, s.db.Close())
}

// sqliteMessageCols are the columns of SQLite's messages table: the
// recipients are in message_details.
var sqliteMessageCols = strings.Replace(strings.Replace(sqlrow.MessageCols, " recipients,", "", 1), ", auth", "", 1)

// sqliteMessages is a message with its details. CROSS JOIN keeps SQLite
// from driving a search from message_details, which has no index to
// answer it with.
const sqliteMessages = `messages CROSS JOIN message_details USING (host, mid)`

// Write stores the batch in one transaction. Rows go many to a statement:
// a statement's fixed cost (bind, step, reset through database/sql) was
// most of an import's time with one row each.
func (s *Store) Write(ctx context.Context, b *tracking.Batch) error {
	release, err := s.writeTurn(ctx)
	if err != nil {
		return err
	}
	defer release()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The checkpoint interval is the connection's: set it on each write,
	// since the pool may hand any connection out.
	ckpt := 1000 // SQLite's default
	bulk := s.bulk.Load()
	if bulk != nil {
		ckpt = 0 // the bulk load's checkpointer copies the WAL
		if err := bulk.ckpt.catchUp(ctx); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", ckpt)); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The details are compressed and encoded beside the inserts of the
	// messages' own rows: the writer is an import's critical path, and
	// the fold leaves the other core idle at times (5 M lines: a median
	// of 216,000 lines/s against 203,000 inline, six runs each).
	messages, conns := sqlrow.Latest(b)
	encoded := make(chan detailRows, 1)
	go func() { encoded <- sqliteDetailRows(messages, conns) }()
	var msgs, rcpts, dels [][]any
	for _, m := range messages {
		msgs = append(msgs, []any{m.Host, int64(m.MID), int64(m.ICID), sqlrow.EncodeIDs(m.DCIDs),
			m.RemoteIP, m.RemoteHost, m.SenderGroup, m.Sender,
			m.Subject, m.MessageID, m.Size, sqlrow.UnixNano(m.Started), sqlrow.UnixNano(m.Finished), string(m.Status),
			string(m.Abort), m.AbortReason, m.AbortState, m.AbortBytes, int64(m.BounceOf), sqlrow.UnixNano(m.Updated),
			m.MailFromSPF(), m.DKIMResultList(), m.DMARCResult(), m.DNSList})
		// A message's recipients and deliveries are only ever added to, so
		// their rows are inserted, never deleted.
		for _, r := range m.Recipients {
			if r.Address != "" {
				rcpts = append(rcpts, []any{r.Address, m.Host, int64(m.MID)})
			}
		}
		for _, d := range m.DCIDs {
			dels = append(dels, []any{m.Host, int64(d), int64(m.MID)})
		}
	}
	if err := s.insertRows(ctx, tx, "messages", sqliteMessageCols, "host, mid", replaceRows, msgs); err != nil {
		return err
	}
	rcptTable := "recipients"
	if bulk != nil && bulk.large {
		rcptTable = "recipients_new"
	}
	if err := s.insertRows(ctx, tx, rcptTable, "address, host, mid", "", keepRows, rcpts); err != nil {
		return err
	}
	if err := s.insertRows(ctx, tx, "deliveries", "host, dcid, mid", "", keepRows, dels); err != nil {
		return err
	}
	rows := <-encoded
	if err := s.insertRows(ctx, tx, "message_details", "host, mid, recipients, lines, auth", "host, mid", replaceRows, rows.details); err != nil {
		return err
	}
	if err := s.insertRows(ctx, tx, "conns", sqlrow.ConnCols, "host, kind, id", replaceRows, rows.conns); err != nil {
		return err
	}
	for host, t := range b.Watermarks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO watermarks (host, time) VALUES (?, ?)
			ON CONFLICT (host) DO UPDATE SET time = max(time, excluded.time)`, host, sqlrow.UnixNano(t)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if bulk != nil {
		bulk.ckpt.committed()
	}
	return nil
}

// detailRows are the rows of a batch's message details and connections:
// the bulk of its bytes, in JSON and compressed.
type detailRows struct{ details, conns [][]any }

func sqliteDetailRows(messages []*tracking.Message, conns []*tracking.Conn) detailRows {
	details := make([][]any, 0, len(messages))
	var buf []byte
	for _, m := range messages {
		var lines []byte
		lines, buf = sqlrow.PackLines(buf, m.Lines)
		details = append(details, []any{m.Host, int64(m.MID), sqlrow.EncodeRecipients(m.Recipients), lines, sqlrow.EncodeAuth(m)})
	}
	connRows := make([][]any, 0, len(conns))
	for _, c := range conns {
		var lines []byte
		lines, buf = sqlrow.PackLines(buf, c.Lines)
		connRows = append(connRows, []any{c.Host, int(c.Kind), int64(c.ID), c.RemoteIP, c.RemoteHost,
			c.SenderGroup, sqlrow.UnixNano(c.Started), sqlrow.UnixNano(c.Finished), c.Lost, c.Cause, c.State,
			c.LastCommand, c.DataBytes, sqlrow.EncodeIDs(c.MIDs), lines, c.DNSList})
	}
	return detailRows{details, connRows}
}

// How insertRows treats a row whose key is stored already.
const (
	keepRows    = false // the stored row stays (the rows are facts only ever added)
	replaceRows = true  // the new row replaces it (a record's newer version)
)

// insertRows inserts rows of cols into table, up to 256 rows (and well
// under SQLite's 32766 variables) a statement. key names the columns,
// first in cols, that identify a row.
//
// Only INSERT OR IGNORE and DELETE are used, never INSERT OR REPLACE: a
// statement of many rows that may abort halfway (REPLACE does, on a NOT
// NULL column without a default) makes SQLite copy every page it touches
// to a statement journal first, which was a sixth of an import's writing.
// A replacing insert that leaves rows out, because their keys are stored,
// deletes the part's keys and inserts it again. Rows arrive in key order
// (sqlrow.Latest), so the records stored already, the older
// ones, gather in the first parts.
//
// The parts are of 256 rows, then of the powers of two that make up the
// rest, so that a handful of statements serve every batch and each is
// prepared once (Store.prepared). Prepared for each batch, the statements
// of a running gateway's batches (a second's mail each) cost a tenth of
// its tracking's writing.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, table, cols, key string, replace bool, rows [][]any) error {
	const most = 256
	keyCols := strings.Count(key, ",") + 1
	var args, keys []any
	for len(rows) > 0 {
		n := most
		for n > len(rows) {
			n /= 2
		}
		part := rows[:n]
		rows = rows[n:]
		ins, err := s.prepared(ctx, tx, stmtKey{table: table, cols: cols, rows: n, width: len(part[0])})
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		args = args[:0]
		for _, r := range part {
			args = append(args, r...)
		}
		res, err := ins.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		if !replace {
			continue
		}
		added, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		if added == int64(n) {
			continue
		}
		del, err := s.prepared(ctx, tx, stmtKey{table: table, cols: key, rows: n, width: keyCols, delete: true})
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		keys = keys[:0]
		for _, r := range part {
			keys = append(keys, r[:keyCols]...)
		}
		if _, err := del.ExecContext(ctx, keys...); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		if _, err := ins.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

// stmtKey names one of the writes' statements: an insert of rows rows of
// width columns cols into table, or the delete of rows keys (cols) of
// width columns.
type stmtKey struct {
	table, cols string
	rows, width int
	delete      bool
}

func (k stmtKey) query() string {
	if k.delete {
		return valueLists("DELETE FROM "+k.table+" WHERE ("+k.cols+") IN (VALUES ", k.rows, k.width) + ")"
	}
	return valueLists("INSERT OR IGNORE INTO "+k.table+" ("+k.cols+") VALUES ", k.rows, k.width)
}

// prepared returns statement k for tx: prepared on the database once
// (database/sql then prepares it once on each connection that runs it, and
// keeps it), and kept until Close.
func (s *Store) prepared(ctx context.Context, tx *sql.Tx, k stmtKey) (*sql.Stmt, error) {
	s.smu.Lock()
	st := s.stmts[k]
	s.smu.Unlock()
	if st == nil {
		var err error
		if st, err = s.db.PrepareContext(ctx, k.query()); err != nil {
			return nil, err
		}
		s.smu.Lock()
		if prev := s.stmts[k]; prev != nil {
			st.Close()
			st = prev
		} else {
			s.stmts[k] = st
		}
		s.smu.Unlock()
	}
	return tx.StmtContext(ctx, st), nil
}

// valueLists is head followed by n lists of cols placeholders.
func valueLists(head string, n, cols int) string {
	var q strings.Builder
	one := "(" + strings.Repeat("?,", cols-1) + "?)"
	q.Grow(len(head) + n*(len(one)+1))
	q.WriteString(head)
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(one)
	}
	return q.String()
}

// Load returns the stored records of keys.
func (s *Store) Load(ctx context.Context, keys tracking.Keys) (*tracking.Batch, error) {
	b := &tracking.Batch{}
	keys, err := s.storable(ctx, keys)
	if err != nil {
		return nil, err
	}
	const chunk = 400 // bound variables per statement
	for i := 0; i < len(keys.Messages); i += chunk {
		part := keys.Messages[i:min(i+chunk, len(keys.Messages))]
		var q strings.Builder
		args := make([]any, 0, 2*len(part))
		q.WriteString(`SELECT ` + sqlrow.MessageCols + `, lines FROM ` + sqliteMessages + ` WHERE (host, mid) IN (VALUES `)
		for j, k := range part {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?)")
			args = append(args, k.Host, int64(k.MID))
		}
		q.WriteByte(')')
		ms, err := s.queryMessages(ctx, q.String(), args, true)
		if err != nil {
			return nil, err
		}
		b.Messages = append(b.Messages, ms...)
	}
	for i := 0; i < len(keys.Conns); i += chunk {
		part := keys.Conns[i:min(i+chunk, len(keys.Conns))]
		var q strings.Builder
		args := make([]any, 0, 3*len(part))
		q.WriteString(`SELECT ` + sqlrow.ConnCols + ` FROM conns WHERE (host, kind, id) IN (VALUES `)
		for j, k := range part {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?)")
			args = append(args, k.Host, int(k.Kind), int64(k.ID))
		}
		q.WriteByte(')')
		rows, err := s.db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			c, err := sqlrow.ScanConn(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			b.Conns = append(b.Conns, c)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// storable leaves out of keys those above the highest key stored for their
// host (and kind of connection), which cannot be stored: most of what a
// running gateway's feed asks for, its new messages and connections. One
// look at the end of each primary key answers for them all, where the
// lookups of a second's new records took a tenth of its tracking's time.
func (s *Store) storable(ctx context.Context, keys tracking.Keys) (tracking.Keys, error) {
	var out tracking.Keys
	topMID := make(map[string]int64)
	for _, k := range keys.Messages {
		top, ok := topMID[k.Host]
		if !ok {
			var err error
			if top, err = s.top(ctx, `SELECT max(mid) FROM messages WHERE host = ?`, k.Host); err != nil {
				return out, err
			}
			topMID[k.Host] = top
		}
		if int64(k.MID) <= top {
			out.Messages = append(out.Messages, k)
		}
	}
	type hostKind struct {
		host string
		kind event.ConnKind
	}
	topID := make(map[hostKind]int64)
	for _, k := range keys.Conns {
		hk := hostKind{k.Host, k.Kind}
		top, ok := topID[hk]
		if !ok {
			var err error
			if top, err = s.top(ctx, `SELECT max(id) FROM conns WHERE host = ? AND kind = ?`, k.Host, int(k.Kind)); err != nil {
				return out, err
			}
			topID[hk] = top
		}
		if int64(k.ID) <= top {
			out.Conns = append(out.Conns, k)
		}
	}
	return out, nil
}

// top returns the one value of query, a max(); math.MinInt64 when there
// is none.
func (s *Store) top(ctx context.Context, query string, args ...any) (int64, error) {
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("tracking: load: %w", err)
	}
	if !n.Valid {
		return math.MinInt64, nil
	}
	return n.Int64, nil
}

// Find returns one message with its lines, and its connections: two
// queries, which in-process cost no round trip.
func (s *Store) Find(ctx context.Context, host string, mid uint64) (*tracking.Message, []*tracking.Conn, error) {
	return sqlrow.FindByLoad(ctx, s, host, mid)
}

// Search returns the messages that match q, newest first.
func (s *Store) Search(ctx context.Context, q tracking.Query) ([]tracking.Message, error) {
	where, args := sqlrow.WhereClause(sqliteDialect, q, nil)
	ms, err := s.queryMessages(ctx, `SELECT `+sqlrow.MessageCols+` FROM `+sqliteMessages+where+sqlrow.Newest(sqlrow.Limit(q)), args, false)
	if err != nil {
		return nil, err
	}
	return sqlrow.DerefMessages(ms), nil
}

// Histogram counts the messages that match q by interval.
func (s *Store) Histogram(ctx context.Context, q tracking.Query, step time.Duration) ([]tracking.Bucket, error) {
	if step <= 0 {
		return nil, fmt.Errorf("tracking: histogram step %v", step)
	}
	where, args := sqlrow.WhereClause(sqliteDialect, q, []any{int64(step)})
	rows, err := s.db.QueryContext(ctx, `SELECT started / ? AS b, status, abort, count(*) FROM messages`+where+
		` GROUP BY b, status, abort ORDER BY b`, args...)
	if err != nil {
		return nil, fmt.Errorf("tracking: histogram: %w", err)
	}
	defer rows.Close()
	var out []tracking.Bucket
	for rows.Next() {
		var b int64
		var status, abort string
		var n int
		if err := rows.Scan(&b, &status, &abort, &n); err != nil {
			return nil, fmt.Errorf("tracking: histogram: %w", err)
		}
		out = sqlrow.AddBucket(out, sqlrow.FromUnixNano(b*int64(step)), tracking.Status(status), tracking.Abort(abort), n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tracking: histogram: %w", err)
	}
	return out, nil
}

// sqliteDialect: "?" placeholders; sender and address are COLLATE NOCASE
// and SQLite's LIKE ignores (ASCII) case, so nothing needs folding.
var sqliteDialect = sqlrow.Dialect{
	Recipients: "recipients_all",
	Arg:        func(int) string { return "?" },
	Fold:       func(col string) string { return col },
	Ilike:      "LIKE",
}

// Watermark returns the time of the newest line stored for host.
func (s *Store) Watermark(ctx context.Context, host string) (time.Time, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT time FROM watermarks WHERE host = ?`, host).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("tracking: watermark of %s: %w", host, err)
	}
	return sqlrow.FromUnixNano(n), nil
}

func (s *Store) queryMessages(ctx context.Context, q string, args []any, withLines bool) ([]*tracking.Message, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("tracking: query: %w", err)
	}
	defer rows.Close()
	var out []*tracking.Message
	for rows.Next() {
		m, err := sqlrow.ScanMessage(rows, withLines)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tracking: query: %w", err)
	}
	return out, nil
}
