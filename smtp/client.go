package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TLSMode says whether a Client uses STARTTLS.
type TLSMode uint8

const (
	// TLSOff never uses STARTTLS.
	TLSOff TLSMode = iota
	// TLSPreferred uses STARTTLS when the server offers it. If the server
	// refuses the command the session goes on in clear text; if the
	// handshake fails the connection is lost (an Error of StepStartTLS) and
	// the caller may try again on a new connection with TLSOff, as Postfix
	// does at its "may" security level.
	TLSPreferred
	// TLSRequired fails (StepStartTLS) unless STARTTLS is offered and the
	// handshake succeeds.
	TLSRequired
)

var tlsModeNames = [...]string{"off", "preferred", "required"}

func (m TLSMode) String() string {
	if int(m) < len(tlsModeNames) {
		return tlsModeNames[m]
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// ClientTimeouts bound each step of a client session. A zero field takes
// its default: the minimums of RFC 5321 4.5.3.2 where it gives one.
type ClientTimeouts struct {
	Connect   time.Duration // TCP connect, in Dial; 30s
	Greeting  time.Duration // the server's greeting; 5m
	Command   time.Duration // writing a command and reading its reply (EHLO, STARTTLS and the TLS handshake, MAIL, RCPT, RSET); 5m
	DataInit  time.Duration // the reply to DATA; 2m
	DataBlock time.Duration // each write of the message; 3m
	DataDone  time.Duration // the final reply after the end-of-data dot; 10m
	Quit      time.Duration // QUIT and its reply; 30s
}

func (t ClientTimeouts) withDefaults() ClientTimeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataDone, 10*time.Minute)
	def(&t.Quit, 30*time.Second)
	return t
}

// ClientConfig is the configuration of one client connection.
type ClientConfig struct {
	// Hostname is the EHLO argument; "" sends the local address as an
	// address literal ("[192.0.2.1]").
	Hostname string
	// LocalAddr is Dial's source address; nil leaves it to the kernel.
	LocalAddr net.Addr
	// TLS configures STARTTLS. ServerName, RootCAs and InsecureSkipVerify
	// are the caller's: verification is whatever this config asks for. nil
	// means encryption without verification (opportunistic TLS, RFC 7435).
	TLS     *tls.Config
	TLSMode TLSMode
	// Timeouts bound each step; the context of each call bounds it too.
	Timeouts ClientTimeouts
	// Transcript, if set, sees every line sent (commands and message
	// lines, dot-stuffed, as on the wire) and every reply line received,
	// without the line ending; sent is true for lines the client wrote.
	Transcript func(sent bool, line []byte)
}

// Limits on a reply, so that a hostile server cannot make the client
// buffer without bound. A reply line may be 512 octets (RFC 5321
// 4.5.3.1.5); real servers stay far below these.
const (
	maxReplyLine  = 4096 // octets, line ending included
	maxReplyLines = 64
)

// Commands pipelined in one write at most. The client writes a group
// before it reads the group's replies, so a group must fit the socket
// buffers of both sides, or a server that does not read while its
// replies are unread would deadlock the two (RFC 2920 3.2).
const maxPipelined = 100

// Step is where a client session was when it failed.
type Step uint8

const (
	StepConnect      Step = iota + 1 // TCP connect
	StepGreeting                     // reading the server's greeting
	StepEHLO                         // EHLO, or HELO after EHLO was refused
	StepStartTLS                     // STARTTLS and the TLS handshake
	StepMail                         // MAIL FROM
	StepRcpt                         // RCPT TO
	StepDataInit                     // DATA and its 354
	StepDataTransfer                 // sending the message
	StepDataDone                     // waiting for the final reply after the message was sent
	StepReset                        // RSET
	StepQuit                         // QUIT
)

var stepNames = [...]string{"", "connect", "greeting", "ehlo", "starttls", "mail", "rcpt", "data-init",
	"data-transfer", "data-done", "rset", "quit"}

func (s Step) String() string {
	if s > 0 && int(s) < len(stepNames) {
		return stepNames[s]
	}
	return "step(" + strconv.Itoa(int(s)) + ")"
}

// ErrorKind says what went wrong.
type ErrorKind uint8

const (
	KindNetwork  ErrorKind = iota + 1 // any other network error: connection refused, unreachable, ...
	KindTimeout                       // a step's timeout or the context's deadline
	KindReset                         // the peer reset the connection (RST)
	KindEOF                           // the peer closed the connection
	KindCanceled                      // the context was canceled
	KindProtocol                      // a malformed reply, or data the server should not have sent
	KindReply                         // the server refused in a way that ends the session: Error.Reply
	KindTLS                           // STARTTLS not offered when required, or the handshake failed
)

