package main

// Process-level tests of large messages: streamed to the spool, killed in
// the middle of DATA and of the commit, and relayed whole.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
)

// largeMessage is a message of size bytes (rounded up to its blocks)
// whose every block differs with its subject.
type largeMessage struct {
	subject string
	blocks  [][]byte
}

func newLargeMessage(subject string, size int) largeMessage {
	m := largeMessage{subject: subject}
	m.blocks = append(m.blocks, []byte("Subject: "+subject+"\r\n\r\n"))
	for n := 0; n < size; {
		var b bytes.Buffer
		for b.Len() < 32<<10 {
			fmt.Fprintf(&b, "%s block %d line %d: 0123456789abcdefghijklmnopqrstuvwxyz\r\n", subject, len(m.blocks), b.Len())
		}
		m.blocks = append(m.blocks, b.Bytes())
		n += b.Len()
	}
	return m
}

func (m largeMessage) bytes() []byte { return bytes.Join(m.blocks, nil) }

func (m largeMessage) sum() [32]byte { return sha256.Sum256(m.bytes()) }

// largeSession is a client sending a large message by hand.
type largeSession struct {
	c net.Conn
	r *bufio.Reader
}

func openLarge(addr string) (*largeSession, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	s := &largeSession{c: c, r: bufio.NewReader(c)}
	for _, st := range [][2]string{{"", "220"}, {"EHLO client.test", "250"}, {"MAIL FROM:<a@example.org>", "250"},
		{"RCPT TO:<b@example.com>", "250"}, {"DATA", "354"}} {
		if _, err := s.cmd(st[0], st[1]); err != nil {
			c.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *largeSession) cmd(line, want string) (string, error) {
	if line != "" {
		if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
			return "", err
		}
	}
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if len(l) >= 4 && l[3] == '-' {
			continue
		}
		l = strings.TrimRight(l, "\r\n")
		if !strings.HasPrefix(l, want) {
			return l, fmt.Errorf("%q: reply %q, want %s", line, l, want)
		}
		return l, nil
	}
}

