package maillog

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// TestReaderCribl reads the Cribl sample: its header says UTC-6, which
// must apply to every line, the header lines included, although the caller
// said UTC.
func TestReaderCribl(t *testing.T) {
	f, err := os.Open("testdata/cribl-cisco-esa-mailtext.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := os.ReadFile("testdata/cribl-cisco-esa-mailtext.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")

	r := NewReader(f, time.UTC)
	n := 0
	for r.Scan() {
		n++
		e := r.Entry()
		if r.Line() != n || r.Text() != lines[n-1] {
			t.Fatalf("entry %d: Line() = %d, Text() = %q; want line %d %q", n, r.Line(), r.Text(), n, lines[n-1])
		}
		if _, off := e.Time.Zone(); off != -21600 {
			t.Errorf("line %d: time %v has offset %d, want -21600", n, e.Time, off)
		}
		switch n {
		case 1:
			want := time.Date(2014, 11, 19, 15, 16, 46, 0, time.UTC)
			if _, ok := e.Event.(event.BeginLogfile); !ok || !e.Time.Equal(want) {
				t.Errorf("line 1 = %v %#v, want Begin Logfile at %v", e.Time, e.Event, want)
			}
		case 4:
			want := time.Date(2014, 11, 19, 15, 16, 38, 0, time.UTC)
			if ev, ok := e.Event.(event.NewICID); !ok || ev.ICID != 60140291 || !e.Time.Equal(want) {
				t.Errorf("line 4 = %v %#v, want New SMTP ICID 60140291 at %v", e.Time, e.Event, want)
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Errorf("read %d entries, want 1000", n)
	}
}

// TestReaderOffsets: a file without header is read in the caller's
// location; a header changes it for what follows, blank lines are skipped.
func TestReaderOffsets(t *testing.T) {
	in := strings.Join([]string{
		"Wed Nov 19 09:16:38 2014 Info: MID 1 queued for delivery",
		"",
		"Wed Nov 19 09:16:46 2014 Info: Begin Logfile",
		"Wed Nov 19 09:16:46 2014 Info: Version: 7.6.3-019 SN: X",
		"Wed Nov 19 09:16:46 2014 Info: Time offset from UTC: 3600 seconds",
		"Wed Nov 19 09:16:50 2014 Info: MID 2 queued for delivery",
		"Wed Nov 19 09:17:00 2014 Info: Begin Logfile",
		"Wed Nov 19 09:17:00 2014 Info: Time offset from UTC: -18000 seconds",
		"Wed Nov 19 09:17:01 2014 Info: MID 3 queued for delivery",
		"Wed Nov 19 09:17:02 2014 Info: Begin Logfile", // a header cut short at the end
	}, "\n")
	want := []struct {
		line int
		off  int
	}{{1, -21600}, {3, 3600}, {4, 3600}, {5, 3600}, {6, 3600}, {7, -18000}, {8, -18000}, {9, -18000}, {10, -18000}}
	r := NewReader(strings.NewReader(in), cst)
	i := 0
	for r.Scan() {
		if i >= len(want) {
			t.Fatalf("extra entry at line %d", r.Line())
		}
		_, off := r.Entry().Time.Zone()
		if r.Line() != want[i].line || off != want[i].off {
			t.Errorf("entry %d: line %d offset %d, want line %d offset %d", i, r.Line(), off, want[i].line, want[i].off)
		}
		i++
	}
	if r.Err() != nil || i != len(want) {
		t.Errorf("%d entries, err %v; want %d", i, r.Err(), len(want))
	}
}

type failingReader struct{ r io.Reader }

var errDisk = errors.New("disk on fire")

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errDisk
	}
	return n, err
}

func TestReaderError(t *testing.T) {
	r := NewReader(failingReader{strings.NewReader("Info: MID 1 queued for delivery\nInfo: MID 2 queued for delivery\n")}, cst)
	n := 0
	for r.Scan() {
		n++
	}
	if n != 2 || !errors.Is(r.Err(), errDisk) {
		t.Errorf("%d entries, Err() = %v; want 2 and %v", n, r.Err(), errDisk)
	}
}

// TestReaderReadsWriter reads back what a Writer wrote, in another zone.
func TestReaderReadsWriter(t *testing.T) {
	w, path := openTest(t, Options{Location: time.FixedZone("", 5*3600+1800)})
	want := session(time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC))
	for _, e := range want {
		w.Emit(e)
	}
	closeTest(t, w)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f, time.UTC)
	var got []event.Entry
	for r.Scan() {
		got = append(got, r.Entry())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	got = got[3:] // header
	var info []event.Entry
	for _, e := range want {
		if e.Level <= event.Info {
			e.Time = e.Time.Truncate(time.Second)
			info = append(info, e)
		}
	}
	if len(got) != len(info) {
		t.Fatalf("read %d entries, want %d", len(got), len(info))
	}
	for i := range info {
		if !sameEntry(got[i], info[i]) {
			t.Errorf("entry %d: read %v %#v, wrote %v %#v", i, got[i].Time, got[i].Event, info[i].Time, info[i].Event)
		}
	}
}

