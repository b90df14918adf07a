// Package push sends log lines to a syslog server (the ESA's "Syslog Push"
// log retrieval): RFC 3164 or RFC 5424 messages over UDP, TCP or TCP+TLS.
// The syslog package beside it is the receiver.
//
// A Sender never blocks its caller. Send formats the message and appends
// it to a bounded in-memory queue (Options.QueueLines lines and
// QueueBytes bytes, counting the batch being written); one goroutine
// connects, writes the queue and reconnects with backoff when the server
// goes away. A line that finds the queue full is dropped and counted
// (Stats.Dropped); the drops are reported in the gateway's log at most once
// per Options.ReportEvery. The local log file is written before any
// Sender sees the line, so a server that is down costs lines in syslog
// only, never in the file.
//
// Framing over TCP and TLS is octet counting (RFC 6587 section 3.4.1,
// RFC 5425), "123 <166>...", which rsyslog, syslog-ng's syslog() source and
// mailgate's own receiver read; Newline framing (each message ended by LF)
// is for receivers that want it, such as Splunk's TCP input. Lines hold no
// LF: the mail log escapes it. Over UDP each message is one datagram,
// truncated to MaxMessage bytes (default 2048, which RFC 5426 says every
// receiver should take).
//
// What TCP cannot say: syslog has no acknowledgement, so the lines written
// to a connection just before the server closed it may be lost in the
// server's socket buffer without notice. A Sender reads its connection to
// notice the server's close at once and writes nothing more to it, which
// makes such losses rare; they are counted as sent. Over UDP a datagram
// sent to a server that is down is lost likewise (the next write reports
// the refusal, and the Sender then waits before it retries).
package push

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Format is the syslog message format.
type Format uint8

const (
	RFC3164 Format = iota // <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG, as the ESA sends
	RFC5424               // <PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - MSG
)

// Framing separates messages on a TCP or TLS stream.
type Framing uint8

const (
	OctetCounting Framing = iota // "LEN MSG" (RFC 6587 3.4.1)
	Newline                      // "MSG\n" (RFC 6587 3.4.2)
)

// Severities of RFC 5424, for Send.
const (
	Emergency = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Informational
	Debug
)

// Facilities by name (RFC 5424 section 6.2.1).
var Facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
	"local5": 21, "local6": 22, "local7": 23,
}

// Defaults of the Options left zero.
const (
	DefaultQueueLines  = 10000
	DefaultQueueBytes  = 8 << 20
	DefaultMaxUDP      = 2048
	DefaultMaxStream   = 8192 // rsyslog's default maxMessageSize
	DefaultReportEvery = time.Minute
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	DefaultDialTimeout = 5 * time.Second
	// DefaultWriteTimeout bounds a write to a server that stopped reading
	// (hung, or its disk full): the connection is then given up and a new
	// one made. Meanwhile the queue fills and lines are dropped, counted.
	DefaultWriteTimeout = 30 * time.Second
)

// maxBatch bounds the bytes written in one write call.
const maxBatch = 64 << 10

// Options configure a Sender.
type Options struct {
	Network  string      // "udp", "tcp" or "tls"
	Address  string      // host:port
	TLS      *tls.Config // for "tls"; nil: the system's roots, ServerName from Address
	Format   Format
	Framing  Framing        // for tcp and tls
	Facility int            // 0..23; see Facilities
	Tag      string         // the TAG (RFC 3164) or APP-NAME (RFC 5424); "": "mail_logs"
	Hostname string         // the HOSTNAME field; "": none (RFC 3164 leaves it out, as the ESA does; RFC 5424 writes "-")
	Location *time.Location // of RFC 3164 timestamps; nil: time.Local

	MaxMessage   int   // longest message (header included), longer ones truncated; 0: DefaultMaxUDP for udp, DefaultMaxStream otherwise
	QueueLines   int   // 0: DefaultQueueLines
	QueueBytes   int64 // 0: DefaultQueueBytes
	ReportEvery  time.Duration
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	DialTimeout  time.Duration
	WriteTimeout time.Duration

	Logger *slog.Logger // the drop reports and connection errors; nil: slog.Default()
}

// Stats are a Sender's counters.
type Stats struct {
	Queued      int    // lines waiting (with the batch being written)
	QueuedBytes int64  // their bytes
	Sent        uint64 // lines written to the transport
	Dropped     uint64 // lines lost because the queue was full, or left in it at Close
	Truncated   uint64 // lines cut to MaxMessage
	Connects    uint64 // connections made
	Failures    uint64 // failed dials and writes
	Connected   bool   // a connection is up, as far as the Sender knows (UDP: the socket)
}

