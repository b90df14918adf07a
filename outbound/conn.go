package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// session is an open delivery connection.
type session struct {
	c    *smtp.Client
	peek *peeker // at the TCP connection under c, before a cached connection is used again
	dcid uint64
	hop  hop
}

// cachedConn is a connection in its destination's cache: idle, open, and
// waiting for the next ready job of the destination.
type cachedConn struct {
	next    chan *job // the job to carry (buffered: handing over never blocks), or nil to close
	closing bool      // told to close, for its slot (counted in Manager.closing)
}

// connection runs one delivery connection of d from its opening to its
// close: it carries ready jobs of d, one transaction each, up to
// max_messages_per_connection. When d has nothing ready it waits in d's
// cache for up to connection_cache_time, and closes when nothing came.
func (m *Manager) connection(d *dest) {
	defer m.wg.Done()
	m.mu.Lock()
	domain := d.name
	if len(d.ready) > 0 {
		domain = d.ready[0].domain
	}
	rr := d.rr
	d.rr++
	m.mu.Unlock()

	s, dcid, o, err := m.connect(d, domain, rr)
	m.mu.Lock()
	d.opening--
	if err != nil {
		// Every ready job of the destination would meet the same failure:
		// they all wait for the next retry (the ESA requeues the domain).
		jobs := m.takeAll(d)
		m.mu.Unlock()
		if m.cut.Err() == nil {
			m.finishAll(jobs, o, dcid)
		}
		m.mu.Lock()
		m.release(d)
		m.mu.Unlock()
		return
	}
	d.live++
	// The first job is taken before more connections are considered, or
	// the job this one was opened for would open another.
	j := m.takeLocked(d)
	m.schedule() // a destination with a connection up may open more
	m.mu.Unlock()

	// The next job is taken only when this connection will carry it: a job
	// taken after a failed transaction would be left in flight, its
	// message stuck until a restart.
	ok, told := true, false
	for n := 1; j != nil; n++ {
		if ok = m.deliver(s, j, n > 1); !ok || n == d.ctl.MaxMessagesPerConnection {
			break
		}
		j, told = m.nextJob(d, s)
	}
	if ok {
		ctx, cancel := context.WithTimeout(m.cut, 30*time.Second)
		s.c.Quit(ctx)
		cancel()
	} else {
		s.c.Close()
	}
	m.emit(event.DCIDClose{DCID: s.dcid})

	m.mu.Lock()
	d.live--
	if told {
		m.closing--
	}
	m.release(d)
	m.mu.Unlock()
}

// nextJob gives connection s of d its next job: a ready one, or, when d has
// none, the first that becomes ready within connection_cache_time, while s
// waits in d's cache. It returns nil when s is to close: nothing came, the
// Manager stops, the slot went to another destination (told), or the next
// hop closed s meanwhile. A job handed to a connection found closed goes
// back to the ready queue, neither lost nor deferred: the next connection
// takes it.
func (m *Manager) nextJob(d *dest, s *session) (j *job, told bool) {
	cache := m.o.Delivery.ConnectionCacheTime
	m.mu.Lock()
	if m.state != running {
		m.mu.Unlock()
		return nil, false
	}
	if len(d.ready) > 0 || cache <= 0 {
		m.mu.Unlock()
		if s.peek.peerClosed() {
			return nil, false
		}
		return m.take(d), false
	}
	c := &cachedConn{next: make(chan *job, 1)}
	d.cache = append(d.cache, c)
	m.cached++
	m.mu.Unlock()

	j = m.idle(d, c, cache)
	if j == nil {
		return nil, c.closing
	}
	if s.peek.peerClosed() {
		m.requeue(j)
		return nil, false
	}
	return j, false
}

