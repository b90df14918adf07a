package smtp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/mailgate/mailgate/event"
)

// authRecorder offers AUTH with a mechanism "TEST" that asks once and
// accepts the response "good", and "CLEAR" only under TLS.
type authRecorder struct {
	recorder
	ends []error
}

func (a *authRecorder) AuthMechanisms(tls bool) []string {
	if tls {
		return []string{"TEST", "CLEAR"}
	}
	return []string{"TEST"}
}

func (a *authRecorder) Auth(mech string) (SASL, Reply) {
	if mech != "TEST" {
		return nil, Reply{504, "5.5.4", "Unrecognized authentication type"}
	}
	return &testSASL{a: a}, Reply{}
}

type testSASL struct{ a *authRecorder }

func (s *testSASL) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte("say it"), false, nil
	}
	if string(resp) != "good" {
		return nil, false, errors.New("bad")
	}
	return nil, true, nil
}

func (s *testSASL) End(err error) Reply {
	s.a.mu.Lock()
	s.a.ends = append(s.a.ends, err)
	s.a.mu.Unlock()
	return Reply{}
}

func TestAuthExchange(t *testing.T) {
	h := &authRecorder{}
	var mu sync.Mutex
	var transcript []string
	conn, ends := serve(t, h, Config{Transcript: func(sent bool, line []byte) {
		mu.Lock()
		defer mu.Unlock()
		if !sent {
			transcript = append(transcript, string(line))
		}
	}})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("AUTH TEST", "503 #5.5.1") // EHLO first
	ehlo := c.Cmd("EHLO client.test", "250")
	if !strings.HasSuffix(ehlo, "\n250 AUTH TEST") {
		t.Errorf("EHLO:\n%s", ehlo)
	}
	b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	c.Cmd("AUTH TEST", "334 "+b("say it"))
	c.Cmd("*", "501 5.0.0")
	c.Cmd("AUTH TEST", "334 ")
	c.Cmd("not base64!", "501 5.5.2")
	c.Cmd("AUTH TEST "+b("bad"), "535 5.7.8")
	c.Cmd("AUTH OTHER", "504 5.5.4")
	c.Cmd("AUTH TEST "+b("good"), "235 2.7.0")
	c.Cmd("AUTH TEST "+b("good"), "503 5.5.1")
	c.Cmd("MAIL FROM:<a@b.test> AUTH=a+2Bb@b.test", "250")
	c.Cmd("AUTH TEST", "503 5.5.1") // not in a transaction
	c.Cmd("QUIT", "221")
	<-ends
	want := []string{"authentication canceled by the client", "authentication response is not base64", "bad", "<nil>"}
	var got []string
	for _, e := range h.ends {
		got = append(got, errString(e))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("SASL.End saw %q, want %q", got, want)
	}
	mu.Lock()
	all := strings.Join(transcript, "\n")
	mu.Unlock()
	if strings.Contains(all, b("good")) || strings.Contains(all, b("bad")) || strings.Contains(all, "not base64") {
		t.Errorf("credentials in the transcript:\n%s", all)
	}
	if !strings.Contains(all, "AUTH TEST *****\n") || !strings.Contains(all, "\n*****\n") {
		t.Errorf("transcript does not show the masks:\n%s", all)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// Without an Authenticator AUTH is an unknown command, as before AUTH
// existed, and the line it logs has no credentials.
func TestAuthNotOffered(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	if ehlo := c.Cmd("EHLO client.test", "250"); strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO offers AUTH:\n%s", ehlo)
	}
	c.Cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "500 5.5.1")
	c.Cmd("QUIT", "221")
	<-ends
	if !h.saw("bad unknown AUTH PLAIN *****") {
		t.Errorf("calls %q", h.calls)
	}
}

// STARTTLS after AUTH is refused: the client would have to authenticate
// again in the new session (RFC 3207 4.2), and its credentials went
// before TLS.
func TestAuthThenSTARTTLS(t *testing.T) {
	h := &authRecorder{}
	conn, ends := serve(t, h, Config{TLS: selfSigned(t)})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("AUTH TEST "+base64.StdEncoding.EncodeToString([]byte("good")), "235")
	c.Cmd("STARTTLS", "503 5.5.1")
	c.Cmd("QUIT", "221")
	<-ends
}

// An implicit-TLS session shakes hands before the greeting and offers
// the mechanisms of TLS, without STARTTLS.
func TestImplicitTLS(t *testing.T) {
	h := &authRecorder{}
	conn, ends := serve(t, h, Config{TLS: selfSigned(t), ImplicitTLS: true})
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	c := newClient(t, tc)
	c.Expect("220")
	ehlo := c.Cmd("EHLO client.test", "250")
	if strings.Contains(ehlo, "STARTTLS") || !strings.HasSuffix(ehlo, "250 AUTH TEST CLEAR") {
		t.Errorf("EHLO:\n%s", ehlo)
	}
	c.Cmd("QUIT", "221")
	if end := <-ends; end.Cause != event.CauseQuit {
		t.Errorf("end %+v", end)
	}
	if !h.saw("tls TLS 1.3") {
		t.Errorf("calls %q", h.calls)
	}

	// A client that speaks plain SMTP to it fails the handshake.
	conn, ends = serve(t, &authRecorder{}, Config{TLS: selfSigned(t), ImplicitTLS: true})
	conn.Write([]byte("EHLO client.test\r\n"))
	if end := <-ends; end.Cause != event.CauseTLSFailed {
		t.Errorf("plain client: end %+v", end)
	}
}

func TestMaskAuth(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH PLAIN *****"},
		{"auth  login YWxpY2U=", "auth login *****"},
		{"AUTH LOGIN", "AUTH LOGIN"},
		{"MAIL FROM:<a@b>", "MAIL FROM:<a@b>"},
		{"AUTHX PLAIN x", "AUTHX PLAIN x"},
	} {
		if got := string(maskAuth([]byte(tt.in))); got != tt.want {
			t.Errorf("maskAuth(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMailAuthParam(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"AUTH=<>", "<>", true},
		{"AUTH=a+2Bb@example.com", "a+b@example.com", true},
		{"AUTH=a+2b@example.com", "", false}, // xtext hex is upper case
		{"AUTH=a+2", "", false},
		{"AUTH=", "", false},
		{"AUTH", "", false},
	} {
		p, err := parseMailParams(tt.in)
		if (err == nil) != tt.ok || p.Auth != tt.want {
			t.Errorf("parseMailParams(%q) = %q, %v", tt.in, p.Auth, err)
		}
	}
}