// A Sender pushes lines to one syslog server. Create it with New; it must
// be closed with Close.
type Sender struct {
	o    Options
	name string // "tcp 192.0.2.1:514", for the log
	log  *slog.Logger

	mu        sync.Mutex
	q         [][]byte // q[head:] are queued; q[head:head+inflight] being written
	head      int
	bytes     int64
	closed    bool
	flushed   chan struct{} // closed when the queue empties, after Close
	flushOnce sync.Once

	sent, dropped, truncated, connects, failures atomic.Uint64
	cur                                          atomic.Pointer[conn] // the connection in use, nil when none

	wake       chan struct{}
	dropKick   chan struct{}
	closing    chan struct{} // Close was called: retry at once rather than wait out a backoff
	stop       chan struct{} // Close: give up waiting and writing
	done       chan struct{} // the writer goroutine ended
	reportDone chan struct{}
}

// New checks o and starts the Sender's goroutines. It does not connect:
// a server that is down at start is connected to when it comes up.
func New(o Options) (*Sender, error) {
	switch o.Network {
	case "udp", "tcp", "tls":
	default:
		return nil, fmt.Errorf("syslog push: network %q is not udp, tcp or tls", o.Network)
	}
	if _, _, err := net.SplitHostPort(o.Address); err != nil {
		return nil, fmt.Errorf("syslog push: address %q: %w", o.Address, err)
	}
	if o.Facility < 0 || o.Facility > 23 {
		return nil, fmt.Errorf("syslog push: facility %d is not 0 to 23", o.Facility)
	}
	if o.Tag == "" {
		o.Tag = "mail_logs"
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxStream
		if o.Network == "udp" {
			o.MaxMessage = DefaultMaxUDP
		}
	}
	setDefault(&o.QueueLines, DefaultQueueLines)
	setDefault(&o.QueueBytes, DefaultQueueBytes)
	setDefault(&o.ReportEvery, DefaultReportEvery)
	setDefault(&o.MinBackoff, DefaultMinBackoff)
	setDefault(&o.MaxBackoff, DefaultMaxBackoff)
	setDefault(&o.DialTimeout, DefaultDialTimeout)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Network == "tls" {
		c := &tls.Config{}
		if o.TLS != nil {
			c = o.TLS.Clone()
		}
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(o.Address)
		}
		o.TLS = c
	}
	s := &Sender{
		o:          o,
		name:       o.Network + " " + o.Address,
		log:        o.Logger,
		wake:       make(chan struct{}, 1),
		dropKick:   make(chan struct{}, 1),
		stop:       make(chan struct{}),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		reportDone: make(chan struct{}),
		flushed:    make(chan struct{}),
	}
	go s.run()
	go s.reporter()
	return s, nil
}

// setDefault sets an option left at 0 (or below) to its default.
func setDefault[T int | int64 | time.Duration](d *T, v T) {
	if *d <= 0 {
		*d = v
	}
}

// Name is "network address", as the Sender's log lines give it.
func (s *Sender) Name() string { return s.name }

// Send queues msg (the text after the header, e.g. "Info: MID 5 queued for
// delivery") at time t with a severity (Critical, Warning, ...). It never
// blocks: it reports false when the line was dropped, the queue being full
// or the Sender closed.
func (s *Sender) Send(t time.Time, severity int, msg []byte) bool {
	b := s.format(t, severity, msg)
	s.mu.Lock()
	if s.closed || len(s.q)-s.head >= s.o.QueueLines || s.bytes+int64(len(b)) > s.o.QueueBytes {
		s.mu.Unlock()
		s.dropped.Add(1)
		select {
		case s.dropKick <- struct{}{}:
		default:
		}
		return false
	}
	s.q = append(s.q, b)
	s.bytes += int64(len(b))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// format renders the whole message, framing included, truncated to
// MaxMessage on a UTF-8 boundary.
func (s *Sender) format(t time.Time, severity int, msg []byte) []byte {
	pri := s.o.Facility*8 + min(max(severity, 0), 7)
	h := make([]byte, 0, 64+len(msg)+8)
	h = append(h, '<')
	h = strconv.AppendInt(h, int64(pri), 10)
	h = append(h, '>')
	switch s.o.Format {
	case RFC5424:
		h = append(h, "1 "...)
		h = t.AppendFormat(h, "2006-01-02T15:04:05.000000Z07:00")
		h = append(h, ' ')
		h = appendField(h, s.o.Hostname, 255)
		h = append(h, ' ')
		h = appendField(h, s.o.Tag, 48)
		h = append(h, " - - - "...)
	default:
		h = t.In(s.o.Location).AppendFormat(h, time.Stamp)
		h = append(h, ' ')
		if s.o.Hostname != "" {
			h = append(h, s.o.Hostname...)
			h = append(h, ' ')
		}
		h = append(h, s.o.Tag...)
		h = append(h, ": "...)
	}
	if room := s.o.MaxMessage - len(h); len(msg) > room {
		msg = msg[:max(room, 0)]
		// Do not cut a character in two: drop an incomplete last one.
		for i := len(msg) - 1; i >= 0 && i >= len(msg)-utf8.UTFMax; i-- {
			if utf8.RuneStart(msg[i]) {
				if !utf8.FullRune(msg[i:]) {
					msg = msg[:i]
				}
				break
			}
		}
		s.truncated.Add(1)
	}
	if s.o.Network == "udp" {
		return append(h, msg...)
	}
	if s.o.Framing == Newline {
		h = append(h, msg...)
		return append(h, '\n')
	}
	n := len(h) + len(msg)
	out := make([]byte, 0, n+8)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, ' ')
	out = append(out, h...)
	return append(out, msg...)
}

