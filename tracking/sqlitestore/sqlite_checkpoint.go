package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// A checkpointer copies the WAL into the database file beside a bulk
// load's writer, on a connection of its own, after each of its commits.
// A checkpoint run by the writer itself (SQLite's autocheckpoint) stopped
// it for the two fsyncs every checkpoint makes: about 3 of an import's
// 20 seconds (5 M lines), the difference synchronous=OFF made. A PASSIVE
// checkpoint does not block the writer, and durability is SQLite's, as
// before.
//
// The WAL starts over only when a transaction begins with every frame
// copied, which a writer that never waits would not see: when the WAL has
// grown past bulkCheckpoint pages, the writer runs one pass itself before
// its next transaction, which then copies only the last commit.
type checkpointer struct {
	db     *sql.DB
	mu     sync.Mutex    // held by a pass
	err    error         // the first failed pass's, under mu
	frames atomic.Int64  // the WAL's length in frames at the last pass
	kick   chan struct{} // a commit to copy
	stop   chan struct{}
	done   chan struct{}
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case <-c.kick:
				c.pass(context.Background()) // a failure is kept in c.err
			}
		}
	}()
	return c
}

// committed tells the checkpointer that there is more to copy.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// catchUp runs a pass when the WAL has grown too long, so that the next
// transaction starts it over.
func (c *checkpointer) catchUp(ctx context.Context) error {
	if c.frames.Load() <= bulkCheckpoint {
		return nil
	}
	if err := c.pass(ctx); err != nil {
		return err
	}
	c.frames.Store(0)
	return nil
}

func (c *checkpointer) pass(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var busy, log, copied int64
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		err = fmt.Errorf("checkpoint: %w", err)
		if c.err == nil {
			c.err = err
		}
		return err
	}
	c.frames.Store(log)
	return nil
}

// close stops the checkpointer and returns the first error of its passes.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
