package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
)

// Prune deletes the n oldest messages started before before, with their
// rows in every table, and the oldest connections (see tracking.Store).
//
// The pages freed go to SQLite's free list and are reused by later
// writes: the file does not shrink (no auto_vacuum, whose page moves
// would cost every write), it stays at about the size the retention
// allows. Usage counts the pages in use, so a size bound is met as soon
// as the rows are gone; an administrator who wants the disk space back
// runs VACUUM with the gateway stopped.
func (s *Store) Prune(ctx context.Context, before time.Time, n int) (tracking.Pruned, error) {
	var p tracking.Pruned
	err := s.immediate(ctx, func(tx *sql.Conn) (err error) {
		p, err = prune(ctx, tx, before, n)
		return err
	})
	if err != nil {
		return tracking.Pruned{}, fmt.Errorf("tracking: prune: %w", err)
	}
	return p, nil
}

// immediate runs fn in a transaction that takes the write lock at once
// (BEGIN IMMEDIATE): one that reads first and writes next fails outright
// ("database is locked", SQLITE_BUSY_SNAPSHOT) when the feed has written
// in between, whatever busy_timeout says. It takes the process's write
// turn first, as Write does.
func (s *Store) immediate(ctx context.Context, fn func(*sql.Conn) error) error {
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
	return immediateOn(ctx, conn, fn)
}

// immediateOn runs fn in a BEGIN IMMEDIATE transaction on conn, committed
// when fn succeeds and rolled back otherwise.
func immediateOn(ctx context.Context, conn *sql.Conn, fn func(*sql.Conn) error) error {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		// A background context: the rollback must happen even when ctx is
		// done, or the connection goes back to the pool mid-transaction.
		conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	return nil
}

func prune(ctx context.Context, tx *sql.Conn, before time.Time, n int) (tracking.Pruned, error) {
	var p tracking.Pruned
	rows, err := tx.QueryContext(ctx, `SELECT m.host, m.mid, m.dcids, d.recipients FROM messages m
		JOIN message_details d USING (host, mid) WHERE m.started < ? ORDER BY m.started LIMIT ?`,
		sqlrow.UnixNano(before), n)
	if err != nil {
		return p, err
	}
	var keys, rcpts, dels [][]any
	for rows.Next() {
		var host, dcids, recipients string
		var mid int64
		if err := rows.Scan(&host, &mid, &dcids, &recipients); err != nil {
			rows.Close()
			return p, err
		}
		keys = append(keys, []any{host, mid})
		ids, err := sqlrow.DecodeIDs(dcids)
		if err != nil {
			rows.Close()
			return p, err
		}
		for _, d := range ids {
			dels = append(dels, []any{host, int64(d), mid})
		}
		rs, err := sqlrow.DecodeRecipients(recipients)
		if err != nil {
			rows.Close()
			return p, err
		}
		for _, r := range rs {
			rcpts = append(rcpts, []any{r.Address, host, mid})
		}
	}
	if err := rows.Close(); err != nil {
		return p, err
	}
	for _, d := range []struct {
		table, key string
		rows       [][]any
	}{
		{"messages", "host, mid", keys},
		{"message_details", "host, mid", keys},
		{"recipients_new", "host, mid", keys}, // empty but during a bulk load
		{"recipients", "address, host, mid", rcpts},
		{"deliveries", "host, dcid, mid", dels},
	} {
		if err := deleteKeys(ctx, tx, d.table, d.key, d.rows); err != nil {
			return p, err
		}
	}
	p.Messages = len(keys)
	// The connections that began before every message kept: a connection
	// outlives its messages by the minutes it stays open, not by days.
	cutoff := sqlrow.UnixNano(before)
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(started) FROM messages`).Scan(&oldest); err != nil {
		return p, err
	}
	if oldest.Valid {
		cutoff = min(cutoff, oldest.Int64)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM conns WHERE rowid IN
		(SELECT rowid FROM conns WHERE started < ? ORDER BY started LIMIT ?)`, cutoff, n)
	if err != nil {
		return p, fmt.Errorf("conns: %w", err)
	}
	conns, err := res.RowsAffected()
	if err != nil {
		return p, fmt.Errorf("conns: %w", err)
	}
	p.Conns = int(conns)
	// Gaps before every message kept no longer explain a missing one.
	if _, err := tx.ExecContext(ctx, `DELETE FROM gaps WHERE lost_to < ?`, cutoff); err != nil {
		return p, fmt.Errorf("gaps: %w", err)
	}
	return p, nil
}