// idle waits in d's cache for a job handed over by makeReady, for up to
// cache; nil when none came, or when c was told to close.
func (m *Manager) idle(d *dest, c *cachedConn, cache time.Duration) *job {
	t := time.NewTimer(cache)
	defer t.Stop()
	select {
	case j := <-c.next:
		return j
	case <-t.C:
	case <-m.quit:
	}
	m.mu.Lock()
	if i := slices.Index(d.cache, c); i >= 0 {
		d.cache = slices.Delete(d.cache, i, i+1)
		m.cached--
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	// Taken out of the cache as the wait ended: the job (or the order to
	// close) is in the channel already.
	return <-c.next
}

// requeue puts back a job that a connection took but could not carry,
// without an attempt: it is ready again, for another connection.
func (m *Manager) requeue(j *job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j.msg.gone {
		return
	}
	j.msg.busy--
	m.makeReady(j)
	m.schedule()
}

// release gives back a connection slot of d; the freed slot goes to the
// next destination in turn.
func (m *Manager) release(d *dest) {
	d.conns--
	m.conns--
	m.schedule()
}

// finishAll records one outcome for many jobs. Their spool writes go
// in parallel, so that they share fsyncs: a destination that has been
// down for a while may have thousands of messages to defer at once.
func (m *Manager) finishAll(jobs []*job, o outcome, dcid uint64) {
	const workers = 32
	next := make(chan *job)
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				// The connection's failure is each job's attempt.
				m.finishJob(j, repeat(o, len(j.rcpts)), dcid, try{counted: true})
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
}

func repeat(o outcome, n int) []outcome {
	outs := make([]outcome, n)
	for i := range outs {
		outs[i] = o
	}
	return outs
}

// connect opens a connection to d, trying its addresses in turn: a host
// that does not answer, answers with an error (a 421 greeting) or fails
// TLS is logged ("Connection Error", "TLS failed") and the next one is
// tried. When none works it returns the outcome for the recipients and the
// DCID of the last attempt (0 when no connection was tried: DNS).
func (m *Manager) connect(d *dest, domain string, rr uint32) (*session, uint64, outcome, error) {
	hops, err := plan(m.cut, m.o.Resolver, d.route, domain, m.port(), rr)
	if err != nil {
		var pe *planError
		if !errors.As(err, &pe) {
			pe = &planError{status: "4.4.3", text: err.Error()}
		}
		o := outcome{result: deferred, status: pe.status, code: "000", lines: []string{pe.text}}
		if pe.hard {
			o.result = bounced
		}
		return nil, 0, o, err
	}
	var dcid uint64
	var o outcome
	mode, verify := m.tlsMode(d)
	for _, h := range hops {
		if m.cut.Err() != nil {
			return nil, dcid, o, m.cut.Err()
		}
		var s *session
		s, dcid, o, err = m.dial(domain, h, mode, verify)
		if err == nil {
			return s, s.dcid, o, nil
		}
		// Opportunistic TLS that fails its handshake: the same host again
		// in clear text, as Postfix does at its "may" level.
		var se *smtp.Error
		if mode == smtp.TLSPreferred && errors.As(err, &se) && se.Step == smtp.StepStartTLS && se.Kind != smtp.KindReply {
			s, dcid, o, err = m.dial(domain, h, smtp.TLSOff, false)
			if err == nil {
				return s, s.dcid, o, nil
			}
		}
	}
	return nil, dcid, o, err
}

func (m *Manager) port() int {
	if p := m.o.Delivery.Port; p > 0 {
		return p
	}
	return 25
}

// dial makes one connection attempt to one address.
func (m *Manager) dial(domain string, h hop, mode smtp.TLSMode, verify bool) (*session, uint64, outcome, error) {
	dcid, err := m.o.IDs.Next(queue.DCID)
	if err != nil {
		return nil, 0, outcome{result: deferred, status: "4.3.0", code: "000", lines: []string{"no DCID: " + err.Error()}}, err
	}
	to := m.o.Delivery.Timeouts
	dialer := net.Dialer{Timeout: to.Connect, LocalAddr: m.sourceAddr()}
	conn, err := dialer.DialContext(m.cut, "tcp", h.addr())
	if err != nil {
		detail := netDetail(err)
		m.emit(event.ConnectionError{DCID: dcid, Domain: domain, IP: h.ip.String(), Port: h.port, Details: detail,
			InterfaceIP: m.interfaceFor(h), Reason: "network error"})
		return nil, dcid, outcome{result: deferred, status: "4.4.1", code: "000", lines: []string{detail}, remote: h.ip.String()}, err
	}
	local := addrIP(conn.LocalAddr())
	m.emit(event.NewDCID{DCID: dcid, InterfaceIP: local, RemoteIP: h.ip.String(), Port: h.port})
	cfg := smtp.ClientConfig{
		Hostname:   m.ehlo,
		TLSMode:    mode,
		TLS:        m.tlsConfig(h, verify),
		Timeouts:   smtp.ClientTimeouts{Connect: to.Connect, Greeting: to.Greeting, Command: to.Command, DataInit: to.DataInit, DataBlock: to.DataBlock, DataDone: to.DataDone},
		Transcript: debuglog.Transcript(m.o.Debug, domain, dcid),
	}
	c, err := smtp.NewClient(m.cut, conn, cfg)
	if err != nil {
		o := m.openFailed(dcid, domain, h, local, err)
		m.emit(event.DCIDClose{DCID: dcid})
		return nil, dcid, o, err
	}
	if cs, ok := c.TLSState(); ok {
		m.emit(event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: dcid}, Success: true,
			Protocol: smtp.TLSVersion(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite)})
	}
	return &session{c: c, peek: newPeeker(conn), dcid: dcid, hop: h}, dcid, outcome{}, nil
}

