package smtptest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is an authoritative-looking DNS server on loopback answering from a
// zone, over UDP and TCP. A name it does not know is NXDOMAIN; a known
// name without records of the asked type is NODATA; either answer carries
// the SOA of the closest enclosing name that has one, as a negative answer
// must for a resolver to cache it (RFC 2308).
type DNS struct {
	Addr string // "127.0.0.1:port", for dns.servers

	mu      sync.Mutex
	records map[string][]dns.RR
	queries map[string]int    // by name, lower case
	broken  map[string]string // zone -> "silent" or "servfail"
	held    map[string]chan struct{}
	total   int
}

// StartDNS serves the zone (RRs in master-file syntax, e.g.
// "example.com. 60 IN MX 10 mx1.example.com.") until the test ends.
func StartDNS(t testing.TB, zone ...string) *DNS {
	t.Helper()
	d := &DNS{records: map[string][]dns.RR{}, queries: map[string]int{}, broken: map[string]string{},
		held: map[string]chan struct{}{}}
	d.Add(t, zone...)
	// The UDP port must be free for TCP too (DNS falls back to TCP on the
	// same port); on a busy machine an outgoing connection may hold it.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ln == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if try == 50 {
				t.Fatal(err)
			}
		}
	}
	h := dns.HandlerFunc(d.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	d.Addr = pc.LocalAddr().String()
	return d
}

// Add puts more records in the zone.
func (d *DNS) Add(t testing.TB, zone ...string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(rr.Header().Name)
		d.records[name] = append(d.records[name], rr)
	}
}

func (d *DNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) == 1 {
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		d.mu.Lock()
		d.queries[name]++
		d.total++
		if hold := d.heldFor(name); hold != nil {
			d.mu.Unlock()
			<-hold
			d.mu.Lock()
		}
		switch d.brokenFor(name) {
		case "silent":
			d.mu.Unlock()
			return
		case "servfail":
			d.mu.Unlock()
			m.Rcode = dns.RcodeServerFailure
			w.WriteMsg(m)
			return
		}
		rrs, ok := d.records[name]
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if len(m.Answer) == 0 {
			m.Ns = d.soaFor(name)
		}
		d.mu.Unlock()
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
	}
	// An answer too long for UDP is truncated, as a real server's is, and
	// the resolver asks again over TCP.
	if w.LocalAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// soaFor returns the SOA of name's closest enclosing zone in the records,
// if any. d.mu is held.
func (d *DNS) soaFor(name string) []dns.RR {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		for _, rr := range d.records[name[off:]] {
			if rr.Header().Rrtype == dns.TypeSOA {
				return []dns.RR{rr}
			}
		}
	}
	return nil
}

// brokenFor returns how the server misbehaves for name, "" when it does
// not. d.mu is held.
func (d *DNS) brokenFor(name string) string {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if b := d.broken[name[off:]]; b != "" {
			return b
		}
	}
	return ""
}

// heldFor returns the channel that holds the queries for name, nil when
// they are not held. d.mu is held.
func (d *DNS) heldFor(name string) chan struct{} {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if h := d.held[name[off:]]; h != nil {
			return h
		}
	}
	return nil
}

// Hold makes the server keep the queries for zone and the names under it
// unanswered until release is called (at the latest when the test ends),
// then answer them all: a slow server, so that a test sees concurrent
// lookups meet. Queries are counted as they arrive.
func (d *DNS) Hold(t testing.TB, zone string) (release func()) {
	zone = strings.ToLower(dns.Fqdn(zone))
	hold := make(chan struct{})
	d.mu.Lock()
	d.held[zone] = hold
	d.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			d.mu.Lock()
			delete(d.held, zone)
			d.mu.Unlock()
			close(hold)
		})
	}
	t.Cleanup(release)
	return release
}

// Silence makes the server drop every query for zone and the names under
// it, as an unreachable or overloaded server does.
func (d *DNS) Silence(zone string) { d.setBroken(zone, "silent") }

// ServFail makes the server answer SERVFAIL for zone and the names under
// it.
func (d *DNS) ServFail(zone string) { d.setBroken(zone, "servfail") }

func (d *DNS) setBroken(zone, how string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.broken[strings.ToLower(dns.Fqdn(zone))] = how
}

// Total returns how many queries the server has had, for any name.
func (d *DNS) Total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// Queries returns how many queries (of any type, over UDP and TCP) the
// server has had for name.
func (d *DNS) Queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[strings.ToLower(dns.Fqdn(name))]
}
