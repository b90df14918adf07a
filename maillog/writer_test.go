package maillog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/internal/wait"
)

// readLines returns the lines of a file.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline: %q", path, b[max(0, len(b)-80):])
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

// body returns the lines of a log file after its three header lines,
// checking that the header is there.
func body(t *testing.T, path string) []string {
	t.Helper()
	lines := readLines(t, path)
	if len(lines) < 3 {
		t.Fatalf("%s has %d lines, want the 3 header lines at least", path, len(lines))
	}
	for i, want := range []string{"Info: Begin Logfile", "Info: Version: ", "Info: Time offset from UTC: "} {
		if !strings.Contains(lines[i], want) {
			t.Fatalf("%s line %d = %q, want %q", path, i+1, lines[i], want)
		}
	}
	return lines[3:]
}

func openTest(t *testing.T, o Options) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "logs", "mail_logs", "mail.current")
	if o.Location == nil {
		o.Location = cst
	}
	w, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

func closeTest(t *testing.T, w *Writer) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
}

func TestWriterHeader(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	w, path := openTest(t, Options{Version: "mailgate 0.1.0", Serial: "mx1.example.com"})
	closeTest(t, w)
	after := time.Now()

	lines := readLines(t, path)
	want := []event.Event{
		event.BeginLogfile{},
		event.LogfileVersion{Version: "mailgate 0.1.0", Serial: "mx1.example.com"},
		event.TimeOffset{Seconds: -21600},
	}
	if len(lines) != len(want) {
		t.Fatalf("new file has %d lines, want the %d header lines: %q", len(lines), len(want), lines)
	}
	for i, l := range lines {
		e, err := ParseLine(l, cst)
		if err != nil || e.Level != event.Info || e.Event != want[i] {
			t.Errorf("line %d = %q, parsed as %v %#v; want Info %#v", i+1, l, e.Level, e.Event, want[i])
		}
		if e.Time.Before(before) || e.Time.After(after) {
			t.Errorf("line %d time %v not between %v and %v", i+1, e.Time, before, after)
		}
	}
	// IronPort's analyser checks these shapes.
	if !strings.HasSuffix(lines[0], " Info: Begin Logfile") || !regexp.MustCompile(` Info: Version: .+ SN: \S+$`).MatchString(lines[1]) {
		t.Errorf("header does not have the ESA shape: %q", lines)
	}
}

// session is a receive and a delivery, as the gateway would log them.
func session(t0 time.Time) []event.Entry {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return []event.Entry{
		{Time: at(0), Level: event.Info, Event: event.NewICID{ICID: 5, Interface: "InboundMail", InterfaceIP: "127.0.0.1", RemoteIP: "127.0.0.1", ReverseHost: "localhost", Verified: true}},
		{Time: at(0), Level: event.Info, Event: event.HATMatch{ICID: 5, Action: event.ActionRelay, Group: "RELAY_SG", Rule: "127.0.0.1", SBRS: event.SBRSNotEnabled}},
		{Time: at(1200), Level: event.Info, Event: event.StartMID{MID: 6, ICID: 5}},
		{Time: at(1200), Level: event.Info, Event: event.MailFrom{MID: 6, ICID: 5, From: "sender@example.net"}},
		{Time: at(1300), Level: event.Info, Event: event.RcptTo{MID: 6, ICID: 5, RID: 0, To: "mary@example.com"}},
		{Time: at(1400), Level: event.Debug, Event: event.Unknown{Text: "MID 6 debug detail"}},
		{Time: at(2100), Level: event.Info, Event: event.MessageIDHeader{MID: 6, MessageID: "<1@example.net>"}},
		{Time: at(2100), Level: event.Info, Event: event.Subject{MID: 6, Subject: "Quarterly report", Quote: QuoteFor("Quarterly report")}},
		{Time: at(2100), Level: event.Info, Event: event.Ready{MID: 6, Bytes: 1024, From: "sender@example.net"}},
		{Time: at(2100), Level: event.Info, Event: event.PolicyMatch{MID: 6, Policy: "DEFAULT", Table: "inbound"}},
		{Time: at(2100), Level: event.Info, Event: event.Queued{MID: 6}},
		{Time: at(2500), Level: event.Info, Event: event.ICIDClose{ICID: 5}},
		{Time: at(2500), Level: event.Info, Event: event.ConnectionEnd{ICID: 5, Cause: event.CauseQuit, State: "quit", LastCommand: "QUIT", Duration: 2500 * time.Millisecond,
			Commands: []event.CommandCount{{Verb: "ehlo", OK: 1, Total: 1}, {Verb: "mail", OK: 1, Total: 1}, {Verb: "rcpt", OK: 1, Total: 1}, {Verb: "data", OK: 1, Total: 1}, {Verb: "quit", OK: 1, Total: 1}}}},
		{Time: at(2600), Level: event.Info, Event: event.NewDCID{DCID: 8, InterfaceIP: "127.0.0.1", RemoteIP: "127.0.0.1", Port: 2526}},
		{Time: at(2600), Level: event.Info, Event: event.DeliveryStart{DCID: 8, MID: 6, RIDs: []int{0}}},
		{Time: at(2700), Level: event.Info, Event: event.MessageDone{DCID: 8, MID: 6, RIDs: []int{0}}},
		{Time: at(2700), Level: event.Info, Event: event.Response{MID: 6, RIDs: []int{0}, Text: "2.0.0 Ok: queued as 4Xyz", Quote: '\''}},
		{Time: at(2700), Level: event.Info, Event: event.MessageFinished{MID: 6, Status: event.FinishedDone}},
		{Time: at(2800), Level: event.Info, Event: event.DCIDClose{DCID: 8}},
	}
}

