package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// server answers from a zone on loopback, over UDP and TCP. Names listed in
// big get answers too long for UDP, so the client must retry over TCP.
func server(t *testing.T, zone []string, big map[string]bool) string {
	t.Helper()
	records := map[string][]dns.RR{}
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.ToLower(rr.Header().Name)
		records[n] = append(records[n], rr)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		rrs, ok := records[strings.ToLower(q.Name)]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if big[strings.ToLower(q.Name)] && w.LocalAddr().Network() == "udp" {
			m.Answer, m.Truncated = nil, true
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: ln, Handler: handler}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return pc.LocalAddr().String()
}

var zone = []string{
	"10.2.0.192.in-addr.arpa. 60 IN PTR mx1.example.com.",
	"mx1.example.com. 60 IN A 192.0.2.10",
	"mx1.example.com. 60 IN AAAA 2001:db8::10",
	"example.com. 60 IN MX 20 mx2.example.com.",
	"example.com. 60 IN MX 10 mx1.example.com.",
	"big.example.com. 60 IN A 192.0.2.99",
	"nomx.example.com. 60 IN A 192.0.2.11",
}

func TestLookups(t *testing.T) {
	addr := server(t, zone, map[string]bool{"big.example.com.": true})
	r := New([]string{addr}, 2*time.Second)
	ctx := context.Background()

	names, err := r.PTR(ctx, netip.MustParseAddr("192.0.2.10"))
	if err != nil || len(names) != 1 || names[0] != "mx1.example.com" {
		t.Errorf("PTR = %v, %v", names, err)
	}
	ips, err := r.IP(ctx, "mx1.example.com")
	if err != nil || len(ips) != 2 || ips[0] != netip.MustParseAddr("192.0.2.10") || ips[1] != netip.MustParseAddr("2001:db8::10") {
		t.Errorf("IP = %v, %v", ips, err)
	}
	mxs, err := r.MX(ctx, "example.com")
	if err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.example.com" || mxs[0].Pref != 10 || mxs[1].Host != "mx2.example.com" {
		t.Errorf("MX = %v, %v", mxs, err)
	}
	// Truncated over UDP: the answer comes over TCP.
	if ips, err := r.IP(ctx, "big.example.com"); err != nil || len(ips) != 1 {
		t.Errorf("IP of a truncated answer = %v, %v", ips, err)
	}
}

// A name that does not exist, or has no record of the type, is the
// permanent ErrNotFound: delivery bounces on it, where a timeout is retried.
func TestNotFound(t *testing.T) {
	addr := server(t, zone, nil)
	r := New([]string{addr}, 2*time.Second)
	ctx := context.Background()
	if _, err := r.IP(ctx, "nonexistent.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("IP of a missing name: %v", err)
	}
	if _, err := r.MX(ctx, "nomx.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MX of a name without MX: %v", err)
	}
	if _, err := r.PTR(ctx, netip.MustParseAddr("192.0.2.77")); !errors.Is(err, ErrNotFound) {
		t.Errorf("PTR of an address without one: %v", err)
	}
}

// A server that does not answer is skipped for the next; when none answers
// the error is not ErrNotFound (it is worth retrying).
func TestDeadServer(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	live := server(t, zone, nil)
	r := New([]string{dead.LocalAddr().String(), live}, 300*time.Millisecond)
	for range 2 { // whichever server the round robin starts with
		if ips, err := r.IP(context.Background(), "mx1.example.com"); err != nil || len(ips) != 2 {
			t.Errorf("IP with one dead server = %v, %v", ips, err)
		}
	}
	r = New([]string{dead.LocalAddr().String()}, 300*time.Millisecond)
	if _, err := r.MX(context.Background(), "example.com"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("MX with only a dead server: %v", err)
	}
}