var kindNames = [...]string{"", "network", "timeout", "reset", "eof", "canceled", "protocol", "reply", "tls"}

func (k ErrorKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failure of a client connection. Once a call returned an
// *Error the connection is closed and the Client must not be used again;
// the next host or a later attempt needs a new one.
//
// A refused greeting, EHLO (and HELO) or, with TLSRequired, STARTTLS is an
// Error of KindReply carrying the reply: the caller tries the next host, as
// the ESA does. So is a 421 at any step, which the server sends as it
// closes the session; Result keeps that 421 too where it answered a
// command of the transaction.
type Error struct {
	Step  Step
	Kind  ErrorKind
	Reply Reply // the reply that ended the session (KindReply); zero otherwise
	Err   error // the underlying error; nil for KindReply

	// The connection's addresses, nil when no connection was made, so that
	// a failed connection can still be logged with its interface.
	LocalAddr, RemoteAddr net.Addr
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smtp: ")
	b.WriteString(e.Step.String())
	b.WriteString(": ")
	switch {
	case e.Kind == KindReply:
		b.WriteString("server replied ")
		b.WriteString(strings.ReplaceAll(e.Reply.String(), "\n", " / "))
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Kind.String())
	}
	if e.PossibleDelivery() {
		b.WriteString(" (message sent, final reply missing: possible delivery)")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports a timeout: a step's own or the context's deadline.
func (e *Error) Timeout() bool { return e.Kind == KindTimeout }

// PossibleDelivery reports that the whole message was sent but its final
// reply never came: the server may have accepted it. A retry may deliver
// a duplicate (the ESA logs "Possible Delivery").
func (e *Error) PossibleDelivery() bool { return e.Step == StepDataDone && e.Reply.IsZero() }

var (
	errMalformedReply = errors.New("malformed reply")
	errNoSTARTTLS     = errors.New("STARTTLS is required but the server does not offer it")
	errClientClosed   = errors.New("smtp: client is closed")
)

// Envelope is one transaction: the sender, the recipients and what the
// message needs from the server.
type Envelope struct {
	From     string // the reverse-path without brackets; "" is the null sender
	To       []string
	Size     int64 // the message's size for SIZE=; 0: unknown, not sent
	Body8bit bool  // BODY=8BITMIME, when the server offers it (sent as is otherwise)
	SMTPUTF8 bool  // the envelope or header needs SMTPUTF8 (RFC 6531)
}

// Result is the outcome of one transaction: a reply per command.
type Result struct {
	Mail  Reply   // the reply to MAIL FROM
	Rcpts []Reply // one per recipient, in order; zero for those not sent
	// Data is the reply that ended the DATA phase: DATA's refusal, or the
	// final reply after the message (see DataSent); zero if DATA was not
	// sent or its reply was lost.
	Data Reply
	// DataSent says that the whole message went out. With an Error of
	// StepDataDone the final reply is missing (Error.PossibleDelivery).
	DataSent bool
	// Synthetic marks a Mail reply the client made itself, sending
	// nothing: the message exceeds the server's SIZE (552 5.3.4), or needs
	// SMTPUTF8 that the server lacks (553 5.6.7). The session is still
	// usable.
	Synthetic bool
}

// Outcome is the reply that decides recipient i's fate: MAIL's refusal,
// its RCPT's refusal, or the reply after DATA. A zero Reply means there
// was none (the connection failed before it).
func (r *Result) Outcome(i int) Reply {
	switch {
	case !r.Mail.Positive():
		return r.Mail
	case i >= len(r.Rcpts):
		return Reply{}
	case !r.Rcpts[i].Positive():
		return r.Rcpts[i]
	}
	return r.Data
}

// Client is the client side of one SMTP connection, for delivery: one
// transaction per Send, as many Sends as the caller likes, then Quit.
// Methods must not be called concurrently.
type Client struct {
	raw  net.Conn // the TCP connection: the context's watcher closes it
	conn net.Conn // raw, or the TLS connection over it
	r    *bufio.Reader
	out  []byte
	cfg  ClientConfig
	to   ClientTimeouts

	greeting   Reply
	esmtp      bool
	ext        map[string]string // EHLO keywords, upper case, to their parameters
	enhanced   bool              // ENHANCEDSTATUSCODES: parse codes in replies
	pipelining bool
	sizeLimit  int64 // SIZE offered with a limit; 0: none
	tlsState   *tls.ConnectionState

	err    error // sticky: the error that closed the client
	closed bool

	// The call in progress: its context, the context's deadline, and
	// whether the context ended (its watcher then closed the connection).
	// lost is the end of a context that came as its call was finishing:
	// the connection is closed, and the next call says so.
	ctx       context.Context
	ctxEnd    time.Time
	cancelled atomic.Bool
	lost      error
}

// Dial connects to addr ("host:port") and runs NewClient on the
// connection. A failed connect is an Error of StepConnect.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	d := net.Dialer{Timeout: cfg.Timeouts.withDefaults().Connect, LocalAddr: cfg.LocalAddr}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Step: StepConnect, Kind: classify(err), Err: err}
	}
	return NewClient(ctx, conn, cfg)
}