// send writes the message's blocks from..to.
func (s *largeSession) send(m largeMessage, from, to int) error {
	for _, b := range m.blocks[from:to] {
		if _, err := s.c.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// end sends the end of data and returns the MID acknowledged.
func (s *largeSession) end() (uint64, error) {
	l, err := s.cmd(".", "250")
	if err != nil {
		return 0, err
	}
	m := acceptedRe.FindStringSubmatch(l)
	if m == nil {
		return 0, fmt.Errorf("reply %q", l)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// spoolSubjects opens the spool of a stopped gateway and returns its
// messages by subject, each checked to be whole against want.
func spoolSubjects(t *testing.T, g *gw, want map[string]largeMessage) map[string][]uint64 {
	t.Helper()
	s, err := queue.Open(filepath.Join(g.dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec := s.Recovery(); len(rec.Corrupt) > 0 {
		t.Errorf("corruption after a kill: %v", rec.Corrupt)
	}
	out := map[string][]uint64{}
	for _, mid := range s.Messages() {
		_, msg, err := s.Read(mid)
		if err != nil {
			t.Fatalf("MID %d: %v", mid, err)
		}
		i := bytes.Index(msg, []byte("Subject: "))
		if i < 0 {
			t.Errorf("MID %d has no subject", mid)
			continue
		}
		subject, _, _ := strings.Cut(string(msg[i+len("Subject: "):min(len(msg), i+200)]), "\r\n")
		out[subject] = append(out[subject], mid)
		if m, ok := want[subject]; !ok || sha256.Sum256(msg[i:]) != m.sum() {
			t.Errorf("MID %d (%q, %d bytes) is not a message sent whole", mid, subject, len(msg)-i)
		}
	}
	return out
}

// SIGKILL in the middle of a large DATA, and while large messages are
// being committed: after a restart every acknowledged message is in the
// spool once and whole, and a message whose end of data was never sent is
// not.
func TestSIGKILLDuringLargeData(t *testing.T) {
	const size = 6 << 20
	g := newGW(t, "5s")
	g.start()
	msgs := map[string]largeMessage{}
	for _, s := range []string{"done", "unfinished", "c0", "c1", "c2", "c3"} {
		msgs[s] = newLargeMessage(s, size)
	}

	// One message acknowledged, another cut in the middle of its DATA.
	done, err := openLarge(g.addr)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs["done"]
	if err := done.send(m, 0, len(m.blocks)); err != nil {
		t.Fatal(err)
	}
	if _, err := done.end(); err != nil {
		t.Fatal(err)
	}
	cut, err := openLarge(g.addr)
	if err != nil {
		t.Fatal(err)
	}
	m = msgs["unfinished"]
	if err := cut.send(m, 0, len(m.blocks)/2); err != nil {
		t.Fatal(err)
	}
	smtptest.WaitPeerRead(t, cut.c)
	g.signal(syscall.SIGKILL)
	g.wait()
	got := spoolSubjects(t, g, msgs)
	if len(got["done"]) != 1 || len(got) != 1 {
		t.Errorf("after a kill in DATA the spool holds %v, want the acknowledged message once", got)
	}

	// Four large messages end at once; the kill comes with the first 250,
	// while the others are being committed.
	g.start()
	var mu sync.Mutex
	acked := map[string]bool{}
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range 4 {
		subject := fmt.Sprintf("c%d", i)
		wg.Go(func() {
			s, err := openLarge(g.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.c.Close()
			m := msgs[subject]
			if err := s.send(m, 0, len(m.blocks)); err != nil {
				return
			}
			if _, err := s.end(); err == nil {
				mu.Lock()
				acked[subject] = true
				mu.Unlock()
				once.Do(func() { close(first) })
			}
		})
	}
	select {
	case <-first:
	case <-time.After(2 * time.Minute):
		t.Fatal("no message acknowledged")
	}
	g.signal(syscall.SIGKILL)
	g.wait()
	wg.Wait()
	got = spoolSubjects(t, g, msgs)
	for subject, mids := range got {
		if len(mids) != 1 {
			t.Errorf("%q is in the spool %d times", subject, len(mids))
		}
	}
	for subject := range acked {
		if len(got[subject]) != 1 {
			t.Errorf("acknowledged %q lost", subject)
		}
	}
	if len(got["done"]) != 1 || len(got["unfinished"]) != 0 {
		t.Errorf("spool holds %v after the second kill", got)
	}
	t.Logf("killed at the first 250 of 4: %d acknowledged, %d in the spool", len(acked), len(got)-1)
}

// Large messages relayed to a next hop arrive byte for byte.
func TestLargeMessagesRelayed(t *testing.T) {
	hop := startNextHop(t, 0)
	g := relayGW(t, hop.addr, "")
	g.start()
	var wg sync.WaitGroup
	want := map[string][32]byte{}
	for i := range 3 {
		m := newLargeMessage(fmt.Sprintf("relayed%d", i), 8<<20)
		want[m.subject] = m.sum()
		wg.Go(func() {
			s, err := openLarge(g.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.c.Close()
			if err := s.send(m, 0, len(m.blocks)); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.end(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var msgs []hopMessage
	wait.Until(t, "3 messages at the next hop", func() bool {
		_, msgs = hop.delivered()
		return len(msgs) >= 3
	})
	for _, m := range msgs {
		i := bytes.Index(m.data, []byte("Subject: "))
		if i < 0 {
			t.Errorf("a message without a subject reached the next hop")
			continue
		}
		subject, _, _ := strings.Cut(string(m.data[i+len("Subject: "):]), "\r\n")
		if sum, ok := want[subject]; !ok || sha256.Sum256(m.data[i:]) != sum {
			t.Errorf("%q differs at the next hop (%d bytes)", subject, len(m.data)-i)
		}
		delete(want, subject)
	}
	if len(want) > 0 {
		t.Errorf("not delivered: %v", want)
	}
}