// TestWriterGolden writes a session in a fixed location and compares the
// file with testdata/writer.golden; the Debug line is not written.
func TestWriterGolden(t *testing.T) {
	w, path := openTest(t, Options{})
	for _, e := range session(time.Date(2014, 8, 14, 11, 4, 31, 0, time.UTC)) {
		w.Emit(e)
	}
	closeTest(t, w)
	compareGolden(t, "testdata/writer.golden", []byte(strings.Join(body(t, path), "\n")+"\n"))
}

func TestWriterLevel(t *testing.T) {
	all := []event.Level{0, event.Critical, event.Warning, event.Info, event.Debug, event.Trace}
	tests := []struct {
		level event.Level
		want  []event.Level // levels written, 0 is written as Info
	}{
		{0, []event.Level{event.Info, event.Critical, event.Warning, event.Info}},
		{event.Critical, []event.Level{event.Critical}},
		{event.Warning, []event.Level{event.Critical, event.Warning}},
		{event.Trace, []event.Level{event.Info, event.Critical, event.Warning, event.Info, event.Debug, event.Trace}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.level), func(t *testing.T) {
			w, path := openTest(t, Options{Level: tt.level})
			for i, l := range all {
				w.Emit(event.Entry{Time: when, Level: l, Event: event.Queued{MID: uint64(i)}})
			}
			closeTest(t, w)
			var got []event.Level
			for _, l := range body(t, path) {
				e, err := ParseLine(l, cst)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, e.Level)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Level %v wrote %v, want %v", tt.level, got, tt.want)
			}
		})
	}
}

var rolledName = regexp.MustCompile(`^mail\.@\d{8}T\d{6}(\.\d+)?\.s$`)

// mids reads the MIDs of the Queued lines of a file, in order.
func mids(t *testing.T, path string) []uint64 {
	t.Helper()
	var ms []uint64
	for _, l := range body(t, path) {
		e, err := ParseLine(l, cst)
		q, ok := e.Event.(event.Queued)
		if err != nil || !ok {
			t.Fatalf("%s: line %q is not a whole Queued line", path, l)
		}
		ms = append(ms, q.MID)
	}
	return ms
}

func TestWriterRolloverBySize(t *testing.T) {
	const maxSize, maxFiles, n = 1000, 3, 300
	w, path := openTest(t, Options{MaxSize: maxSize, MaxFiles: maxFiles})
	for i := 0; i < n; i++ {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
		if i%50 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeTest(t, w)

	rolled, err := RolledFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rolled) != maxFiles {
		t.Fatalf("%d rolled files, want %d: %q", len(rolled), maxFiles, rolled)
	}
	// The kept files hold the last lines, in order, without a gap.
	var got []uint64
	for _, f := range append(rolled, path) {
		if f != path && !rolledName.MatchString(filepath.Base(f)) {
			t.Errorf("rolled file name %q", filepath.Base(f))
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s has %d bytes, more than MaxSize %d", f, fi.Size(), maxSize)
		}
		got = append(got, mids(t, f)...)
	}
	if len(got) == 0 || got[len(got)-1] != n-1 {
		t.Fatalf("last line is not MID %d: %v", n-1, got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("lines out of order or lost between files: %v", got)
		}
	}
	if got[0] == 0 {
		t.Errorf("no file was deleted: MaxFiles not applied")
	}
}