// openFailed logs why a connection failed before it could carry mail and
// returns the outcome for the recipients should no other host do better.
func (m *Manager) openFailed(dcid uint64, domain string, h hop, local string, err error) outcome {
	ce := event.ConnectionError{DCID: dcid, Domain: domain, IP: h.ip.String(), Port: h.port, InterfaceIP: local, Reason: "network error"}
	o := outcome{result: deferred, status: "4.4.0", code: "000", remote: h.ip.String()}
	var se *smtp.Error
	switch {
	case errors.As(err, &se) && se.Kind == smtp.KindReply:
		// A refused greeting, EHLO or STARTTLS: the ESA's "unexpected SMTP
		// response". The message stays queued whatever the code.
		r := se.Reply
		ce.Details, ce.Reason = strings.Join(replyLines(r), "\n"), "unexpected SMTP response"
		o.status, o.code, o.lines = replyStatus(r.Code, r.Enhanced, r.Text, stepConnect), fmt.Sprint(r.Code), replyLines(r)
		if o.status[0] == '5' {
			o.status = "4" + o.status[1:]
		}
		m.emit(ce)
		return o
	case errors.As(err, &se) && se.Step == smtp.StepStartTLS:
		reason := errDetail(err)
		m.emit(event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: dcid}, Reason: reason})
		o.status, o.lines = "4.7.0", []string{"TLS failed: " + reason}
		return o
	}
	ce.Details = errDetail(err)
	o.lines = []string{ce.Details}
	m.emit(ce)
	return o
}

