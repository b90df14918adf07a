// Package inbound runs mailgate's listeners: the accept loop, the ICID,
// reverse DNS, the Host Access Table and the Recipient Access Table, the
// limits of mail flow policies, and the injection debug logs. It drives one
// SMTP session (package smtp) per connection, emits the ESA events of
// everything that happens, and commits each accepted message to the spool
// before the client hears "250".
package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
	"github.com/mailgate/mailgate/smtp"
	"github.com/mailgate/mailgate/userdb"
)

// Server holds what all listeners of a gateway share.
type Server struct {
	Hostname string
	// Postmaster is the address "RCPT TO:<postmaster>" (no domain) is
	// delivered to; "" means postmaster@Hostname.
	Postmaster string
	Spool      *queue.Spool
	IDs        *queue.Counters
	Events     event.Sink
	DNS        *Resolver
	Debug      []*debuglog.Log[policy.Client] // injection debug subscriptions
	// Auth runs the SPF, DKIM and DMARC checks that mail flow policies ask
	// for; nil: none. AuthServID names the gateway in the
	// Authentication-Results it writes ("" for Hostname).
	Auth       *mailauth.Checker
	AuthServID string
	Logger     *slog.Logger

	// Lists answers the dnslist rules of sender groups; a listener whose
	// HAT has such rules needs it.
	Lists *resolver.Lists

	// DKIM signs the messages of policies with DKIMSigning; nil: no
	// profiles (each such message logs that none matches).
	DKIM *dkimsign.Profiles
	// Pressure, if set, slows and refuses new messages when delivery
	// falls behind (backpressure).
	Pressure *Pressure

	// DataCheck, if set, may reject a message at the end of DATA, before
	// it is committed (datacheck.go).
	DataCheck DataCheck

	// Queued, if set, is told of each message committed to the spool, so
	// that delivery can start without scanning.
	Queued func(env *queue.Envelope)
	// Handoff, if set, takes each committed message instead of Queued:
	// the work queue, which logs the mail-policy match and "queued for
	// delivery" itself (this side then logs neither).
	Handoff func(env *queue.Envelope)

	// ListenerEvents, if set, gives for each listener a sink that gets its
	// events besides Events (the metrics count them by listener, which the
	// events themselves do not name).
	ListenerEvents func(listener string) event.Sink

	// rates counts connections and recipients per client for the rate
	// limits of mail flow policies, on all listeners together as the ESA
	// does.
	rates policy.Rates
}

// Listener is one configured listener.
type Listener struct {
	srv    *Server
	cfg    config.Listener
	ln     net.Listener
	tls    *tls.Config // for STARTTLS
	events event.Sink  // srv.Events, and the listener's own sink

	serving atomic.Bool // the accept loop runs (see Serving)

	limit     policy.Limiter
	users     *userdb.DB // nil without AUTH
	authFails authFailures
	drain     context.Context // cancelled when the listener shuts down
	stop      context.CancelFunc

	mu   sync.Mutex
	live map[*smtp.Session]struct{}
	wg   sync.WaitGroup
}

// Listen loads the listener's TLS key pair (generating a self-signed one on
// first start when none is configured) and opens its socket. Serve accepts
// on it.
func (s *Server) Listen(cfg config.Listener) (*Listener, error) {
	if zones := cfg.HAT.DNSLists(); len(zones) > 0 && s.Lists == nil {
		return nil, fmt.Errorf("inbound: listener %s: the HAT names DNS lists (%s) but nothing looks them up", cfg.Name, zones[0])
	}
	tc, err := LoadTLS(cfg.TLS, s.Hostname)
	if err != nil {
		return nil, fmt.Errorf("inbound: listener %s: %w", cfg.Name, err)
	}
	var users *userdb.DB
	if cfg.Auth != nil {
		if users, err = userdb.Open(cfg.Auth.Users); err != nil {
			return nil, fmt.Errorf("inbound: listener %s: %w", cfg.Name, err)
		}
	}
	// No TCP keepalive: the listener's own timeouts bound every connection
	// (15 minutes at most), and the four setsockopt calls it costs per
	// connection are a tenth of the system calls of a whole message.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("inbound: listener %s: %w", cfg.Name, err)
	}
	drain, stop := context.WithCancel(context.Background())
	events := s.Events
	if s.ListenerEvents != nil {
		events = event.Multi{s.Events, s.ListenerEvents(cfg.Name)}
	}
	return &Listener{srv: s, cfg: cfg, ln: ln, tls: tc, events: events, users: users, drain: drain, stop: stop,
		live: map[*smtp.Session]struct{}{}}, nil
}