// TestWriterRolloverSameSecond rolls over three times in a row: no rolled
// file may be overwritten.
func TestWriterRolloverSameSecond(t *testing.T) {
	w, path := openTest(t, Options{})
	for i := 0; i < 3; i++ {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
		if err := w.Rollover(); err != nil {
			t.Fatal(err)
		}
	}
	closeTest(t, w)
	rolled, err := RolledFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rolled) != 3 {
		t.Fatalf("%d rolled files, want 3: %q", len(rolled), rolled)
	}
	for i, f := range rolled {
		if !rolledName.MatchString(filepath.Base(f)) {
			t.Errorf("rolled file name %q", filepath.Base(f))
		}
		if got := mids(t, f); len(got) != 1 || got[0] != uint64(i) {
			t.Errorf("%s holds MIDs %v, want [%d]", f, got, i)
		}
	}
	if got := mids(t, path); len(got) != 0 {
		t.Errorf("current file holds %v, want only the header", got)
	}
}

// TestWriterReopenRenamed is logrotate: the file is moved away, then the
// gateway gets SIGHUP. Lines emitted before the HUP belong to the moved file.
func TestWriterReopenRenamed(t *testing.T) {
	for _, how := range []string{"rename", "remove"} {
		t.Run(how, func(t *testing.T) {
			w, path := openTest(t, Options{FlushInterval: time.Hour})
			emit := func(mid uint64) { w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: mid}}) }
			emit(1)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			moved := path + ".1"
			if how == "rename" {
				if err := os.Rename(path, moved); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			emit(2)
			if err := w.Reopen(); err != nil {
				t.Fatal(err)
			}
			emit(3)
			closeTest(t, w)

			if how == "rename" {
				if got := fmt.Sprint(mids(t, moved)); got != "[1 2]" {
					t.Errorf("moved file holds %s, want [1 2]", got)
				}
			}
			if got := fmt.Sprint(mids(t, path)); got != "[3]" {
				t.Errorf("new file holds %s, want [3]", got)
			}
			if rolled, _ := RolledFiles(path); len(rolled) != 0 {
				t.Errorf("Reopen after a move rolled over: %q", rolled)
			}
		})
	}
}

// TestWriterReopenInPlace: a HUP without a move rolls over.
func TestWriterReopenInPlace(t *testing.T) {
	w, path := openTest(t, Options{})
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 1}})
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 2}})
	closeTest(t, w)
	rolled, err := RolledFiles(path)
	if err != nil || len(rolled) != 1 {
		t.Fatalf("rolled files %q, %v; want one", rolled, err)
	}
	if got := fmt.Sprint(mids(t, rolled[0])); got != "[1]" {
		t.Errorf("rolled file holds %s, want [1]", got)
	}
	if got := fmt.Sprint(mids(t, path)); got != "[2]" {
		t.Errorf("current file holds %s, want [2]", got)
	}
}

// TestWriterConcurrent emits from many goroutines with rollovers going on:
// every line must arrive whole, once, in each goroutine's order.
func TestWriterConcurrent(t *testing.T) {
	const goroutines, perG = 16, 2000
	w, path := openTest(t, Options{MaxSize: 256 << 10, MaxFiles: 1000, FlushInterval: time.Millisecond})
	pad := strings.Repeat("x", 60)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				w.Emit(event.Entry{Time: when, Level: event.Info,
					Event: event.Subject{MID: uint64(g*perG + i), Subject: fmt.Sprintf("g%d i%d %s", g, i, pad), Quote: '\''}})
			}
		}()
	}
	wg.Wait()
	closeTest(t, w)

	rolled, err := RolledFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rolled) == 0 {
		t.Errorf("no rollover happened; the test wants some under load")
	}
	next := make([]int, goroutines)
	total := 0
	for _, f := range append(rolled, path) {
		for _, l := range body(t, f) {
			e, err := ParseLine(l, cst)
			s, ok := e.Event.(event.Subject)
			if err != nil || !ok {
				t.Fatalf("%s: %q is not a whole line", f, l)
			}
			g, i := int(s.MID)/perG, int(s.MID)%perG
			if want := fmt.Sprintf("g%d i%d %s", g, i, pad); s.Subject != want || !strings.HasSuffix(l, "'"+want+"'") {
				t.Fatalf("%s: line %q is mangled", f, l)
			}
			if i != next[g] {
				t.Fatalf("goroutine %d: line %d after line %d", g, i, next[g]-1)
			}
			next[g]++
			total++
		}
	}
	if total != goroutines*perG {
		t.Errorf("%d lines written, want %d", total, goroutines*perG)
	}
}