// appendField writes an RFC 5424 header field: printable ASCII, at most
// n bytes, "-" when empty.
func appendField(dst []byte, s string, n int) []byte {
	if s == "" || s == "-" {
		return append(dst, '-')
	}
	for i := 0; i < len(s) && i < n; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// Stats returns the counters now.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	st := Stats{Queued: len(s.q) - s.head, QueuedBytes: s.bytes}
	s.mu.Unlock()
	st.Sent = s.sent.Load()
	st.Dropped = s.dropped.Load()
	st.Truncated = s.truncated.Load()
	st.Connects = s.connects.Load()
	st.Failures = s.failures.Load()
	if c := s.cur.Load(); c != nil {
		select {
		case <-c.dead:
		default:
			st.Connected = true
		}
	}
	return st
}

// Dropped returns how many lines were dropped so far.
func (s *Sender) Dropped() uint64 { return s.dropped.Load() }

// batch returns the lines to write next, at most maxBatch bytes (or one
// line); they stay in the queue until done removes them.
func (s *Sender) batch(udp bool) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q[s.head:]
	if udp {
		return q[:min(len(q), 1)]
	}
	n, size := 0, 0
	for n < len(q) && (n == 0 || size+len(q[n]) <= maxBatch) {
		size += len(q[n])
		n++
	}
	return q[:n]
}

// remove takes the first n lines off the queue.
func (s *Sender) remove(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	for i := s.head; i < s.head+n; i++ {
		s.bytes -= int64(len(s.q[i]))
		s.q[i] = nil
	}
	s.head += n
	if s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	} else if s.head > 1024 && s.head > len(s.q)/2 {
		s.q = s.q[:copy(s.q, s.q[s.head:])]
		s.head = 0
	}
	empty := s.head == len(s.q)
	closed := s.closed
	s.mu.Unlock()
	s.sent.Add(uint64(n))
	if empty && closed {
		s.closeFlushed()
	}
}

func (s *Sender) closeFlushed() { s.flushOnce.Do(func() { close(s.flushed) }) }

// conn is one connection with the goroutine that notices its end.
type conn struct {
	c    net.Conn
	dead chan struct{} // closed when the server closed it (or sent anything: syslog servers do not)
}

// run is the writer goroutine.
func (s *Sender) run() {
	defer close(s.done)
	var c *conn
	defer func() {
		if c != nil {
			c.c.Close()
			s.cur.Store(nil)
		}
	}()
	backoff := time.Duration(0)
	closing := s.closing
	failing := false // the last connect failed
	for {
		b := s.batch(s.o.Network == "udp")
		if len(b) == 0 {
			select {
			case <-s.stop:
				return
			case <-s.wake:
			}
			continue
		}
		if c != nil {
			select {
			case <-c.dead:
				c.c.Close()
				c = nil
				s.cur.Store(nil)
				s.log.Warn("syslog push: the server closed the connection", "destination", s.name)
			default:
			}
		}
		if c == nil {
			var err error
			if c, err = s.dial(); err != nil {
				s.failures.Add(1)
				backoff = s.nextBackoff(backoff)
				// The first failure of a run is a warning (a wrong
				// address shows at once); the retries are debug.
				lv := slog.LevelDebug
				if !failing {
					lv, failing = slog.LevelWarn, true
				}
				s.log.Log(context.Background(), lv, "syslog push: cannot connect, lines are queued", "destination", s.name, "err", err, "retry_in", backoff)
				if !s.pause(backoff, &closing) {
					return
				}
				continue
			}
		}
		failing = false
		n, err := s.write(c, b)
		s.remove(n)
		if err != nil {
			s.failures.Add(1)
			c.c.Close()
			c = nil
			s.cur.Store(nil)
			s.log.Warn("syslog push: write failed, reconnecting", "destination", s.name, "err", err)
			backoff = s.nextBackoff(backoff)
			if !s.pause(backoff, &closing) {
				return
			}
			continue
		}
		backoff = 0
	}
}

