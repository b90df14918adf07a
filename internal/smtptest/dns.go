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
// name without records of the asked type is NODATA.
type DNS struct {
	Addr string // "127.0.0.1:port", for dns.servers

	mu      sync.Mutex
	records map[string][]dns.RR
}

// StartDNS serves the zone (RRs in master-file syntax, e.g.
// "example.com. 60 IN MX 10 mx1.example.com.") until the test ends.
func StartDNS(t testing.TB, zone ...string) *DNS {
	t.Helper()
	d := &DNS{records: map[string][]dns.RR{}}
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
		d.mu.Lock()
		rrs, ok := d.records[strings.ToLower(q.Name)]
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		d.mu.Unlock()
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
	}
	w.WriteMsg(m)
}
