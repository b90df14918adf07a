package inbound_test

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
)

// authDNS is the tests' DNS server for the authentication checks: a zone
// like smtptest.DNS's, plus names that misbehave as broken servers do:
// under "timeout.test." no answer ever comes; under "trunc.test." the UDP
// answer is truncated and TCP is closed without a word; under
// "servfail.test." the answer is SERVFAIL.
type authDNS struct {
	addr    string
	mu      sync.Mutex
	records map[string][]dns.RR
	queries int // all of them, answered or not
}

// asked returns how many queries the server has had.
func (d *authDNS) asked() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries
}

func startAuthDNS(t *testing.T, zone ...string) *authDNS {
	t.Helper()
	d := &authDNS{records: map[string][]dns.RR{}}
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			t.Fatalf("%s: %v", z, err)
		}
		name := strings.ToLower(rr.Header().Name)
		d.records[name] = append(d.records[name], rr)
	}
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
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { d.serve(w, r, false) })}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { d.serve(w, r, true) })}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	d.addr = pc.LocalAddr().String()
	return d
}

func (d *authDNS) serve(w dns.ResponseWriter, r *dns.Msg, tcp bool) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	d.mu.Lock()
	d.queries++
	d.mu.Unlock()
	switch {
	case strings.HasSuffix(name, "timeout.test."):
		return // no answer
	case strings.HasSuffix(name, "trunc.test."):
		if tcp {
			w.Close()
			return
		}
		m.Truncated = true
		w.WriteMsg(m)
		return
	case strings.HasSuffix(name, "servfail.test."):
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	d.mu.Lock()
	rrs, ok := d.records[name]
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	d.mu.Unlock()
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// txt is a TXT record of s, cut into strings of 255 octets at most.
func txt(name, s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	parts = append(parts, `"`+s+`"`)
	return name + " 60 IN TXT " + strings.Join(parts, " ")
}

// The keys of the test domains, made once.
var testKeys = sync.OnceValue(func() (k struct {
	rsa    *rsa.PrivateKey
	ed     ed25519.PrivateKey
	rsaTXT string
	edTXT  string
	rsaDER []byte
	edPub  ed25519.PublicKey
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	k.rsaTXT = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
	k.rsaDER = x509.MarshalPKCS1PrivateKey(k.rsa)
	k.edPub, k.ed, _ = ed25519.GenerateKey(rand.Reader)
	k.edTXT = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.edPub)
	return k
})

// authZone: 127.0.0.0/27 are the authorized senders of the test domains.
func authZone() []string {
	k := testKeys()
	z := []string{
		txt("pass.test.", "v=spf1 ip4:127.0.0.0/27 -all"),
		txt("fail.test.", "v=spf1 ip4:192.0.2.1 -all"),
		txt("softfail.test.", "v=spf1 ~all"),
		txt("neutral.test.", "v=spf1 ?all"),
		"nospf.test. 60 IN A 192.0.2.1",
		txt("malformed.test.", "v=spf1 frobnicate:x ip4:127.0.0.10 -all"),
		txt("void.test.", "v=spf1 a:nx1.void.test a:nx2.void.test a:nx3.void.test ip4:127.0.0.10 -all"),
		txt("mx.client.test.", "v=spf1 ip4:127.0.0.0/27 -all"),
		// DKIM keys.
		txt("rsa._domainkey.pass.test.", k.rsaTXT),
		txt("ed._domainkey.pass.test.", k.edTXT),
		txt("rsa._domainkey.other.test.", k.rsaTXT),
		txt("rsa._domainkey.sub.pass.test.", k.rsaTXT),
		txt("bad._domainkey.pass.test.", "v=DKIM1; k=rsa; p=bm90IGEga2V5"),
		// DMARC.
		txt("_dmarc.pass.test.", "v=DMARC1; p=reject; sp=quarantine"),
		txt("_dmarc.strict.test.", "v=DMARC1; p=reject; aspf=s; adkim=s"),
		txt("strict.test.", "v=spf1 ip4:127.0.0.0/27 -all"),
		txt("sub.strict.test.", "v=spf1 ip4:127.0.0.0/27 -all"),
		txt("_dmarc.fail.test.", "v=DMARC1; p=reject"),
		txt("_dmarc.softfail.test.", "v=DMARC1; p=quarantine; pct=0"),
		txt("_dmarc.neutral.test.", "v=DMARC1; p=reject; pct=0"),
		txt("_dmarc.malformed.test.", "v=DMARC1; p=sometimes"),
		txt("_dmarc.other.test.", "v=DMARC1; p=none"),
	}
	// A chain of 11 includes: one lookup too many (RFC 7208 4.6.4).
	for i := 0; i < 11; i++ {
		z = append(z, txt(fmt.Sprintf("l%d.loop.test.", i), fmt.Sprintf("v=spf1 include:l%d.loop.test -all", i+1)))
	}
	z = append(z, txt("l11.loop.test.", "v=spf1 ip4:127.0.0.10 -all"))
	return z
}

const mailauthConfig = `
hostname: mx.test
data_dir: %s
listeners:
  - name: InboundMail
    interface: Management
    address: 127.0.0.1:0
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
        - {name: ENFORCE, match: [127.0.0.20], policy: ENFORCE}
        - {name: TEMPDEFER, match: [127.0.0.21], policy: TEMPDEFER}
      policies:
        ENFORCE:
          action: accept
          spf: {fail: reject}
          dmarc: {reject_policy: reject, quarantine_policy: quarantine, temperror: reject, permerror: reject}
        TEMPDEFER:
          action: accept
          spf: {temperror: defer}
      default_policy: ACCEPTED
    rat:
      - {domain: example.com, action: accept}
dns: {servers: ["%s"], timeout: 300ms}
`

type mailauthHarness struct {
	*harness
	dns *authDNS
}

// startMailauth starts the listener; with, if given, completes its Server.
func startMailauth(t *testing.T, with ...func(*inbound.Server)) *mailauthHarness {
	t.Helper()
	d := startAuthDNS(t, authZone()...)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(mailauthConfig, dir, d.addr)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, lines: smtptest.NewLines(), served: make(chan error, 1)}
	if h.ids, err = queue.OpenCounters(filepath.Join(dir, "counters")); err != nil {
		t.Fatal(err)
	}
	if h.spool, err = queue.Open(filepath.Join(dir, "spool"), queue.Options{}); err != nil {
		t.Fatal(err)
	}
	res := resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout)
	// As mailgate serve makes it: the checks' resolver has the cache.
	checker := mailauth.New(resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout).WithCache(cfg.DNS.CacheSize))
	checker.Timeout = 5 * time.Second
	h.srv = &inbound.Server{Hostname: cfg.Hostname, Spool: h.spool, IDs: h.ids, Events: h.lines,
		DNS: inbound.NewResolver(res, cfg.DNS.Timeout), Auth: checker, AuthServID: cfg.AuthServID,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	for _, f := range with {
		f(h.srv)
	}
	if h.ln, err = h.srv.Listen(cfg.Listeners[0]); err != nil {
		t.Fatal(err)
	}
	h.addr = h.ln.Addr().String()
	go func() { h.served <- h.ln.Serve() }()
	t.Cleanup(h.stop)
	return &mailauthHarness{harness: h, dns: d}
}

