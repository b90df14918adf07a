// Package smtp is mailgate's SMTP protocol engine: command parsing, replies,
// the DATA reader, limits and timeouts, for the server side (and the client
// side used by delivery). It knows nothing of policy, queues or logs: a
// Handler makes the decisions, and Serve reports exactly how a session ended.
package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Line limits of RFC 5321 4.5.3.1, CRLF included.
const (
	MaxCommandLine = 512
	MaxTextLine    = 1000
)

// State is where a session is in the SMTP dialogue.
type State uint8

const (
	StateConnect State = iota // before HELO/EHLO (again after STARTTLS)
	StateHelo                 // greeted, no transaction
	StateMail                 // MAIL accepted
	StateRcpt                 // at least one RCPT accepted
	StateData                 // receiving the message
)

var stateNames = [...]string{"connect", "helo", "mail", "rcpt", "data"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// InTransaction reports whether a MAIL transaction is open.
func (s State) InTransaction() bool { return s >= StateMail }

// Handler makes the decisions of a session. Methods run on the session's
// goroutine, one at a time. A zero Reply lets the engine send its default
// positive reply. A 421 reply closes the connection after it is sent (the
// session ends with cause "policy").
type Handler interface {
	// Hello is called for HELO and EHLO with the verb and its argument.
	Hello(verb, domain string) Reply
	// Mail is called for a syntactically valid MAIL FROM. A positive reply
	// opens the transaction.
	Mail(from Path, p MailParams) Reply
	// Rcpt is called for each syntactically valid RCPT TO in a transaction.
	Rcpt(to Path) Reply
	// Data is called once the client was told to send the message, with a
	// reader of it as it arrives: dot-unstuffed, lines ending in CRLF, the
	// end-of-data line left out. Read returns io.EOF at the end of the
	// message; when the message breaks a rule it returns that error
	// (ErrMessageTooBig, ErrBareLineEnding, ErrLineTooLong) as soon as it
	// is broken, and a failed connection its error. The reader is valid
	// only until Data returns; what the handler did not read the engine
	// discards up to the end of the message. The transaction is over when
	// Data returns, whatever the reply. The reply is sent only if the
	// message broke no rule and the connection held.
	Data(r io.Reader) Reply
	// DataFailed is called after Data when the engine refused the message
	// (ErrMessageTooBig, ErrBareLineEnding, ErrLineTooLong, the reason a
	// client can act on first), also when Data had refused it already and
	// the engine found the fault in what it discarded; the engine sends its
	// own refusal and Data's reply is dropped.
	DataFailed(err error)
	// Reset drops the open transaction, if any: RSET, a new HELO/EHLO, STARTTLS.
	Reset()
	// TLS is called when STARTTLS completed.
	TLS(cs tls.ConnectionState)
	// BadCommand is called for each command the engine itself refused as
	// bad, with why and the reply it sent, while the session goes on. The
	// command past Config.BadCommandLimit is not: it ends the session
	// (End.Cause event.CauseBadCommands, End.Detail the line).
	BadCommand(kind BadKind, line string, r Reply)
	// PlaintextDiscarded is called when STARTTLS threw away n bytes that
	// the client sent after the command, in clear text, before the
	// handshake (CVE-2011-0411).
	PlaintextDiscarded(n int)
}

// Errors given to Handler.DataFailed.
var (
	ErrMessageTooBig  = errors.New("message size exceeds limit")
	ErrBareLineEnding = errors.New("bare CR or LF in message")
	ErrLineTooLong    = errors.New("message line longer than 1000 octets")
)

// Config is the per-connection configuration of a session.
type Config struct {
	Hostname string
	// Greeting replaces the default "220 <hostname> ESMTP". A 421 greeting
	// closes the connection at once (cause "policy"); a 554 greeting makes a
	// rejected session, which accepts nothing but QUIT (RFC 5321 3.1).
	Greeting Reply

	MaxMessageSize  int64 // advertised with SIZE and enforced; 0: no limit
	BadCommandLimit int   // bad commands tolerated; the next one gets 421
	TLS             *tls.Config
	RequireTLS      bool // MAIL is refused before STARTTLS
	ImplicitTLS     bool // TLS from the first byte (port 465, RFC 8314): no STARTTLS

	Start               time.Time     // when the connection was accepted; zero: now
	UnsuccessfulTimeout time.Duration // until the first message is injected; 0: none
	TotalTimeout        time.Duration // whole connection; 421 at 80% between commands; 0: none
	IdleTimeout         time.Duration // waiting for each command, for the whole session; 0: none
	WriteTimeout        time.Duration // each write; 0: one minute
	HandshakeTimeout    time.Duration // TLS handshake; 0: one minute

	// Limits on abuse, Postfix's; 0: none. Junk commands (NOOP, RSET, VRFY,
	// HELP) and transactions that end without an accepted recipient count
	// together, so that a MAIL/RSET loop ends after a bounded number of
	// transactions. Every refused command counts as an error (a 452, "not
	// now", does not): from SoftErrorLimit errors on, each command waits
	// ErrorDelay before it is answered; at HardErrorLimit the session ends.
	// An accepted message clears the errors.
	JunkCommandLimit int // tolerated; past it 421 and the close
	SoftErrorLimit   int
	HardErrorLimit   int
	ErrorDelay       time.Duration

	// Transcript, if set, sees every line received (commands and message
	// lines) and every reply line sent, without the line ending.
	Transcript func(sent bool, line []byte)
}

// End says how and where a session ended.
type End struct {
	Cause     event.Cause
	State     State  // where the dialogue was (before QUIT, for a QUIT)
	LastVerb  string // the last command's verb, "" if none
	DataBytes int64  // message bytes received in an unfinished DATA
	Duration  time.Duration
	Commands  []event.CommandCount
	Injected  int    // messages accepted on this connection
	Detail    string // the error or the reply behind the cause
	Err       error  // the I/O error behind the cause, if any
}

// Session is one server-side SMTP connection.
type Session struct {
	raw  net.Conn // the accepted connection: deadlines set from other goroutines go here
	conn net.Conn // raw, or the TLS connection over it after STARTTLS
	r    *bufio.Reader
	lead leadReader // what awaitInput read, then conn
	out  []byte
	h    Handler
	cfg  Config

	state      State
	ehlo       bool // EHLO succeeded: extensions and RFC 2034 codes are in effect
	tlsOn      bool
	authed     bool // AUTH succeeded
	rejected   bool // a 554 greeting: only QUIT is accepted
	utf8       bool // SMTPUTF8 given on the open transaction
	injected   int
	bad        int
	lastVerb   string
	dataBytes  int64
	counts     []event.CommandCount
	unsucc     time.Time // deadline until the first message is injected
	softTotal  time.Time // at 80% of the total limit, between commands
	hardTotal  time.Time
	idle       time.Time // deadline of the command being waited for; zero when none is
	junk       int       // junk commands and transactions without a recipient
	errors     int       // refused commands since the last accepted message
	errLine    string    // the last refused command, while errors are counted
	ctx        context.Context
	stop       chan struct{} // closed by Kill: wakes a tarpit
	stopOnce   sync.Once
	inTxn      atomic.Bool
	draining   atomic.Bool
	killed     atomic.Bool
	pipelining bool    // EHLO client: replies may be held until its input is drained
	peek       *peeker // made by early
}

// NewSession prepares a session on conn; Serve runs it.
func NewSession(conn net.Conn, h Handler, cfg Config) *Session {
	if cfg.Start.IsZero() {
		cfg.Start = time.Now()
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = time.Minute
	}
	s := &Session{raw: conn, conn: conn, h: h, cfg: cfg, r: readerPool.Get().(*bufio.Reader),
		counts: make([]event.CommandCount, 0, 8), ctx: context.Background(), stop: make(chan struct{})}
	s.r.Reset(conn)
	if cfg.UnsuccessfulTimeout > 0 {
		s.unsucc = cfg.Start.Add(cfg.UnsuccessfulTimeout)
	}
	if cfg.TotalTimeout > 0 {
		s.hardTotal = cfg.Start.Add(cfg.TotalTimeout)
		s.softTotal = cfg.Start.Add(cfg.TotalTimeout * 4 / 5)
	}
	return s
}

// Readers: a small one lent while a command is read (a session waiting
// for its client holds none: awaitInput), and a large one lent for the
// DATA phase, where it saves read system calls on every message larger
// than the small buffer.
var (
	readerPool     = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	dataReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
)

// borrowDataReader swaps in a large reader for the message. It can only
// when nothing is buffered: after DATA the client waits for 354, so
// nothing is.
func (s *Session) borrowDataReader() {
	if s.r.Buffered() > 0 || s.r.Size() > 4096 {
		return
	}
	big := dataReaderPool.Get().(*bufio.Reader)
	big.Reset(s.conn)
	s.r.Reset(nil)
	readerPool.Put(s.r)
	s.r = big
}

// returnDataReader gives the large reader back once it holds nothing the
// client pipelined after the message; otherwise the session keeps it.
func (s *Session) returnDataReader() {
	if s.r.Size() <= 4096 || s.r.Buffered() > 0 {
		return
	}
	small := readerPool.Get().(*bufio.Reader)
	small.Reset(s.conn)
	s.r.Reset(nil)
	dataReaderPool.Put(s.r)
	s.r = small
}

// longAgo is a deadline in the past: it wakes a blocked read at once.
var longAgo = time.Unix(1, 0)

// Kill ends the session as soon as possible (421, cause "shutdown"),
// whatever it is doing. Safe to call from another goroutine.
func (s *Session) Kill() {
	s.killed.Store(true)
	s.stopOnce.Do(func() { close(s.stop) })
	s.raw.SetDeadline(longAgo)
}

// Serve runs the dialogue until it ends, closes the connection and reports
// the end. Cancelling ctx drains the session: it is closed with 421 at the
// next command boundary outside a transaction; an open transaction may
// finish first (use Kill to stop it).
func (s *Session) Serve(ctx context.Context) End {
	s.ctx = ctx
	stop := context.AfterFunc(ctx, func() {
		s.draining.Store(true)
		if !s.inTxn.Load() {
			s.raw.SetReadDeadline(longAgo)
		}
	})
	end := s.serve()
	stop()
	end.State, end.LastVerb, end.Commands, end.Injected = s.state, s.lastVerb, s.counts, s.injected
	if end.Cause != event.CauseQuit && s.state == StateData {
		end.DataBytes = s.dataBytes
	}
	end.Duration = time.Since(s.cfg.Start)
	s.conn.Close()
	s.r.Reset(nil)
	if s.r.Size() > 4096 {
		dataReaderPool.Put(s.r)
	} else {
		readerPool.Put(s.r)
	}
	return end
}

func (s *Session) serve() End {
	if s.cfg.ImplicitTLS {
		if end, over := s.implicitTLS(); over {
			return end
		}
	} else if s.early() {
		return s.closeWith(replyEarlyTalker, event.CauseProtocol, "data sent before the greeting")
	}
	greeting := s.cfg.Greeting
	if greeting.IsZero() {
		greeting = Reply{220, "", s.cfg.Hostname + " ESMTP"}
	}
	switch {
	case greeting.Code == 421:
		return s.closeWith(greeting, event.CausePolicy, greeting.Text)
	case greeting.Code >= 500:
		s.rejected = true
	}
	s.reply(greeting)
	for {
		if end, over := s.checkBoundary(); over {
			return end
		}
		if s.r.Buffered() == 0 || !s.pipelining {
			if err := s.flush(); err != nil {
				return s.ioEnd(err)
			}
		}
		// Kill and drain set a deadline from another goroutine; checking
		// their flags after arming ours means neither can be overwritten.
		if s.cfg.IdleTimeout > 0 {
			s.idle = time.Now().Add(s.cfg.IdleTimeout)
		}
		s.conn.SetReadDeadline(s.readDeadline(false))
		if s.killed.Load() || (s.draining.Load() && !s.inTxn.Load()) {
			return s.closeWith(ShutdownReply(s.cfg.Hostname), event.CauseShutdown, "")
		}
		line, tooLong, err := s.readCommand()
		if err != nil {
			return s.ioEnd(err)
		}
		s.idle = time.Time{}
		if s.tarpitting() && !bytes.EqualFold(line, []byte("QUIT")) && !s.tarpit() {
			return s.closeWith(ShutdownReply(s.cfg.Hostname), event.CauseShutdown, "")
		}
		errs := s.errors
		if end, over := s.command(line, tooLong); over {
			return end
		}
		if end, over := s.checkLimits(line, errs); over {
			return end
		}
	}
}

// tarpitting reports whether the client has made enough errors that each
// of its commands waits ErrorDelay.
func (s *Session) tarpitting() bool {
	return s.cfg.SoftErrorLimit > 0 && s.cfg.ErrorDelay > 0 && s.errors >= s.cfg.SoftErrorLimit
}

// tarpit waits ErrorDelay before the command is answered, as Postfix's
// smtpd_error_sleep_time: a dictionary attack or a broken client is slowed
// down. The session's goroutine waits on a timer, which holds no other
// session up. It returns false when the session is to end at once: it was
// killed, or the gateway is draining and no transaction is open.
func (s *Session) tarpit() bool {
	t := time.NewTimer(s.cfg.ErrorDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
	case <-s.ctx.Done():
	}
	return !s.killed.Load() && (s.ctx.Err() == nil || s.inTxn.Load())
}

// checkLimits ends the session after a command that took the client past
// the junk or the hard error limit; the command has had its reply, and the
// 421 follows it. errs is the error count before the command.
func (s *Session) checkLimits(line []byte, errs int) (End, bool) {
	if s.errors > errs {
		s.errLine = string(line)
		if strings.EqualFold(s.lastVerb, "data") {
			s.errLine = "DATA" // a message was read since: line's buffer may be another session's
		}
	}
	overJunk := s.cfg.JunkCommandLimit > 0 && s.junk > s.cfg.JunkCommandLimit
	if max := s.cfg.HardErrorLimit; max > 0 && s.errors >= max {
		if overJunk {
			// The errors that ended it are junk past its limit.
			return s.closeWith(replyTooManyJunk, event.CauseJunkCommands, s.junkDetail()), true
		}
		return s.closeWith(replyTooManyErrors, event.CauseErrors, s.errLine), true
	}
	if overJunk && s.cfg.HardErrorLimit <= 0 {
		// No error limit to take junk over: the junk limit ends it.
		return s.closeWith(replyTooManyJunk, event.CauseJunkCommands, s.junkDetail()), true
	}
	return End{}, false
}

func (s *Session) junkDetail() string {
	return strconv.Itoa(s.junk) + " junk commands and transactions without a recipient, limit " + strconv.Itoa(s.cfg.JunkCommandLimit)
}

// addJunk counts a junk command. Past the junk limit each one is an error
// too, as in Postfix (smtpd_junk_command_limit): the client then meets the
// error tarpit and the hard error limit instead of a quick 421, so that a
// MAIL/RSET loop cannot reconnect at full speed and flood the log with
// MIDs (bench/abuse.sh: 3.4 MB of log a second when the limit cut at once).
func (s *Session) addJunk() {
	s.junk++
	if max := s.cfg.JunkCommandLimit; max > 0 && s.junk > max && s.cfg.HardErrorLimit > 0 {
		s.errors++
	}
}

// checkBoundary applies the timeouts that act between commands.
func (s *Session) checkBoundary() (End, bool) {
	now := time.Now()
	if s.injected == 0 && !s.unsucc.IsZero() && !now.Before(s.unsucc) {
		return s.closeWith(replyTimeoutUnsuccessful, event.CauseTimeoutUnsuccessful, ""), true
	}
	if !s.softTotal.IsZero() && !now.Before(s.softTotal) {
		return s.closeWith(replyTimeoutTotal, event.CauseTimeoutTotal, ""), true
	}
	return End{}, false
}

// readDeadline is the earliest timeout that applies to the next read. While
// the message is being received the total limit applies in full; between
// commands it applies at 80%, so that a message is not cut in the middle.
func (s *Session) readDeadline(inData bool) time.Time {
	d := s.softTotal
	if inData {
		d = s.hardTotal
	}
	if s.injected == 0 && !s.unsucc.IsZero() && (d.IsZero() || s.unsucc.Before(d)) {
		d = s.unsucc
	}
	if !inData && !s.idle.IsZero() && (d.IsZero() || s.idle.Before(d)) {
		d = s.idle
	}
	return d
}

func (s *Session) readCommand() (line []byte, tooLong bool, err error) {
	if s.r.Buffered() == 0 && s.r.Size() <= 4096 {
		if err := s.awaitInput(); err != nil {
			return nil, false, err
		}
	}
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			tooLong = true // longer than the buffer: discard up to the LF
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if tooLong || len(chunk) > MaxCommandLine {
			s.transcript(false, trimEOL(chunk))
			return nil, true, nil
		}
		line = trimEOL(chunk)
		s.transcript(false, maskAuth(line))
		return line, false, nil
	}
}

