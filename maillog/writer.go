package maillog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Options configure a Writer. The zero value is usable.
type Options struct {
	Level         event.Level    // entries above it (less severe) are dropped; 0: Info
	MaxSize       int64          // roll over when the file would exceed this; 0: 10 MiB
	MaxFiles      int            // rolled files kept, the oldest deleted beyond it; 0: 10
	Location      *time.Location // timestamps; nil: time.Local
	Version       string         // for the "Version:" header line; "": "mailgate"
	Serial        string         // for "SN:"; "": the host name
	FlushInterval time.Duration  // buffered lines reach the file within this; 0: 100ms

	// Rollover by time, besides by size (the ESA's rollover schedule):
	// the current file is rolled over once it is RollEvery old, and, with
	// RollDaily, at the first RollAt (a time of day in Location) after it
	// was begun. A file that holds only its header lines is not rolled
	// over by time (an idle gateway piles up no empty files); its age
	// then counts from the moment it was due. An existing file that
	// Open appends to is as old as its first line's timestamp.
	RollEvery time.Duration
	RollDaily bool
	RollAt    time.Duration // since midnight

	// MaxAge deletes rolled files last written longer ago than this, at
	// each rollover and every hour; 0: rolled files are kept up to
	// MaxFiles only.
	MaxAge time.Duration
}

const (
	defaultMaxSize  = 10 << 20
	defaultMaxFiles = 10
	defaultInterval = 100 * time.Millisecond

	// flushAt is the buffer size at which Emit wakes the flusher early.
	flushAt = 256 << 10
	// maxBuffered bounds the memory held when the file cannot be written
	// (a hung disk): beyond it Emit drops lines rather than block.
	maxBuffered = 32 << 20
	// keepCap is the largest buffer kept for reuse.
	keepCap = 4 << 20
	// ageCheckEvery is how often rolled files are checked against MaxAge
	// between rollovers.
	ageCheckEvery = time.Hour
)