// send runs one transaction from client ip and returns the replies to MAIL
// FROM and to the end of DATA ("" when MAIL was refused), and the MID.
func (h *mailauthHarness) send(ip, helo, from, msg string) (mailReply, dataReply string, mid uint64) {
	h.t.Helper()
	c := h.dial(ip)
	c.Expect("220")
	c.Cmd("EHLO "+helo, "250")
	c.Send("MAIL FROM:<" + from + ">\r\n")
	mailReply = c.Reply()
	if !strings.HasPrefix(mailReply, "250") {
		c.Cmd("QUIT", "221")
		return mailReply, "", 0
	}
	mid = h.lastMID()
	c.Cmd("RCPT TO:<joe@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(msg + ".\r\n")
	dataReply = c.Reply()
	c.Cmd("QUIT", "221")
	return mailReply, dataReply, mid
}

func (h *mailauthHarness) lastMID() uint64 {
	l := h.lines.Snapshot()
	for i := len(l) - 1; i >= 0; i-- {
		if m := regexp.MustCompile(`^Start MID (\d+)`).FindStringSubmatch(l[i]); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	h.t.Fatal("no Start MID line")
	return 0
}

// midLines are the lines of one MID, without the "MID n " prefix.
func (h *mailauthHarness) midLines(mid uint64, re string) []string {
	prefix := fmt.Sprintf("MID %d ", mid)
	rx := regexp.MustCompile(re)
	var out []string
	for _, l := range h.lines.Snapshot() {
		if s, ok := strings.CutPrefix(l, prefix); ok && rx.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

func (h *mailauthHarness) stored(mid uint64) (*queue.Envelope, string) {
	h.t.Helper()
	env, body, err := h.spool.Read(mid)
	if err != nil {
		h.t.Fatalf("MID %d: %v", mid, err)
	}
	return env, string(body)
}

func plainMsg(from string) string {
	return "From: <" + from + ">\r\nTo: <joe@example.com>\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nHello.\r\n"
}

func TestSPFResults(t *testing.T) {
	h := startMailauth(t)
	for _, tt := range []struct {
		name, ip, helo, from string
		mail                 string // reply prefix to MAIL FROM
		line                 string // the mailfrom line after "SPF: "
		helo_                string // the helo line, "" for none
	}{
		{"pass", "127.0.0.10", "mx.client.test", "a@pass.test", "250", "mailfrom identity a@pass.test Pass (v=spf1)", "helo identity postmaster@mx.client.test Pass"},
		{"fail", "127.0.0.10", "mx.client.test", "a@fail.test", "250", "mailfrom identity a@fail.test Fail (v=spf1)", ""},
		{"softfail", "127.0.0.10", "mx.client.test", "a@softfail.test", "250", "mailfrom identity a@softfail.test SoftFail (v=spf1)", ""},
		{"neutral", "127.0.0.10", "mx.client.test", "a@neutral.test", "250", "mailfrom identity a@neutral.test Neutral (v=spf1)", ""},
		{"none", "127.0.0.10", "mx.client.test", "a@nospf.test", "250", "mailfrom identity a@nospf.test None (v=spf1)", ""},
		{"permerror/malformed", "127.0.0.10", "mx.client.test", "a@malformed.test", "250", "mailfrom identity a@malformed.test PermError (v=spf1)", ""},
		{"permerror/lookups", "127.0.0.10", "mx.client.test", "a@l0.loop.test", "250", "mailfrom identity a@l0.loop.test PermError (v=spf1)", ""},
		{"permerror/void", "127.0.0.10", "mx.client.test", "a@void.test", "250", "mailfrom identity a@void.test PermError (v=spf1)", ""},
		{"temperror/timeout", "127.0.0.10", "mx.client.test", "a@x.timeout.test", "250", "mailfrom identity a@x.timeout.test TempError (v=spf1)", ""},
		{"temperror/truncated", "127.0.0.10", "mx.client.test", "a@x.trunc.test", "250", "mailfrom identity a@x.trunc.test TempError (v=spf1)", ""},
		{"temperror/servfail", "127.0.0.10", "mx.client.test", "a@x.servfail.test", "250", "mailfrom identity a@x.servfail.test TempError (v=spf1)", ""},
		{"null sender", "127.0.0.10", "mx.client.test", "", "250", "mailfrom identity postmaster@mx.client.test Pass (v=spf1)", "helo identity postmaster@mx.client.test Pass"},
		{"helo literal", "127.0.0.10", "[127.0.0.10]", "a@pass.test", "250", "mailfrom identity a@pass.test Pass (v=spf1)", "helo identity postmaster@[127.0.0.10] None"},
		// The actions of a policy that enforces: fail is refused at MAIL
		// FROM, the rest accepted; a temporary error is deferred where
		// the policy says so.
		{"enforce/fail", "127.0.0.20", "mx.client.test", "a@fail.test", "550 5.7.1 SPF unauthorized mail is prohibited.", "mailfrom identity a@fail.test Fail (v=spf1)", ""},
		{"enforce/softfail", "127.0.0.20", "mx.client.test", "a@softfail.test", "250", "mailfrom identity a@softfail.test SoftFail (v=spf1)", ""},
		{"enforce/temperror accepted", "127.0.0.20", "mx.client.test", "a@x.timeout.test", "250", "mailfrom identity a@x.timeout.test TempError (v=spf1)", ""},
		{"defer/temperror", "127.0.0.21", "mx.client.test", "a@x.timeout.test", "451 4.4.3 Temporary error occurred during SPF verification.", "mailfrom identity a@x.timeout.test TempError (v=spf1)", ""},
		{"defer/pass", "127.0.0.21", "mx.client.test", "a@pass.test", "250", "mailfrom identity a@pass.test Pass (v=spf1)", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The author's domain has no DMARC record: these are SPF's
			// results alone.
			mailReply, dataReply, mid := h.send(tt.ip, tt.helo, tt.from, plainMsg("x@nospf.test"))
			if !strings.HasPrefix(mailReply, tt.mail) {
				t.Fatalf("MAIL FROM: %q, want %q", mailReply, tt.mail)
			}
			if mid == 0 {
				mid = h.lastMID()
			}
			if got := h.midLines(mid, `^SPF: mailfrom`); len(got) != 1 || got[0] != "SPF: "+tt.line {
				t.Errorf("SPF lines %q, want %q", got, tt.line)
			}
			if tt.helo_ != "" {
				if got := h.midLines(mid, `^SPF: helo`); len(got) != 1 || got[0] != "SPF: "+tt.helo_ {
					t.Errorf("SPF helo lines %q, want %q", got, tt.helo_)
				}
			}
			if !strings.HasPrefix(mailReply, "250") {
				// The refusal's line gives the reply's text, without its
				// codes: "ICID n Receiving Failed: SPF unauthorized ...".
				want := "Receiving Failed: " + strings.SplitN(tt.mail, " ", 3)[2]
				if !slices.ContainsFunc(h.lines.Snapshot(), func(l string) bool { return strings.HasSuffix(l, want) }) {
					t.Errorf("no line %q", want)
				}
				return
			}
			if !strings.HasPrefix(dataReply, "250") {
				t.Fatalf("DATA: %q", dataReply)
			}
			env, body := h.stored(mid)
			res, err := mailauth.Unmarshal(env.Auth)
			if err != nil {
				t.Fatal(err)
			}
			mf, ok := res.MailFromSPF()
			want := strings.Fields(tt.line)[3]
			if !ok || mf.ESAResult() != want {
				t.Errorf("envelope's SPF %+v, want %s", res.SPF, want)
			}
			if tt.helo == "[127.0.0.10]" && (len(res.SPF) != 2 || res.SPF[0].Reason != "HELO is not a domain name") {
				t.Errorf("an address literal HELO was looked up: %+v", res.SPF)
			}
			if !strings.HasPrefix(body, "Received-SPF: "+want+" ") {
				t.Errorf("message does not start with Received-SPF: %s:\n%s", want, body)
			}
			if !strings.Contains(body, "\r\n\tspf="+strings.ToLower(want)+" ") {
				t.Errorf("Authentication-Results has no spf=%s:\n%s", strings.ToLower(want), body)
			}
		})
	}
}

// The whole SPF evaluation of a server that never answers ends in
// temperror within the resolver's timeouts, not a hung session.
func TestSPFTimeoutBounded(t *testing.T) {
	h := startMailauth(t)
	start := time.Now()
	mailReply, _, _ := h.send("127.0.0.21", "mx.client.test", "a@x.timeout.test", plainMsg("a@x.timeout.test"))
	if !strings.HasPrefix(mailReply, "451 4.4.3") {
		t.Fatalf("MAIL FROM: %q", mailReply)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("a DNS server that does not answer took %v", d)
	}
}

// TestAuthLookupsCached: a second message from a domain is checked without
// asking the DNS anything (dns.cache_size), with the same lines; a DNS
// failure is asked again for each message, each deferred on its own.
func TestAuthLookupsCached(t *testing.T) {
	h := startMailauth(t)
	k := testKeys()
	msg := sign(t, "From: Alice <a@pass.test>\r\nTo: <joe@example.com>\r\nSubject: signed\r\n\r\nSigned body.\r\n",
		signOpts{domain: "pass.test", selector: "rsa", key: k.rsa})
	for i, asks := range []bool{true, false, false} {
		before := h.dns.asked()
		_, data, mid := h.send("127.0.0.10", "mx.client.test", "a@pass.test", msg)
		if !strings.HasPrefix(data, "250") {
			t.Fatalf("message %d: DATA %q", i, data)
		}
		if n := h.dns.asked() - before; (n > 0) != asks {
			t.Errorf("message %d: %d queries, want asked %v", i, n, asks)
		}
		got := strings.Join(h.midLines(mid, `^(SPF|DKIM|DMARC):`), "\n")
		want := "SPF: helo identity postmaster@mx.client.test Pass\n" +
			"SPF: mailfrom identity a@pass.test Pass (v=spf1)\n" +
			"DKIM: pass signature verified (d=pass.test s=rsa i=@pass.test)\n" +
			"DMARC: Message from domain pass.test, DMARC pass (SPF aligned True, DKIM aligned True)"
		if got != want {
			t.Errorf("message %d: lines\n%s\nwant\n%s", i, got, want)
		}
	}
	for i := range 2 {
		before := h.dns.asked()
		mail, _, _ := h.send("127.0.0.21", "mx.client.test", "a@x.servfail.test", plainMsg("a@x.servfail.test"))
		if !strings.HasPrefix(mail, "451 4.4.3") {
			t.Errorf("SERVFAIL, message %d: MAIL FROM %q", i, mail)
		}
		if h.dns.asked() == before {
			t.Errorf("SERVFAIL, message %d: the DNS was not asked", i)
		}
	}
}

type signOpts struct {
	domain, selector string
	key              crypto.Signer
	hc, bc           dkim.Canonicalization
}

func sign(t *testing.T, msg string, o signOpts) string {
	t.Helper()
	var b bytes.Buffer
	if o.hc == "" {
		o.hc, o.bc = dkim.CanonicalizationRelaxed, dkim.CanonicalizationRelaxed
	}
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: o.domain, Selector: o.selector, Signer: o.key,
		HeaderCanonicalization: o.hc, BodyCanonicalization: o.bc})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDKIMAndDMARC(t *testing.T) {
	h := startMailauth(t)
	k := testKeys()
	msg := func(from string) string {
		return "From: Alice <" + from + ">\r\nTo: <joe@example.com>\r\nSubject: signed\r\nMessage-ID: <2@x>\r\n\r\nSigned body.\r\n"
	}
	for _, tt := range []struct {
		name     string
		ip, from string // envelope
		msg      string
		data     string   // reply prefix at the end of DATA
		dkim     []string // DKIM lines after "DKIM: "
		dmarc    string   // DMARC line after "DMARC: "; "" none
		tag      bool     // X-Mailgate-DMARC: quarantine
		action   string   // the DMARC action line after "DMARC: "; "" none
	}{
		{name: "rsa pass, dmarc pass", ip: "127.0.0.10", from: "a@pass.test",
			msg: sign(t, msg("a@pass.test"), signOpts{domain: "pass.test", selector: "rsa", key: k.rsa}), data: "250",
			dkim:  []string{"pass signature verified (d=pass.test s=rsa i=@pass.test)"},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned True, DKIM aligned True)"},
		{name: "ed25519 pass", ip: "127.0.0.20", from: "a@other.test",
			msg: sign(t, msg("a@pass.test"), signOpts{domain: "pass.test", selector: "ed", key: k.ed}), data: "250",
			dkim:  []string{"pass signature verified (d=pass.test s=ed i=@pass.test)"},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned False, DKIM aligned True)"},
		{name: "body changed", ip: "127.0.0.10", from: "a@other.test",
			msg:  strings.Replace(sign(t, msg("a@pass.test"), signOpts{domain: "pass.test", selector: "rsa", key: k.rsa}), "Signed body.", "Signed b0dy.", 1),
			data: "250", dkim: []string{"permfail body hash did not verify [final] (d=pass.test s=rsa i=@pass.test)"},
			dmarc: "Message from domain pass.test, DMARC fail (SPF aligned False, DKIM aligned False)"},
		{name: "no key", ip: "127.0.0.10", from: "a@pass.test",
			msg:  sign(t, msg("a@pass.test"), signOpts{domain: "pass.test", selector: "nokey", key: k.rsa}),
			data: "250", dkim: []string{`^permfail no key for signature: .* \[final\] \(d=pass.test s=nokey i=@pass.test\)$`},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned True, DKIM aligned False)"},
		{name: "bad key", ip: "127.0.0.10", from: "a@pass.test",
			msg:  sign(t, msg("a@pass.test"), signOpts{domain: "pass.test", selector: "bad", key: k.rsa}),
			data: "250", dkim: []string{`^permfail key syntax error: .*\[final\] \(d=pass.test s=bad i=@pass.test\)$`},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned True, DKIM aligned False)"},
		{name: "key lookup times out", ip: "127.0.0.10", from: "a@pass.test",
			msg:  sign(t, msg("a@pass.test"), signOpts{domain: "x.timeout.test", selector: "s", key: k.rsa}),
			data: "250", dkim: []string{`^tempfail key unavailable: .* \[final\] \(d=x.timeout.test s=s i=@x.timeout.test\)$`},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned True, DKIM aligned False)"},
		{name: "malformed signature", ip: "127.0.0.10", from: "a@pass.test",
			msg:  "DKIM-Signature: v=1; a=rsa-sha256; d=pass.test; s=rsa\r\n" + msg("a@pass.test"),
			data: "250", dkim: []string{"malformed signature - signature missing required tag"},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned True, DKIM aligned False)"},
		// Two signatures: one line each, [final] on the last.
		{name: "two signatures", ip: "127.0.0.10", from: "a@other.test",
			msg: sign(t, sign(t, msg("a@pass.test"), signOpts{domain: "pass.test", selector: "ed", key: k.ed}),
				signOpts{domain: "other.test", selector: "rsa", key: k.rsa}),
			data: "250", dkim: []string{"pass signature verified (d=other.test s=rsa i=@other.test)", "pass signature verified (d=pass.test s=ed i=@pass.test)"},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned False, DKIM aligned True)"},
		// Relaxed alignment: a subdomain's signature aligns with the
		// organizational domain; sp= applies to a subdomain From.
		{name: "relaxed alignment", ip: "127.0.0.20", from: "a@other.test",
			msg:  sign(t, msg("a@pass.test"), signOpts{domain: "sub.pass.test", selector: "rsa", key: k.rsa}),
			data: "250", dkim: []string{"pass signature verified (d=sub.pass.test s=rsa i=@sub.pass.test)"},
			dmarc: "Message from domain pass.test, DMARC pass (SPF aligned False, DKIM aligned True)"},
		// Strict alignment: the subdomain's SPF pass does not align.
		{name: "strict alignment, reject", ip: "127.0.0.20", from: "a@sub.strict.test",
			msg: msg("a@strict.test"), data: "550 5.7.1 DMARC unauthenticated mail is prohibited.",
			dmarc: "Message from domain strict.test, DMARC fail (SPF aligned False, DKIM aligned False)"},
		{name: "strict alignment, exact", ip: "127.0.0.20", from: "a@strict.test",
			msg: msg("a@strict.test"), data: "250",
			dmarc: "Message from domain strict.test, DMARC pass (SPF aligned True, DKIM aligned False)"},
		// p=reject, enforced.
		{name: "p=reject", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@fail.test"), data: "550 5.7.1 DMARC unauthenticated mail is prohibited.",
			dmarc: "Message from domain fail.test, DMARC fail (SPF aligned False, DKIM aligned False)"},
		// p=reject, the default policy: recorded, accepted.
		{name: "p=reject not enforced", ip: "127.0.0.10", from: "a@other.test",
			msg: msg("a@fail.test"), data: "250",
			dmarc: "Message from domain fail.test, DMARC fail (SPF aligned False, DKIM aligned False)"},
		// The organizational domain's record, with sp=quarantine, for a
		// subdomain that has none: quarantine is a tag for now.
		{name: "org domain sp=quarantine", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@news.pass.test"), data: "250", tag: true,
			dmarc:  "Message from domain news.pass.test, DMARC fail (SPF aligned False, DKIM aligned False)",
			action: "Message from domain news.pass.test, policy quarantine, action tag X-Mailgate-DMARC"},
		// pct=0: p=reject falls to quarantine, p=quarantine to none.
		{name: "pct=0 reject", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@neutral.test"), data: "250", tag: true,
			dmarc:  "Message from domain neutral.test, DMARC fail (SPF aligned False, DKIM aligned False)",
			action: "Message from domain neutral.test, policy reject, applied quarantine, action tag X-Mailgate-DMARC"},
		{name: "pct=0 quarantine", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@softfail.test"), data: "250",
			dmarc: "Message from domain softfail.test, DMARC fail (SPF aligned False, DKIM aligned False)"},
		{name: "no record", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@nospf.test"), data: "250",
			dmarc: "Message from domain nospf.test, DMARC none (SPF aligned False, DKIM aligned False)"},
		{name: "permerror enforced", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@malformed.test"), data: "550 5.7.1 DMARC unauthenticated mail is prohibited.",
			dmarc: "Message from domain malformed.test, DMARC permerror (SPF aligned False, DKIM aligned False)"},
		{name: "temperror enforced", ip: "127.0.0.20", from: "a@other.test",
			msg: msg("a@x.servfail.test"), data: "451 4.7.1 Unable to perform DMARC verification.",
			dmarc: "Message from domain x.servfail.test, DMARC temperror (SPF aligned False, DKIM aligned False)"},
		{name: "temperror accepted", ip: "127.0.0.10", from: "a@other.test",
			msg: msg("a@x.servfail.test"), data: "250",
			dmarc: "Message from domain x.servfail.test, DMARC temperror (SPF aligned False, DKIM aligned False)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, dataReply, mid := h.send(tt.ip, "mx.client.test", tt.from, tt.msg)
			if !strings.HasPrefix(dataReply, tt.data) {
				t.Fatalf("DATA: %q, want %q", dataReply, tt.data)
			}
			got := h.midLines(mid, `^DKIM: `)
			if len(got) != len(tt.dkim) {
				t.Fatalf("DKIM lines %q, want %q", got, tt.dkim)
			}
			for i, w := range tt.dkim {
				g := strings.TrimPrefix(got[i], "DKIM: ")
				if strings.HasPrefix(w, "^") {
					if !regexp.MustCompile(w).MatchString(g) {
						t.Errorf("DKIM line %q, want %s", g, w)
					}
				} else if g != w {
					t.Errorf("DKIM line %q, want %q", g, w)
				}
			}
			wantDMARC := []string{"DMARC: " + tt.dmarc}
			if tt.action != "" {
				wantDMARC = append(wantDMARC, "DMARC: "+tt.action)
			}
			if got := h.midLines(mid, `^DMARC: `); strings.Join(got, "\n") != strings.Join(wantDMARC, "\n") {
				t.Errorf("DMARC lines %q, want %q", got, wantDMARC)
			}
			if !strings.HasPrefix(dataReply, "250") {
				if got := h.midLines(mid, `^(ready|queued)`); len(got) != 0 {
					t.Errorf("a refused message has lines %q", got)
				}
				if _, _, err := h.spool.Read(mid); err == nil {
					t.Errorf("refused MID %d is in the spool", mid)
				}
				return
			}
			// The ESA's order: ready, the DKIM and DMARC verdicts, the
			// policy match, queued.
			var order []string
			for _, l := range h.midLines(mid, `^(ready|DKIM: |DMARC: |matched|queued)`) {
				order = append(order, strings.Fields(l)[0])
			}
			if got, want := strings.Join(order, " "), "ready "+strings.Repeat("DKIM: ", len(tt.dkim))+strings.Repeat("DMARC: ", len(wantDMARC))+"matched queued"; got != want {
				t.Errorf("lines in the order %q, want %q", got, want)
			}
			env, body := h.stored(mid)
			if tag := strings.HasPrefix(body, "X-Mailgate-DMARC: quarantine\r\n"); tag != tt.tag {
				t.Errorf("tagged %v, want %v:\n%s", tag, tt.tag, body)
			}
			// Without a work queue, no quarantine is named for it.
			if r, err := mailauth.Unmarshal(env.Auth); err != nil || r.DMARC == nil || r.DMARC.Quarantine != "" {
				t.Errorf("results %+v %v: want a DMARC result naming no quarantine", r, err)
			}
			ar := regexp.MustCompile(`(?m)^Authentication-Results: mx\.test;(\r\n\t.*)+\r\n`).FindString(body)
			if ar == "" {
				t.Fatalf("no Authentication-Results:\n%s", body)
			}
			want := strings.Fields(strings.TrimPrefix(tt.dmarc, "Message from domain "))[2]
			if !strings.Contains(ar, "\tdmarc="+want+" ") {
				t.Errorf("Authentication-Results has no dmarc=%s:\n%s", want, ar)
			}
		})
	}
}

// A forged Authentication-Results claiming the gateway's authserv-id is
// removed; one of another host stays.
func TestForgedAuthResultsStripped(t *testing.T) {
	h := startMailauth(t)
	msg := "Authentication-Results: mx.test; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: (comment) \"MX.TEST\";\r\n\tdmarc=pass header.from=bank.example\r\n" +
		"Authentication-Results: other.example; spf=pass\r\n" +
		plainMsg("a@pass.test")
	_, dataReply, mid := h.send("127.0.0.10", "mx.client.test", "a@pass.test", msg)
	if !strings.HasPrefix(dataReply, "250") {
		t.Fatalf("DATA: %q", dataReply)
	}
	_, body := h.stored(mid)
	if strings.Contains(body, "bank.example") {
		t.Errorf("the forged results survived:\n%s", body)
	}
	if !strings.Contains(body, "Authentication-Results: other.example; spf=pass\r\n") {
		t.Errorf("another host's results were removed:\n%s", body)
	}
	if n := strings.Count(body, "Authentication-Results: mx.test;"); n != 1 {
		t.Errorf("%d Authentication-Results of mx.test, want ours only:\n%s", n, body)
	}
}

// A message larger than what a session holds in memory is verified from
// its stage, and its header fields prepended.
func TestDKIMLargeMessage(t *testing.T) {
	h := startMailauth(t)
	k := testKeys()
	var b strings.Builder
	b.WriteString("From: <a@pass.test>\r\nTo: <joe@example.com>\r\nSubject: big\r\n\r\n")
	for b.Len() < 300<<10 {
		b.WriteString("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\r\n")
	}
	signed := sign(t, b.String(), signOpts{domain: "pass.test", selector: "rsa", key: k.rsa})
	for _, tt := range []struct {
		name, msg, line string
	}{
		{"intact", signed, "DKIM: pass signature verified (d=pass.test s=rsa i=@pass.test)"},
		{"changed at the end", strings.TrimSuffix(signed, "xyz\r\n") + "xyZ\r\n", "DKIM: permfail body hash did not verify [final] (d=pass.test s=rsa i=@pass.test)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, dataReply, mid := h.send("127.0.0.10", "mx.client.test", "a@pass.test", tt.msg)
			if !strings.HasPrefix(dataReply, "250") {
				t.Fatalf("DATA: %q", dataReply)
			}
			if got := h.midLines(mid, `^DKIM: `); len(got) != 1 || got[0] != tt.line {
				t.Errorf("DKIM lines %q, want %q", got, tt.line)
			}
			_, body := h.stored(mid)
			if !strings.HasPrefix(body, "Received-SPF: Pass ") || !strings.HasSuffix(body, tt.msg[len(tt.msg)-200:]) {
				t.Errorf("stored message starts %q, ends %q", body[:min(len(body), 300)], body[max(0, len(body)-100):])
			}
			if !strings.Contains(body, "\r\nReceived: from mx.client.test") {
				t.Errorf("no Received field after ours")
			}
		})
	}
}