// awaitInput waits for the client's next command holding no read buffer,
// only the lead array: what a connection costs while it waits for its
// client. (10,000 idle connections held 40 MB of read buffers, and twice
// that with the garbage collector's headroom when tracking allocates.) A
// command usually fits in the lead, so this costs no extra read.
func (s *Session) awaitInput() error {
	s.r.Reset(nil)
	readerPool.Put(s.r)
	s.r = nil // another session's now
	n, err := s.conn.Read(s.lead.buf[:])
	s.r = readerPool.Get().(*bufio.Reader)
	s.lead.n, s.lead.off, s.lead.r = n, 0, s.conn
	s.r.Reset(&s.lead)
	if n > 0 {
		return nil // an error that came with bytes comes again at the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// leadReader yields the bytes awaitInput read, then reads r.
type leadReader struct {
	buf    [128]byte
	n, off int
	r      io.Reader
}

func (l *leadReader) Read(p []byte) (int, error) {
	if l.off < l.n {
		k := copy(p, l.buf[l.off:l.n])
		l.off += k
		return k, nil
	}
	return l.r.Read(p)
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// command runs one command line; over is true when the session ends.
func (s *Session) command(line []byte, tooLong bool) (End, bool) {
	if tooLong {
		s.lastVerb = ""
		return s.badCommand("", BadLineTooLong, "(line too long)", replyLineTooLong)
	}
	cmd := ParseCommand(line)
	verb := strings.ToLower(cmd.Verb)
	if !knownVerb(verb) || bytes.IndexByte(line, 0) >= 0 {
		s.lastVerb = printableVerb(cmd.Verb)
		return s.badCommand("unknown", BadUnknown, string(line), replyUnrecognized)
	}
	s.lastVerb = cmd.Verb
	if s.rejected && verb != "quit" {
		return s.badCommand(verb, BadSequence, string(line), replyRejectedSession)
	}
	var r Reply
	var bad BadKind
	switch verb {
	case "helo", "ehlo":
		if s.pendingInput() {
			return s.pipelined(verb, "commands sent before the reply to "+strings.ToUpper(verb))
		}
		r, bad = s.hello(verb, cmd.Arg)
	case "starttls":
		return s.startTLS(cmd.Arg)
	case "auth":
		return s.auth(cmd.Arg, line)
	case "mail":
		r, bad = s.mail(cmd.Arg)
	case "rcpt":
		r, bad = s.rcpt(cmd.Arg)
	case "data":
		return s.data(cmd.Arg)
	case "rset":
		s.resetTxn()
		if s.state > StateHelo {
			s.state = StateHelo
		}
		r = replyOK
		s.addJunk()
	case "noop":
		r = replyOK
		s.addJunk()
	case "vrfy":
		r = replyVRFY
		if cmd.Arg == "" {
			r, bad = replyBadSyntax, BadSyntax
		}
		s.addJunk()
	case "expn":
		r, bad = replyNotImplemented, BadNotImplemented
	case "help":
		r = Reply{214, "2.0.0", "The following commands are recognized\n data ehlo helo help\n mail noop quit rcpt\n rset starttls vrfy"}
		s.addJunk()
	case "quit":
		s.count(verb, true)
		s.reply(Reply{221, "2.0.0", s.cfg.Hostname + " closing connection"})
		if err := s.flush(); err != nil {
			end := s.ioEnd(err)
			return end, true
		}
		return End{Cause: event.CauseQuit}, true
	}
	if bad != 0 || isBadReply(r) {
		return s.badCommand(verb, bad, string(line), r)
	}
	return s.respond(verb, r)
}

// respond sends a reply to a command and counts it; a 421 ends the session.
func (s *Session) respond(verb string, r Reply) (End, bool) {
	s.count(verb, r.Positive())
	if !r.Positive() && r.Code != 452 {
		// 452 is "not now" (too many recipients, no space), the
		// gateway's limit rather than the client's error.
		s.errors++
	}
	if r.Code == 421 {
		return s.closeWith(r, event.CausePolicy, r.Text), true
	}
	s.reply(r)
	return End{}, false
}

var verbs = map[string]bool{"helo": true, "ehlo": true, "starttls": true, "mail": true, "rcpt": true,
	"data": true, "rset": true, "noop": true, "vrfy": true, "expn": true, "help": true, "quit": true, "auth": true}

func knownVerb(v string) bool { return verbs[v] }

// printableVerb keeps what an unknown command looked like, short.
func printableVerb(v string) string {
	if len(v) > 16 {
		v = v[:16]
	}
	return v
}

// isBadReply tells a Handler's refusals that have the code of a bad
// command, and count towards the bad-command limit as the engine's own do,
// from refusals of policy (RCPT rejected, message too big), which do not.
func isBadReply(r Reply) bool {
	return (r.Code >= 500 && r.Code <= 504) || r.Code == 555
}

// badCommand refuses a bad command; past the limit the session ends. kind
// is why the engine refused it, 0 when the Handler did, which needs no
// telling.
func (s *Session) badCommand(verb string, kind BadKind, line string, r Reply) (End, bool) {
	if verb == "" {
		verb = "unknown"
	}
	if s.bad >= s.cfg.BadCommandLimit {
		s.count(verb, false)
		return s.closeWith(replyTooManyBad, event.CauseBadCommands, line), true
	}
	s.bad++
	s.errors++
	s.count(verb, false)
	if kind != 0 {
		s.h.BadCommand(kind, line, r)
	}
	s.reply(r)
	return End{}, false
}

// pendingInput reports whether the client has sent more than the command
// just read: in the read buffer, or still in the socket.
func (s *Session) pendingInput() bool { return s.r.Buffered() > 0 || s.early() }

// pipelined ends the session of a client that did not wait for a reply it
// must wait for: EHLO and DATA end a pipelined group (RFC 2920 3.1), and
// the message may only follow the 354. Such a client is a spam engine that
// does not read replies, or is smuggling; Postfix disconnects it too
// (smtpd_forbid_unauth_pipelining). The detail shows what came too early.
func (s *Session) pipelined(verb, what string) (End, bool) {
	s.count(verb, false)
	detail := what
	if n := s.r.Buffered(); n > 0 {
		b, _ := s.r.Peek(min(n, 80))
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		}
		detail += ": " + string(trimEOL(b))
	}
	return s.closeWith(Reply{554, "5.5.0", "SMTP synchronization error: " + what}, event.CausePipelining, detail), true
}

// hello, mail and rcpt return the reply to their command and, when the
// engine refused it as bad, why.
func (s *Session) hello(verb, arg string) (Reply, BadKind) {
	if arg == "" {
		return Reply{501, "5.5.4", "Syntax: " + strings.ToUpper(verb) + " hostname"}, BadSyntax
	}
	s.resetTxn()
	r := s.h.Hello(verb, arg)
	if !r.IsZero() && !r.Positive() {
		return r, 0
	}
	s.state = StateHelo
	s.ehlo = verb == "ehlo"
	s.pipelining = s.ehlo
	if !r.IsZero() {
		return r, 0
	}
	if verb == "helo" {
		return Reply{250, "", s.cfg.Hostname}, 0
	}
	ext := s.cfg.Hostname + "\nPIPELINING"
	if s.cfg.MaxMessageSize > 0 {
		ext += "\nSIZE " + strconv.FormatInt(s.cfg.MaxMessageSize, 10)
	} else {
		ext += "\nSIZE"
	}
	ext += "\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8"
	if s.cfg.TLS != nil && !s.tlsOn {
		ext += "\nSTARTTLS"
	}
	ext += s.authExt()
	return Reply{250, "", ext}, 0
}

func (s *Session) mail(arg string) (Reply, BadKind) {
	switch {
	case s.state == StateConnect:
		return replyNeedHelo, BadSequence
	case s.state.InTransaction():
		return replyNestedMail, BadSequence
	case s.cfg.RequireTLS && !s.tlsOn:
		return replyNeedTLS, 0
	}
	raw, params, err := parsePathArg(arg, "FROM:")
	if err != nil {
		return replyBadSyntax, BadSender
	}
	p, err := parseMailParams(params)
	if err != nil || (!s.ehlo && params != "") {
		return replyBadParam, BadParameter
	}
	from, err := ParsePath(raw, p.SMTPUTF8)
	if err != nil {
		return pathReply(err, replyBadSender), BadSender
	}
	if s.cfg.MaxMessageSize > 0 && p.Size > s.cfg.MaxMessageSize {
		return replySizeTooBig, 0
	}
	r := s.h.Mail(from, p)
	if r.IsZero() {
		r = Reply{250, "2.1.0", "sender <" + from.String() + "> ok"}
	}
	if r.Positive() {
		s.state = StateMail
		s.utf8 = p.SMTPUTF8
		s.inTxn.Store(true)
	}
	return r, 0
}

// pathReply is the reply to a path ParsePath refused; syntax is the
// command's own for bad syntax.
func pathReply(err error, syntax Reply) Reply {
	switch {
	case errors.Is(err, errNeedSMTPUTF8):
		return replyNeedUTF8
	case errors.Is(err, errPathTooLong):
		return replyPathTooLong
	}
	return syntax
}

func (s *Session) rcpt(arg string) (Reply, BadKind) {
	if !s.state.InTransaction() {
		if s.state == StateConnect {
			return replyNeedHelo, BadSequence
		}
		return replyNeedMail, BadSequence
	}
	raw, params, err := parsePathArg(arg, "TO:")
	if err != nil {
		return replyBadSyntax, BadRecipient
	}
	if params != "" {
		return replyBadParam, BadParameter
	}
	if raw == "" {
		return replyBadRecipient, BadRecipient
	}
	to, err := ParsePath(raw, s.utf8)
	if err != nil {
		return pathReply(err, replyBadRecipient), BadRecipient
	}
	r := s.h.Rcpt(to)
	if r.IsZero() {
		r = Reply{250, "2.1.5", "recipient <" + to.String() + "> ok"}
	}
	if r.Positive() {
		s.state = StateRcpt
	}
	return r, 0
}

// resetTxn drops the open transaction, telling the handler. One that ends
// without an accepted recipient counts as a junk command: a MAIL/RSET loop
// costs a MID and log lines each time round, and must end.
func (s *Session) resetTxn() {
	if s.state == StateMail {
		s.addJunk()
	}
	s.h.Reset()
	s.utf8 = false
	s.inTxn.Store(false)
}

func (s *Session) data(arg string) (End, bool) {
	switch {
	case s.pendingInput():
		return s.pipelined("data", "message sent before the 354 reply")
	case arg != "":
		return s.badCommand("data", BadSyntax, "DATA "+arg, replyBadSyntax)
	case s.state == StateConnect:
		return s.badCommand("data", BadSequence, "DATA", replyNeedHelo)
	case s.state == StateHelo:
		return s.badCommand("data", BadSequence, "DATA", replyNeedMail)
	case s.state == StateMail:
		// MAIL accepted but no recipient: RFC 2920 wants 554 here, so that
		// a pipelining client does not send the message.
		return s.respond("data", replyNoValidRcpt)
	}
	s.reply(replyDataGoAhead)
	if err := s.flush(); err != nil {
		return s.ioEnd(err), true
	}
	s.state = StateData
	s.dataBytes = 0
	s.conn.SetReadDeadline(s.readDeadline(true))
	if s.killed.Load() {
		return s.closeWith(ShutdownReply(s.cfg.Hostname), event.CauseShutdown, ""), true
	}
	s.borrowDataReader()
	d := newDataReader(s)
	r := s.h.Data(d)
	derr, err := d.drain()
	if err != nil {
		return s.ioEnd(err), true
	}
	s.returnDataReader()
	s.state = StateHelo
	switch derr {
	case nil:
		if r.IsZero() {
			r = Reply{250, "2.0.0", "Ok: message accepted"}
		}
	case ErrMessageTooBig:
		s.h.DataFailed(derr)
		r = replyDataTooBig
	case ErrBareLineEnding:
		s.h.DataFailed(derr)
		r = replyBareLineEnding
	default:
		s.h.DataFailed(derr)
		r = replyDataLineTooLong
	}
	s.utf8 = false
	s.inTxn.Store(false)
	if r.Positive() {
		s.injected++
		// Postfix's error limits count errors "without delivering mail",
		// and its junk count "is reset after mail is delivered": an MTA
		// that sends RSET before each of many messages on one connection
		// is not junk.
		s.errors, s.junk = 0, 0
	}
	return s.respond("data", r)
}

func (s *Session) startTLS(arg string) (End, bool) {
	switch {
	case s.cfg.TLS == nil:
		return s.badCommand("starttls", BadNotImplemented, "STARTTLS", replyNotImplemented)
	case s.tlsOn:
		return s.badCommand("starttls", BadSequence, "STARTTLS", replyTLSActive)
	case arg != "":
		return s.badCommand("starttls", BadSyntax, "STARTTLS "+arg, replyBadSyntax)
	case s.state.InTransaction(), s.authed:
		return s.badCommand("starttls", BadSequence, "STARTTLS", replyBadSequence)
	}
	// Anything the client sent after STARTTLS before the handshake was
	// sent in clear text and could have been injected by a man in the
	// middle (CVE-2011-0411): throw it away.
	n, _ := s.r.Discard(s.r.Buffered())
	if n += discardPending(s.conn, 64<<10); n > 0 {
		s.h.PlaintextDiscarded(n)
	}
	s.count("starttls", true)
	s.reply(replyTLSGoAhead)
	if err := s.flush(); err != nil {
		return s.ioEnd(err), true
	}
	tc := tls.Server(s.conn, s.cfg.TLS)
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if d := s.readDeadline(false); !d.IsZero() && d.Before(deadline) {
		deadline = d
	}
	tc.SetDeadline(deadline)
	if s.killed.Load() {
		tc.SetDeadline(longAgo)
	}
	if err := tc.Handshake(); err != nil {
		end := s.ioEnd(err)
		if end.Cause == event.CauseIOError {
			end.Cause = event.CauseTLSFailed
		}
		return end, true
	}
	tc.SetDeadline(time.Time{})
	if s.killed.Load() {
		return s.closeWith(ShutdownReply(s.cfg.Hostname), event.CauseShutdown, ""), true
	}
	s.conn = tc
	s.r.Reset(tc)
	s.tlsOn = true
	s.resetTxn()
	s.state = StateConnect
	s.ehlo, s.pipelining = false, false
	s.h.TLS(tc.ConnectionState())
	return End{}, false
}

// count records a command's outcome for the end-of-session counters.
func (s *Session) count(verb string, ok bool) {
	for i := range s.counts {
		if s.counts[i].Verb == verb {
			s.counts[i].Total++
			if ok {
				s.counts[i].OK++
			}
			return
		}
	}
	c := event.CommandCount{Verb: verb, Total: 1}
	if ok {
		c.OK = 1
	}
	s.counts = append(s.counts, c)
}

func (s *Session) reply(r Reply) {
	start := len(s.out)
	s.out = r.appendTo(s.out, s.ehlo)
	if s.cfg.Transcript != nil {
		for _, l := range bytes.SplitAfter(s.out[start:], []byte("\r\n")) {
			if len(l) > 0 {
				s.transcript(true, trimEOL(l))
			}
		}
	}
}

func (s *Session) transcript(sent bool, line []byte) {
	if s.cfg.Transcript != nil {
		s.cfg.Transcript(sent, line)
	}
}

func (s *Session) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	d := s.cfg.WriteTimeout
	if s.killed.Load() {
		d = time.Second // a last 421 on the way out; do not wait for a stuck peer
	}
	s.conn.SetWriteDeadline(time.Now().Add(d))
	_, err := s.conn.Write(s.out)
	s.out = s.out[:0]
	return err
}

// closeWith sends a last reply and ends the session with cause.
func (s *Session) closeWith(r Reply, cause event.Cause, detail string) End {
	s.reply(r)
	err := s.flush()
	return End{Cause: cause, Detail: detail, Err: err}
}

// ioEnd classifies the error that ended a read or write: the peer's FIN, its
// reset, a timeout of ours, shutdown, or anything else.
func (s *Session) ioEnd(err error) End {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		switch {
		case s.killed.Load() || s.draining.Load():
			s.conn.SetDeadline(time.Time{})
			return s.closeWith(ShutdownReply(s.cfg.Hostname), event.CauseShutdown, "")
		case s.injected == 0 && !s.unsucc.IsZero() && !time.Now().Before(s.unsucc):
			s.conn.SetDeadline(time.Time{})
			return s.closeWith(replyTimeoutUnsuccessful, event.CauseTimeoutUnsuccessful, "")
		case !s.softTotal.IsZero() && !time.Now().Before(s.softTotal):
			s.conn.SetDeadline(time.Time{})
			return s.closeWith(replyTimeoutTotal, event.CauseTimeoutTotal, "")
		case !s.idle.IsZero() && !time.Now().Before(s.idle):
			s.conn.SetDeadline(time.Time{})
			return s.closeWith(replyTimeoutIdle, event.CauseTimeoutIdle, "")
		}
		return End{Cause: event.CauseIOError, Detail: "write timeout", Err: err}
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return End{Cause: event.CausePeerClosed, Err: err}
	case errors.Is(err, syscall.ECONNRESET):
		return End{Cause: event.CausePeerReset, Detail: "connection reset by peer", Err: err}
	}
	return End{Cause: event.CauseIOError, Detail: err.Error(), Err: err}
}
