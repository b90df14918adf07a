package inbound_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
)

// streamConfig accepts messages of up to 20 MB, from 127.0.0.3 of up to
// 1 MB.
const streamConfig = `
hostname: mx.test
data_dir: %s
listeners:
  - name: InboundMail
    interface: Management
    address: 127.0.0.1:0
    timeouts: {unsuccessful: %s, total: %s}
    hat:
      sender_groups:
        - {name: SMALL, match: [127.0.0.3], policy: SMALL}
      policies:
        BIG: {action: accept, max_message_size: 20MB, max_concurrency_per_ip: 1000}
        SMALL: {action: accept, max_message_size: 1MB}
      default_policy: BIG
    rat:
      - {domain: example.com, action: accept}
dns: {servers: ["%s"], timeout: 2s}
`

// bigBody is a message of about size bytes, different for each n, built
// of 64 KiB blocks that are written again and again, so that the clients
// of a test hold almost nothing.
type bigBody struct {
	block []byte
	count int
}

func newBigBody(n, size int) bigBody {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Subject: big %d\r\nMessage-ID: <big%d@example.org>\r\n\r\n", n, n)
	block := b.Bytes()
	var body bytes.Buffer
	for i := 0; body.Len() < 64<<10-80; i++ {
		fmt.Fprintf(&body, "message %d line %d: 0123456789abcdefghijklmnopqrstuvwxyz\r\n", n, i)
	}
	block = append(block, body.Bytes()...)
	return bigBody{block: block, count: (size + len(block) - 1) / len(block)}
}

func (m bigBody) size() int64 { return int64(len(m.block) * m.count) }

func (m bigBody) sum() [32]byte {
	h := sha256.New()
	for range m.count {
		h.Write(m.block)
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// send writes the body to c, without the end of data.
func (m bigBody) send(c *smtptest.Conn) {
	c.T.Helper()
	for range m.count {
		if _, err := c.C.Write(m.block); err != nil {
			c.T.Fatalf("write: %v", err)
		}
	}
}

// peakHeap samples the heap in use until stop is closed and returns the
// highest it saw above where it started.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	go func() {
		var peak uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base {
				peak = max(peak, ms.HeapInuse-base)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// Many sessions send a large message each at the same time: the memory
// they take is the sessions' buffers, not the messages, which reach the
// spool whole.
func TestLargeMessagesStreamed(t *testing.T) {
	const sessions, size = 50, 10 << 20
	h := start(t, opts{yaml: streamConfig})
	stop := make(chan struct{})
	peak := peakHeap(stop)
	mids := make([]uint64, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			c := h.dial("")
			c.C.SetDeadline(time.Now().Add(3 * time.Minute))
			c.Expect("220")
			c.Cmd("EHLO client.example.org", "250")
			c.Cmd("MAIL FROM:<a@example.org>", "250")
			c.Cmd("RCPT TO:<b@example.com>", "250")
			c.Cmd("DATA", "354")
			newBigBody(i, size).send(c)
			r := c.Cmd(".", "250")
			m := acceptedRe.FindStringSubmatch(r)
			if m == nil {
				t.Errorf("session %d: %q", i, r)
				return
			}
			mids[i], _ = strconv.ParseUint(m[1], 10, 64)
			c.Cmd("QUIT", "221")
		})
	}
	wg.Wait()
	close(stop)
	grew := <-peak
	t.Logf("%d sessions × %d MiB: heap in use grew by at most %.1f MiB", sessions, size>>20, float64(grew)/(1<<20))
	if limit := uint64(32 << 20); grew > limit {
		t.Errorf("heap in use grew by %d MiB, want at most %d MiB for %d sessions", grew>>20, limit>>20, sessions)
	}
	for i, mid := range mids {
		if mid == 0 {
			continue
		}
		want := newBigBody(i, size)
		_, body, err := h.spool.Read(mid)
		if err != nil {
			t.Fatal(err)
		}
		// The spool holds the Received field the gateway added, then the
		// message as sent.
		if !bytes.HasPrefix(body, []byte("Received: from client.example.org")) {
			t.Errorf("MID %d starts %q", mid, body[:min(len(body), 60)])
		}
		msg := body[len(body)-int(want.size()):]
		if sha256.Sum256(msg) != want.sum() || !bytes.HasPrefix(msg, []byte("Subject: big "+strconv.Itoa(i)+"\r\n")) {
			t.Errorf("MID %d: the message in the spool is not the one session %d sent", mid, i)
		}
	}
	h.lines.WaitFor(t, fmt.Sprintf(`^MID %d ready %d bytes from <a@example.org>$`, mids[0], newBigBody(0, size).size()))
	h.lines.WaitFor(t, fmt.Sprintf(`^MID %d Subject 'big 0'$`, mids[0]))
	h.lines.WaitFor(t, fmt.Sprintf(`^MID %d Message-ID '<big0@example.org>'$`, mids[0]))
}

// openStages lists the stage files this process has open.
func openStages(t *testing.T) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var out []string
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.Contains(l, "/stage-") {
			out = append(out, l)
		}
	}
	return out
}