// Name is the listener's configured name.
func (l *Listener) Name() string { return l.cfg.Name }

// Serving reports whether the accept loop runs: false before Serve, after
// Shutdown, and after an accept error that ended it. A readiness check
// asks it.
func (l *Listener) Serving() bool { return l.serving.Load() }

// Addr is the address the listener accepts on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until Shutdown; each gets its own goroutine.
// An accept error that is not temporary (the socket closed or shut down
// under it) ends it with that error: the caller must not run on without
// the listener (the gateway stops).
func (l *Listener) Serve() error {
	l.serving.Store(true)
	defer l.serving.Store(false)
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.drain.Err() != nil {
				return nil
			}
			// Out of file descriptors and the like: wait and try again
			// rather than spin or give up, as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.srv.Logger.Warn("inbound: accept", "listener", l.cfg.Name, "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("inbound: listener %s: accept: %w", l.cfg.Name, err)
		}
		backoff = 0
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handle(c, time.Now())
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting, lets the sessions finish what they are doing
// (idle ones get 421 at once), and kills those still running when ctx ends.
// It returns when every session has ended.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.stop()
	err := l.ln.Close()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
	}
	l.mu.Lock()
	for s := range l.live {
		s.Kill()
	}
	l.mu.Unlock()
	<-done
	return err
}

func (l *Listener) emit(ev event.Event) {
	l.events.Emit(event.Entry{Time: time.Now(), Level: event.Info, Event: ev})
}