// deleteKeys deletes the rows of table whose key columns are one of keys,
// 256 keys a statement.
func deleteKeys(ctx context.Context, tx *sql.Conn, table, key string, keys [][]any) error {
	const most = 256
	for len(keys) > 0 {
		part := keys[:min(len(keys), most)]
		keys = keys[len(part):]
		args := make([]any, 0, len(part)*len(part[0]))
		for _, k := range part {
			args = append(args, k...)
		}
		q := valueLists("DELETE FROM "+table+" WHERE ("+key+") IN (VALUES ", len(part), len(part[0])) + ")"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

// Usage counts the database's pages in use: those on the free list,
// which deleted rows leave, are the file's but hold no record. The WAL
// (at most about 4 MiB between checkpoints, outside a bulk load) is not
// counted.
func (s *Store) Usage(ctx context.Context) (tracking.Usage, error) {
	var u tracking.Usage
	var pages, free, size int64
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT page_count FROM pragma_page_count()),
		(SELECT freelist_count FROM pragma_freelist_count()), (SELECT page_size FROM pragma_page_size()),
		(SELECT count(*) FROM messages)`).Scan(&pages, &free, &size, &u.Messages)
	if err != nil {
		return u, fmt.Errorf("tracking: usage: %w", err)
	}
	u.Bytes = (pages - free) * size
	return u, nil
}

// AddGap records g, merged with the host's gaps it overlaps or touches.
func (s *Store) AddGap(ctx context.Context, g tracking.Gap) error {
	if err := s.immediate(ctx, func(tx *sql.Conn) error { return addGap(ctx, tx, g) }); err != nil {
		return fmt.Errorf("tracking: record gap: %w", err)
	}
	return nil
}

func addGap(ctx context.Context, tx *sql.Conn, g tracking.Gap) error {
	from, to := sqlrow.UnixNano(g.From), sqlrow.UnixNano(g.To)
	var lo, hi sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(lost_from), max(lost_to) FROM gaps
		WHERE host = ? AND lost_to >= ? AND lost_from <= ?`, g.Host, from, to).Scan(&lo, &hi); err != nil {
		return err
	}
	if lo.Valid {
		from, to = min(from, lo.Int64), max(to, hi.Int64)
		if _, err := tx.ExecContext(ctx, `DELETE FROM gaps WHERE host = ? AND lost_to >= ? AND lost_from <= ?`, g.Host, from, to); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO gaps (host, lost_from, lost_to, noted) VALUES (?, ?, ?, ?)`,
		g.Host, from, to, sqlrow.UnixNano(g.Noted)); err != nil {
		return err
	}
	return nil
}

// Gaps returns the gaps that overlap [from, to].
func (s *Store) Gaps(ctx context.Context, from, to time.Time) ([]tracking.Gap, error) {
	lo, hi := sqlrow.Range(from, to)
	rows, err := s.db.QueryContext(ctx, `SELECT host, lost_from, lost_to, noted FROM gaps
		WHERE lost_to >= ? AND lost_from <= ? ORDER BY lost_from, host`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("tracking: gaps: %w", err)
	}
	defer rows.Close()
	var out []tracking.Gap
	for rows.Next() {
		var g tracking.Gap
		var f, t, n int64
		if err := rows.Scan(&g.Host, &f, &t, &n); err != nil {
			return nil, fmt.Errorf("tracking: gaps: %w", err)
		}
		g.From, g.To, g.Noted = sqlrow.FromUnixNano(f), sqlrow.FromUnixNano(t), sqlrow.FromUnixNano(n)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tracking: gaps: %w", err)
	}
	return out, nil
}
