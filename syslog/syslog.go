// Package syslog receives syslog messages over UDP and TCP, so that Cisco
// ESAs (or anything else speaking syslog) can push their mail logs to
// mailgate as they are written.
//
// A Server listens on one address for both transports. A UDP datagram is
// one message. A TCP stream is split as RFC 6587 says, per frame: octet
// counting ("123 <166>...") when the frame begins with a digit,
// non-transparent framing (messages ended by LF, CRLF or NUL) otherwise,
// as rsyslog does. Messages are handed on as received, framing removed;
// the package does not parse them beyond HostOf, because ESAs and other
// senders bend both RFC 3164 and RFC 5424 and the caller knows best what
// it expects.
//
// Malformed input is logged at debug level and skipped (an over-long
// message is truncated): one bad sender must not cost the others their
// logs.
//
// Syslog has no authentication, and a message names its host itself. A
// Server given Senders takes messages only from those addresses, and
// files each under the host name configured for its sender rather than
// the one it claims.
package syslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Message is one syslog message as received, framing removed.
type Message struct {
	Peer netip.AddrPort // who sent it
	Host string         // the sender's host name in Server.Senders, else the HOSTNAME of the syslog header (HostOf); "" when neither gives one: then callers use Peer's address
	Line string         // the whole message text as received, e.g. "<166>Mar 17 18:24:37 esa1.example.com mail_logs: Info: MID 5 queued for delivery"; no trailing CR/LF/NUL
}

// Defaults of the Server fields left zero.
const (
	DefaultMaxMessage  = 64 << 10
	DefaultMaxConns    = 256
	DefaultIdleTimeout = 10 * time.Minute
)

// Sender is an address allowed to send, and the host name its messages
// are filed under.
type Sender struct {
	Addr netip.Addr
	Host string // "": the HOSTNAME its messages give (trusted to name itself)
}

// dropLogEvery is how often at most the messages dropped from senders not
// allowed are logged: a flood of them must not flood the log too.
const dropLogEvery = time.Minute

// maxDatagram is more than the largest UDP payload (65507 bytes over IPv4,
// 65527 over IPv6), so that a read never silently drops the end of one.
const maxDatagram = 1 << 16

// listenAttempts bounds the retries of Listen with port 0 when the UDP
// port of the number the kernel chose for TCP is taken.
const listenAttempts = 10

// Server receives syslog over UDP and TCP on the same address. Set its
// fields, then call Listen (optional: Serve listens if needed) and Serve.
// A Server serves once; the fields must not change after Listen. A panic
// in Handler is not recovered: it is a bug to fix, not input to skip.
type Server struct {
	Addr        string        // host:port, e.g. "127.0.0.1:5514"; port 0 picks one free for both UDP and TCP
	Handler     func(Message) // called for every message, from the receiving goroutines (may be called concurrently); must not be nil, should not block for long (it holds up its connection) and must return for Serve to
	Logger      *slog.Logger  // diagnostics; nil: slog.Default()
	MaxMessage  int           // longest message accepted; 0 or less: DefaultMaxMessage. Longer ones are truncated (the rest skipped), not fatal
	MaxConns    int           // concurrent TCP connections; 0 or less: DefaultMaxConns. Beyond it new connections are closed at once
	IdleTimeout time.Duration // a TCP connection silent this long is closed; 0 or less: DefaultIdleTimeout

	// Senders, when not nil, are the only peers taken: a datagram from
	// another address is dropped, a TCP connection closed at once, each
	// counted (Dropped) and logged at most once per dropLogEvery. Nil
	// takes every peer, which only a listener on loopback should do.
	Senders []Sender

	dropped  atomic.Uint64
	dropMu   sync.Mutex
	dropLast time.Time // when a drop was last logged
	dropSeen uint64    // Dropped() then

	mu      sync.Mutex
	ln      net.Listener
	pc      *net.UDPConn
	conns   map[net.Conn]struct{}
	serving bool
	done    bool // shut down: accept nothing more
	wg      sync.WaitGroup
}

// Listen binds the UDP and TCP sockets, so that a caller learns of a bind
// error before starting Serve. With port 0 both get the same port number:
// TCP's, chosen by the kernel; when that number is taken for UDP, Listen
// tries again with another.
func (s *Server) Listen() error {
	if s.Handler == nil {
		return errors.New("syslog: Server.Handler is nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.done {
		return errors.New("syslog: Listen called twice or after Serve")
	}
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("syslog: listen %s: %w", s.Addr, err)
	}
	pickPort := port == "0" || port == ""
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			return fmt.Errorf("syslog: listen tcp %s: %w", s.Addr, err)
		}
		udpAddr := net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		pc, err := net.ListenPacket("udp", udpAddr)
		if err == nil {
			s.ln, s.pc = ln, pc.(*net.UDPConn)
			s.conns = make(map[net.Conn]struct{})
			return nil
		}
		ln.Close()
		if !pickPort || !errors.Is(err, syscall.EADDRINUSE) || attempt == listenAttempts {
			return fmt.Errorf("syslog: listen udp %s: %w", udpAddr, err)
		}
	}
}

// LocalAddr returns the address listened on (the same for UDP and TCP),
// the zero AddrPort before Listen.
func (s *Server) LocalAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return netip.AddrPort{}
	}
	return unmap(s.ln.Addr().(*net.TCPAddr).AddrPort())
}