// A Writer writes the mail log file the ESA way: the current file is
// <dir>/mail.current (whatever path Open was given), begins with the
// "Begin Logfile", "Version:" and "Time offset from UTC:" header lines, and
// is rolled over to <dir>/mail.@20140814T110431.s when it would exceed
// MaxSize or when asked; the oldest rolled files beyond MaxFiles are
// deleted.
//
// Emit only renders the line and appends it to a buffer; one goroutine
// writes the buffer to the file every FlushInterval, or sooner when it
// fills. A write error never reaches Emit's callers: it is logged once with
// log/slog and kept for Err, and the lines that could not be written are
// lost (a log must not stop the mail). Close stops the flusher goroutine.
type Writer struct {
	path     string
	dir      string
	base     string // file name without ".current"
	level    event.Level
	loc      *time.Location
	maxSize  int64
	maxFiles int
	version  string
	serial   string

	rollEvery time.Duration
	rollDaily bool
	rollAt    time.Duration
	maxAge    time.Duration

	removed atomic.Int64 // see Removed

	mu     sync.Mutex // guards the fields below it
	buf    []byte
	closed bool

	fmu        sync.Mutex // guards the file and serialises writes, rollovers, reopens
	f          *os.File
	size       int64     // bytes in f
	headerSize int64     // bytes of header lines f began with (0 for a file we appended to)
	begun      time.Time // when f was begun: the age that rollover by time counts
	spare      []byte

	// The failures, for the metrics, the alerts and the gateway's log
	// (Stats): counted with their error under one lock, so that a count
	// is never seen without the error that goes with it.
	errMu       sync.Mutex
	err         error
	lastErr     error
	writeErrors uint64 // flushes that failed (a full disk, an I/O error)
	lostLines   uint64 // lines of those flushes that did not reach the file
	dropped     uint64 // lines Emit dropped, the buffer being full

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// Open opens or creates the log file at path (creating its directory) and
// starts the flusher. A file that already exists is appended to.
func Open(path string, o Options) (*Writer, error) {
	w := &Writer{
		path:     path,
		dir:      filepath.Dir(path),
		base:     strings.TrimSuffix(filepath.Base(path), ".current"),
		level:    o.Level,
		loc:      o.Location,
		maxSize:  o.MaxSize,
		maxFiles: o.MaxFiles,
		version:  o.Version,
		serial:   o.Serial,

		rollEvery: o.RollEvery,
		rollDaily: o.RollDaily,
		rollAt:    o.RollAt,
		maxAge:    o.MaxAge,
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if w.level == 0 {
		w.level = event.Info
	}
	if w.loc == nil {
		w.loc = time.Local
	}
	if w.maxSize <= 0 {
		w.maxSize = defaultMaxSize
	}
	if w.maxFiles <= 0 {
		w.maxFiles = defaultMaxFiles
	}
	if w.version == "" {
		w.version = "mailgate"
	}
	if w.serial == "" {
		w.serial, _ = os.Hostname() // a missing SN is no reason to refuse to log
		if w.serial == "" {
			w.serial = "unknown"
		}
	}
	interval := o.FlushInterval
	if interval <= 0 {
		interval = defaultInterval
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return nil, fmt.Errorf("maillog: open %s: %w", path, err)
	}
	if err := w.openCurrent(); err != nil {
		if w.f != nil {
			w.f.Close()
		}
		return nil, err
	}
	if w.maxAge > 0 {
		if err := w.prune(); err != nil {
			w.setErr(err)
		}
	}
	go w.run(interval)
	return w, nil
}

// Emit renders e and queues it for the file. It is safe for concurrent use
// and does not wait for the disk. Entries less severe than the Writer's
// level are dropped; Level 0 counts as Info and a zero Time as now.
func (w *Writer) Emit(e event.Entry) {
	if e.Level == 0 {
		e.Level = event.Info
	}
	if e.Level > w.level {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	bp := linePool.Get().(*[]byte)
	line := append(AppendLine((*bp)[:0], e, w.loc), '\n')
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
	case len(w.buf)+len(line) > maxBuffered:
		w.mu.Unlock()
		w.drop()
	default:
		w.buf = append(w.buf, line...)
		full := len(w.buf) >= flushAt
		w.mu.Unlock()
		if full {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
	}
	if cap(line) <= 64<<10 {
		*bp = line
		linePool.Put(bp)
	}
}

// run is the flusher goroutine; it ends when Close closes stop.
func (w *Writer) run(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	ageChecked := time.Now()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		w.Flush() // the error is kept for Err
		now := time.Now()
		if w.rollEvery > 0 || w.rollDaily {
			if err := w.rollIfDue(now); err != nil {
				w.setErr(err)
			}
		}
		if w.maxAge > 0 && now.Sub(ageChecked) >= ageCheckEvery {
			ageChecked = now
			w.fmu.Lock()
			err := w.prune()
			w.fmu.Unlock()
			if err != nil {
				w.setErr(err)
			}
		}
	}
}

// rollIfDue rolls the file over when its schedule says so.
func (w *Writer) rollIfDue(now time.Time) error {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if w.isClosed() || now.Before(w.rollDue()) {
		return nil
	}
	if w.size <= w.headerSize {
		w.begun = now // nothing to roll: count again from now
		return nil
	}
	ferr := w.flushLocked()
	if err := w.rollLocked(); err != nil {
		return err
	}
	return ferr
}

// rollDue returns when the current file is to be rolled over by time.
func (w *Writer) rollDue() time.Time {
	due := time.Time{}
	if w.rollEvery > 0 {
		due = w.begun.Add(w.rollEvery)
	}
	if w.rollDaily {
		b := w.begun.In(w.loc)
		at := w.rollAt.Truncate(time.Second)
		d := time.Date(b.Year(), b.Month(), b.Day(), int(at/time.Hour), int(at%time.Hour/time.Minute), int(at%time.Minute/time.Second), 0, w.loc)
		if !d.After(w.begun) {
			d = time.Date(b.Year(), b.Month(), b.Day()+1, int(at/time.Hour), int(at%time.Hour/time.Minute), int(at%time.Minute/time.Second), 0, w.loc)
		}
		if due.IsZero() || d.Before(due) {
			due = d
		}
	}
	return due
}

// Flush writes the buffered lines to the file now.
func (w *Writer) Flush() error {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	w.mu.Lock()
	w.buf, w.spare = w.spare[:0], w.buf
	w.mu.Unlock()
	chunk := w.spare
	if len(chunk) == 0 {
		return nil
	}
	lost, err := w.writeLocked(chunk)
	if cap(w.spare) > keepCap {
		w.spare = nil
	}
	if err != nil {
		w.fail(err, lost)
	}
	return err
}

// writeLocked writes whole lines, rolling over first when the next line
// would take the file past maxSize. A single line longer than maxSize is
// written whole to a fresh file rather than split or dropped. When the
// rollover fails the lines go to the current file anyway: a file past its
// size is better than a gap in the log.
// It returns the lines lost to a failed write: the line cut short and
// those after it.
func (w *Writer) writeLocked(chunk []byte) (lost uint64, err error) {
	var rollErr error
	for len(chunk) > 0 {
		n := fitLines(chunk, w.maxSize-w.size)
		if n == 0 {
			if rollErr == nil && w.size > w.headerSize {
				if rollErr = w.rollLocked(); rollErr == nil {
					continue
				}
			}
			if rollErr != nil {
				n = len(chunk)
			} else if n = bytes.IndexByte(chunk, '\n') + 1; n == 0 {
				n = len(chunk)
			}
		}
		m, err := w.f.Write(chunk[:n])
		w.size += int64(m)
		if err != nil {
			return uint64(bytes.Count(chunk[m:], []byte{'\n'})), fmt.Errorf("maillog: write %s: %w", w.path, err)
		}
		chunk = chunk[n:]
	}
	return 0, rollErr
}

// fitLines returns how many bytes of whole lines of chunk fit in room.
func fitLines(chunk []byte, room int64) int {
	if int64(len(chunk)) <= room {
		return len(chunk)
	}
	if room <= 0 {
		return 0
	}
	return bytes.LastIndexByte(chunk[:room], '\n') + 1
}

// Rollover flushes, renames the current file to <base>.@<time>.s, starts
// a new current file with the header lines, and deletes the oldest rolled
// files beyond MaxFiles (the ESA's rollovernow).
func (w *Writer) Rollover() error {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if w.isClosed() {
		return fmt.Errorf("maillog: rollover %s: %w", w.path, os.ErrClosed)
	}
	ferr := w.flushLocked()
	if err := w.rollLocked(); err != nil {
		return err
	}
	return ferr
}

// Reopen is what SIGHUP does. When the path no longer names the file the
// Writer has open (logrotate moved or deleted it), the buffered lines go to
// the old file and a new file is started at the path; otherwise Reopen rolls
// over, so that an administrator's HUP always yields a fresh file.
func (w *Writer) Reopen() error {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if w.isClosed() {
		return fmt.Errorf("maillog: reopen %s: %w", w.path, os.ErrClosed)
	}
	ferr := w.flushLocked()
	moved, err := w.movedLocked()
	if err != nil {
		return err
	}
	if !moved {
		if err := w.rollLocked(); err != nil {
			return err
		}
		return ferr
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return fmt.Errorf("maillog: reopen %s: %w", w.path, err)
	}
	old := w.f
	err = w.openCurrent()
	if w.f == old {
		return err
	}
	if cerr := old.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("maillog: reopen %s: close the moved file: %w", w.path, cerr)
	}
	if err != nil {
		return err
	}
	return ferr
}

// movedLocked reports whether w.path no longer names the open file.
func (w *Writer) movedLocked() (bool, error) {
	pi, err := os.Stat(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("maillog: reopen %s: %w", w.path, err)
	}
	fi, err := w.f.Stat()
	if err != nil {
		return false, fmt.Errorf("maillog: reopen %s: %w", w.path, err)
	}
	return !os.SameFile(pi, fi), nil
}

// openCurrent opens w.path for appending, writing the header lines when
// the file is new (empty), and makes it the current file. A file whose
// header could not be written is still used, and the error returned.
func (w *Writer) openCurrent() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("maillog: open %s: %w", w.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("maillog: open %s: %w", w.path, err)
	}
	now := time.Now()
	w.f, w.size, w.headerSize, w.begun = f, fi.Size(), 0, now
	if w.size > 0 {
		if t, ok := firstLineTime(w.path, w.loc); ok && t.Before(now) {
			w.begun = t
		}
		return nil
	}
	n, err := f.Write(w.header(now))
	w.size = int64(n)
	w.headerSize = w.size
	if err != nil {
		return fmt.Errorf("maillog: write header to %s: %w", w.path, err)
	}
	return nil
}

