package tracking

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// Feed tracks the running gateway: it is an event.Sink on the gateway's
// event stream, and it also takes entries of other gateways' logs (the
// syslog receiver). One goroutine (Run) folds them and writes to the store
// about once a second.
//
// The SMTP path never waits for tracking: Emit only puts the entry in a
// bounded buffer, and when that is full the entry is dropped and counted.
// Nothing is lost for good, because the mail log holds every line: at start,
// and after entries were dropped or the store failed, Run reads the mail log
// from the store's watermark (or the first dropped entry) and feeds what the
// store misses; feeding a line twice changes nothing.
type Feed struct {
	tracker *Tracker // made by Run
	host    string
	logPath string
	flush   func() error
	removed func() time.Time
	loc     *time.Location
	every   time.Duration
	logger  *slog.Logger

	// The buffer: a slice under a lock rather than a channel, so that an
	// entry costs the SMTP path an append, not a wake-up of Run (a dozen
	// entries a message made the channel's wake-ups a sixth of tracking's
	// cost). Run takes the whole slice at each tick, or when it is half
	// full.
	bmu   sync.Mutex
	buf   []item
	spare []item        // the slice Run gave back, for the next entries
	limit int           // entries the buffer holds
	taken chan struct{} // closed when Run takes the buffer (Take waits on it)
	wake  chan struct{} // the buffer is half full

	mu       sync.Mutex
	gap      bool      // entries were dropped, or the store failed
	gapSince time.Time // the earliest such entry; zero: from the watermark
	dropped  atomic.Int64

	// The stretches of log lost for good (see lost): counted and logged
	// when found, kept until the store has them.
	lostGaps  atomic.Int64
	unwritten []Gap // Run's

	// For Lag: the time (UnixNano, 0: none) of the oldest of this
	// gateway's entries in the buffer, and of those Run took and has not
	// yet written to the store.
	backlogSince  atomic.Int64
	inflightSince atomic.Int64
}

// FeedOptions configure a Feed.
type FeedOptions struct {
	Host     string           // this gateway's host name, the host of its records
	LogPath  string           // the mail log's current file, to catch up from; "" disables catching up
	Flush    func() error     // writes the mail log's buffered lines to LogPath (maillog.Writer.Flush); nil: none buffered
	Removed  func() time.Time // the last write of the newest log file deleted (maillog.Writer.Removed); nil: unknown
	Location *time.Location   // of the mail log's times, until its header says; nil: time.Local
	Buffer   int              // entries held for the writer; 0: 65536
	Interval time.Duration    // between writes; 0: one second
	Logger   *slog.Logger
}

// NewFeed returns a Feed. It holds entries from then on; Run writes them.
func NewFeed(o FeedOptions) *Feed {
	if o.Buffer <= 0 {
		o.Buffer = 65536
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Feed{
		host: o.Host, logPath: o.LogPath, flush: o.Flush, removed: o.Removed, loc: o.Location, every: o.Interval, logger: o.Logger,
		limit: o.Buffer, taken: make(chan struct{}), wake: make(chan struct{}, 1),
	}
}

// put appends it unless the buffer is full; when it is, put returns the
// channel that is closed when the buffer is taken.
func (f *Feed) put(it item) (wait <-chan struct{}) {
	f.bmu.Lock()
	n := len(f.buf)
	if n >= f.limit {
		wait = f.taken
		f.bmu.Unlock()
		return wait
	}
	f.buf = append(f.buf, it)
	f.bmu.Unlock()
	if n+1 == f.limit/2 {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// take returns the buffered entries; the slice is the Feed's again at the
// next take.
func (f *Feed) take() []item {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	b := f.buf
	clear(f.spare) // let go of the entries the spare held
	f.buf, f.spare = f.spare[:0], b
	close(f.taken)
	f.taken = make(chan struct{})
	return b
}

// Emit takes one of this gateway's entries without ever blocking.
func (f *Feed) Emit(e event.Entry) {
	if f.put(item{f.host, e}) != nil {
		f.dropped.Add(1)
		f.markGap(e.Time)
		return
	}
	f.backlogSince.CompareAndSwap(0, e.Time.UnixNano())
}

// Lag is how far the store is behind this gateway's mail log: the age of
// the oldest of its entries not yet written (buffered, being written, or
// dropped and still to be read back from the log); 0 when the store holds
// everything.
func (f *Feed) Lag(now time.Time) time.Duration {
	oldest := int64(0)
	for _, t := range []int64{f.backlogSince.Load(), f.inflightSince.Load()} {
		if t != 0 && (oldest == 0 || t < oldest) {
			oldest = t
		}
	}
	f.mu.Lock()
	if f.gap && !f.gapSince.IsZero() && (oldest == 0 || f.gapSince.UnixNano() < oldest) {
		oldest = f.gapSince.UnixNano()
	}
	f.mu.Unlock()
	if oldest == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, oldest)), 0)
}