func (s *Sender) nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return s.o.MinBackoff
	}
	return min(2*d, s.o.MaxBackoff)
}

// pause waits d; false when Close asked the goroutine to end meanwhile.
// Close cuts the first pause after it short, once (closing is then set to
// nil): the server may be back, and the queue is to be sent before
// Close's deadline.
func (s *Sender) pause(d time.Duration, closing *chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.stop:
		return false
	case <-*closing:
		*closing = nil
		return true
	case <-t.C:
		return true
	}
}

func (s *Sender) dial() (*conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.DialTimeout)
	defer cancel()
	go func() { // Close cuts a dial short
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var (
		c   net.Conn
		err error
	)
	switch s.o.Network {
	case "tls":
		d := &tls.Dialer{Config: s.o.TLS}
		c, err = d.DialContext(ctx, "tcp", s.o.Address)
	default:
		var d net.Dialer
		c, err = d.DialContext(ctx, s.o.Network, s.o.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("syslog push: connect %s: %w", s.name, err)
	}
	s.connects.Add(1)
	cn := &conn{c: c, dead: make(chan struct{})}
	s.cur.Store(cn)
	if s.o.Network == "udp" {
		return cn, nil // nothing comes back on UDP but errors, which the writes report
	}
	go func() {
		defer close(cn.dead)
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
			// A syslog server sends nothing; whatever it is, ignore it.
		}
	}()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("syslog push: connected", "destination", s.name)
	}
	return cn, nil
}

// write writes b and returns how many whole lines were written.
func (s *Sender) write(c *conn, b [][]byte) (int, error) {
	if err := c.c.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
		return 0, fmt.Errorf("syslog push: %s: %w", s.name, err)
	}
	if s.o.Network == "udp" {
		if _, err := c.c.Write(b[0]); err != nil {
			return 0, fmt.Errorf("syslog push: %s: %w", s.name, err)
		}
		return 1, nil
	}
	bufs := net.Buffers(append([][]byte(nil), b...))
	n, err := bufs.WriteTo(c.c)
	if err == nil {
		return len(b), nil
	}
	// The lines wholly written count as sent (they may be lost, see the
	// package documentation); a line written in part is lost with the
	// connection, the receiver dropping the cut frame: count it as sent
	// too rather than send it twice.
	whole := 0
	for _, l := range b {
		if n <= 0 {
			break
		}
		n -= int64(len(l))
		whole++
	}
	return whole, fmt.Errorf("syslog push: %s: %w", s.name, err)
}

// reporter logs the drops, at most once per ReportEvery.
func (s *Sender) reporter() {
	defer close(s.reportDone)
	var reported uint64
	var last time.Time
	for {
		select {
		case <-s.stop:
			if d := s.dropped.Load(); d > reported {
				s.log.Warn("syslog push: lines dropped", "destination", s.name, "dropped", d-reported, "dropped_total", d)
			}
			return
		case <-s.dropKick:
		}
		if wait := time.Until(last.Add(s.o.ReportEvery)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-s.stop:
				t.Stop()
				continue // report at once, above
			case <-t.C:
			}
		}
		d := s.dropped.Load()
		st := s.Stats()
		s.log.Warn("syslog push: the queue is full (the server is down or slow), lines dropped",
			"destination", s.name, "dropped", d-reported, "dropped_total", d, "queued", st.Queued, "queued_bytes", st.QueuedBytes)
		reported, last = d, time.Now()
	}
}

// Close stops taking lines and writes what is queued until ctx ends; the
// lines still queued then are dropped (counted). It always stops the
// Sender's goroutines before it returns.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	empty := s.head == len(s.q)
	s.mu.Unlock()
	if empty {
		s.closeFlushed()
	}
	close(s.closing)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	var err error
	select {
	case <-s.flushed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	close(s.stop)
	<-s.done
	<-s.reportDone
	s.mu.Lock()
	left := len(s.q) - s.head
	s.q, s.head, s.bytes = nil, 0, 0
	s.mu.Unlock()
	if left > 0 {
		s.dropped.Add(uint64(left))
		s.log.Warn("syslog push: closed with lines unsent", "destination", s.name, "dropped", left, "dropped_total", s.dropped.Load())
		return fmt.Errorf("syslog push: %s: %d lines unsent: %w", s.name, left, err)
	}
	return nil
}