// TestWriterFlushInterval: a line reaches the file without Flush or Close.
func TestWriterFlushInterval(t *testing.T) {
	w, path := openTest(t, Options{FlushInterval: 10 * time.Millisecond})
	defer w.Close()
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 42}})
	// Liveness, not speed: nothing but the interval writes the file.
	wait.Until(t, "the line reaches the file", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, []byte("MID 42 queued for delivery\n"))
	})
}

func TestWriterAppendsToExisting(t *testing.T) {
	w, path := openTest(t, Options{})
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 1}})
	closeTest(t, w)
	w, err := Open(path, Options{Location: cst})
	if err != nil {
		t.Fatal(err)
	}
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 2}})
	closeTest(t, w)
	if got := fmt.Sprint(mids(t, path)); got != "[1 2]" {
		t.Errorf("file holds %s after a reopen, want [1 2] under one header", got)
	}
}

func TestWriterZeroTimeAndAfterClose(t *testing.T) {
	w, path := openTest(t, Options{})
	before := time.Now().Truncate(time.Second)
	w.Emit(event.Entry{Event: event.Queued{MID: 1}}) // no time, no level
	closeTest(t, w)
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 2}}) // dropped
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	lines := body(t, path)
	if len(lines) != 1 {
		t.Fatalf("file body %q, want one line", lines)
	}
	e, err := ParseLine(lines[0], cst)
	if err != nil || e.Level != event.Info || e.Time.Before(before) || e.Time.After(time.Now()) {
		t.Errorf("line %q parsed as %v %v; want Info and the time of Emit", lines[0], e.Time, e.Level)
	}
}

// recorder counts the records logged through slog.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// openFull opens a Writer whose file is /dev/full: its writes fail with
// ENOSPC, as on a full disk.
func openFull(t *testing.T) *Writer {
	t.Helper()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	w, _ := openTest(t, Options{FlushInterval: time.Hour})
	w.fmu.Lock()
	good := w.f
	w.f = full
	w.fmu.Unlock()
	good.Close()
	return w
}

// TestWriterWriteError swaps the file for /dev/full: writes fail with
// ENOSPC. Emit must go on without blocking, Err must report the error, and
// it is logged once.
func TestWriterWriteError(t *testing.T) {
	rec := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	defer slog.SetDefault(old)

	w := openFull(t)

	for i := 0; i < 1000; i++ {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
	}
	if err := w.Flush(); err == nil {
		t.Error("Flush to a full disk: no error")
	}
	if w.Err() == nil {
		t.Error("Err() = nil after a failed write")
	}
	if st := w.Stats(); st.WriteErrors != 1 || st.LostLines != 1000 || st.Dropped != 0 || st.LastError == nil {
		t.Errorf("Stats = %+v, want 1 write error, 1000 lines lost", st)
	}
	w.Close() // its error is the full disk again
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) != 1 {
		t.Errorf("logged %d times, want once: %q", len(rec.msgs), rec.msgs)
	}
}

