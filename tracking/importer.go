package tracking

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/syslog"
)

// Importer feeds mail log files to a Tracker.
//
// A line is filed under the host its own syslog header names, in every
// form (with or without a <PRI>, RFC 3164 or 5424, a collector's rewrap),
// and under Host when it names none (a local file). A syslog timestamp has
// no year: it is Year's, for the first such line (then a year on at each
// December-to-January rollover), or else the one that puts the line at or
// before the file's modification time; only input that is no file (a pipe)
// is dated from the clock, and Warn is told.
type Importer struct {
	Tracker  *Tracker
	Host     string         // the gateway the log is of, unless a syslog line names its own
	Location *time.Location // of local-file times until a "Time offset" header; nil: time.Local
	Progress func(n int64)  // bytes read so far from the current input, when not nil
	Since    time.Time      // when not zero, lines before it are skipped
	Year     int            // the year of the first line whose timestamp has none; 0: from the file's time
	Warn     func(string)   // told what an import had to guess; nil: nobody

	// First is set by the import: the time of the first dated line read,
	// Since or not.
	First time.Time
}

// ImportFile imports one file ("-": standard input), gzipped or not.
func (im *Importer) ImportFile(ctx context.Context, name string) error {
	var f *os.File
	if name == "-" {
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(name); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
	}
	// The file's time dates syslog lines; standard input redirected from
	// a file has one too, a pipe has none.
	var mtime time.Time
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		mtime = fi.ModTime()
	}
	if err := im.read(ctx, f, name, mtime); err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	return nil
}

// Import reads one log, plain or gzipped, to its end and syncs the
// Tracker: everything read is stored when it returns. Syslog lines are
// dated from Year, or else from the clock (see Importer).
func (im *Importer) Import(ctx context.Context, r io.Reader) error {
	return im.read(ctx, r, "", time.Time{})
}

func (im *Importer) read(ctx context.Context, r io.Reader, name string, mtime time.Time) error {
	cr := &countingReader{r: r, progress: im.Progress}
	br := bufio.NewReaderSize(cr, 256<<10)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		in = zr
	}
	mr := maillog.NewReader(in, im.Location)
	switch {
	case im.Year != 0:
		mr.SetYear(im.Year)
	case !mtime.IsZero():
		mr.SetNow(mtime)
	}
	for mr.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := mr.Entry()
		if im.First.IsZero() {
			im.First = e.Time
		}
		if !im.Since.IsZero() && e.Time.Before(im.Since) {
			continue
		}
		if _, ok := e.Event.(event.Unknown); ok && e.Time.IsZero() && e.Level == 0 {
			// Not a log line (a wrapped continuation, a message body).
			im.Tracker.stats.Entries++
			im.Tracker.stats.Untracked++
			continue
		}
		host := im.Host
		if e.Prefix != "" && !e.Time.IsZero() {
			if h := syslog.HostOf(mr.Text()); h != "" {
				host = h
			}
		}
		if err := im.Tracker.Add(ctx, host, e); err != nil {
			return err
		}
	}
	if err := mr.Err(); err != nil {
		return err
	}
	if n := mr.Yearless(); n > 0 && im.Year == 0 && mtime.IsZero() && im.Warn != nil {
		if name == "" {
			name = "the input"
		}
		im.Warn(fmt.Sprintf("%s: %d lines had no year and were dated from the clock (give --year)", name, n))
	}
	return im.Tracker.Sync(ctx)
}

// LogSize estimates how many bytes of log the files hold, for BeginBulk:
// a gzipped file's size counts eight times (gzip brings esagen's mixed
// ESA log to 1/7.6 of its size), standard input and files that cannot be
// read nothing.
func LogSize(names []string) int64 {
	var n int64
	for _, name := range names {
		fi, err := os.Stat(name)
		if name == "-" || err != nil {
			continue
		}
		if strings.HasSuffix(name, ".gz") {
			n += 8 * fi.Size()
		} else {
			n += fi.Size()
		}
	}
	return n
}

type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// OrderLogFiles puts files in the order their lines were written: rolled
// ESA files (name.@20140814T110431.s, .c for a file closed at a restart,
// either gzipped) by their time stamp, and a ".current" file after them;
// other names keep the order given, before those.
func OrderLogFiles(names []string) []string {
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b string) int { return strings.Compare(rollKey(a), rollKey(b)) })
	return out
}

// rollKey is "" for a name that is not a rolled or current log file.
func rollKey(name string) string {
	base := strings.TrimSuffix(filepath.Base(name), ".gz")
	if strings.HasSuffix(base, ".current") {
		return "~"
	}
	_, stamp, ok := strings.Cut(base, ".@")
	if !ok {
		return ""
	}
	stamp = strings.TrimSuffix(strings.TrimSuffix(stamp, ".s"), ".c")
	if len(stamp) < 15 {
		return ""
	}
	seq := 1
	if rest := stamp[15:]; rest != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(rest, "."))
		if err != nil {
			return ""
		}
		seq = n
	}
	return fmt.Sprintf("%s.%06d", stamp[:15], seq)
}