// firstLineTime returns the timestamp of the first line of the file at
// path, when it has one.
func firstLineTime(path string, loc *time.Location) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	buf := make([]byte, 1024)
	n, _ := f.Read(buf)
	line, _, _ := bytes.Cut(buf[:n], []byte{'\n'})
	e, err := ParseLine(string(line), loc)
	if err != nil || e.Time.IsZero() {
		return time.Time{}, false
	}
	return e.Time, true
}

// header renders the three lines every log file begins with.
func (w *Writer) header(now time.Time) []byte {
	_, off := now.In(w.loc).Zone()
	var b []byte
	for _, ev := range []event.Event{
		event.BeginLogfile{},
		event.LogfileVersion{Version: w.version, Serial: w.serial},
		event.TimeOffset{Seconds: off},
	} {
		b = AppendLine(b, event.Entry{Time: now, Level: event.Info, Event: ev}, w.loc)
		b = append(b, '\n')
	}
	return b
}

// rollLocked renames the current file, opens a new one and prunes. If the
// new file cannot be opened, writing continues in the renamed one.
func (w *Writer) rollLocked() error {
	now := time.Now()
	name, err := w.rolledName(now)
	if err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("maillog: rollover %s: %w", w.path, err)
	}
	if err := os.Rename(w.path, name); err != nil {
		return fmt.Errorf("maillog: rollover %s: %w", w.path, err)
	}
	old := w.f
	err = w.openCurrent()
	if w.f == old { // nothing could be opened: keep writing to the renamed file
		return fmt.Errorf("maillog: rollover: %w", err)
	}
	if cerr := old.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("maillog: rollover: close %s: %w", name, cerr)
	}
	if err != nil {
		return err
	}
	return w.prune()
}

