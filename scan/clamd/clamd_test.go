package clamd

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/enginetest"
	"github.com/mailgate/mailgate/scan"
)

// streamMax is the test clamd's StreamMaxLength.
const streamMax = 1 << 20

var engine = enginetest.Shared{Start: func() (*enginetest.Engine, error) { return enginetest.Clamd(streamMax) }}

func TestMain(m *testing.M) {
	code := m.Run()
	engine.Stop()
	guarded.Stop()
	os.Exit(code)
}

func msg(body []byte) *scan.Message { return (&scan.Message{MID: 7}).Bytes(body) }

// mime builds a multipart/mixed message of a text part and the given
// parts (each with its headers).
func mime(parts ...string) []byte {
	var b strings.Builder
	b.WriteString("From: alice@example.com\r\nTo: bob@example.org\r\nSubject: the file\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\nThis is a multipart message.\r\n" +
		"--outer\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n")
	for _, p := range parts {
		b.WriteString("--outer\r\n" + p + "\r\n")
	}
	b.WriteString("--outer--\r\n")
	return []byte(b.String())
}

// attachment is a base64 MIME part of a file.
func attachment(name, ctype string, data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var lines []string
	for len(enc) > 76 {
		lines, enc = append(lines, enc[:76]), enc[76:]
	}
	lines = append(lines, enc)
	return "Content-Type: " + ctype + "; name=\"" + name + "\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n" + strings.Join(lines, "\r\n")
}

// zipOf builds a zip archive of one file; encrypted sets the "encrypted"
// flag of its entries (the data stays as it is: ClamAV judges by the flag).
func zipOf(t *testing.T, name string, data []byte, encrypted bool) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	z := b.Bytes()
	if encrypted {
		// Bit 0 of the general-purpose flags: in the local header (at 6)
		// and the central directory entry (at 8).
		for _, sig := range [][]byte{{'P', 'K', 3, 4}, {'P', 'K', 1, 2}} {
			i := bytes.Index(z, sig)
			off := map[byte]int{3: 6, 1: 8}[sig[2]]
			binary.LittleEndian.PutUint16(z[i+off:], binary.LittleEndian.Uint16(z[i+off:])|1)
		}
	}
	return z
}

func TestRealVerdicts(t *testing.T) {
	e := engine.Get(t)
	eicar := []byte(enginetest.EICAR)
	nested := "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nsee the forwarded message\r\n" +
		"--inner\r\nContent-Type: message/rfc822\r\n\r\n" + string(mime(attachment("eicar.com", "application/octet-stream", eicar))) + "\r\n--inner--"
	for _, tt := range []struct {
		name  string
		body  []byte
		class scan.VirusClass
		virus string
	}{
		{"EICAR plain", eicar, scan.Viral, "Eicar-Test-Signature.UNOFFICIAL"},
		{"EICAR as a base64 attachment", mime(attachment("eicar.com", "application/octet-stream", eicar)), scan.Viral, "Eicar-Test-Signature.UNOFFICIAL"},
		{"EICAR in a zip", mime(attachment("files.zip", "application/zip", zipOf(t, "eicar.com", eicar, false))), scan.Viral, "Eicar-Test-Signature.UNOFFICIAL"},
		{"EICAR in nested multiparts", mime(nested), scan.Viral, "Eicar-Test-Signature.UNOFFICIAL"},
		{"an encrypted zip", mime(attachment("secret.zip", "application/zip", zipOf(t, "report.txt", []byte("quarterly figures\n"), true))),
			scan.Encrypted, "Heuristics.Encrypted.Zip"},
		{"clean", mime(attachment("notes.txt", "text/plain", []byte("nothing to see\n"))), scan.Clean, ""},
		{"clean zip", mime(attachment("notes.zip", "application/zip", zipOf(t, "notes.txt", []byte("nothing\n"), false))), scan.Clean, ""},
		{"exactly StreamMaxLength", bytes.Repeat([]byte("x"), streamMax), scan.Clean, ""},
	} {
		for _, addr := range []string{e.Unix, e.TCP} {
			t.Run(tt.name+" over "+scan.Network(addr), func(t *testing.T) {
				c := New(Options{Address: addr, MaxSize: streamMax})
				v, err := c.ScanVirus(enginetest.Context(t), msg(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				if v.Class != tt.class || v.Name != tt.virus {
					t.Errorf("verdict %v %q, want %v %q", v.Class, v.Name, tt.class, tt.virus)
				}
			})
		}
	}
}

// TestRealTooBig: a message over StreamMaxLength is never reported clean:
// the client does not send it, and when its max_size is set above clamd's,
// clamd's refusal is too big as well.
func TestRealTooBig(t *testing.T) {
	e := engine.Get(t)
	body := bytes.Repeat([]byte("x"), 2*streamMax)
	for _, tt := range []struct {
		name    string
		maxSize int64
		addr    string
	}{
		{"max_size is StreamMaxLength", streamMax, e.TCP},
		{"max_size above clamd's, TCP", 4 * streamMax, e.TCP},
		{"max_size above clamd's, Unix socket", 4 * streamMax, e.Unix},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Address: tt.addr, MaxSize: tt.maxSize})
			v, err := c.ScanVirus(enginetest.Context(t), msg(body))
			var tb *scan.TooBigError
			if !errors.As(err, &tb) || *tb != (scan.TooBigError{Engine: "ClamAV", Size: 2 * streamMax, Limit: tt.maxSize}) {
				t.Fatalf("verdict %v, error %v; want too big (%d/%d)", v, err, 2*streamMax, tt.maxSize)
			}
		})
	}
	if err := New(Options{Address: e.TCP}).Ping(enginetest.Context(t)); err != nil {
		t.Errorf("clamd after the refusals: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		reply string
		want  scan.VirusVerdict
	}{
		{"stream: OK\x00", scan.VirusVerdict{Class: scan.Clean}},
		{"stream: OK\n", scan.VirusVerdict{Class: scan.Clean}},
		{"stream: Win.Test.EICAR_HDB-1 FOUND\x00", scan.VirusVerdict{Class: scan.Viral, Name: "Win.Test.EICAR_HDB-1"}},
		{"stream: Heuristics.Encrypted.PDF FOUND\x00", scan.VirusVerdict{Class: scan.Encrypted, Name: "Heuristics.Encrypted.PDF"}},
		{"stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\x00", scan.VirusVerdict{Class: scan.Unscannable, Name: "Heuristics.Limits.Exceeded.MaxFileSize"}},
		{"stream: Heuristics.Broken.Executable FOUND\x00", scan.VirusVerdict{Class: scan.Unscannable, Name: "Heuristics.Broken.Executable"}},
	} {
		t.Run(strconv.Quote(tt.reply), func(t *testing.T) {
			v, err := Parse([]byte(tt.reply))
			if err != nil || v != tt.want {
				t.Errorf("%+v %v, want %+v", v, err, tt.want)
			}
		})
	}
}

