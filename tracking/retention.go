package tracking

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// A Gap is a stretch of a gateway's log the store misses for good: the
// feed dropped or held its entries, and by the time it read them back the
// mail log had rolled them away. The records between From and To may be
// missing or incomplete.
type Gap struct {
	Host  string    `json:"host"`
	From  time.Time `json:"from"`  // the first time missed
	To    time.Time `json:"to"`    // the mail log's first line kept, or its last deleted write
	Noted time.Time `json:"noted"` // when the feed found it
}

// Usage is how much a store holds.
type Usage struct {
	Bytes    int64 // the records' size on disk (see Store.Usage)
	Messages int64
}

// Pruned counts the records a Prune deleted.
type Pruned struct{ Messages, Conns int }

// Retention bounds what a store keeps: messages older than MaxAge are
// deleted, and the oldest beyond MaxSize. Either zero is no bound.
type Retention struct {
	MaxAge  time.Duration
	MaxSize int64         // bytes, as Store.Usage counts them
	Every   time.Duration // between rounds; 0: a minute (a flood writes a gigabyte in that time)
	Batch   int           // messages deleted per transaction; 0: 1000
	Logger  *slog.Logger

	floor int64 // the size the last round left (see enforce)
}

// Run enforces r on s at once and then every r.Every until ctx is done.
func (r *Retention) Run(ctx context.Context, s Store) {
	if r.MaxAge <= 0 && r.MaxSize <= 0 {
		return
	}
	if r.Every <= 0 {
		r.Every = time.Minute
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	tick := time.NewTicker(r.Every)
	defer tick.Stop()
	for {
		p, err := r.Enforce(ctx, s, time.Now())
		if p.Messages > 0 || p.Conns > 0 {
			r.Logger.Info("tracking: retention deleted old records", "messages", p.Messages, "conns", p.Conns, "bytes", r.floor)
		}
		if err != nil && ctx.Err() == nil {
			r.Logger.Warn("tracking: retention", "err", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Enforce deletes what r does not keep at now: one round of Run.
func (r *Retention) Enforce(ctx context.Context, s Store, now time.Time) (Pruned, error) {
	p, floor, err := r.enforce(ctx, s, now, r.floor)
	r.floor = floor
	return p, err
}

// enforce deletes by age, then by size. A store whose files do not shrink
// when rows are deleted (PostgreSQL's, until VACUUM FULL) stays at the
// size of the last round, floor, while its free space is reused: deleting
// again before it has grown past floor would empty it round by round. It
// returns the size it leaves, the next round's floor.
func (r *Retention) enforce(ctx context.Context, s Store, now time.Time, floor int64) (Pruned, int64, error) {
	var total Pruned
	if r.MaxAge > 0 {
		p, err := r.prune(ctx, s, now.Add(-r.MaxAge), -1)
		total = add(total, p)
		if err != nil {
			return total, floor, fmt.Errorf("by age: %w", err)
		}
	}
	if r.MaxSize <= 0 {
		return total, 0, nil
	}
	u, err := s.Usage(ctx)
	if err != nil {
		return total, floor, fmt.Errorf("by size: %w", err)
	}
	if u.Bytes <= r.MaxSize || u.Bytes <= floor {
		return total, min(floor, u.Bytes), nil
	}
	// Down to 90 %, so that a store at its bound is not pruned every round.
	// The messages deleted are the share of the bytes to free; since pages
	// are not freed in proportion (indexes, pages half full), a store whose
	// size fell but not enough is pruned again, a few times at most.
	low := r.MaxSize / 10 * 9
	for range 4 {
		if u.Messages == 0 {
			break
		}
		n := int64(float64(u.Messages) * float64(u.Bytes-low) / float64(u.Bytes))
		p, err := r.prune(ctx, s, time.Time{}, max(n, 1))
		total = add(total, p)
		if err != nil {
			return total, floor, fmt.Errorf("by size: %w", err)
		}
		was := u.Bytes
		if u, err = s.Usage(ctx); err != nil {
			return total, floor, fmt.Errorf("by size: %w", err)
		}
		if u.Bytes <= r.MaxSize || u.Bytes >= was {
			break
		}
	}
	return total, u.Bytes, nil
}

// prune deletes messages started before before (zero: any), the oldest
// first, at most limit of them (negative: no limit), a batch per
// transaction. Between batches it waits as long as the batch took, so
// that the feed's writes get their turn: pruning a large backlog takes
// at most half the store's time.
func (r *Retention) prune(ctx context.Context, s Store, before time.Time, limit int64) (Pruned, error) {
	batch := r.Batch
	if batch <= 0 {
		batch = 1000
	}
	if before.IsZero() {
		before = time.Unix(0, math.MaxInt64) // after any message
	}
	var total Pruned
	for limit != 0 {
		n := batch
		if limit > 0 && limit < int64(n) {
			n = int(limit)
		}
		start := time.Now()
		p, err := s.Prune(ctx, before, n)
		total = add(total, p)
		if err != nil {
			return total, err
		}
		if limit > 0 {
			limit -= int64(p.Messages)
		}
		if p.Messages < n && p.Conns < n {
			return total, nil // nothing older left
		}
		pause := time.NewTimer(time.Since(start))
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
			return total, ctx.Err()
		}
	}
	return total, nil
}

func add(a, b Pruned) Pruned { return Pruned{a.Messages + b.Messages, a.Conns + b.Conns} }