// Take takes an entry of another gateway's log, waiting for room (a syslog
// sender over TCP is slowed rather than dropped) until ctx is done.
func (f *Feed) Take(ctx context.Context, host string, e event.Entry) error {
	for {
		wait := f.put(item{host, e})
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Dropped returns how many of this gateway's entries did not fit in the
// buffer (and were or will be read back from the mail log).
func (f *Feed) Dropped() int64 { return f.dropped.Load() }

// Lost returns how many gaps the feed found: stretches of the mail log
// rolled away before it could read them back (recorded in the store, see
// Store.Gaps). Meant for a metric: a gateway that loses records says so.
func (f *Feed) Lost() int64 { return f.lostGaps.Load() }

// Run folds and writes to s until ctx is done, then writes what it holds
// (with a short deadline of its own) and returns. It is called once.
func (f *Feed) Run(ctx context.Context, s Store) error {
	f.tracker = NewTracker(s, Options{})
	if err := f.catchUp(ctx, time.Time{}); err != nil && ctx.Err() == nil {
		f.logger.Warn("tracking: catching up from the mail log", "err", err)
		f.markGap(time.Time{})
	}
	tick := time.NewTicker(f.every)
	defer tick.Stop()
	for {
		select {
		case <-f.wake:
			if !f.pushTaken() {
				continue
			}
		case <-tick.C:
			f.pushTaken()
		case <-ctx.Done():
			f.pushTaken()
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return f.tracker.Sync(fctx)
		}
		if err := f.tracker.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			// inflightSince stays: those entries are still not stored.
			f.logger.Warn("tracking: store write failed; the mail log keeps the lines", "err", err)
			// What that write held is read back from the log, from the
			// watermark of the last write that succeeded.
			f.markGap(time.Time{})
			f.shed()
			continue
		}
		f.inflightSince.Store(0)
		f.writeGaps(ctx)
		if since, ok := f.takeGap(); ok {
			if err := f.catchUp(ctx, since); err != nil && ctx.Err() == nil {
				f.logger.Warn("tracking: catching up from the mail log", "err", err)
				f.markGap(since)
			}
		}
	}
}

// pushTaken moves what the buffer holds into the tracker's chunk, and
// reports whether the chunk is full.
func (f *Feed) pushTaken() bool {
	full := false
	if t := f.backlogSince.Swap(0); t != 0 {
		f.inflightSince.CompareAndSwap(0, t)
	}
	for _, it := range f.take() {
		if f.tracker.push(it.host, it.e) {
			full = true
		}
	}
	return full
}

// shed bounds memory while the store fails: beyond a few chunks, the
// entries held are let go and the gap is read back from the mail log once
// the store works again.
func (f *Feed) shed() {
	tr := f.tracker
	if len(tr.chunk) < 4*tr.opts.ChunkSize {
		return
	}
	since := time.Time{}
	for _, it := range tr.chunk {
		if it.host == f.host && (since.IsZero() || it.e.Time.Before(since)) {
			since = it.e.Time
		}
	}
	f.logger.Warn("tracking: store unavailable; letting go of held entries", "entries", len(tr.chunk))
	clear(tr.chunk)
	tr.chunk = tr.chunk[:0]
	if !since.IsZero() {
		f.markGap(since)
	}
}

// markGap records that the store misses lines from t on (zero t: from its
// watermark).
func (f *Feed) markGap(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.gap:
		f.gap, f.gapSince = true, t
	case t.IsZero() || t.Before(f.gapSince):
		f.gapSince = t
	}
}

