package outbound_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// TestFinishOnFullDisk: messages delivered while the spool's disk is full
// cannot be finished, nor the DSN of one refused be committed; once space
// returns they are, without a restart, and each was delivered once.
// Dropping them instead would keep their space until a restart and
// deliver them again then.
func TestFinishOnFullDisk(t *testing.T) {
	mnt := tmpfs.Mount(t, 2<<20)
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	h.rcpt = func(to string) smtp.Reply {
		if to == "nobody@d.test" {
			return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		}
		return smtp.Reply{}
	}
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, ""), dir: mnt, defer_: true})
	refused := g.message("alice@gw.test", "nobody@d.test")
	mids := []uint64{g.message("alice@gw.test", "bob@d.test")}

	// With space this short the spool writes no zeros ahead: its file ends
	// at its last record. Pad it to a page boundary, so that a finish
	// record needs a page of its own, which a full tmpfs cannot give.
	segSize := func() int64 { return g.spool.Stats().Bytes }
	commit := func(bodyLen int) {
		mid, err := g.ids.Next(queue.MID)
		if err != nil {
			t.Fatal(err)
		}
		env := &queue.Envelope{MID: mid, ICID: 1, From: "alice@gw.test", Received: time.Now(), ClientIP: "127.0.0.1",
			Rcpts: []queue.Recipient{{RID: 0, Addr: "bob@d.test"}}}
		// Lines of 78 bytes, the last one shorter, bodyLen in all.
		body := "Subject: pad\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", bodyLen/78+1)
		b := []byte(body[:bodyLen])
		b[bodyLen-2], b[bodyLen-1] = '\r', '\n'
		if b[bodyLen-3] == '\r' { // no bare CR
			b[bodyLen-3] = 'x'
		}
		if err := g.spool.Commit(context.Background(), env, b); err != nil {
			t.Fatal(err)
		}
		mids = append(mids, mid)
	}
	before := segSize()
	commit(100)
	overhead := segSize() - before - 100
	need := (4096 - segSize()%4096) % 4096
	for need < overhead+100 {
		need += 4096
	}
	commit(int(need - overhead))
	if segSize()%4096 != 0 {
		t.Fatalf("segment of %d bytes not padded to a page boundary (record overhead %d)", segSize(), overhead)
	}
	// The counters reserve IDs a block at a time, in a file of their own:
	// a DCID now, so that the deliveries need not write it on a full disk.
	if _, err := g.ids.Next(queue.DCID); err != nil {
		t.Fatal(err)
	}
	filler := tmpfs.Fill(t, mnt, "filler", 0)

	g.start()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.messages()) < len(mids) {
		if time.Now().After(deadline) {
			t.Fatalf("the hop got %d of %d messages:\n%s", len(h.messages()), len(mids), strings.Join(g.lines.Snapshot(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := g.spool.Stats().Messages; got != len(mids)+1 {
		t.Fatalf("%d messages in the spool with the disk full, want %d: the finishes were not refused, the test does not test", got, len(mids)+1)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, mid := range append(mids, refused) {
		g.finished(mid)
	}
	g.lines.WaitFor(t, fmt.Sprintf(`^MID \d+ generated for bounce of MID %d$`, refused))
	if got := len(h.messages()); got != len(mids) {
		t.Errorf("the hop got %d messages, want %d", got, len(mids))
	}
}