// deliver runs one transaction on s for j and records its outcome. It
// reports whether the connection can carry another. reused says s carried
// a transaction before (it may have waited in the cache).
func (m *Manager) deliver(s *session, j *job, reused bool) bool {
	env := j.msg.env
	// The body is read as it is sent: a large message is never whole in
	// memory. Its checksum is verified at its end, before the end of data.
	_, body, err := m.o.Spool.Reader(env.MID)
	if errors.Is(err, queue.ErrNotFound) {
		// Deleted from the queue meanwhile.
		m.drop(j)
		return true
	}
	if err != nil {
		m.log.Error("outbound: cannot read a message from the spool", "mid", env.MID, "err", err)
		o := outcome{result: deferred, status: "4.3.0", code: "000", lines: []string{"spool read error"}}
		m.finishJob(j, repeat(o, len(j.rcpts)), s.dcid, try{})
		return true
	}
	senv := smtp.Envelope{From: env.From, To: make([]string, len(j.rcpts)), Size: body.Size(),
		Body8bit: env.BodyType == "8BITMIME", SMTPUTF8: env.SMTPUTF8}
	var msg io.Reader = body
	// Header fields the work queue's stages added go before the message's
	// own (the spool keeps the message as received; a map lookup in the
	// spool's index, also when the work queue is off since a restart).
	if w, ok, _ := m.o.Spool.Work(env.MID); ok && (w.Headers != "" || w.Rewrites()) {
		if w.Rewrites() {
			r, delta, err := rewriteHeader(msg, w)
			if err != nil {
				body.Close()
				m.log.Error("outbound: cannot read a message from the spool", "mid", env.MID, "err", err)
				o := outcome{result: deferred, status: "4.3.0", code: "000", lines: []string{"spool read error"}}
				m.finishJob(j, repeat(o, len(j.rcpts)), s.dcid, try{})
				return true
			}
			msg, senv.Size = r, senv.Size+delta
		}
		msg = io.MultiReader(strings.NewReader(w.Headers), msg)
		senv.Size += int64(len(w.Headers))
	}
	rids := make([]int, len(j.rcpts))
	for k, i := range j.rcpts {
		senv.To[k] = env.Rcpts[i].Addr
		rids[k] = env.Rcpts[i].RID
	}
	start := time.Now()
	m.emit(event.DeliveryStart{DCID: s.dcid, MID: env.MID, RIDs: rids})
	res, err := s.c.Send(m.cut, senv, msg)
	body.Close()
	var ce *queue.CorruptError
	if errors.As(err, &ce) {
		// The spool's damage, found at the end of the body: the message
		// was not ended, the connection is closed, and it waits as after
		// a read error before sending.
		m.log.Error("outbound: cannot read a message from the spool", "mid", env.MID, "err", err)
		o := outcome{result: deferred, status: "4.3.0", code: "000", lines: []string{"spool read error"}}
		m.finishJob(j, repeat(o, len(j.rcpts)), s.dcid, try{})
		return false
	}
	if err != nil && m.cut.Err() != nil {
		// Cut off by Stop: the spool still says pending, and the next
		// start delivers it.
		return false
	}
	var se *smtp.Error
	if reused && errors.As(err, &se) && lostBeforeMail(res, se) {
		// The next hop closed a connection it had served before, just as
		// the transaction began (an idle timeout racing our MAIL):
		// nothing reached it. The job goes to a fresh connection, with no
		// attempt counted, as Postfix does with a cached connection.
		m.requeue(j)
		return false
	}
	if err != nil && !errors.As(err, &se) || res == nil {
		// Not the connection's failure but the client refusing the
		// envelope: nothing was sent. Addresses come from the spool, where
		// the server's parser put them, so this is a bug to report, and
		// the message waits for its fix.
		m.log.Error("outbound: the SMTP client refused an envelope", "mid", env.MID, "err", err)
		o := outcome{result: deferred, status: "4.3.0", code: "000", lines: []string{fmt.Sprint(err)}}
		m.finishJob(j, repeat(o, len(j.rcpts)), s.dcid, try{})
		return false
	}
	outs := make([]outcome, len(j.rcpts))
	var sent []int
	for k := range j.rcpts {
		outs[k] = rcptOutcome(res, k, se, s.hop)
		if res.Mail.Positive() && k < len(res.Rcpts) && res.Rcpts[k].Positive() {
			sent = append(sent, rids[k])
		}
	}
	if se != nil && se.PossibleDelivery() {
		m.emit(event.PossibleDelivery{DCID: s.dcid, MID: env.MID, RIDs: sent})
	}
	m.finishJob(j, outs, s.dcid, try{counted: true, start: start})
	return err == nil
}

// lostBeforeMail reports that the connection was gone before the reply to
// MAIL: closed or reset by the next hop, not a reply or a timeout.
func lostBeforeMail(res *smtp.Result, se *smtp.Error) bool {
	if res == nil || !res.Mail.IsZero() || se.Step != smtp.StepMail {
		return false
	}
	switch se.Kind {
	case smtp.KindEOF, smtp.KindReset, smtp.KindNetwork:
		return true
	}
	return false
}

