// Command relaylat measures a relay end to end, for bench/relay.sh: it is
// both the relay's client and its next hop, so that it knows, for every
// message, when the client got its 250 and when the next hop received it.
//
//	relaylat -relay 127.0.0.1:2525 -sink 127.0.0.1:2526 -n 20000 -s 20 -l 1024 [-rate 100]
//
// The client sends like smtp-source: one message per connection, -s
// sessions in parallel, -l bytes of payload after a short header, no
// pipelining. Each message carries a Message-ID unique to the run and to
// the message, by which the sink finds it again; a message from an earlier
// run (a late or repeated delivery) is counted as foreign, never matched.
// The sink answers like smtp-sink: every command accepted, PIPELINING
// advertised, no STARTTLS.
//
// It prints one line of key=value pairs: the accept rate (messages / time
// until the last session ended), the end-to-end rate (messages / time until
// the sink had them all) and the latency from the client's 250 to the
// sink's end of DATA (median, 90th and 99th percentile, maximum). It exits
// 1 when a message was refused, lost or delivered twice.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	relay, sink    string
	n, sessions    int
	payload        int
	rate           float64
	from, to, helo string
	label          string
	timeout        time.Duration
	linger         time.Duration
	out            string
}

func main() {
	var c config
	flag.StringVar(&c.relay, "relay", "127.0.0.1:2525", "the relay to send to")
	flag.StringVar(&c.sink, "sink", "127.0.0.1:2526", "where to listen as the relay's next hop")
	flag.IntVar(&c.n, "n", 1000, "messages to send")
	flag.IntVar(&c.sessions, "s", 20, "sessions in parallel")
	flag.IntVar(&c.payload, "l", 1024, "payload bytes per message, after the header (as smtp-source -l)")
	flag.Float64Var(&c.rate, "rate", 0, "messages per second to offer; 0: as fast as the sessions go")
	flag.StringVar(&c.from, "f", "sender@example.com", "envelope sender")
	flag.StringVar(&c.to, "t", "rcpt@example.net", "envelope recipient")
	flag.StringVar(&c.helo, "helo", "relaylat.localdomain", "EHLO name")
	flag.StringVar(&c.label, "label", "", "printed at the start of the result line")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "the whole run, sending and waiting for the sink, at most")
	flag.DurationVar(&c.linger, "linger", 3*time.Second, "keep the sink listening this long after the last message, so that a relay's cached connections end idle rather than broken")
	flag.StringVar(&c.out, "out", "", "write one line per message (index, 250 and sink times in ns from the start) to this file")
	flag.Parse()
	if c.n < 1 || c.sessions < 1 || c.payload < 0 || c.rate < 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "relaylat: bad arguments (see -h)")
		os.Exit(2)
	}
	ok, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relaylat:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// meter is one measurement. Times are nanoseconds since the start on the
// monotonic clock, in one slot per message, so that senders and sink
// record without a lock; 0 means not yet.
type meter struct {
	c       config
	runID   string
	start   time.Time
	payload []byte

	acked    []atomic.Int64 // when the client read the 250
	received []atomic.Int64 // when the sink read the final dot

	got      atomic.Int64 // distinct messages of this run the sink has
	dup      atomic.Int64 // messages of this run the sink got again
	foreign  atomic.Int64 // messages without one of this run's Message-IDs
	failed   atomic.Int64
	errsMu   sync.Mutex
	errs     []string
	allAcked chan struct{} // closed when every sender has ended
	allRecv  chan struct{} // closed when the sink has every acked message
	want     atomic.Int64  // messages acked; the sink is complete when got reaches it after allAcked
	recvOnce sync.Once
}

func run(c config) (bool, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, err
	}
	r := &meter{c: c, runID: hex.EncodeToString(b[:]), payload: body(c.payload), acked: make([]atomic.Int64, c.n), received: make([]atomic.Int64, c.n),
		allAcked: make(chan struct{}), allRecv: make(chan struct{})}
	ln, err := net.Listen("tcp", c.sink)
	if err != nil {
		return false, err
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	r.start = time.Now()
	go r.serve(ctx, ln)

	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c.sessions, c.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= c.n || ctx.Err() != nil {
					return
				}
				if c.rate > 0 {
					// Open loop: message i is due at i/rate whatever
					// happened to the others, as offered load is.
					due := r.start.Add(time.Duration(float64(i) / c.rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				if err := r.send(ctx, i); err != nil {
					r.failed.Add(1)
					r.noteErr(fmt.Sprintf("message %d: %v", i, err))
				}
			}
		}()
	}
	wg.Wait()
	acceptEnd := time.Since(r.start)
	var acked int64
	for i := range r.acked {
		if r.acked[i].Load() != 0 {
			acked++
		}
	}
	r.want.Store(acked)
	close(r.allAcked)
	r.checkComplete()
	select {
	case <-r.allRecv:
	case <-ctx.Done():
	}
	// A duplicate or a late message shows up in the linger too.
	time.Sleep(c.linger)
	ln.Close()
	return r.report(acked, acceptEnd), nil
}