// rolledName returns <dir>/<base>.@YYYYMMDDTHHMMSS.s, or, when files of
// that second exist already, the same with a sequence number after the
// last one (<base>.@YYYYMMDDTHHMMSS.2.s, ...): a rolled file is never
// overwritten, and names sort in the order the files were rolled even after
// the oldest were deleted.
func (w *Writer) rolledName(now time.Time) (string, error) {
	stamp := now.In(w.loc).Format("20060102T150405")
	rs, err := listRolled(w.dir, w.base)
	if err != nil {
		return "", fmt.Errorf("maillog: rollover %s: %w", w.path, err)
	}
	seq := 0
	for _, r := range rs {
		if r.stamp == stamp && r.seq > seq {
			seq = r.seq
		}
	}
	name := w.base + ".@" + stamp + ".s"
	if seq > 0 {
		name = w.base + ".@" + stamp + "." + strconv.Itoa(seq+1) + ".s"
	}
	p := filepath.Join(w.dir, name)
	switch _, err := os.Lstat(p); {
	case err == nil:
		return "", fmt.Errorf("maillog: rollover %s: %s is in the way", w.path, p)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("maillog: rollover %s: %w", w.path, err)
	}
	return p, nil
}

// rolled is a rolled file found in the directory.
type rolled struct {
	name  string
	stamp string
	seq   int
}

// RolledFiles lists the rolled files of the log at path, oldest first.
func RolledFiles(path string) ([]string, error) {
	dir := filepath.Dir(path)
	base := strings.TrimSuffix(filepath.Base(path), ".current")
	rs, err := listRolled(dir, base)
	if err != nil {
		return nil, fmt.Errorf("maillog: %w", err)
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = filepath.Join(dir, r.name)
	}
	return names, nil
}

func listRolled(dir, base string) ([]rolled, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rolled files in %s: %w", dir, err)
	}
	var rs []rolled
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue // never count or delete what we did not write
		}
		mid, ok := strings.CutPrefix(e.Name(), base+".@")
		if !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, ".s"); !ok || len(mid) < 15 {
			continue
		}
		r := rolled{name: e.Name(), stamp: mid[:15], seq: 1}
		if len(mid) > 15 {
			n, err := strconv.Atoi(strings.TrimPrefix(mid[15:], "."))
			if err != nil || mid[15] != '.' {
				continue
			}
			r.seq = n
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].stamp != rs[j].stamp {
			return rs[i].stamp < rs[j].stamp
		}
		return rs[i].seq < rs[j].seq
	})
	return rs, nil
}

