package tracking

import (
	"context"
	"errors"
	"time"

	"github.com/mailgate/mailgate/event"
)

// A Store keeps tracking records. Both backends pass the same suite
// (tracking/storetest). A Store is safe for concurrent use: a Tracker
// loads records while its previous batch is being written.
type Store interface {
	// Write stores the batch in one transaction: each record replaces the
	// stored one of the same key (host, MID) or (host, kind, ID), and each
	// watermark replaces the host's.
	Write(ctx context.Context, b *Batch) error

	// Load returns the stored records of these keys, with their lines;
	// keys not stored are absent from the result.
	Load(ctx context.Context, keys Keys) (*Batch, error)

	// Search returns the messages that match q, newest first, without their
	// lines.
	Search(ctx context.Context, q Query) ([]Message, error)

	// Histogram counts the messages that match q (but for its Limit) by
	// the interval of width step their Started falls in, oldest first;
	// intervals without messages are left out.
	Histogram(ctx context.Context, q Query, step time.Duration) ([]Bucket, error)

	// Watermark returns the time of the newest line stored for host (zero
	// when none), from which a gateway catches up from its mail log.
	Watermark(ctx context.Context, host string) (time.Time, error)

	// Find returns one message with its lines, and its connections; an
	// error wrapping ErrNotFound when the store has no such message.
	Find(ctx context.Context, host string, mid uint64) (*Message, []*Conn, error)

	// Prune deletes the n oldest messages (by Started) started before
	// before, with their recipients, deliveries and lines, and up to n
	// connections started before before and before every message kept,
	// in one transaction (Retention keeps n small, for the writer's sake).
	Prune(ctx context.Context, before time.Time, n int) (Pruned, error)

	// Usage returns the records' size on disk and the messages' count.
	Usage(ctx context.Context) (Usage, error)

	// AddGap records that the store misses a stretch of a gateway's log;
	// a gap that overlaps or touches one of the host's stored is merged
	// with it.
	AddGap(ctx context.Context, g Gap) error

	// Gaps returns the gaps that overlap [from, to] (zero: unbounded),
	// oldest first.
	Gaps(ctx context.Context, from, to time.Time) ([]Gap, error)

	Close() error
}

// A BulkLoader is a Store that takes a large import faster when told of
// it beforehand (SQLite: it checkpoints beside the writer and makes its
// indexes and recipient rows once, after the rows; PostgreSQL: it
// analyzes the tables at the end).
type BulkLoader interface {
	// BulkLoad prepares for about size bytes of log; done ends the bulk
	// load and must be called, whether the import succeeded or not.
	BulkLoad(ctx context.Context, size int64) (done func(context.Context) error, err error)
}

// BeginBulk calls s's BulkLoad when it has one.
func BeginBulk(ctx context.Context, s Store, size int64) (done func(context.Context) error, err error) {
	if b, ok := s.(BulkLoader); ok {
		return b.BulkLoad(ctx, size)
	}
	return func(context.Context) error { return nil }, nil
}

// Batch is what a Tracker writes at once.
type Batch struct {
	Messages   []*Message
	Conns      []*Conn
	Watermarks map[string]time.Time // host → time of its newest line in the batch
}

// Keys names records to Load.
type Keys struct {
	Messages []MessageKey
	Conns    []ConnKey
}

// MessageKey names a message.
type MessageKey struct {
	Host string
	MID  uint64
}

// ConnKey names a connection.
type ConnKey struct {
	Host string
	Kind event.ConnKind
	ID   uint64
}

// ErrNotFound is returned by Find when no message has the key.
var ErrNotFound = errors.New("tracking: no such message")
