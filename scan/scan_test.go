package scan_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/scan"
)

// TestEventLines: the verdicts render as the ESA's lines, and the lines
// parse back to the same events.
func TestEventLines(t *testing.T) {
	for _, tt := range []struct {
		ev   event.Event
		want string
	}{
		{scan.SpamEvent(5, true, "rspamd", scan.SpamVerdict{Class: scan.Positive}), "MID 5 interim verdict using engine: rspamd spam positive"},
		{scan.SpamEvent(5, false, "rspamd", scan.SpamVerdict{Class: scan.Suspect}), "MID 5 using engine: rspamd spam suspect"},
		{scan.SpamEvent(6, false, "SpamAssassin", scan.SpamVerdict{Class: scan.Negative}), "MID 6 using engine: SpamAssassin spam negative"},
		{scan.VirusInterimEvent(7, "ClamAV", scan.VirusVerdict{Class: scan.Clean}), "MID 7 interim AV verdict using ClamAV CLEAN"},
		{scan.VirusInterimEvent(7, "ClamAV", scan.VirusVerdict{Class: scan.Viral, Name: "Eicar-Test-Signature"}), "MID 7 interim AV verdict using ClamAV VIRAL"},
		{scan.VirusInterimEvent(7, "ClamAV", scan.VirusVerdict{Class: scan.Unscannable}), "MID 7 interim AV verdict using ClamAV UNSCANNABLE"},
		{scan.VirusEvent(7, scan.VirusVerdict{Class: scan.Clean}), "MID 7 antivirus negative"},
		{scan.VirusEvent(7, scan.VirusVerdict{Class: scan.Viral, Name: "Eicar-Test-Signature.UNOFFICIAL"}), "MID 7 antivirus positive 'Eicar-Test-Signature.UNOFFICIAL'"},
		{scan.VirusEvent(7, scan.VirusVerdict{Class: scan.Viral, Name: "It's"}), "MID 7 antivirus positive 'Its'"},
		{scan.VirusEvent(7, scan.VirusVerdict{Class: scan.Unscannable, Name: "Heuristics.Limits.Exceeded.MaxFileSize"}), "MID 7 antivirus unscannable"},
		{scan.VirusEvent(7, scan.VirusVerdict{Class: scan.Encrypted, Name: "Heuristics.Encrypted.Zip"}), "MID 7 antivirus encrypted"},
		{scan.TooBigEvent(8, &scan.TooBigError{Engine: "rspamd", Size: 455698, Limit: 120000}), "MID 8 was too big (455698/120000) for scanning by rspamd"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(maillog.AppendMessage(nil, tt.ev)); got != tt.want {
				t.Errorf("line\n%s\nwant\n%s", got, tt.want)
			}
			if back := maillog.ParseMessage(tt.want); back != tt.ev {
				t.Errorf("parsed back %#v, want %#v", back, tt.ev)
			}
		})
	}
}

func ptr(f float64) *float64 { return &f }

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		t                 scan.Thresholds
		score             float64
		positive, suspect bool
		want              scan.SpamClass
	}{
		{scan.Thresholds{}, 100, false, false, scan.Negative},
		{scan.Thresholds{}, 0, true, false, scan.Positive},
		{scan.Thresholds{}, 0, false, true, scan.Suspect},
		{scan.Thresholds{}, 0, true, true, scan.Positive},
		{scan.Thresholds{Positive: ptr(10)}, 10, false, false, scan.Positive},
		{scan.Thresholds{Positive: ptr(10)}, 9.99, true, false, scan.Negative},
		{scan.Thresholds{Positive: ptr(10)}, 9.99, true, true, scan.Suspect},
		{scan.Thresholds{Suspect: ptr(5)}, 5, false, false, scan.Suspect},
		{scan.Thresholds{Suspect: ptr(5)}, 4, false, true, scan.Negative},
		{scan.Thresholds{Suspect: ptr(5)}, 4, true, true, scan.Positive},
		{scan.Thresholds{Suspect: ptr(5), Positive: ptr(10)}, 12, false, false, scan.Positive},
	} {
		if got := tt.t.Classify(tt.score, tt.positive, tt.suspect); got != tt.want {
			t.Errorf("%+v.Classify(%v, %v, %v) = %v, want %v", tt.t, tt.score, tt.positive, tt.suspect, got, tt.want)
		}
	}
}

