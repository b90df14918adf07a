package spamd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/enginetest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/scan"
)

var engine = enginetest.Shared{Start: enginetest.Spamd}

func TestMain(m *testing.M) {
	code := m.Run()
	engine.Stop()
	os.Exit(code)
}

func msg(body []byte) *scan.Message {
	m := &scan.Message{MID: 1, Sender: "alice@example.com", Recipients: []string{"bob@example.org"}}
	return m.Bytes(body)
}

var (
	gtube = enginetest.Mail("alice@example.com", "bob@example.org", "test", enginetest.GTUBE)
	clean = enginetest.Mail("alice@example.com", "bob@example.org", "lunch", "Shall we have lunch at noon?\n")
)

func ptr(f float64) *float64 { return &f }

// TestRealVerdicts: spamd scores GTUBE 1000 (positive) and a plain message
// low (negative), over TCP and its Unix socket; a suspect_score at or
// below a message's score makes it suspect.
func TestRealVerdicts(t *testing.T) {
	e := engine.Get(t)
	for _, addr := range []string{e.TCP, e.Unix} {
		c := New(Options{Address: addr, User: "mailgate"})
		t.Run(scan.Network(addr), func(t *testing.T) {
			if err := c.Ping(enginetest.Context(t)); err != nil {
				t.Fatal(err)
			}
			v, err := c.ScanSpam(enginetest.Context(t), msg(gtube))
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != scan.Positive || v.Score < 1000 || v.Required != 5 || v.Action != "spam" || !slices.Contains(v.Names(), "GTUBE") {
				t.Errorf("GTUBE: %v %v/%v %q %v, want positive, 1000 or more of 5, spam, GTUBE", v.Class, v.Score, v.Required, v.Action, v.Names())
			}
			v, err = c.ScanSpam(enginetest.Context(t), msg(clean))
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != scan.Negative || v.Score >= 5 || v.Action != "ham" || slices.Contains(v.Names(), "GTUBE") {
				t.Errorf("clean: %v %v %q %v, want negative, below 5, ham, no GTUBE", v.Class, v.Score, v.Action, v.Names())
			}
			s := New(Options{Address: addr, Thresholds: scan.Thresholds{Suspect: ptr(v.Score)}})
			if v, err := s.ScanSpam(enginetest.Context(t), msg(clean)); err != nil || v.Class != scan.Suspect {
				t.Errorf("with suspect_score %v: %v %v, want suspect", v.Score, v.Class, err)
			}
		})
	}
	// spamd saw the User header.
	wait.Until(t, "spamd's log line for the user mailgate", func() bool {
		b, _ := os.ReadFile(e.Log)
		return strings.Contains(string(b), "for mailgate:")
	})
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		reply   string
		t       scan.Thresholds
		class   scan.SpamClass
		score   float64
		symbols []string
	}{
		{"SPAMD/1.1 0 EX_OK\r\nContent-length: 11\r\nSpam: True ; 15.0 / 5.0\r\n\r\nGTUBE,OTHER", scan.Thresholds{}, scan.Positive, 15, []string{"GTUBE", "OTHER"}},
		{"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 4.9 / 5.0\r\n\r\n", scan.Thresholds{}, scan.Negative, 4.9, nil},
		{"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 4.9 / 5.0\r\n\r\n", scan.Thresholds{Suspect: ptr(3)}, scan.Suspect, 4.9, nil},
		{"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 2.9 / 5.0\r\n\r\n", scan.Thresholds{Suspect: ptr(3)}, scan.Negative, 2.9, nil},
		{"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 6 / 5.0\r\n\r\n", scan.Thresholds{Suspect: ptr(3), Positive: ptr(8)}, scan.Suspect, 6, nil},
		{"SPAMD/1.1 0 EX_OK\r\nspam: yes ; -1.5 / 5.0\r\n\r\n", scan.Thresholds{}, scan.Positive, -1.5, nil},
		{"SPAMD/1.1 0 EX_OK\nContent-length: 3\nSpam: True ; 9 / 5\n\nA,BCD", scan.Thresholds{}, scan.Positive, 9, []string{"A", "B"}},
	} {
		t.Run(strconv.Quote(tt.reply), func(t *testing.T) {
			v, err := Parse([]byte(tt.reply), tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != tt.class || v.Score != tt.score || !slices.Equal(v.Names(), tt.symbols) {
				t.Errorf("%v %v %v, want %v %v %v", v.Class, v.Score, v.Names(), tt.class, tt.score, tt.symbols)
			}
		})
	}
}