// TestWriterStatsWithError: a reader of Stats (the alert on a failing mail
// log, the metrics) never sees lines lost without the error that lost
// them: the alert would say that lines are lost and not why. The first
// failure is the moment to look at, so each round is a new writer, with a
// reader polling Stats while its first write fails.
func TestWriterStatsWithError(t *testing.T) {
	old := slog.Default()
	slog.SetDefault(slog.New(&recorder{}))
	defer slog.SetDefault(old)
	for round := range 300 {
		w := openFull(t)
		for i := range 100 {
			w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
		}
		polling := make(chan struct{})
		bad := make(chan Stats, 1)
		go func() {
			close(polling)
			for {
				st := w.Stats()
				if st.LastError != nil {
					bad <- Stats{}
					return
				}
				if st.WriteErrors > 0 || st.LostLines > 0 {
					bad <- st
					return
				}
			}
		}()
		<-polling
		if err := w.Flush(); err == nil {
			t.Fatal("Flush to a full disk: no error")
		}
		if st := <-bad; st != (Stats{}) {
			t.Fatalf("round %d: Stats %+v: failures counted without their error", round, st)
		}
		w.Close()
	}
}

func BenchmarkWriterEmitParallel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "mail.current")
	w, err := Open(path, Options{Location: cst, MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	entries := session(time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e := entries[i%len(entries)]
			e.Time = time.Now()
			w.Emit(e)
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	// The file must hold every Info line (the session has one Debug line in 19).
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
	}
	if n < b.N*18/19 {
		b.Fatalf("%d lines in the file for %d Emit calls", n, b.N)
	}
}

// TestWriterHungDisk holds the file lock as a hung write would: Emit must
// not wait for it, and drops lines once the buffer bound is reached.
func TestWriterHungDisk(t *testing.T) {
	rec := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	defer slog.SetDefault(old)

	w, path := openTest(t, Options{FlushInterval: time.Hour})
	w.fmu.Lock() // the "disk" hangs
	line := len(AppendLine(nil, event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 1}}, cst)) + 1
	n := maxBuffered/line + 1000
	for i := 0; i < n; i++ {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 1}})
	}
	if w.Err() == nil {
		t.Error("Err() = nil after lines were dropped")
	}
	if st := w.Stats(); st.Dropped == 0 || st.Dropped != uint64(n-maxBuffered/line) || st.WriteErrors != 0 {
		t.Errorf("Stats = %+v, want %d dropped", st, n-maxBuffered/line)
	}
	w.fmu.Unlock()
	w.Close()
	kept := len(body(t, path))
	if kept == 0 || kept >= n {
		t.Errorf("%d of %d lines written; want the buffer's worth", kept, n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) != 1 {
		t.Errorf("logged %d times, want once: %q", len(rec.msgs), rec.msgs)
	}
}

// TestWriterRolloverFails: when the file cannot be rolled over (here a
// directory sits where the rolled file would go), lines still reach the
// current file.
func TestWriterRolloverFails(t *testing.T) {
	rec := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	defer slog.SetDefault(old)

	w, path := openTest(t, Options{MaxSize: 500, FlushInterval: time.Hour})
	now := time.Now()
	for s := -2; s <= 30; s++ {
		name := "mail.@" + now.Add(time.Duration(s)*time.Second).In(cst).Format("20060102T150405") + ".s"
		if err := os.Mkdir(filepath.Join(filepath.Dir(path), name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
	}
	if err := w.Flush(); err == nil {
		t.Error("Flush: no error although the rollover failed")
	}
	w.Close()
	if got := mids(t, path); len(got) != 50 {
		t.Errorf("current file holds %d lines, want all 50", len(got))
	}
	if w.Err() == nil {
		t.Error("Err() = nil after a failed rollover")
	}
}

// TestWriterDiskFull fills a real file system (a tmpfs): the lines that do
// not fit are counted as lost, each failed flush as an error; once space
// is freed the next lines reach the file again and the counts stay.
func TestWriterDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	w, err := Open(filepath.Join(dir, "mail_logs.current"), Options{Location: cst, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	filler := tmpfs.Fill(t, dir, "filler", 0)
	for i := range 100 {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
	}
	if err := w.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ENOSPC", err)
	}
	st := w.Stats()
	if st.WriteErrors != 1 || st.LostLines == 0 || st.LostLines > 100 || !errors.Is(st.LastError, syscall.ENOSPC) {
		t.Fatalf("Stats = %+v, want 1 error and up to 100 lines lost", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 1000}})
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush after space was freed: %v", err)
	}
	if st2 := w.Stats(); st2.WriteErrors != st.WriteErrors || st2.LostLines != st.LostLines {
		t.Errorf("Stats after recovery = %+v, want %+v", st2, st)
	}
}
