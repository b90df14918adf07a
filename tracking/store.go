package tracking

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// latest returns the batch's records in key order, the last of each key
// only (as INSERT OR REPLACE one by one would keep). Stores write rows in
// key order: they are then appended to the B-trees rather than split into
// their middle, and writers that lock rows in the same order cannot
// deadlock.
func (b *Batch) latest() ([]*Message, []*Conn) {
	return lastOfKey(b.Messages, func(x, y *Message) int {
			return cmp.Or(strings.Compare(x.Host, y.Host), cmp.Compare(x.MID, y.MID))
		}), lastOfKey(b.Conns, func(x, y *Conn) int {
			return cmp.Or(strings.Compare(x.Host, y.Host), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.ID, y.ID))
		})
}

// lastOfKey sorts a copy of rs stably by key and keeps the last of each
// run of equal keys.
func lastOfKey[R any](rs []R, compare func(a, b R) int) []R {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, compare)
	n := 0
	for i := range out {
		if i+1 < len(out) && compare(out[i], out[i+1]) == 0 {
			continue
		}
		out[n] = out[i]
		n++
	}
	clear(out[n:])
	return out[:n]
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

// findByLoad is Find through Load: the message, then its connections.
func findByLoad(ctx context.Context, s Store, host string, mid uint64) (*Message, []*Conn, error) {
	b, err := s.Load(ctx, Keys{Messages: []MessageKey{{host, mid}}})
	if err != nil {
		return nil, nil, err
	}
	if len(b.Messages) == 0 {
		return nil, nil, fmt.Errorf("%w: MID %d on %s", ErrNotFound, mid, host)
	}
	m := b.Messages[0]
	var keys Keys
	if m.ICID != 0 {
		keys.Conns = append(keys.Conns, ConnKey{host, event.InboundConn, m.ICID})
	}
	for _, d := range m.DCIDs {
		if d != 0 {
			keys.Conns = append(keys.Conns, ConnKey{host, event.OutboundConn, d})
		}
	}
	if len(keys.Conns) == 0 {
		return m, nil, nil
	}
	cb, err := s.Load(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	return m, cb.Conns, nil
}

// Open opens the store a configuration names: driver "sqlite" (dsn: the
// database file) or "postgres" (dsn: a connection string or URL).
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	switch driver {
	case "sqlite", "":
		return OpenSQLite(ctx, dsn)
	case "postgres":
		return OpenPostgres(ctx, dsn)
	}
	return nil, fmt.Errorf("tracking: unknown driver %q (sqlite or postgres)", driver)
}

// addBucket adds n messages of status s (and abort kind a) to the bucket
// starting at t, the last of out or a new one.
func addBucket(out []Bucket, t time.Time, s Status, a Abort, n int) []Bucket {
	if len(out) == 0 || !out[len(out)-1].Start.Equal(t) {
		out = append(out, Bucket{Start: t, Status: map[Status]int{}, Abort: map[Abort]int{}})
	}
	b := &out[len(out)-1]
	b.Status[s] += n
	if a != "" {
		b.Abort[a] += n
	}
	return out
}