// NewClient opens an SMTP session on conn: it reads the greeting, sends
// EHLO (HELO if the server refuses EHLO with 5xx), and STARTTLS and EHLO
// again as TLSMode asks. On error conn is closed; a refusal of the server
// is an Error of KindReply, after which the client sent QUIT unless the
// reply was 421.
func NewClient(ctx context.Context, conn net.Conn, cfg ClientConfig) (*Client, error) {
	c := &Client{raw: conn, conn: conn, cfg: cfg, to: cfg.Timeouts.withDefaults(),
		r: bufio.NewReaderSize(conn, maxReplyLine), out: make([]byte, 0, 512)}
	end, err := c.begin(ctx, StepGreeting)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := c.open(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) open() error {
	r, err := c.readReply(c.to.Greeting)
	if err != nil {
		return c.fail(StepGreeting, err)
	}
	c.greeting = r
	if r.Code/100 != 2 {
		return c.refused(StepGreeting, r)
	}
	if err := c.hello(); err != nil {
		return err
	}
	if c.cfg.TLSMode == TLSOff {
		return nil
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		if c.cfg.TLSMode == TLSRequired {
			c.quietQuit()
			return c.fail(StepStartTLS, errNoSTARTTLS)
		}
		return nil
	}
	return c.startTLS()
}

// Greeting is the server's greeting.
func (c *Client) Greeting() Reply { return c.greeting }

// Ext reports whether the server offered the EHLO keyword name (any case)
// and with which parameter ("SIZE" gives "10485760"). A HELO session has
// none.
func (c *Client) Ext(name string) (param string, ok bool) {
	param, ok = c.ext[strings.ToUpper(name)]
	return param, ok
}

// TLSState is the state of the TLS connection; false before STARTTLS.
func (c *Client) TLSState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// LocalAddr is the local address of the connection.
func (c *Client) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr is the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// Send runs one transaction: MAIL FROM, a RCPT TO per recipient, and DATA
// with msg when at least one recipient was accepted. msg is the message as
// stored, lines ending in CRLF, read as it is sent, so that a large one is
// never whole in memory; it is dot-stuffed as it is written (bare CR or LF
// are sent as CRLF, so that no line can end the data early). If reading
// msg fails, the end of data is not sent: the connection is closed (an
// *Error at StepDataTransfer wrapping the read error), and the server
// drops the message.
//
// Replies of the server, 4xx and 5xx included, are in the Result; the
// error is for the connection only: an *Error after which the Client is
// closed (every later call returns the same error), with the Result,
// never nil then, holding the replies read until then. A transaction that failed before
// the message was sent is reset (RSET), and the Client stays usable. An
// error that is not an *Error is a misuse (an envelope without
// recipients, a control character in an address, a Client closed by Quit
// or Close); nothing was sent and the Result is nil.
func (c *Client) Send(ctx context.Context, env Envelope, msg io.Reader) (*Result, error) {
	if err := checkEnvelope(env); err != nil {
		return nil, err
	}
	if c.err == errClientClosed {
		return nil, c.err
	}
	res := &Result{Rcpts: make([]Reply, len(env.To))}
	if c.err != nil {
		return res, c.err
	}
	if r, refused := c.refuseLocally(env); refused {
		res.Mail, res.Synthetic = r, true
		return res, nil
	}
	end, err := c.begin(ctx, StepMail)
	if err != nil {
		return res, err
	}
	defer end()
	if c.pipelining {
		return res, c.sendPipelined(env, msg, res)
	}
	return res, c.sendStepByStep(env, msg, res)
}

// checkEnvelope refuses what would break the command lines. Addresses come
// from the spool, where the server's parser put them: this is a guard
// against command injection, not a syntax check.
func checkEnvelope(env Envelope) error {
	if len(env.To) == 0 {
		return errors.New("smtp: envelope without recipients")
	}
	if hasControl(env.From) {
		return fmt.Errorf("smtp: sender %q holds a control character", env.From)
	}
	for _, to := range env.To {
		if to == "" || hasControl(to) {
			return fmt.Errorf("smtp: recipient %q is empty or holds a control character", to)
		}
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// refuseLocally makes the reply the server would give to a message it
// cannot take, as Postfix does, without spending a round trip.
func (c *Client) refuseLocally(env Envelope) (Reply, bool) {
	if env.SMTPUTF8 {
		if _, ok := c.ext["SMTPUTF8"]; !ok {
			return Reply{553, "5.6.7", "SMTPUTF8 is required but the server does not offer it"}, true
		}
	}
	if c.sizeLimit > 0 && env.Size > c.sizeLimit {
		return Reply{552, "5.3.4", "Message size " + strconv.FormatInt(env.Size, 10) +
			" exceeds the server's limit of " + strconv.FormatInt(c.sizeLimit, 10)}, true
	}
	return Reply{}, false
}

func (c *Client) sendPipelined(env Envelope, msg io.Reader, res *Result) error {
	c.mailCommand(env)
	sent, read, accepted := 0, 0, 0 // RCPTs written, their replies read, accepted
	mailRead := false
	for {
		room := maxPipelined - 1 // for DATA
		if !mailRead {
			room--
		}
		for ; sent < len(env.To) && room > 0; room-- {
			c.rcptCommand(env.To[sent])
			sent++
		}
		last := sent == len(env.To)
		if last {
			c.command("DATA")
		}
		step := StepRcpt
		if !mailRead {
			step = StepMail
		}
		if err := c.flush(c.to.Command); err != nil {
			return c.fail(step, err)
		}
		if !mailRead {
			r, err := c.readReply(c.to.Command)
			if err != nil {
				return c.fail(StepMail, err)
			}
			res.Mail, mailRead = r, true
			if r.Code == 421 {
				return c.failReply(StepMail, r)
			}
		}
		for ; read < sent; read++ {
			r, err := c.readReply(c.to.Command)
			if err != nil {
				return c.fail(StepRcpt, err)
			}
			res.Rcpts[read] = r
			if r.Code == 421 {
				return c.failReply(StepRcpt, r)
			}
			if r.Positive() {
				accepted++
			}
		}
		if last {
			break
		}
		if !res.Mail.Positive() {
			return c.rset() // no point in sending the other recipients
		}
	}
	r, err := c.readReply(c.to.DataInit)
	if err != nil {
		return c.fail(StepDataInit, err)
	}
	switch {
	case r.Code == 421:
		res.Data = r
		return c.failReply(StepDataInit, r)
	case r.Code != 354:
		res.Data = r
		return c.rset()
	case !res.Mail.Positive() || accepted == 0:
		// The server is out of step: it wants a message for a transaction
		// that failed. End it empty (RFC 2920 3.1); its reply means nothing.
		// Failures here are of StepDataTransfer: no message went out, so
		// none can have been delivered.
		c.out = append(c.out, ".\r\n"...)
		c.transcript(true, c.out[len(c.out)-3:len(c.out)-2])
		if err := c.flush(c.to.DataBlock); err != nil {
			return c.fail(StepDataTransfer, err)
		}
		r, err := c.readReply(c.to.DataDone)
		if err != nil {
			return c.fail(StepDataTransfer, err)
		}
		if r.Code == 421 {
			return c.failReply(StepDataTransfer, r)
		}
		return nil
	}
	return c.data(msg, res)
}

func (c *Client) sendStepByStep(env Envelope, msg io.Reader, res *Result) error {
	c.mailCommand(env)
	r, err := c.roundTrip(StepMail, c.to.Command)
	res.Mail = r
	if err != nil {
		return err
	}
	if !r.Positive() {
		return c.rset()
	}
	accepted := 0
	for i, to := range env.To {
		c.rcptCommand(to)
		r, err := c.roundTrip(StepRcpt, c.to.Command)
		res.Rcpts[i] = r
		if err != nil {
			return err
		}
		if r.Positive() {
			accepted++
		}
	}
	if accepted == 0 {
		return c.rset()
	}
	c.command("DATA")
	if err := c.flush(c.to.Command); err != nil {
		return c.fail(StepDataInit, err)
	}
	r, err = c.readReply(c.to.DataInit)
	switch {
	case err != nil:
		return c.fail(StepDataInit, err)
	case r.Code == 421:
		res.Data = r
		return c.failReply(StepDataInit, r)
	case r.Code != 354:
		res.Data = r
		return c.rset()
	}
	return c.data(msg, res)
}

// roundTrip writes the pending command and reads its reply. A 421 comes
// with an error, but the reply is returned too, for the Result.
func (c *Client) roundTrip(step Step, timeout time.Duration) (Reply, error) {
	if err := c.flush(timeout); err != nil {
		return Reply{}, c.fail(step, err)
	}
	r, err := c.readReply(timeout)
	if err != nil {
		return Reply{}, c.fail(step, err)
	}
	if r.Code == 421 {
		return r, c.failReply(step, r)
	}
	return r, nil
}

// data sends the message after a 354 and reads the final reply.
func (c *Client) data(msg io.Reader, res *Result) error {
	if err := c.writeMessage(msg); err != nil {
		return c.fail(StepDataTransfer, err)
	}
	res.DataSent = true
	r, err := c.readReply(c.to.DataDone)
	if err != nil {
		return c.fail(StepDataDone, err)
	}
	res.Data = r
	if r.Code == 421 {
		return c.failReply(StepDataDone, r)
	}
	return nil
}

// Reset sends RSET. Send resets failed transactions itself; Reset is for
// a caller that wants to check a connection before reusing it.
func (c *Client) Reset(ctx context.Context) error {
	end, err := c.begin(ctx, StepReset)
	if err != nil {
		return err
	}
	defer end()
	return c.rset()
}

func (c *Client) rset() error {
	c.command("RSET")
	r, err := c.roundTrip(StepReset, c.to.Command)
	if err != nil {
		return err
	}
	if r.Code/100 != 2 {
		// The server's state is unknown: the next MAIL could be refused
		// as nested, or worse. Give up the connection.
		return c.failReply(StepReset, r)
	}
	return nil
}

// Quit sends QUIT, waits for the reply and closes the connection. Its
// error says only that the goodbye went wrong: the connection is closed
// either way.
func (c *Client) Quit(ctx context.Context) error {
	end, err := c.begin(ctx, StepQuit)
	if err != nil {
		c.Close()
		return err
	}
	defer end()
	c.command("QUIT")
	if err := c.flush(c.to.Quit); err != nil {
		return c.fail(StepQuit, err)
	}
	if _, err := c.readReply(c.to.Quit); err != nil {
		return c.fail(StepQuit, err)
	}
	return c.Close()
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.err == nil {
		c.err = errClientClosed
	}
	return c.raw.Close()
}

// quietQuit says goodbye before the client gives up on a server that
// refused it (RFC 5321 3.1 asks for QUIT after a 554 greeting). Its
// failure changes nothing: the error that matters is the refusal.
func (c *Client) quietQuit() {
	c.command("QUIT")
	if c.flush(c.to.Quit) == nil {
		c.readReply(c.to.Quit)
	}
}

// refused ends the session on a refusal by the server: QUIT, unless the
// server already closed it with 421.
func (c *Client) refused(step Step, r Reply) error {
	if r.Code != 421 {
		c.quietQuit()
	}
	return c.failReply(step, r)
}

func (c *Client) hello() error {
	c.enhanced = false
	c.helloCommand("EHLO ")
	r, err := c.roundTrip(StepEHLO, c.to.Command)
	if err != nil {
		return err
	}
	if r.Code/100 == 2 {
		c.esmtp = true
		c.parseExtensions(r.Text)
		return nil
	}
	if r.Code/100 != 5 {
		return c.refused(StepEHLO, r)
	}
	// An SMTP server without ESMTP says 500 or 502 to EHLO (RFC 5321 4.1.4).
	c.helloCommand("HELO ")
	r, err = c.roundTrip(StepEHLO, c.to.Command)
	if err != nil {
		return err
	}
	if r.Code/100 != 2 {
		return c.refused(StepEHLO, r)
	}
	c.esmtp = false
	c.ext, c.pipelining, c.sizeLimit = nil, false, 0
	return nil
}

func (c *Client) heloName() string {
	if c.cfg.Hostname != "" {
		return c.cfg.Hostname
	}
	if a, ok := c.raw.LocalAddr().(*net.TCPAddr); ok {
		if ip4 := a.IP.To4(); ip4 != nil {
			return "[" + ip4.String() + "]"
		}
		return "[IPv6:" + a.IP.String() + "]"
	}
	return "localhost"
}

func (c *Client) helloCommand(verb string) {
	start := len(c.out)
	c.out = append(c.out, verb...)
	c.out = append(c.out, c.heloName()...)
	c.endCommand(start)
}

// parseExtensions reads the EHLO reply: the first line is the server's
// name, each other line a keyword and its parameters.
func (c *Client) parseExtensions(text string) {
	c.ext = make(map[string]string, 8)
	_, rest, _ := strings.Cut(text, "\n")
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		kw, param, _ := strings.Cut(strings.TrimSpace(line), " ")
		if kw == "" {
			continue
		}
		c.ext[strings.ToUpper(kw)] = strings.TrimSpace(param)
	}
	_, c.enhanced = c.ext["ENHANCEDSTATUSCODES"]
	_, c.pipelining = c.ext["PIPELINING"]
	c.sizeLimit = 0
	if p, ok := c.ext["SIZE"]; ok {
		if n, err := strconv.ParseInt(p, 10, 64); err == nil && n > 0 {
			c.sizeLimit = n
		}
	}
}

func (c *Client) startTLS() error {
	c.command("STARTTLS")
	r, err := c.roundTrip(StepStartTLS, c.to.Command)
	if err != nil {
		return err
	}
	if r.Code != 220 {
		if c.cfg.TLSMode == TLSPreferred {
			return nil // still in step: go on in clear text
		}
		return c.refused(StepStartTLS, r)
	}
	// Whatever follows the 220 before the handshake came in clear text and
	// could have been injected; the server may not send it (CVE-2011-0411,
	// the client's side).
	if n := c.r.Buffered(); n > 0 {
		return c.fail(StepStartTLS, fmt.Errorf("%w: %d bytes after the reply to STARTTLS", errMalformedReply, n))
	}
	cfg := c.cfg.TLS
	if cfg == nil {
		cfg = opportunisticTLS
	}
	tc := tls.Client(c.raw, cfg)
	tc.SetDeadline(c.deadline(c.to.Command))
	if err := tc.Handshake(); err != nil {
		return c.fail(StepStartTLS, err)
	}
	st := tc.ConnectionState()
	c.conn, c.tlsState = tc, &st
	c.r.Reset(tc)
	// The extensions offered in clear text are forgotten (RFC 3207 4.2).
	c.ext = nil
	return c.hello()
}

var opportunisticTLS = &tls.Config{InsecureSkipVerify: true}

func (c *Client) mailCommand(env Envelope) {
	start := len(c.out)
	c.out = append(c.out, "MAIL FROM:<"...)
	c.out = append(c.out, env.From...)
	c.out = append(c.out, '>')
	if c.esmtp {
		if _, ok := c.ext["SIZE"]; ok && env.Size > 0 {
			c.out = append(c.out, " SIZE="...)
			c.out = strconv.AppendInt(c.out, env.Size, 10)
		}
		if _, ok := c.ext["8BITMIME"]; ok && env.Body8bit {
			c.out = append(c.out, " BODY=8BITMIME"...)
		}
		if env.SMTPUTF8 {
			c.out = append(c.out, " SMTPUTF8"...)
		}
	}
	c.endCommand(start)
}

func (c *Client) rcptCommand(to string) {
	start := len(c.out)
	c.out = append(c.out, "RCPT TO:<"...)
	c.out = append(c.out, to...)
	c.out = append(c.out, '>')
	c.endCommand(start)
}

func (c *Client) command(line string) {
	start := len(c.out)
	c.out = append(c.out, line...)
	c.endCommand(start)
}

// endCommand ends the command line that starts at start in c.out.
func (c *Client) endCommand(start int) {
	c.transcript(true, c.out[start:])
	c.out = append(c.out, '\r', '\n')
}

func (c *Client) transcript(sent bool, line []byte) {
	if c.cfg.Transcript != nil {
		c.cfg.Transcript(sent, line)
	}
}

// flush writes the pending commands.
func (c *Client) flush(timeout time.Duration) error {
	c.conn.SetWriteDeadline(c.deadline(timeout))
	_, err := c.conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *Client) readReply(timeout time.Duration) (Reply, error) {
	c.conn.SetReadDeadline(c.deadline(timeout))
	return readReply(c.r, c.enhanced, c.cfg.Transcript)
}

// deadline is the deadline of a step that may take d: the sooner of d
// from now and the context's deadline.
func (c *Client) deadline(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !c.ctxEnd.IsZero() && c.ctxEnd.Before(t) {
		return c.ctxEnd
	}
	return t
}

// begin starts a call that may use the connection from step on. ctx
// bounds it: the context's deadline caps every step's, and its end closes
// the connection, which wakes any read or write at once; a client whose
// context ended is lost, as it would be by a timeout. end finishes the
// call.
func (c *Client) begin(ctx context.Context, step Step) (end func(), err error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.lost == nil {
		c.lost = ctx.Err()
	}
	if c.lost != nil {
		return nil, c.closeWith(&Error{Step: step, Kind: classify(c.lost), Err: c.lost,
			LocalAddr: c.raw.LocalAddr(), RemoteAddr: c.raw.RemoteAddr()})
	}
	c.ctx = ctx
	c.ctxEnd, _ = ctx.Deadline()
	if ctx.Done() == nil {
		return noEnd, nil
	}
	stop := context.AfterFunc(ctx, func() {
		c.cancelled.Store(true)
		c.raw.Close()
	})
	return func() {
		if !stop() {
			c.lost = ctx.Err() // the watcher ran, or runs: the connection is gone
		}
	}, nil
}

func noEnd() {}

// fail closes the client on a connection error at step.
func (c *Client) fail(step Step, err error) error {
	e := &Error{Step: step, Kind: classify(err), Err: err,
		LocalAddr: c.raw.LocalAddr(), RemoteAddr: c.raw.RemoteAddr()}
	switch {
	case c.cancelled.Load() || c.ctx.Err() != nil:
		// The context ended (and its watcher closed the connection): that
		// is the cause, not the closed connection left behind.
		e.Err = c.ctx.Err()
		e.Kind = classify(e.Err)
	case e.Kind == KindTimeout && !c.ctxEnd.IsZero() && !time.Now().Before(c.ctxEnd):
		e.Err = context.DeadlineExceeded // the step's deadline was the context's
	}
	if step == StepStartTLS && e.Kind == KindNetwork {
		e.Kind = KindTLS // a failed handshake: bad certificate, no common version, ...
	}
	return c.closeWith(e)
}

// failReply closes the client on a reply that ends the session.
func (c *Client) failReply(step Step, r Reply) error {
	return c.closeWith(&Error{Step: step, Kind: KindReply, Reply: r,
		LocalAddr: c.raw.LocalAddr(), RemoteAddr: c.raw.RemoteAddr()})
}

func (c *Client) closeWith(e *Error) error {
	c.err = e
	c.closed = true
	c.raw.Close()
	return e
}

// classify says what kind of failure err is.
func classify(err error) ErrorKind {
	switch {
	case errors.Is(err, errMalformedReply):
		return KindProtocol
	case errors.Is(err, errNoSTARTTLS):
		return KindTLS
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, syscall.ECONNRESET):
		return KindReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return KindEOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	return KindNetwork
}

// readReply reads one reply, its lines joined by "\n" in Text. With
// enhanced, a status code of RFC 3463 at the start of the lines goes to
// Enhanced. A line longer than maxReplyLine, more than maxReplyLines
// lines, a line that does not begin with a code of 2xx to 5xx followed by
// a space, a hyphen or its end, and lines whose codes disagree are
// malformed: the dialogue cannot be trusted to be in step after them.
// r must have a buffer of maxReplyLine bytes.
func readReply(r *bufio.Reader, enhanced bool, transcript func(bool, []byte)) (Reply, error) {
	var rep Reply
	var text []byte
	for n := 0; ; n++ {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if transcript != nil {
				transcript(false, line)
			}
			return Reply{}, fmt.Errorf("%w: line longer than %d bytes", errMalformedReply, maxReplyLine)
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, err
		}
		line = trimEOL(line)
		if transcript != nil {
			transcript(false, line)
		}
		code, more, rest, ok := parseReplyLine(line)
		switch {
		case !ok:
			return Reply{}, fmt.Errorf("%w: %q", errMalformedReply, clip(line))
		case n > 0 && code != rep.Code:
			return Reply{}, fmt.Errorf("%w: code %d after %d", errMalformedReply, code, rep.Code)
		case more && n+1 == maxReplyLines:
			return Reply{}, fmt.Errorf("%w: more than %d lines", errMalformedReply, maxReplyLines)
		}
		rep.Code = code
		if enhanced {
			if st, after, ok := cutEnhanced(rest, line[0]); ok {
				if n == 0 {
					rep.Enhanced = statusString(st)
				}
				if string(st) == rep.Enhanced {
					rest = after
				}
			}
		}
		if !more && n == 0 {
			rep.Text = string(rest)
			return rep, nil
		}
		if n > 0 {
			text = append(text, '\n')
		}
		text = append(text, rest...)
		if !more {
			rep.Text = string(text)
			return rep, nil
		}
	}
}

// statusString returns the common status codes without allocating.
func statusString(b []byte) string {
	switch string(b) {
	case "2.0.0":
		return "2.0.0"
	case "2.1.0":
		return "2.1.0"
	case "2.1.5":
		return "2.1.5"
	case "2.6.0":
		return "2.6.0"
	}
	return string(b)
}

// parseReplyLine splits "250-text" or "250 text" or "250".
func parseReplyLine(line []byte) (code int, more bool, text []byte, ok bool) {
	if len(line) < 3 {
		return 0, false, nil, false
	}
	d0, d1, d2 := line[0]-'0', line[1]-'0', line[2]-'0'
	if d0 < 2 || d0 > 5 || d1 > 9 || d2 > 9 {
		return 0, false, nil, false
	}
	code = int(d0)*100 + int(d1)*10 + int(d2)
	if len(line) == 3 {
		return code, false, nil, true
	}
	switch line[3] {
	case ' ':
	case '-':
		more = true
	default:
		return 0, false, nil, false
	}
	return code, more, line[4:], true
}

// cutEnhanced splits "5.1.1 text" into an RFC 3463 status code and the
// text, when the code's class is the reply's (class "." subject "."
// detail, each of 1 to 3 digits).
func cutEnhanced(text []byte, class byte) (code, rest []byte, ok bool) {
	if class != '2' && class != '4' && class != '5' || len(text) < 5 || text[0] != class || text[1] != '.' {
		return nil, nil, false
	}
	i := 2
	for part := 0; part < 2; part++ {
		n := 0
		for i+n < len(text) && n < 4 && '0' <= text[i+n] && text[i+n] <= '9' {
			n++
		}
		if n == 0 || n > 3 {
			return nil, nil, false
		}
		i += n
		if part == 0 {
			if i >= len(text) || text[i] != '.' {
				return nil, nil, false
			}
			i++
		}
	}
	switch {
	case i == len(text):
		return text[:i], nil, true
	case text[i] == ' ':
		return text[:i], text[i+1:], true
	}
	return nil, nil, false
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// The message goes out through a large buffer lent for the DATA phase,
// so that an idle connection holds none.
var dataWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// dataWriter writes one block of the message with its own deadline
// (RFC 5321 4.5.3.2.5: the timeout applies to each send).
type dataWriter struct{ c *Client }

func (w dataWriter) Write(p []byte) (int, error) {
	w.c.conn.SetWriteDeadline(w.c.deadline(w.c.to.DataBlock))
	return w.c.conn.Write(p)
}

// writeMessage sends msg dot-stuffed and ended with CRLF.CRLF, as it reads
// it, without a copy of the whole. A line ends at CRLF; a bare LF or CR
// (which the server side of mailgate never accepts into the spool) ends a
// line too and is sent as CRLF, so that no sequence in msg can be taken
// for the end of data by any server (SMTP smuggling).
func (c *Client) writeMessage(msg io.Reader) error {
	bw := dataWriterPool.Get().(*bufio.Writer)
	bw.Reset(dataWriter{c})
	buf := readBufPool.Get().(*[]byte)
	defer func() {
		bw.Reset(nil)
		dataWriterPool.Put(bw)
		readBufPool.Put(buf)
	}()
	st := stuffer{c: c, bw: bw, start: true}
	for {
		n, err := msg.Read(*buf)
		if werr := st.write((*buf)[:n]); werr != nil {
			return werr
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &readError{err}
		}
	}
	if !st.start {
		st.endLine()
	}
	bw.WriteString(".\r\n")
	c.transcript(true, []byte{'.'})
	return bw.Flush()
}

var readBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readError is the message's reader failing, not the connection.
type readError struct{ err error }

func (e *readError) Error() string { return "reading the message: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// stuffer writes message text in SMTP's form as it comes, in pieces that
// may end anywhere, a CRLF split between two of them included.
type stuffer struct {
	c     *Client
	bw    *bufio.Writer
	start bool   // at the start of a line
	cr    bool   // the last byte was a CR, already sent as a line end
	line  []byte // the line so far, for the transcript only
}

func (s *stuffer) write(p []byte) error {
	for len(p) > 0 {
		// The next line end: LF, or a CR before it.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			i = len(p)
		}
		if j := bytes.IndexByte(p[:i], '\r'); j >= 0 {
			i = j
		}
		if text := p[:i]; len(text) > 0 {
			if s.start && text[0] == '.' {
				s.bw.WriteByte('.')
				s.record([]byte{'.'})
			}
			s.start, s.cr = false, false
			s.bw.Write(text)
			s.record(text)
		}
		if i == len(p) {
			break
		}
		c := p[i]
		p = p[i+1:]
		if c == '\n' && s.cr {
			s.cr = false // the LF of a CRLF whose CR ended the line
			continue
		}
		if err := s.endLine(); err != nil {
			return err
		}
		s.cr = c == '\r'
	}
	return nil
}

func (s *stuffer) endLine() error {
	if s.c.cfg.Transcript != nil {
		s.c.cfg.Transcript(true, s.line)
		s.line = s.line[:0]
	}
	s.start = true
	_, err := s.bw.WriteString("\r\n")
	return err
}

func (s *stuffer) record(b []byte) {
	if s.c.cfg.Transcript != nil {
		s.line = append(s.line, b...)
	}
}