// readInstream reads one zINSTREAM request whole, for a fault peer.
func readInstream(br *bufio.Reader) error {
	if cmd, err := br.ReadString(0); err != nil || cmd != "zINSTREAM\x00" {
		return fmt.Errorf("not zINSTREAM: %q %v", cmd, err)
	}
	for {
		var n uint32
		if err := binary.Read(br, binary.BigEndian, &n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return err
		}
	}
}

// peer starts a fault peer that answers reply to each INSTREAM, held
// until release gives a value when it is not nil.
func peer(t *testing.T, reply string, release chan struct{}) *enginetest.Peer {
	return enginetest.StartPeer(t, &enginetest.Peer{Read: readInstream, Reply: reply, Release: release})
}

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
		{"no socket file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "clamd.sock") }, scan.ErrUnavailable, "no such file"},
		{"closes without a reply", answer(""), scan.ErrUnavailable, "EOF"},
		{"HTTP", answer("HTTP/1.1 200 OK\r\n\r\n"), scan.ErrProtocol, "not a reply to INSTREAM"},
		{"no verdict", answer("stream: MAYBE\x00"), scan.ErrProtocol, "not a reply to INSTREAM"},
		{"no name", answer("stream:  FOUND\x00"), scan.ErrProtocol, "not a reply to INSTREAM"},
		{"endless reply", answer(strings.Repeat("stream: ", 1000)), scan.ErrProtocol, "a reply over"},
		{"two lines", answer("stream: OK\nstream: OK\x00"), scan.ErrProtocol, "not a reply"},
		{"clamd's error", answer("Can't allocate memory ERROR\x00"), scan.ErrEngine, "Can't allocate memory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Address: tt.addr(t), Timeout: 10 * time.Second})
			v, err := c.ScanVirus(enginetest.Context(t), msg([]byte("hello")))
			var se *scan.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Engine != "ClamAV" || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("verdict %v error %v, want %v with %q", v, err, tt.want, tt.text)
			}
		})
	}
}

// TestTimeout: a peer that never answers costs the timeout.
func TestTimeout(t *testing.T) {
	p := peer(t, "stream: OK\x00", make(chan struct{}))
	defer close(p.Release)
	c := New(Options{Address: p.Addr, Timeout: 300 * time.Millisecond})
	start := time.Now()
	if _, err := c.ScanVirus(context.Background(), msg([]byte("hello"))); !errors.Is(err, scan.ErrTimeout) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout of 300ms took %v", d)
	}
}

// TestConcurrency: no more connections in flight than allowed.
func TestConcurrency(t *testing.T) {
	p := peer(t, "stream: OK\x00", make(chan struct{}))
	const limit = 3
	c := New(Options{Address: p.Addr, Concurrency: limit, Timeout: time.Minute})
	enginetest.CheckConcurrency(t, &p.InFlight, p.Release, limit, 8, func(int) error {
		_, err := c.ScanVirus(context.Background(), msg([]byte("hello")))
		return err
	})
}

// TestTooBigNotSent: a message over max_size never reaches clamd.
func TestTooBigNotSent(t *testing.T) {
	p := peer(t, "stream: OK\x00", nil)
	c := New(Options{Address: p.Addr, MaxSize: 10})
	_, err := c.ScanVirus(context.Background(), msg(make([]byte, 11)))
	var tb *scan.TooBigError
	if !errors.As(err, &tb) || *tb != (scan.TooBigError{Engine: "ClamAV", Size: 11, Limit: 10}) {
		t.Fatalf("error %v, want too big (11/10)", err)
	}
	if p.Most() != 0 {
		t.Error("the message was sent")
	}
	if v, err := c.ScanVirus(context.Background(), msg(make([]byte, 10))); err != nil || v.Class != scan.Clean {
		t.Errorf("a message of max_size: %v %v", v, err)
	}
}
