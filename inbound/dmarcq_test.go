package inbound_test

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/queue"
)

// With a work queue (Handoff), DMARC's quarantine action names the
// policy's quarantine in the envelope's results, which the work queue
// reads, and the action line says so; the message is not tagged.
func TestDMARCQuarantineHandoff(t *testing.T) {
	handed := make(chan *queue.Envelope, 10)
	h := startMailauth(t, func(s *inbound.Server) { s.Handoff = func(env *queue.Envelope) { handed <- env } })
	msg := func(from string) string {
		return "From: <" + from + ">\r\nTo: <joe@example.com>\r\nSubject: q\r\n\r\nBody.\r\n"
	}
	for _, tt := range []struct {
		name, ip, from, data string
		quarantine           string // in the envelope's results
		action               string // the action line after "DMARC: "
	}{
		{name: "sp=quarantine", ip: "127.0.0.20", from: "a@news.pass.test", data: "250", quarantine: "Policy",
			action: "Message from domain news.pass.test, policy quarantine, action quarantine"},
		{name: "p=reject outside pct", ip: "127.0.0.20", from: "a@neutral.test", data: "250", quarantine: "Policy",
			action: "Message from domain neutral.test, policy reject, applied quarantine, action quarantine"},
		// p=quarantine outside pct=0 is none: nothing to do.
		{name: "p=quarantine outside pct", ip: "127.0.0.20", from: "a@softfail.test", data: "250"},
		// The default policy takes no action.
		{name: "not enforced", ip: "127.0.0.10", from: "a@news.pass.test", data: "250"},
		{name: "p=reject enforced", ip: "127.0.0.20", from: "a@fail.test", data: "550 5.7.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, dataReply, mid := h.send(tt.ip, "mx.client.test", "a@other.test", msg(tt.from))
			if !strings.HasPrefix(dataReply, tt.data) {
				t.Fatalf("DATA: %q, want %q", dataReply, tt.data)
			}
			lines := h.midLines(mid, `^DMARC: .*, action `)
			if tt.action == "" && len(lines) != 0 || tt.action != "" && (len(lines) != 1 || lines[0] != "DMARC: "+tt.action) {
				t.Errorf("action lines %q, want %q", lines, tt.action)
			}
			if !strings.HasPrefix(dataReply, "250") {
				select {
				case env := <-handed:
					t.Fatalf("refused MID %d handed over as MID %d", mid, env.MID)
				default:
				}
				return
			}
			env := <-handed
			if env.MID != mid {
				t.Fatalf("handed MID %d, want %d", env.MID, mid)
			}
			r, err := mailauth.Unmarshal(env.Auth)
			if err != nil || r.DMARC == nil {
				t.Fatalf("results %+v: %v", r, err)
			}
			if r.DMARC.Quarantine != tt.quarantine {
				t.Errorf("quarantine %q, want %q", r.DMARC.Quarantine, tt.quarantine)
			}
			// The spool's copy is what the work queue reads.
			stored, body := h.stored(mid)
			if string(stored.Auth) != string(env.Auth) {
				t.Errorf("the spool's results differ:\n%s\n%s", stored.Auth, env.Auth)
			}
			if strings.Contains(body, "X-Mailgate-DMARC") {
				t.Errorf("tagged, with a work queue:\n%s", body)
			}
		})
	}
}