// prune deletes the oldest rolled files beyond maxFiles, and those last
// written longer than maxAge ago.
func (w *Writer) prune() error {
	rs, err := listRolled(w.dir, w.base)
	if err != nil {
		return fmt.Errorf("maillog: prune: %w", err)
	}
	var first error
	now := time.Now()
	for i := 0; i < len(rs); i++ {
		name := filepath.Join(w.dir, rs[i].name)
		fi, statErr := os.Stat(name)
		old := w.maxAge > 0 && statErr == nil && now.Sub(fi.ModTime()) > w.maxAge
		if i >= len(rs)-w.maxFiles && !old {
			continue
		}
		if err := os.Remove(name); err != nil {
			if first == nil {
				first = fmt.Errorf("maillog: delete old log: %w", err)
			}
			continue
		}
		if statErr == nil && fi.ModTime().UnixNano() > w.removed.Load() {
			w.removed.Store(fi.ModTime().UnixNano())
		}
	}
	return first
}

// Removed returns the modification time of the newest rolled file this
// Writer deleted (beyond MaxFiles), zero when none: a reader that has not
// read the log up to then has lost lines. Tracking's feed asks it.
func (w *Writer) Removed() time.Time {
	if n := w.removed.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Close stops the flusher, writes what is buffered, and closes the file.
// Entries emitted after Close are dropped.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done

	w.fmu.Lock()
	defer w.fmu.Unlock()
	err := w.flushLocked()
	if serr := w.f.Sync(); serr != nil && err == nil {
		err = fmt.Errorf("maillog: sync %s: %w", w.path, serr)
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("maillog: close %s: %w", w.path, cerr)
	}
	return err
}

func (w *Writer) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// Err returns the first error the Writer met, or nil.
func (w *Writer) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// fail counts a failed write of buffered lines and the lines it lost,
// with its error, in one step: Stats never shows the counts without the
// error (an alert raised on the counts names the error).
func (w *Writer) fail(err error, lost uint64) {
	w.errMu.Lock()
	w.writeErrors++
	w.lostLines += lost
	first := w.keepErr(err)
	w.errMu.Unlock()
	w.logFirst(first, err)
}

// drop counts a line Emit dropped, the buffer being full; the first drop
// is an error.
func (w *Writer) drop() {
	var err error
	first := false
	w.errMu.Lock()
	w.dropped++
	if w.dropped == 1 {
		err = errors.New("maillog: buffer full (the file is not being written), lines dropped")
		first = w.keepErr(err)
	}
	w.errMu.Unlock()
	w.logFirst(first, err)
}

// setErr keeps an error that loses no line (a rollover, a reopen).
func (w *Writer) setErr(err error) {
	w.errMu.Lock()
	first := w.keepErr(err)
	w.errMu.Unlock()
	w.logFirst(first, err)
}

// keepErr keeps err as the latest error, and as the first when there was
// none; w.errMu is held.
func (w *Writer) keepErr(err error) (first bool) {
	first = w.err == nil
	if first {
		w.err = err
	}
	w.lastErr = err
	return first
}

// logFirst logs the first error only, so that a full disk does not flood
// the process log.
func (w *Writer) logFirst(first bool, err error) {
	if first {
		slog.Error("mail log write failed; further errors are not reported", "path", w.path, "err", err)
	}
}

// Stats are the Writer's failures since Open: for the metrics, and for the
// gateway's own log, which reports them as they grow (Err and the one log
// line of setErr tell only of the first).
type Stats struct {
	WriteErrors uint64 // writes of buffered lines that failed (a full disk, an I/O error)
	LostLines   uint64 // lines those writes did not get into the file
	Dropped     uint64 // lines dropped because the buffer was full (the file not being written)
	LastError   error  // the latest error, nil when none
}

// Stats returns the Writer's failure counts.
func (w *Writer) Stats() Stats {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return Stats{WriteErrors: w.writeErrors, LostLines: w.lostLines, Dropped: w.dropped, LastError: w.lastErr}
}
