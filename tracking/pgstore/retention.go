package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
)

// Prune deletes the n oldest messages started before before, with their
// rows in every table, and the oldest connections (see tracking.Store).
//
// PostgreSQL keeps the deleted rows' space in the tables' files until
// (auto)vacuum marks it free, and then reuses it: the files do not
// shrink. Usage counts the files, so after a round of pruning by size the
// store stays at the size it had; tracking.Retention prunes again when it
// grows beyond that. VACUUM FULL gives the space back, holding an
// exclusive lock on each table while it copies it.
func (p *Store) Prune(ctx context.Context, before time.Time, n int) (tracking.Pruned, error) {
	var out tracking.Pruned
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		cutoff := sqlrow.UnixNano(before)
		// The messages' keys, then every table's rows of them, in one
		// statement: a CTE per table, all fed from the first.
		var msgs int
		err := tx.QueryRow(ctx, `WITH gone AS (
				DELETE FROM messages WHERE (host, mid) IN
					(SELECT host, mid FROM messages WHERE started < $1 ORDER BY started LIMIT $2)
				RETURNING host, mid),
			r AS (DELETE FROM recipients USING gone WHERE recipients.host = gone.host AND recipients.mid = gone.mid),
			d AS (DELETE FROM deliveries USING gone WHERE deliveries.host = gone.host AND deliveries.mid = gone.mid)
			SELECT count(*) FROM gone`, cutoff, n).Scan(&msgs)
		if err != nil {
			return err
		}
		out.Messages = msgs
		var oldest *int64
		if err := tx.QueryRow(ctx, `SELECT min(started) FROM messages`).Scan(&oldest); err != nil {
			return err
		}
		if oldest != nil {
			cutoff = min(cutoff, *oldest)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM conns WHERE (host, kind, id) IN
			(SELECT host, kind, id FROM conns WHERE started < $1 ORDER BY started LIMIT $2)`, cutoff, n)
		if err != nil {
			return err
		}
		out.Conns = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `DELETE FROM gaps WHERE lost_to < $1`, cutoff)
		return err
	})
	if err != nil {
		return tracking.Pruned{}, fmt.Errorf("tracking: postgres: prune: %w", err)
	}
	return out, nil
}

// Usage counts the tables' files, with their indexes and TOAST.
func (p *Store) Usage(ctx context.Context) (tracking.Usage, error) {
	var u tracking.Usage
	err := p.pool.QueryRow(ctx, `SELECT pg_total_relation_size('messages') + pg_total_relation_size('recipients')
		+ pg_total_relation_size('deliveries') + pg_total_relation_size('conns'), (SELECT count(*) FROM messages)`).
		Scan(&u.Bytes, &u.Messages)
	if err != nil {
		return u, fmt.Errorf("tracking: postgres: usage: %w", err)
	}
	return u, nil
}

// AddGap records g, merged with the host's gaps it overlaps or touches.
func (p *Store) AddGap(ctx context.Context, g tracking.Gap) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// Gaps of a host are recorded one at a time.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mailgate gaps ' || $1))`, g.Host); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `WITH merged AS (
				DELETE FROM gaps WHERE host = $1 AND lost_to >= $2 AND lost_from <= $3
				RETURNING lost_from, lost_to)
			INSERT INTO gaps (host, lost_from, lost_to, noted)
				SELECT $1, least($2, min(lost_from)), greatest($3, max(lost_to)), $4 FROM merged`,
			g.Host, sqlrow.UnixNano(g.From), sqlrow.UnixNano(g.To), sqlrow.UnixNano(g.Noted))
		return err
	})
	if err != nil {
		return fmt.Errorf("tracking: postgres: record gap: %w", err)
	}
	return nil
}

// Gaps returns the gaps that overlap [from, to].
func (p *Store) Gaps(ctx context.Context, from, to time.Time) ([]tracking.Gap, error) {
	lo, hi := sqlrow.Range(from, to)
	rows, err := p.pool.Query(ctx, `SELECT host, lost_from, lost_to, noted FROM gaps
		WHERE lost_to >= $1 AND lost_from <= $2 ORDER BY lost_from, host`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("tracking: postgres: gaps: %w", err)
	}
	defer rows.Close()
	var out []tracking.Gap
	for rows.Next() {
		var g tracking.Gap
		var f, t, n int64
		if err := rows.Scan(&g.Host, &f, &t, &n); err != nil {
			return nil, fmt.Errorf("tracking: postgres: gaps: %w", err)
		}
		g.From, g.To, g.Noted = sqlrow.FromUnixNano(f), sqlrow.FromUnixNano(t), sqlrow.FromUnixNano(n)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tracking: postgres: gaps: %w", err)
	}
	return out, nil
}