// Serve receives messages until ctx is done, then closes the sockets and
// every connection and returns nil once all its goroutines have ended (so
// no Handler call is running or will be). It returns early, with an
// error, if it cannot listen or a socket fails for good.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	listening := s.ln != nil
	s.mu.Unlock()
	if !listening {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.serving || s.done {
		s.mu.Unlock()
		return errors.New("syslog: Serve called twice")
	}
	s.serving = true
	ln, pc := s.ln, s.pc
	s.mu.Unlock()

	// The loops tell shutdown from failure by ctx; ours is cancelled
	// before the sockets are closed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2) // one per loop: neither ever blocks on it
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		errc <- s.serveUDP(ctx, pc)
	}()
	go func() {
		defer s.wg.Done()
		errc <- s.serveTCP(ctx, ln)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	s.shutdown()
	s.wg.Wait()
	return err
}

// shutdown closes the sockets and every connection; their goroutines then
// see their reads fail and end.
func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	s.ln.Close()
	s.pc.Close()
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) serveUDP(ctx context.Context, pc *net.UDPConn) error {
	log := s.logger().With("proto", "udp")
	maxMsg := s.maxMessage()
	buf := make([]byte, max(maxMsg, maxDatagram))
	var retry backoff
	for {
		n, peer, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("syslog: read udp %s: %w", pc.LocalAddr(), err)
			}
			// Nothing a datagram socket reports is worth giving up for.
			log.Warn("syslog: read udp", "err", err)
			if !retry.wait(ctx) {
				return nil
			}
			continue
		}
		retry.reset()
		peer = unmap(peer)
		msg := trimTrailers(buf[:n])
		if len(msg) > maxMsg {
			log.Debug("syslog: message truncated", "peer", peer, "len", len(msg), "max", maxMsg)
			msg = trimTrailers(msg[:maxMsg])
		}
		if len(msg) == 0 {
			continue
		}
		if !s.allowed(peer.Addr()) {
			s.drop(log, peer)
			continue
		}
		line := string(msg)
		s.Handler(Message{Peer: peer, Host: s.hostOf(peer.Addr(), line), Line: line})
	}
}

// allowed reports whether a peer may send at all.
func (s *Server) allowed(a netip.Addr) bool {
	if s.Senders == nil {
		return true
	}
	for _, snd := range s.Senders {
		if snd.Addr == a {
			return true
		}
	}
	return false
}

// hostOf returns the host name a line of an allowed peer is filed under:
// the one configured for it, else the one the line gives.
func (s *Server) hostOf(a netip.Addr, line string) string {
	for _, snd := range s.Senders {
		if snd.Addr == a && snd.Host != "" {
			return snd.Host
		}
	}
	return HostOf(line)
}

// Dropped returns how many datagrams and TCP connections from senders not
// allowed were dropped.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// drop counts what a sender not allowed sent, and logs it unless it did
// within dropLogEvery.
func (s *Server) drop(log *slog.Logger, peer netip.AddrPort) {
	n := s.dropped.Add(1)
	now := time.Now()
	s.dropMu.Lock()
	if !s.dropLast.IsZero() && now.Sub(s.dropLast) < dropLogEvery {
		s.dropMu.Unlock()
		return
	}
	since := n - s.dropSeen
	s.dropLast, s.dropSeen = now, n
	s.dropMu.Unlock()
	log.Warn("syslog: dropped what a sender not allowed sent", "peer", peer, "dropped", since, "dropped_total", n)
}

func (s *Server) serveTCP(ctx context.Context, ln net.Listener) error {
	log := s.logger().With("proto", "tcp")
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	var retry backoff
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("syslog: accept tcp %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors, a connection aborted before we
			// got to it: all pass, the listener is still good.
			log.Warn("syslog: accept tcp", "err", err)
			if !retry.wait(ctx) {
				return nil
			}
			continue
		}
		retry.reset()
		if peer := unmap(c.RemoteAddr().(*net.TCPAddr).AddrPort()); !s.allowed(peer.Addr()) {
			s.drop(log, peer)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		if len(s.conns) >= maxConns {
			s.mu.Unlock()
			log.Warn("syslog: too many connections, closing new one", "peer", c.RemoteAddr(), "max", maxConns)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		// Never racing Wait: this loop's own count keeps the group above
		// zero until Serve is past shutdown.
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, log)
	}
}

func (s *Server) serveConn(c net.Conn, log *slog.Logger) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	peer := unmap(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	log = log.With("peer", peer)
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	fr := newFrameReader(deadlineReader{c, idle}, s.maxMessage())
	for {
		msg, err := fr.next()
		if err != nil {
			s.connEnded(log, err)
			return
		}
		if fr.truncated {
			log.Debug("syslog: message truncated", "max", fr.max)
		}
		if fr.badCount {
			log.Debug("syslog: bad octet count, frame read as ended by LF")
		}
		line := string(msg)
		s.Handler(Message{Peer: peer, Host: s.hostOf(peer.Addr(), line), Line: line})
	}
}

func (s *Server) connEnded(log *slog.Logger, err error) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	switch {
	case done, err == io.EOF:
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Debug("syslog: connection idle, closing")
	case err == errPartialFrame:
		log.Debug("syslog: connection closed inside a frame, frame dropped")
	default:
		log.Debug("syslog: connection failed", "err", err)
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxMessage() int {
	if s.MaxMessage > 0 {
		return s.MaxMessage
	}
	return DefaultMaxMessage
}

// deadlineReader renews the read deadline before every read, so that a
// connection is closed only after IdleTimeout of silence, however long it
// has lived.
type deadlineReader struct {
	c    net.Conn
	idle time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	if err := r.c.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
		return 0, err
	}
	return r.c.Read(p)
}

// backoff spaces out retries after errors that may persist (out of file
// descriptors), so that a loop does not spin on them.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// wait sleeps for the next delay, false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// unmap turns the IPv4-mapped IPv6 addresses of a dual-stack socket back
// into IPv4, which is what the peer used and what callers compare with.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func trimTrailers(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\r', '\n', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}