func (r *meter) noteErr(s string) {
	r.errsMu.Lock()
	defer r.errsMu.Unlock()
	if len(r.errs) < 5 {
		r.errs = append(r.errs, s)
	}
}

// since is never 0, which means "not yet".
func (r *meter) since() int64 { return max(int64(time.Since(r.start)), 1) }

func (r *meter) checkComplete() {
	select {
	case <-r.allAcked:
	default:
		return
	}
	if r.got.Load() >= r.want.Load() {
		r.recvOnce.Do(func() { close(r.allRecv) })
	}
}

func (r *meter) messageID(i int) string {
	return fmt.Sprintf("<relaylat.%s.%d@relaylat.localdomain>", r.runID, i)
}

// body is the message after the header: n bytes (n+1 when a line of one
// character would be left over) in lines of 80 with their CRLF, none
// starting with a dot, so that no dot-stuffing is needed.
func body(n int) []byte {
	var b bytes.Buffer
	for line := 0; b.Len() < n; line++ {
		k := max(min(n-b.Len(), 80), 2)
		if k > 2 {
			b.WriteByte(byte('0' + line%10))
			b.Write(bytes.Repeat([]byte{'X'}, k-3))
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func (r *meter) send(ctx context.Context, i int) error {
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", r.c.relay)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Every step of a session is bounded, whatever the relay does.
	deadline := time.Now().Add(5 * time.Minute)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	br := bufio.NewReader(conn)
	bw := bufio.NewWriterSize(conn, 16<<10)
	step := func(cmd string, want int) error {
		if cmd != "" {
			bw.WriteString(cmd)
			bw.WriteString("\r\n")
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		code, text, err := readReply(br)
		if err != nil {
			return fmt.Errorf("after %q: %w", cmd, err)
		}
		if code != want {
			return fmt.Errorf("after %q: %d %s", cmd, code, text)
		}
		return nil
	}
	if err := step("", 220); err != nil {
		return err
	}
	if err := step("EHLO "+r.c.helo, 250); err != nil {
		return err
	}
	if err := step("MAIL FROM:<"+r.c.from+">", 250); err != nil {
		return err
	}
	if err := step("RCPT TO:<"+r.c.to+">", 250); err != nil {
		return err
	}
	if err := step("DATA", 354); err != nil {
		return err
	}
	fmt.Fprintf(bw, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\nMessage-ID: %s\r\nSubject: relaylat %d\r\n\r\n",
		r.c.from, r.c.to, time.Now().Format(time.RFC1123Z), r.messageID(i), i)
	bw.Write(r.payload)
	if err := step(".", 250); err != nil {
		return err
	}
	r.acked[i].Store(r.since())
	// The message is the relay's now; how the session ends does not
	// change the measurement.
	step("QUIT", 221)
	return nil
}

// readReply reads a (possibly multi-line) SMTP reply.
func readReply(br *bufio.Reader) (int, string, error) {
	var text []string
	for range 100 {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, "", fmt.Errorf("bad reply %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, "", fmt.Errorf("bad reply %q", line)
		}
		text = append(text, line[min(4, len(line)):])
		if len(line) == 3 || line[3] != '-' {
			return code, strings.Join(text, " / "), nil
		}
	}
	return 0, "", errors.New("reply of more than 100 lines")
}

// serve is the sink: it accepts until the listener is closed.
func (r *meter) serve(ctx context.Context, ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// Out of descriptors, an aborted handshake: the relay will
			// try again, and the run's timeout bounds the waiting.
			r.noteErr("sink accept: " + err.Error())
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go r.session(ctx, conn)
	}
}

func (r *meter) session(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	br := bufio.NewReaderSize(conn, 64<<10)
	bw := bufio.NewWriterSize(conn, 4<<10)
	bw.WriteString("220 relaylat ESMTP\r\n")
	for range 1 << 20 {
		// Replies to pipelined commands go out together, once the
		// client has nothing more in flight.
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		line, err := readLine(br)
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(string(line), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			bw.WriteString("250-relaylat\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n")
		case "HELO", "MAIL", "RCPT", "RSET", "NOOP":
			bw.WriteString("250 2.0.0 Ok\r\n")
		case "DATA":
			bw.WriteString("354 End data with <CR><LF>.<CR><LF>\r\n")
			if bw.Flush() != nil {
				return
			}
			id, err := readData(br)
			if err != nil {
				return
			}
			r.record(id)
			bw.WriteString("250 2.0.0 Ok: queued\r\n")
		case "QUIT":
			bw.WriteString("221 2.0.0 Bye\r\n")
			bw.Flush()
			return
		default:
			bw.WriteString("502 5.5.2 Error: command not recognized\r\n")
		}
	}
}

// readLine reads one line without its CRLF; a line longer than the buffer
// is read whole.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// readData reads a message up to its final dot and returns its Message-ID
// (empty when the header has none).
func readData(br *bufio.Reader) (string, error) {
	var id string
	header := true
	for range 1 << 24 {
		line, err := readLine(br)
		if err != nil {
			return "", err
		}
		if len(line) == 1 && line[0] == '.' {
			return id, nil
		}
		if !header {
			continue
		}
		if len(line) == 0 {
			header = false
			continue
		}
		if id == "" && len(line) > 11 && strings.EqualFold(string(line[:11]), "message-id:") {
			id = strings.TrimSpace(string(line[11:]))
		}
	}
	return "", errors.New("message of more than 16M lines")
}

func (r *meter) record(id string) {
	now := r.since()
	prefix := "<relaylat." + r.runID + "."
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok {
		r.foreign.Add(1)
		return
	}
	num, _, _ := strings.Cut(rest, "@")
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || i >= len(r.received) {
		r.foreign.Add(1)
		return
	}
	if !r.received[i].CompareAndSwap(0, now) {
		r.dup.Add(1)
		return
	}
	r.got.Add(1)
	r.checkComplete()
}

// report prints the result line and tells whether the run was clean.
func (r *meter) report(acked int64, acceptEnd time.Duration) bool {
	var lat []int64
	var last int64
	lost, early := 0, 0
	for i := range r.acked {
		a, g := r.acked[i].Load(), r.received[i].Load()
		last = max(last, g)
		switch {
		case a != 0 && g == 0:
			lost++
		case a != 0:
			// The relay may hand the message on before the client has
			// read its 250: a negative latency is real, and counted.
			if g < a {
				early++
			}
			lat = append(lat, g-a)
		}
	}
	slices.Sort(lat)
	ms := func(ns int64) string { return strconv.FormatFloat(float64(ns)/1e6, 'f', 2, 64) }
	rate := func(n int64, d int64) string {
		if d <= 0 {
			return "0"
		}
		return strconv.FormatFloat(float64(n)/(float64(d)/1e9), 'f', 1, 64)
	}
	fmt.Printf("%s sent=%d ok=%d failed=%d received=%d lost=%d dup=%d foreign=%d accept_s=%.2f e2e_s=%.2f accept=%s e2e=%s lat_p50=%s lat_p90=%s lat_p99=%s lat_max=%s early=%d\n",
		r.c.label, r.c.n, acked, r.failed.Load(), r.got.Load(), lost, r.dup.Load(), r.foreign.Load(),
		acceptEnd.Seconds(), float64(last)/1e9, rate(acked, int64(acceptEnd)), rate(r.got.Load(), last),
		ms(pct(lat, 50)), ms(pct(lat, 90)), ms(pct(lat, 99)), ms(pct(lat, 100)), early)
	r.errsMu.Lock()
	for _, e := range r.errs {
		fmt.Fprintln(os.Stderr, "relaylat:", e)
	}
	r.errsMu.Unlock()
	if r.c.out != "" {
		if err := r.dump(); err != nil {
			fmt.Fprintln(os.Stderr, "relaylat:", err)
		}
	}
	return r.failed.Load() == 0 && lost == 0 && r.dup.Load() == 0
}

// pct is the p-th percentile of sorted values by the nearest-rank method.
func pct(sorted []int64, p int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	k := (len(sorted)*p + 99) / 100
	return sorted[max(k, 1)-1]
}

func (r *meter) dump() error {
	f, err := os.Create(r.c.out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range r.acked {
		fmt.Fprintf(w, "%d %d %d\n", i, r.acked[i].Load(), r.received[i].Load())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