func (f *Feed) takeGap() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, gap := f.gapSince, f.gap
	f.gap, f.gapSince = false, time.Time{}
	return t, gap
}

// catchUp feeds the mail log's lines from since (zero: from the store's
// watermark for this gateway) to the tracker, then flushes. The last
// second before since is read again: the watermark's second may hold
// lines not yet stored.
func (f *Feed) catchUp(ctx context.Context, since time.Time) error {
	if f.logPath == "" {
		if !since.IsZero() { // dropped, with no log to read them back from
			f.lost(ctx, since, time.Now())
		}
		return nil
	}
	if since.IsZero() {
		w, err := f.tracker.store.Watermark(ctx, f.host)
		if err != nil {
			return err
		}
		since = w
	}
	missed := since
	if !since.IsZero() {
		since = since.Add(-time.Second)
	}
	if f.flush != nil {
		// The lines the store misses may still be in the writer's buffer.
		// A failed write is the log's to report; the catch-up reads what
		// reached the file.
		if err := f.flush(); err != nil {
			f.logger.Warn("tracking: flush the mail log before catching up", "err", err)
		}
	}
	rolled, err := maillog.RolledFiles(f.logPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	files := append(rolled, f.logPath)
	before := f.tracker.Stats()
	im := &Importer{Tracker: f.tracker, Host: f.host, Location: f.loc, Since: since}
	older := false // a file holds only older lines: none was rolled away since
	for _, name := range files {
		st, err := os.Stat(name)
		if err != nil {
			continue // gone since listed
		}
		if !since.IsZero() && st.ModTime().Before(since) {
			older = true
			continue
		}
		if err := im.ImportFile(ctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tracking: catch up: %w", err)
		}
	}
	after := f.tracker.Stats()
	if n := after.Applied - before.Applied; n > 0 {
		f.logger.Info("tracking: caught up from the mail log", "since", since, "lines", n)
	}
	if missed.IsZero() || older {
		return nil
	}
	// A file written to at or after the first line the store misses was
	// deleted, unless the log's oldest line is a whole second before that
	// line (the log's times are to the second); or, for want of the
	// writer's word (the files a previous run deleted), the log's oldest
	// line is after it. Either way the lines between were rolled away.
	var gone time.Time
	if f.removed != nil {
		gone = f.removed()
	}
	switch {
	case !gone.Before(missed) && (im.First.IsZero() || !im.First.Before(missed.Truncate(time.Second))):
		f.lost(ctx, missed, later(gone, im.First))
	case im.First.After(missed):
		f.lost(ctx, missed, im.First)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lost reports that the store misses this gateway's lines from from to
// to for good: in the gateway's log (once), in Lost, and in the store.
func (f *Feed) lost(ctx context.Context, from, to time.Time) {
	f.lostGaps.Add(1)
	f.logger.Warn("tracking: the mail log rolled away lines before they were stored; records of that time may be missing or incomplete",
		"from", from, "to", to, "hint", "logs.mail.max_files and max_size bound what the feed can read back")
	f.unwritten = append(f.unwritten, Gap{Host: f.host, From: from, To: to, Noted: time.Now()})
	f.writeGaps(ctx)
}

// writeGaps records the gaps found in the store; those it cannot are
// tried again after the next write.
func (f *Feed) writeGaps(ctx context.Context) {
	for len(f.unwritten) > 0 {
		if err := f.tracker.store.AddGap(ctx, f.unwritten[0]); err != nil {
			if ctx.Err() == nil {
				f.logger.Warn("tracking: record a gap", "err", err)
			}
			return
		}
		f.unwritten = f.unwritten[1:]
	}
}