// healthCheck reports whether ip is one of the listener's health checkers.
func (l *Listener) healthCheck(ip netip.Addr) bool {
	for _, p := range l.cfg.HealthChecks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// handle runs one connection from accept to close.
func (l *Listener) handle(c net.Conn, accepted time.Time) {
	remote := addrPort(c.RemoteAddr())
	local := addrPort(c.LocalAddr())
	ip := remote.Addr().Unmap()

	// The DNS lists are asked beside the reverse DNS lookup, so that they
	// add nothing to the wait for the banner when that one is slower, and
	// at most their timeout when it is not. Without the host name,
	// DNSListsFor names the lists any name could need.
	var lists <-chan resolver.ListAnswer
	zones := l.cfg.HAT.DNSListsFor(policy.Client{IP: ip})
	if len(zones) > 0 {
		lists = l.srv.Lists.Each(l.drain, ip, zones)
	}
	host, verified := l.srv.DNS.Lookup(l.drain, ip)
	client := policy.Client{IP: ip, Host: host, Verified: verified}
	if lists != nil {
		client.DNSLists = l.awaitLists(client, zones, lists)
	}
	// The decision, and with it the DNS list that placed the client
	// (d.DNSList) and every list's answer (client.DNSLists), stays on the
	// session for the stages after the HAT.
	d := l.cfg.HAT.Decide(client)
	hat := event.HATMatch{Action: d.ESAAction(), Group: d.Group, Rule: d.Rule, SBRS: event.SBRSNotEnabled}
	if d.Policy.Action == policy.TCPRefuse {
		// Refused before an ICID exists, as on the ESA ("ICID 0 TCPREFUSE").
		l.emit(hat)
		c.Close()
		return
	}

	icid, err := l.srv.IDs.Next(queue.ICID)
	if err != nil {
		// Without a durable ICID nothing could be logged truthfully.
		l.srv.Logger.Error("inbound: no ICID", "listener", l.cfg.Name, "client", ip, "err", err)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte("421 4.3.0 " + l.srv.Hostname + " Service not available, closing transmission channel\r\n"))
		c.Close()
		return
	}
	rdns := host
	if rdns == "" {
		rdns = "unknown"
	}
	ipText := ip.String()
	l.emit(event.NewICID{ICID: icid, Interface: l.cfg.Interface, InterfaceIP: local.Addr().Unmap().String(),
		RemoteIP: ipText, ReverseHost: rdns, Verified: verified})
	hat.ICID = icid
	l.emit(hat)

	h := &session{l: l, icid: icid, client: client, ip: ipText, decision: d}
	cfg := smtp.Config{
		Hostname:            l.srv.Hostname,
		MaxMessageSize:      d.Policy.MaxMessageSize,
		BadCommandLimit:     l.cfg.BadCommandLimit,
		Start:               accepted,
		UnsuccessfulTimeout: l.cfg.Timeouts.Unsuccessful,
		TotalTimeout:        l.cfg.Timeouts.Total,
		IdleTimeout:         l.cfg.Timeouts.Idle,
		JunkCommandLimit:    l.cfg.JunkCommandLimit,
		SoftErrorLimit:      l.cfg.SoftErrorLimit,
		HardErrorLimit:      l.cfg.HardErrorLimit,
		ErrorDelay:          l.cfg.ErrorDelay,
	}
	if d.Policy.TLS != policy.TLSOff {
		cfg.TLS = l.tls
		cfg.RequireTLS = d.Policy.TLS == policy.TLSRequired
	}
	if l.cfg.ImplicitTLS {
		cfg.TLS, cfg.ImplicitTLS, cfg.RequireTLS = l.tls, true, false
	}
	// Every per-client limit counts an IPv6 client by its network, or one
	// host with a /64 could take every slot.
	key := policy.ClientKey(ip, l.cfg.IPv6ClientBits)
	h.key, h.group = key, l.cfg.Name+"/"+d.Group
	// Refused connections count toward the rates too: a client that keeps
	// hammering stays refused.
	rateOK, over := l.srv.rates.Take(policy.ConnectionRateWindow, accepted, true,
		policy.RateLimit{Key: policy.RateKey{Kind: policy.RateConnections, Client: key}, Max: d.Policy.MaxConnectionsPerMinute},
		policy.RateLimit{Key: policy.RateKey{Kind: policy.RateConnections, Group: h.group}, Max: d.Policy.GroupMaxConnectionsPerMinute})
	release, ok, why := l.limit.Acquire(key, d.Policy.MaxConcurrencyPerIP, l.cfg.MaxConnections)
	defer release()
	if ok && !rateOK {
		release()
		ok, why = false, policy.ConnectionRate
		if over.Key.Group != "" {
			why = policy.GroupRate
		}
	}
	switch {
	case !ok:
		cfg.Greeting = smtp.Reply{Code: 421, Enhanced: "4.4.5", Text: why}
		h.refused = why
		l.emit(event.ReceivingFailed{ICID: icid, Reason: event.FailedConnectionLimit})
	case d.Policy.Action == policy.Reject:
		cfg.Greeting = parseReply(d.Policy.RejectCode, policy.Expand(d.Policy.RejectText, d, client))
		h.refused = "HAT " + hat.Action + " SG " + d.Group + " match " + d.Rule
	default:
		cfg.Greeting = parseReply(d.Policy.BannerCode, policy.Expand(d.Policy.BannerText, d, client))
	}
	cfg.Transcript = debuglog.Transcript(l.srv.Debug, client, icid)

	s := smtp.NewSession(c, h, cfg)
	l.mu.Lock()
	l.live[s] = struct{}{}
	l.mu.Unlock()
	end := s.Serve(l.drain)
	l.mu.Lock()
	delete(l.live, s)
	l.mu.Unlock()
	h.ended(end, remote)
}

// awaitLists collects the DNS lists' answers until they can no longer
// change the HAT's decision (all answered, or a rule matches ahead of the
// lists still out) and returns them by zone. A list that did not answer is
// left out, so that its rules match nothing, and logged here: the ESA has
// no mail-log line for it. The lists still out when the decision is made
// go on to their timeout and fill the cache.
func (l *Listener) awaitLists(c policy.Client, zones []string, answers <-chan resolver.ListAnswer) map[string][]netip.Addr {
	c.DNSLists = make(map[string][]netip.Addr, len(zones))
	pending := make(map[string]bool, len(zones))
	for _, z := range zones {
		pending[z] = true
	}
	for len(pending) > 0 && !l.cfg.HAT.Decided(c, pending) {
		a := <-answers
		delete(pending, a.Zone)
		if a.Err != nil {
			if l.drain.Err() == nil {
				l.srv.Logger.Warn("inbound: DNS list did not answer; its rules do not match",
					"listener", l.cfg.Name, "client", c.IP, "zone", a.Zone, "err", a.Err)
			}
			continue
		}
		c.DNSLists[a.Zone] = a.Codes
	}
	return c.DNSLists
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func (s *Server) postmaster() string {
	if s.Postmaster != "" {
		return s.Postmaster
	}
	return "postmaster@" + s.Hostname
}