// rcptOutcome is what the transaction did to recipient k: the reply that
// decided it (MAIL's, its RCPT's, or the final one), or, when the
// connection failed before that reply, the failure.
func rcptOutcome(res *smtp.Result, k int, se *smtp.Error, h hop) outcome {
	remote := h.ip.String()
	if h.host != remote {
		remote = h.host
	}
	var r smtp.Reply
	st := stepMail
	if res != nil {
		r = res.Outcome(k)
		switch {
		case !res.Mail.Positive():
		case k < len(res.Rcpts) && !res.Rcpts[k].Positive():
			st = stepRcpt
		default:
			st = stepData
		}
		if res.Synthetic {
			remote = ""
		}
	}
	if r.IsZero() && se != nil && se.Kind == smtp.KindReply {
		// A 421 that closed the session before this recipient's turn.
		r = se.Reply
	}
	switch {
	case r.IsZero():
		detail := "connection lost"
		if se != nil {
			detail = errDetail(se)
		}
		return outcome{result: deferred, status: "4.4.0", code: "000", lines: []string{detail}, remote: remote}
	case r.Code/100 == 2:
		return outcome{result: delivered, status: "2.0.0", code: fmt.Sprint(r.Code), lines: replyLines(r), remote: remote}
	}
	o := outcome{result: deferred, status: replyStatus(r.Code, r.Enhanced, r.Text, st), code: fmt.Sprint(r.Code), lines: replyLines(r), remote: remote}
	if r.Code/100 == 5 {
		o.result = bounced
	}
	return o
}

// replyLines gives a reply's lines as the server wrote them after the
// code: the client took the enhanced code off the front of each line.
func replyLines(r smtp.Reply) []string {
	lines := strings.Split(r.Text, "\n")
	if r.Enhanced != "" {
		for i, l := range lines {
			if l == "" {
				lines[i] = r.Enhanced
			} else {
				lines[i] = r.Enhanced + " " + l
			}
		}
	}
	return lines
}

// tlsMode maps the destination's tls control to the client's mode and
// whether the certificate must verify.
func (m *Manager) tlsMode(d *dest) (smtp.TLSMode, bool) {
	switch d.ctl.TLS {
	case config.TLSOff:
		return smtp.TLSOff, false
	case config.TLSRequired:
		return smtp.TLSRequired, false
	case config.TLSRequiredVerify:
		return smtp.TLSRequired, true
	}
	return smtp.TLSPreferred, false
}

// tlsConfig is the STARTTLS configuration for a host: with verify, the
// certificate must be valid for the host's name (the MX or route host, as
// RFC 7817 / DANE-less practice has it) under tls_ca_file or the system's
// roots; without, any certificate will do (opportunistic TLS, RFC 7435).
func (m *Manager) tlsConfig(h hop, verify bool) *tls.Config {
	return &tls.Config{ServerName: h.host, RootCAs: m.roots, InsecureSkipVerify: !verify, MinVersion: tls.VersionTLS12}
}

func (m *Manager) sourceAddr() net.Addr {
	if m.source == nil {
		return nil
	}
	return m.source
}

// interfaceFor is the local address a connection to h would use, for the
// "interface:" of a Connection Error when the connection failed: the
// source address, or the kernel's choice, found by routing a UDP socket
// (which sends nothing).
func (m *Manager) interfaceFor(h hop) string {
	if m.source != nil {
		return addrIP(m.source)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.ip, uint16(h.port))))
	if err != nil {
		return "0.0.0.0"
	}
	defer c.Close()
	return addrIP(c.LocalAddr())
}

func addrIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap().String()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap().String()
	}
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// netDetail writes a network error the way the ESA's details do
// ("[Errno 111] Connection refused", "timeout", "EOF").
func netDetail(err error) string {
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		s := errno.Error()
		if s != "" {
			s = strings.ToUpper(s[:1]) + s[1:]
		}
		return fmt.Sprintf("[Errno %d] %s", int(errno), s)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	}
	return err.Error()
}

// errDetail is netDetail for an SMTP client error, which says where it
// happened.
func errDetail(err error) string {
	var se *smtp.Error
	if errors.As(err, &se) {
		if se.Kind == smtp.KindReply {
			return strings.Join(replyLines(se.Reply), " ")
		}
		if se.Err != nil {
			return netDetail(se.Err) + " (" + se.Step.String() + ")"
		}
		return se.Kind.String() + " (" + se.Step.String() + ")"
	}
	return netDetail(err)
}