// readSpamc reads one SPAMC request whole, for a fault peer: its header
// lines, then Content-length bytes of message.
func readSpamc(br *bufio.Reader) error {
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if v, ok := strings.CutPrefix(line, "Content-length: "); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	_, err := io.CopyN(io.Discard, br, int64(length))
	return err
}

// peer starts a fault peer that answers reply to each request, held until
// release gives a value when it is not nil.
func peer(t *testing.T, reply string, release chan struct{}) *enginetest.Peer {
	return enginetest.StartPeer(t, &enginetest.Peer{Read: readSpamc, Reply: reply, Release: release})
}

const ham = "SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0 / 5\r\n\r\n"

func TestFaults(t *testing.T) {
	closed := func(t *testing.T) string { return enginetest.ClosedAddr(t) }
	answer := func(reply string) func(*testing.T) string {
		return func(t *testing.T) string { return peer(t, reply, nil).Addr }
	}
	for _, tt := range []struct {
		name string
		addr func(*testing.T) string
		want error
		text string
	}{
		{"stopped", closed, scan.ErrUnavailable, "connection refused"},
		{"no socket file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "spamd.sock") }, scan.ErrUnavailable, "no such file"},
		{"closes without a reply", answer(""), scan.ErrUnavailable, "without a reply"},
		{"HTTP", answer("HTTP/1.1 200 OK\r\n\r\n"), scan.ErrProtocol, "not a SPAMD reply"},
		{"no Spam header", answer("SPAMD/1.1 0 EX_OK\r\n\r\n"), scan.ErrProtocol, "no Spam header"},
		{"bad Spam header", answer("SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n"), scan.ErrProtocol, "bad Spam header"},
		{"NaN score", answer("SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5\r\n\r\n"), scan.ErrProtocol, "bad Spam header"},
		{"short body", answer("SPAMD/1.1 0 EX_OK\r\nContent-length: 50\r\nSpam: True ; 1 / 5\r\n\r\nGTUBE"), scan.ErrProtocol, "Content-length"},
		{"bad status", answer("SPAMD/1.1 OK\r\n\r\n"), scan.ErrProtocol, "bad status line"},
		{"spamd's error", answer("SPAMD/1.0 76 Bad header line: Content-length: x\r\n"), scan.ErrEngine, "76 Bad header line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Address: tt.addr(t), Timeout: 10 * time.Second})
			_, err := c.ScanSpam(enginetest.Context(t), msg(clean))
			var se *scan.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Engine != "SpamAssassin" || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want %v with %q", err, tt.want, tt.text)
			}
		})
	}
}

// TestTimeout: a peer that never answers costs the timeout.
func TestTimeout(t *testing.T) {
	p := peer(t, ham, make(chan struct{}))
	defer close(p.Release)
	c := New(Options{Address: p.Addr, Timeout: 300 * time.Millisecond})
	start := time.Now()
	if _, err := c.ScanSpam(context.Background(), msg(clean)); !errors.Is(err, scan.ErrTimeout) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout of 300ms took %v", d)
	}
}

// TestConcurrency: no more connections in flight than allowed.
func TestConcurrency(t *testing.T) {
	p := peer(t, ham, make(chan struct{}))
	const limit = 2
	c := New(Options{Address: p.Addr, Concurrency: limit, Timeout: time.Minute})
	enginetest.CheckConcurrency(t, &p.InFlight, p.Release, limit, 7, func(int) error {
		_, err := c.ScanSpam(context.Background(), msg(clean))
		return err
	})
}

// TestTooBig: a message over max_size is not sent.
func TestTooBig(t *testing.T) {
	p := peer(t, ham, nil)
	c := New(Options{Address: p.Addr, MaxSize: 10})
	_, err := c.ScanSpam(context.Background(), msg(make([]byte, 11)))
	var tb *scan.TooBigError
	if !errors.As(err, &tb) || *tb != (scan.TooBigError{Engine: "SpamAssassin", Size: 11, Limit: 10}) {
		t.Fatalf("error %v, want too big (11/10)", err)
	}
	if p.Most() != 0 {
		t.Error("the message was sent")
	}
	if _, err := c.ScanSpam(context.Background(), msg(make([]byte, 10))); err != nil {
		t.Errorf("a message of max_size: %v", err)
	}
}