// Interoperability: messages signed by an independent implementation
// (Debian's python3-dkim, dkimsign) verify, with relaxed and simple
// canonicalization and folded header fields, and fail when the body is
// changed in transit.
func TestDKIMSignedByPythonDKIM(t *testing.T) {
	dkimsign, err := exec.LookPath("dkimsign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dkimsign (python3-dkim) is not installed; scripts/test-deps.sh installs it")
		}
		t.Skip("dkimsign (python3-dkim) is not installed")
	}
	h := startMailauth(t)
	keyFile := filepath.Join(t.TempDir(), "rsa.pem")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: testKeys().rsaDER})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	msg := "From: Alice\r\n <a@pass.test>\r\nTo: joe@example.com\r\nSubject: a folded\r\n   subject   line\r\n" +
		"Message-ID: <3@x>\r\n\r\nbody  with   spaces\t\r\nand a second line\r\n\r\n\r\n"
	// python3-dkim reads an Ed25519 key as the base64 of its seed.
	edFile := filepath.Join(t.TempDir(), "ed.key")
	if err := os.WriteFile(edFile, []byte(base64.StdEncoding.EncodeToString(testKeys().ed.Seed())), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, canon := range [][3]string{{"relaxed", "simple", "rsa"}, {"relaxed", "relaxed", "rsa"}, {"simple", "simple", "rsa"},
		{"simple", "relaxed", "rsa"}, {"relaxed", "simple", "ed"}} {
		args := []string{"--hcanon", canon[0], "--bcanon", canon[1], "rsa", "pass.test", keyFile}
		if canon[2] == "ed" {
			args = []string{"--hcanon", canon[0], "--bcanon", canon[1], "--signalg", "ed25519-sha256", "ed", "pass.test", edFile}
		}
		cmd := exec.Command(dkimsign, args...)
		cmd.Stdin = strings.NewReader(msg)
		sig, err := cmd.Output()
		if err != nil {
			t.Fatalf("dkimsign: %v", err)
		}
		signed := string(sig) // dkimsign writes the signed message
		for _, tt := range []struct {
			name, msg, line string
		}{
			{"intact", signed, "DKIM: pass signature verified (d=pass.test s=" + canon[2] + " i=@pass.test)"},
			{"body changed", strings.Replace(signed, "second line", "second line!", 1),
				"DKIM: permfail body hash did not verify [final] (d=pass.test s=" + canon[2] + " i=@pass.test)"},
		} {
			t.Run(canon[2]+"/"+canon[0]+"/"+canon[1]+"/"+tt.name, func(t *testing.T) {
				_, dataReply, mid := h.send("127.0.0.10", "mx.client.test", "a@pass.test", tt.msg)
				if !strings.HasPrefix(dataReply, "250") {
					t.Fatalf("DATA: %q", dataReply)
				}
				if got := h.midLines(mid, `^DKIM: `); len(got) != 1 || got[0] != tt.line {
					t.Errorf("DKIM lines %q, want %q", got, tt.line)
				}
			})
		}
	}
}
