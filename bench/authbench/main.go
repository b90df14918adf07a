// Command authbench is the sender-authentication side of bench/receive.sh
// (AUTH=on): it prepares DKIM-signed messages and the DNS records that make
// them pass SPF, DKIM and DMARC, serves those records, and sends a prepared
// message as smtp-source sends its own.
//
//	authbench prepare -dir DIR -sizes 1024,10240   # DIR/key.pem, DIR/zone, DIR/msg-1024.eml, ...
//	authbench dns -listen 127.0.0.153:53 -zone DIR/zone
//	authbench send -addr 127.0.0.1:2545 -msg DIR/msg-1024.eml -n 20000 -s 20
//
// The domain is example.com, the sender bench@example.com, the HELO
// client.example.com, the recipient rcpt@example.net. The zone lists
// 127.0.0.0/8 in the SPF records of example.com and client.example.com,
// publishes the DKIM key at bench._domainkey.example.com and p=reject at
// _dmarc.example.com: a message sent from loopback passes all three, so
// that every check runs to its end and none refuses.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
)

const (
	domain   = "example.com"
	selector = "bench"
	helo     = "client.example.com"
	from     = "bench@example.com"
	rcpt     = "rcpt@example.net"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "prepare":
		err = prepare(os.Args[2:])
	case "dns":
		err = serveDNS(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: authbench prepare|dns|send [flags] (see the source's comment)")
	os.Exit(2)
}

// prepare writes an RSA-2048 key, the zone, and one signed message per
// size (the body is padded to about that many bytes, as smtp-source's -l).
func prepare(args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ExitOnError)
	dir := fs.String("dir", "", "where to write")
	sizes := fs.String("sizes", "1024", "message sizes in bytes, comma-separated")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("prepare: -dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	if err := os.WriteFile(filepath.Join(*dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	zone := []string{
		domain + `. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		helo + `. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		"_dmarc." + domain + `. 300 IN TXT "v=DMARC1; p=reject"`,
		selector + "._domainkey." + domain + ". 300 IN TXT " + txtStrings("v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(pub)),
		domain + ". 300 IN MX 10 mx." + domain + ".",
		"mx." + domain + ". 300 IN A 127.0.0.1",
	}
	if err := os.WriteFile(filepath.Join(*dir, "zone"), []byte(strings.Join(zone, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for s := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("prepare: bad size %q", s)
		}
		var body strings.Builder
		line := strings.Repeat("x", 76) + "\r\n"
		for body.Len() < n {
			body.WriteString(line)
		}
		msg := "From: Bench <" + from + ">\r\nTo: <" + rcpt + ">\r\nSubject: authentication benchmark\r\n" +
			"Message-ID: <bench-" + s + "@" + domain + ">\r\nDate: Mon, 07 Dec 2026 12:00:00 +0000\r\n\r\n" + body.String()
		var signed bytes.Buffer
		err = dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: key,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*dir, "msg-"+strconv.Itoa(n)+".eml"), signed.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// txtStrings is s as the character-strings of a TXT record, 255 octets
// at most each.
func txtStrings(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}

// serveDNS answers from the zone, over UDP and TCP, until SIGTERM or
// SIGINT: NXDOMAIN for a name it does not have, an empty answer for a type
// it does not have, both with a SOA so that they are final.
func serveDNS(args []string) error {
	fs := flag.NewFlagSet("dns", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.153:53", "address")
	zoneFile := fs.String("zone", "", "records, one a line, in master-file syntax")
	fs.Parse(args)
	raw, err := os.ReadFile(*zoneFile)
	if err != nil {
		return err
	}
	records := map[string][]dns.RR{}
	for l := range strings.Lines(string(raw)) {
		if strings.TrimSpace(l) == "" {
			continue
		}
		rr, err := dns.NewRR(l)
		if err != nil {
			return fmt.Errorf("zone: %w", err)
		}
		name := strings.ToLower(rr.Header().Name)
		records[name] = append(records[name], rr)
	}
	soa, _ := dns.NewRR(domain + ". 300 IN SOA ns." + domain + ". hostmaster." + domain + ". 1 3600 600 86400 300")
	var queries atomic.Int64
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 {
			q := r.Question[0]
			rrs, known := records[strings.ToLower(q.Name)]
			for _, rr := range rrs {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
			if !known {
				m.Rcode = dns.RcodeNameError
			}
			if len(m.Answer) == 0 {
				m.Ns = []dns.RR{soa}
			}
		}
		w.WriteMsg(m)
	})
	udp := &dns.Server{Addr: *listen, Net: "udp", Handler: h}
	tcp := &dns.Server{Addr: *listen, Net: "tcp", Handler: h}
	errs := make(chan error, 2)
	go func() { errs <- udp.ListenAndServe() }()
	go func() { errs <- tcp.ListenAndServe() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err = <-errs:
	case <-sig:
	}
	udp.Shutdown()
	tcp.Shutdown()
	fmt.Fprintf(os.Stderr, "authbench dns: %d queries\n", queries.Load())
	return err
}

// send sends the message n times, one per connection, s connections at a
// time (smtp-source's model: EHLO, MAIL, RCPT, DATA, QUIT, no pipelining),
// and fails on the first refusal.
func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:25", "server")
	msgFile := fs.String("msg", "", "the message")
	n := fs.Int("n", 1000, "messages")
	s := fs.Int("s", 20, "sessions in parallel")
	timeout := fs.Duration("timeout", 60*time.Second, "per connection")
	fs.Parse(args)
	msg, err := os.ReadFile(*msgFile)
	if err != nil {
		return err
	}
	data := dotStuff(msg)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	for range *s {
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(*n) {
				if err := sendOne(*addr, data, *timeout); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	d := time.Since(start)
	fmt.Printf("sent %d messages in %.3fs: %.0f msg/s\n", *n, d.Seconds(), float64(*n)/d.Seconds())
	return nil
}

func sendOne(addr string, data []byte, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	step := func(cmd []byte, want string) error {
		if cmd != nil {
			if _, err := c.Write(cmd); err != nil {
				return err
			}
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("after %q: %w", firstLine(cmd), err)
			}
			if !strings.HasPrefix(l, want) {
				return fmt.Errorf("after %q: %q", firstLine(cmd), strings.TrimSpace(l))
			}
			if len(l) < 4 || l[3] != '-' {
				return nil
			}
		}
	}
	for _, st := range []struct {
		cmd  string
		want string
	}{
		{"", "220"}, {"EHLO " + helo + "\r\n", "250"}, {"MAIL FROM:<" + from + ">\r\n", "250"},
		{"RCPT TO:<" + rcpt + ">\r\n", "250"}, {"DATA\r\n", "354"},
	} {
		var cmd []byte
		if st.cmd != "" {
			cmd = []byte(st.cmd)
		}
		if err := step(cmd, st.want); err != nil {
			return err
		}
	}
	if err := step(data, "250"); err != nil {
		return err
	}
	return step([]byte("QUIT\r\n"), "221")
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(l)
}

// dotStuff is the message as DATA sends it: lines beginning with a dot
// doubled, CRLF line ends, and the final dot.
func dotStuff(msg []byte) []byte {
	var b bytes.Buffer
	for l := range strings.Lines(strings.ReplaceAll(string(msg), "\r\n", "\n")) {
		l = strings.TrimSuffix(l, "\n")
		if strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}
