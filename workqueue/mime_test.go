package workqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
)

// bigMessage is a multipart message of about size bytes: a text part
// that fills it, then a small attachment whose content the test knows.
func bigMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@sender.net\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n")
	line := strings.Repeat("x", 78) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString("--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=last.bin\r\n\r\nthe last part\r\n--b--\r\n")
	return b.Bytes()
}

// commitBody stores msg for rcpt as inbound does.
func (h *harness) commitBody(msg []byte, rcpt string) *queue.Envelope {
	h.t.Helper()
	mid, err := h.ids.Next(queue.MID)
	if err != nil {
		h.t.Fatal(err)
	}
	env := &queue.Envelope{MID: mid, ICID: 1, Listener: "in", ClientIP: "127.0.0.1", From: "a@sender.net", Received: time.Now(),
		Rcpts: []queue.Recipient{{RID: 0, Addr: rcpt}}}
	if err := h.spool.Commit(context.Background(), env, msg); err != nil {
		h.t.Fatal(err)
	}
	return env
}

// lastPart is the tree's last leaf.
func lastPart(root *rfc822.Part) *rfc822.Part {
	var last *rfc822.Part
	for p := range root.All() {
		if len(p.Parts) == 0 {
			last = p
		}
	}
	return last
}

// segMaps counts this process's mappings of spool segments under dir
// (-1 where /proc/self/maps cannot tell).
func segMaps(dir string) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return -1
	}
	n := 0
	for l := range strings.Lines(string(b)) {
		if strings.Contains(l, dir) && strings.Contains(l, ".seg") {
			n++
		}
	}
	return n
}

// mimeStage is a content filter's use of the tree: the first run parses
// it (and measures what that allocated), the later ones read the Parts
// the first one got, as stages share one tree.
type mimeStage struct {
	first bool
	got   *[]string
	tree  **rfc822.Part
	msg   **Message
	alloc *uint64
}

func (s mimeStage) Run(ctx context.Context, m *Message) (Verdict, error) {
	if s.first {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		root, err := m.MIME()
		runtime.ReadMemStats(&after)
		if err != nil {
			return Verdict{}, err
		}
		*s.alloc = after.TotalAlloc - before.TotalAlloc
		*s.tree, *s.msg = root, m
	}
	p := lastPart(*s.tree)
	*s.got = append(*s.got, fmt.Sprintf("%s %q", p.Filename, p.Body))
	return Verdict{}, nil
}

// TestMIMEMapped: the MIME tree of a large message costs the heap what
// the parse allocates, not the message (the spool's file is mapped); the
// Parts the first stage got are read by the stages after it; when the
// message is handed on, its tree is gone and nothing of the spool is
// mapped any more.
func TestMIMEMapped(t *testing.T) {
	h := newHarness(t, "")
	var got []string
	var tree *rfc822.Part
	var msg *Message
	var alloc uint64
	h.stages["spam"] = mimeStage{first: true, got: &got, tree: &tree, msg: &msg, alloc: &alloc}
	for _, n := range []string{"virus", "cf1", "cf2"} {
		h.stages[n] = mimeStage{got: &got, tree: &tree, msg: &msg}
	}
	h.open()
	h.q.Start()
	body := bigMessage(8 << 20)
	env := h.commitBody(body, "ceo@example.com")
	h.q.Submit(env)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", env.MID))
	// The worker lets the message go after it has handed it on.
	wait.Until(t, "the worker done with the message", func() bool { return h.q.Status().Messages == 0 })

	if alloc > uint64(len(body))/8 {
		t.Errorf("parsing the %d-byte message allocated %d bytes: it was copied", len(body), alloc)
	}
	want := `last.bin "the last part"`
	if len(got) != 4 || strings.Count(strings.Join(got, "\n"), want) != 4 {
		t.Errorf("the stages read %q, want %q four times", got, want)
	}
	if _, err := msg.MIME(); err == nil {
		t.Error("MIME after the message was handed on gave a tree, want an error")
	}
	if n := segMaps(h.dir); n > 0 {
		t.Errorf("%d mappings of the spool left after the message was handed on", n)
	}
}

// faultStage parses the tree and then cuts the spool's files short
// under it, as a disk that loses them would; faultRead then reads a Part.
type faultStage struct {
	dir  string
	tree **rfc822.Part
	read bool
}

func (s faultStage) Run(ctx context.Context, m *Message) (Verdict, error) {
	if !s.read {
		root, err := m.MIME()
		if err != nil {
			return Verdict{}, err
		}
		*s.tree = root
		segs, _ := filepath.Glob(filepath.Join(s.dir, "spool", "*.seg"))
		for _, p := range segs {
			if err := os.Truncate(p, 0); err != nil {
				return Verdict{}, err
			}
		}
		return Verdict{}, nil
	}
	p := lastPart(*s.tree)
	if len(p.Body) > 0 && p.Body[0] == 0xff {
		return Verdict{Action: Drop, By: "a byte no message has"}, nil
	}
	return Verdict{}, nil
}

// TestMIMEFault: a fault reading the mapped message (its file cut short
// under the mapping) is an error of that pass, and the message waits to
// be worked on again; the gateway does not crash.
func TestMIMEFault(t *testing.T) {
	h := newHarness(t, "")
	var tree *rfc822.Part
	h.stages["spam"] = faultStage{dir: h.dir, tree: &tree}
	h.stages["virus"] = faultStage{dir: h.dir, tree: &tree, read: true}
	h.open()
	log := smtptest.NewLog()
	h.q.log = slog.New(slog.NewTextHandler(log, nil))
	h.q.Start()
	env := h.commitBody(bigMessage(256<<10), "ceo@example.com")
	h.q.Submit(env)
	log.Wait(t, fmt.Sprintf(`mid=%d .*could not be read from the spool's file`, env.MID))
	if _, ok := h.handedTo()[env.MID]; ok {
		t.Error("the message was handed on")
	}
	if _, err := h.spool.Map(env.MID); err == nil || errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Map of the message cut short: %v, want an error reading it", err)
	}
}