// TestReaderYears: lines without a year (a syslog server's file) take it
// from SetYear, going on a year at the December-to-January rollover, or
// from SetNow, the file's modification time; never from the clock when
// either is given.
func TestReaderYears(t *testing.T) {
	in := strings.Join([]string{
		"Dec 31 23:59:58 esa1 mail_logs: Info: MID 1 queued for delivery",
		"Jan  1 00:00:01 esa1 mail_logs: Info: MID 2 queued for delivery",
		"Dec 31 23:59:59 esa1 mail_logs: Info: MID 3 queued for delivery", // late, after the rollover
		"Jan  2 10:00:00 esa1 mail_logs: Info: MID 4 queued for delivery",
		"Wed Jan  2 10:00:01 2030 Info: MID 5 queued for delivery", // a year of its own
	}, "\n")
	read := func(set func(*Reader)) []int {
		r := NewReader(strings.NewReader(in), time.UTC)
		set(r)
		var got []int
		for r.Scan() {
			got = append(got, r.Entry().Time.Year())
		}
		if r.Yearless() != 4 {
			t.Errorf("Yearless() = %d, want 4", r.Yearless())
		}
		return got
	}
	for _, c := range []struct {
		name string
		set  func(*Reader)
		want []int
	}{
		{"SetYear", func(r *Reader) { r.SetYear(2019) }, []int{2019, 2020, 2019, 2020, 2030}},
		{"SetNow in January", func(r *Reader) { r.SetNow(time.Date(2021, 1, 3, 0, 0, 0, 0, time.UTC)) }, []int{2020, 2021, 2020, 2021, 2030}},
		{"SetNow in June", func(r *Reader) { r.SetNow(time.Date(2021, 6, 3, 0, 0, 0, 0, time.UTC)) }, []int{2020, 2021, 2020, 2021, 2030}},
	} {
		if got := read(c.set); !slices.Equal(got, c.want) {
			t.Errorf("%s: years %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPrefix: an entry read from a line keeps what came before its
// message, as it was written (a syslog PRI aside), so that Prefix+Text is
// the line as logged.
func TestPrefix(t *testing.T) {
	for _, c := range []struct{ line, prefix string }{
		{"Wed Sep  6 13:13:16 2023 Info: MID 14 queued for delivery", "Wed Sep  6 13:13:16 2023 Info: "},
		{"Jun 26 10:42:23 esa1.example.edu mail_logs: Info: MID 100 queued for delivery", "Jun 26 10:42:23 esa1.example.edu mail_logs: Info: "},
		{"<166>Mar 17 18:24:37 mail_logs: Info: MID 6 queued for delivery", "Mar 17 18:24:37 mail_logs: Info: "},
		{"<165>1 2026-12-07T09:00:00+01:00 esa7 mail_logs - - - Info: MID 6 queued for delivery", "2026-12-07T09:00:00+01:00 esa7 mail_logs - - - Info: "},
		{"2019 Sep 28 16:13:51 ironport_server mail [info] splunk_maillogs:nopid Info: MID 6509657 DLP violation", "2019 Sep 28 16:13:51 ironport_server mail [info] splunk_maillogs:nopid Info: "},
		{"Info: MID 6 queued for delivery", "Info: "},
	} {
		e, err := ParseLine(c.line, time.UTC)
		if err != nil || e.Prefix != c.prefix || !strings.HasSuffix(c.line, e.Prefix+e.Text) {
			t.Errorf("ParseLine(%q): Prefix %q, Text %q, %v; want Prefix %q", c.line, e.Prefix, e.Text, err, c.prefix)
		}
	}
}