// A client that sends most of a large message and vanishes leaves nothing
// behind: no message, no stage.
func TestLargeMessageUnfinished(t *testing.T) {
	h := start(t, opts{yaml: streamConfig})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.org", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	newBigBody(1, 10<<20).send(c)
	smtptest.WaitPeerRead(t, c.C)
	c.Reset()
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all)[2:], []string{
		"Start MID N ICID N",
		"MID N ICID N From: <a@example.org>",
		"MID N ICID N RID 0 To: <b@example.com>",
		"ICID N lost",
		"Message aborted MID N Receiving aborted",
		"Message finished MID N aborted",
		"ICID N close",
	})
	if n := len(h.spool.Messages()); n != 0 {
		t.Errorf("spool holds %d messages", n)
	}
	if open := openStages(t); len(open) > 0 {
		t.Errorf("stages left open: %v", open)
	}
}

// A message over the size limit is refused when it ends, having been
// dropped as soon as it passed the limit; the session goes on.
func TestLargeMessageOverLimit(t *testing.T) {
	h := start(t, opts{yaml: streamConfig})
	c := h.dial("127.0.0.3")
	c.Expect("220")
	c.Cmd("EHLO client.example.org", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	newBigBody(1, 30<<20).send(c)
	c.Cmd(".", "552 5.3.4 Message size exceeds limit")
	if open := openStages(t); len(open) > 0 {
		t.Errorf("stages left open: %v", open)
	}
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("Subject: small\r\n\r\nhello\r\n")
	c.Cmd(".", "250")
	c.Cmd("QUIT", "221")
	h.lines.WaitFor(t, `^ICID \d+ Receiving Failed: Message size exceeds limit$`)
	if n := len(h.spool.Messages()); n != 1 {
		t.Errorf("spool holds %d messages, want the small one", n)
	}
}

// The header-line limit holds for a header longer than the part of a large
// message kept in memory: the lines past it are counted in the stage.
func TestLargeHeaderLines(t *testing.T) {
	h := start(t, opts{yaml: streamConfig})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.org", "250")
	header := func(lines int) string {
		var b strings.Builder
		b.WriteString("Subject: long header\r\n")
		for i := 1; i < lines; i++ {
			fmt.Fprintf(&b, "X-Filler-%04d: %s\r\n", i, strings.Repeat("f", 180))
		}
		return b.String()
	}
	body := strings.Repeat("a body line\r\n", 20000)
	for _, tt := range []struct {
		msg, reply string
	}{
		{header(1000) + "\r\n" + body, "250 2.0.0 ok"},
		{header(1001) + "\r\n" + body, "552 5.3.4 message header size exceeds limit"},
		{header(1000) + " folded, the 1001st line\r\n\r\n" + body, "552 5.3.4 message header size exceeds limit"},
		// The body starts at a line that is not a field; what follows is
		// body, however much it looks like fields.
		{header(1000) + "not a field: the body starts here\r\n" + strings.Repeat("Looks-Like: a field\r\n", 5000), "250 2.0.0 ok"},
	} {
		c.Cmd("MAIL FROM:<a@example.org>", "250")
		c.Cmd("RCPT TO:<b@example.com>", "250")
		c.Cmd("DATA", "354")
		c.Send(tt.msg)
		c.Cmd(".", tt.reply)
	}
	c.Cmd("QUIT", "221")
	if n := len(h.spool.Messages()); n != 2 {
		t.Errorf("spool holds %d messages, want 2", n)
	}
}

// A message refused for its header, whose rest is also over the size
// limit: the client hears the size (the engine's word wins) and the log
// has one failure for it, the header's.
func TestLargeHeaderAndSize(t *testing.T) {
	h := start(t, opts{yaml: streamConfig})
	c := h.dial("127.0.0.3")
	c.Expect("220")
	c.Cmd("EHLO client.example.org", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(strings.Repeat("X-Short: 1\r\n", 1001) + "\r\n")
	newBigBody(1, 2<<20).send(c)
	c.Cmd(".", "552 5.3.4 Message size exceeds limit")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	var got []string
	for _, l := range esaLines(all) {
		if strings.Contains(l, "Receiving Failed") || strings.Contains(l, "Message finished") {
			got = append(got, l)
		}
	}
	eq(t, got, []string{
		"ICID N Receiving Failed: Message header size exceeds limit",
		"Message finished MID N aborted",
	})
}