// TestFail: a failure's cause decides its kind.
func TestFail(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	bg := context.Background()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want error // nil: no kind
	}{
		{"refused", bg, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, scan.ErrUnavailable},
		{"no socket", bg, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENOENT)}, scan.ErrUnavailable},
		{"reset", bg, fmt.Errorf("read: %w", syscall.ECONNRESET), scan.ErrUnavailable},
		{"closed early", bg, io.ErrUnexpectedEOF, scan.ErrUnavailable},
		{"deadline", expired, context.DeadlineExceeded, scan.ErrTimeout},
		{"i/o timeout", bg, os.ErrDeadlineExceeded, scan.ErrTimeout},
		{"garbage", bg, errors.New("malformed HTTP response"), scan.ErrProtocol},
		{"canceled", canceled, context.Canceled, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := scan.Fail("rspamd", tt.ctx, tt.err)
			var se *scan.Error
			if tt.want == nil {
				if errors.As(err, &se) || !errors.Is(err, tt.err) {
					t.Errorf("%v: want the cause without a kind", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, tt.err) || !errors.As(err, &se) || se.Engine != "rspamd" {
				t.Errorf("%v: want %v wrapping %v", err, tt.want, tt.err)
			}
		})
	}
}

// TestZeroVerdicts: the verdict that comes with an error says nothing
// reassuring.
func TestZeroVerdicts(t *testing.T) {
	var s scan.SpamVerdict
	var v scan.VirusVerdict
	if s.Class == scan.Negative || v.Class == scan.Clean || s.Class.String() != "unknown" || v.Class.String() != "UNKNOWN" {
		t.Errorf("zero verdicts: spam %v, virus %v", s.Class, v.Class)
	}
	if verdict, _ := v.Final(); verdict != "unknown" {
		t.Errorf("zero virus verdict's final word %q", verdict)
	}
}

// TestGate: a client's zero limits take its defaults; a message over
// MaxSize is too big, one of MaxSize is not; no more requests at once than
// Concurrency, and the wait for a slot ends as a timeout.
func TestGate(t *testing.T) {
	def := scan.Limits{Timeout: time.Minute, Concurrency: 3, MaxSize: 100}
	for _, tt := range []struct {
		name string
		l    scan.Limits
		want scan.Limits
	}{
		{"zero", scan.Limits{}, def},
		{"negative", scan.Limits{Timeout: -1, Concurrency: -1, MaxSize: -1}, def},
		{"set", scan.Limits{Timeout: time.Second, Concurrency: 1, MaxSize: 10}, scan.Limits{Timeout: time.Second, Concurrency: 1, MaxSize: 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if g := scan.NewGate("ClamAV", tt.l, def); g.Limits != tt.want || g.Engine != "ClamAV" {
				t.Errorf("limits %+v, want %+v", g.Limits, tt.want)
			}
		})
	}

	g := scan.NewGate("ClamAV", scan.Limits{Timeout: time.Minute, Concurrency: 2, MaxSize: 10}, def)
	var tb *scan.TooBigError
	if err := g.TooBig(11); !errors.As(err, &tb) || *tb != (scan.TooBigError{Engine: "ClamAV", Size: 11, Limit: 10}) {
		t.Errorf("11 bytes of 10: %v, want too big (11/10)", err)
	}
	if err := g.TooBig(10); err != nil {
		t.Errorf("10 bytes of 10: %v", err)
	}

	var ends []func()
	for i := range 2 {
		ctx, end, err := g.Begin(context.Background())
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Minute {
			t.Errorf("request %d: deadline %v (%v), want within the timeout", i, dl, ok)
		}
		ends = append(ends, end)
	}
	// Both slots taken: a third request waits until its context ends.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := g.Begin(short)
	var se *scan.Error
	if !errors.Is(err, scan.ErrTimeout) || !errors.As(err, &se) || se.Engine != "ClamAV" {
		t.Errorf("a third request: %v, want a timeout", err)
	}
	ends[0]()
	ctx, end, err := g.Begin(context.Background())
	if err != nil {
		t.Fatalf("after a slot is freed: %v", err)
	}
	end()
	ends[1]()
	if ctx.Err() == nil {
		t.Error("end did not free the request's context")
	}
}

// TestReadReply: a reply up to the limit is read whole; a longer one is a
// protocol error; a failed read is classified by its cause.
func TestReadReply(t *testing.T) {
	reset := io.MultiReader(strings.NewReader("SPAMD/1.1"), iotest.ErrReader(fmt.Errorf("read: %w", syscall.ECONNRESET)))
	for _, tt := range []struct {
		name string
		r    io.Reader
		want error // nil: the reply
	}{
		{"within", strings.NewReader("0123456789"), nil},
		{"over", strings.NewReader("0123456789x"), scan.ErrProtocol},
		{"reset", reset, scan.ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := scan.ReadReply(context.Background(), "SpamAssassin", tt.r, 10)
			if tt.want == nil {
				if err != nil || string(b) != "0123456789" {
					t.Errorf("%q %v, want the reply", b, err)
				}
				return
			}
			var se *scan.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Engine != "SpamAssassin" {
				t.Errorf("%q %v, want %v", b, err, tt.want)
			}
		})
	}
}
