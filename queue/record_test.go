package queue

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/segment-v1.golden")

const goldenSalt = 0x5a17c0de

var goldenDelay = RecipientState{
	Status:   Pending,
	Attempts: 1,
	Last:     time.Date(2026, 3, 19, 20, 16, 3, 0, time.UTC),
	Next:     time.Date(2026, 3, 19, 20, 17, 3, 0, time.UTC),
	Reason:   "4.3.2 - Not accepting messages at this time ('421', ['4.3.2 try again later'])",
}

// goldenSegment builds, with a fixed salt, a segment holding: message 1001,
// a state for its RID 1, message 1002, the finish of 1002.
func goldenSegment() []byte {
	env1 := &Envelope{
		MID: 1001, ICID: 5, Listener: "InboundMail", ClientIP: "10.1.1.209",
		ClientHost: "remotehost.com", Helo: "remotehost.com",
		TLS: "TLSv1.3 TLS_AES_128_GCM_SHA256", From: "sender@remotehost.com",
		Rcpts:    []Recipient{{0, "mary@yourdomain.com"}, {1, "joe@yourdomain.com"}},
		Received: time.Date(2026, 3, 19, 20, 16, 0, 0, time.UTC), BodyType: "8BITMIME",
	}
	env2 := &Envelope{MID: 1002, ICID: 5, ClientIP: "10.1.1.209", Rcpts: []Recipient{{0, "grüße@exämple.de"}}, SMTPUTF8: true}
	msg := func(seq uint64, env *Envelope, body string) []byte {
		return newRecord(goldenSalt, recMessage, append(appendMessagePrefix(nil, seq, env), body...))
	}
	var b bytes.Buffer
	hdr := make([]byte, segHeaderSize)
	putSegHeader(hdr, 1, goldenSalt)
	b.Write(hdr)
	b.Write(msg(1, env1, "Subject: sample\r\n\r\nhello\r\n"))
	b.Write(newRecord(goldenSalt, recState, appendState(nil, 1001, []ridState{{RID: 1, RecipientState: goldenDelay}})))
	b.Write(msg(2, env2, "Subject: bounce\r\n\r\n"))
	b.Write(newRecord(goldenSalt, recFinish, appendFinish(nil, 1002)))
	return b.Bytes()
}

const goldenPath = "testdata/segment-v1.golden"

// TestFormatGolden pins the on-disk format: a change to any encoding shows
// here and needs a new format version, not a silent rewrite of the golden.
func TestFormatGolden(t *testing.T) {
	got := hex.Dump(goldenSegment())
	if *update {
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("encoding differs from %s:\n%s", goldenPath, got)
	}
}

// TestReadsFormatV1 opens a spool made of the golden bytes (as an older
// mailgate wrote them) with the full recovery path.
func TestReadsFormatV1(t *testing.T) {
	text, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var seg []byte
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		// "00000000  4d 47 53 50 ...  |MGSP...|"
		hexPart, _, _ := strings.Cut(line[10:], "  |")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("golden line %q: %v", line, err)
		}
		seg = append(seg, b...)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openSpool(t, dir, Options{NoSync: true})
	defer closeSpool(t, s)
	if rec := s.Recovery(); rec.Records != 4 || len(rec.Corrupt) != 0 || rec.Truncated != 0 {
		t.Fatalf("Recovery = %+v", rec)
	}
	if got := s.Messages(); !slices.Equal(got, []uint64{1001}) {
		t.Fatalf("Messages() = %v, want [1001]", got)
	}
	env, body, err := s.Read(1001)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "sender@remotehost.com" || len(env.Rcpts) != 2 || env.Rcpts[1].Addr != "joe@yourdomain.com" ||
		env.TLS != "TLSv1.3 TLS_AES_128_GCM_SHA256" || !env.Received.Equal(time.Date(2026, 3, 19, 20, 16, 0, 0, time.UTC)) ||
		string(body) != "Subject: sample\r\n\r\nhello\r\n" {
		t.Errorf("MID 1001: %+v %q", env, body)
	}
	states, err := s.RecipientStates(1001)
	if err != nil {
		t.Fatal(err)
	}
	if st := states[1]; st.Reason != goldenDelay.Reason || !st.Next.Equal(goldenDelay.Next) || st.Attempts != 1 {
		t.Errorf("RID 1 state %+v", st)
	}
	if s.MaxMID() != 1002 {
		t.Errorf("MaxMID = %d, want 1002", s.MaxMID())
	}
	// New records go after the old ones, under the old salt.
	commit(t, s, testEnvelope(1003, 1), testBody(1003, 100))
}

// FuzzPayload feeds arbitrary bytes to the payload decoders: no panic, no
// huge allocation, and whatever decodes encodes back to the same value.
func FuzzPayload(f *testing.F) {
	f.Add(appendMessagePrefix(nil, 1, testEnvelope(7, 3)))
	f.Add(append(appendMessagePrefix(nil, 9, &Envelope{MID: 1, Rcpts: []Recipient{{0, "a@b"}}}), "body"...))
	f.Add(appendState(nil, 7, []ridState{{RID: 2, RecipientState: goldenDelay}}))
	f.Add(appendFinish(nil, 7))
	f.Add(appendMessagePrefix(nil, 3, &Envelope{MID: 5, Parent: 4, Outgoing: true, Rcpts: []Recipient{{2, "a@b"}}}))
	f.Add(appendMessagePrefix(nil, 4, &Envelope{MID: 6, BounceOf: 5, BounceRIDs: []int{0, 3}, Rcpts: []Recipient{{0, "a@b"}}, Auth: []byte("x")}))
	f.Add(appendWork(nil, 7, Work{Headers: "X-A: b\r\n"}))
	f.Add(appendWork(nil, 7, Work{Headers: "X-A: b\r\n", Strip: []string{"x-b"}, TagSubject: "[T] ", Route: "h:25", Rcpt: "a@b"}))
	f.Add(appendWork(nil, 7, Work{Headers: "X-A: b\r\n", Stage: 1, Held: []Held{{Quarantine: "Policy", Reason: "r", Since: time.Unix(5, 0), Out: Deleted}}}))
	f.Add(appendWork(nil, 8, Work{Headers: "X-A: b\r\n", Strip: []string{"x-b"}, Route: "h:25", Stage: 2, Held: []Held{{Quarantine: "Virus", Reason: "r", Since: time.Unix(6, 0)}}}))
	f.Fuzz(func(t *testing.T, p []byte) {
		if mid, w, err := decodeWork(p); err == nil {
			if mid2, w2, err := decodeWork(appendWork(nil, mid, w)); err != nil || mid2 != mid || !reflect.DeepEqual(w2, w) {
				t.Fatalf("work round trip: %v\n%+v\n%+v", err, w, w2)
			}
		}
		if seq, env, off, err := decodeMessage(p); err == nil {
			q := append(appendMessagePrefix(nil, seq, env), p[off:]...)
			seq2, env2, off2, err := decodeMessage(q)
			if err != nil || seq2 != seq || !reflect.DeepEqual(env2, env) || !bytes.Equal(q[off2:], p[off:]) {
				t.Fatalf("message round trip: %v\n%+v\n%+v", err, env, env2)
			}
		}
		if mid, states, err := decodeState(p); err == nil {
			mid2, states2, err := decodeState(appendState(nil, mid, states))
			if err != nil || mid2 != mid || !reflect.DeepEqual(states2, states) {
				t.Fatalf("state round trip: %v\n%+v\n%+v", err, states, states2)
			}
		}
		if mid, err := decodeFinish(p); err == nil {
			if mid2, err := decodeFinish(appendFinish(nil, mid)); err != nil || mid2 != mid {
				t.Fatalf("finish round trip: %d %d %v", mid, mid2, err)
			}
		}
	})
}

// FuzzRecover opens a spool whose segment holds arbitrary bytes after a
// valid header, as the last segment (torn tails are cut) or an older one
// (damage is skipped): Open must succeed, every message it lists must read
// back, it must take a commit, and a second Open must find the same
// messages.
func FuzzRecover(f *testing.F) {
	seg := goldenSegment()[segHeaderSize:]
	damaged := bytes.Clone(seg)
	damaged[40] ^= 1
	for _, older := range []bool{false, true} {
		f.Add(seg, older)
		f.Add(seg[:len(seg)-7], older)
		f.Add(damaged, older)
		f.Add(bytes.Repeat([]byte(recMagic), 64), older)
	}
	f.Fuzz(func(t *testing.T, data []byte, older bool) {
		dir := t.TempDir()
		hdr := make([]byte, segHeaderSize)
		putSegHeader(hdr, 1, goldenSalt)
		if err := os.WriteFile(filepath.Join(dir, segName(1)), append(hdr, data...), 0o600); err != nil {
			t.Fatal(err)
		}
		if older {
			putSegHeader(hdr, 2, goldenSalt)
			if err := os.WriteFile(filepath.Join(dir, segName(2)), hdr, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(dir, Options{NoSync: true, Logger: quiet})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		mids := s.Messages()
		for _, mid := range mids {
			if _, _, err := s.Read(mid); err != nil {
				t.Fatalf("listed MID %d does not read: %v", mid, err)
			}
			if _, err := s.RecipientStates(mid); err != nil {
				t.Fatal(err)
			}
		}
		newMID := s.MaxMID() + 1
		if newMID == 0 {
			newMID = 1
		}
		if err := s.Commit(context.Background(), testEnvelope(newMID, 1), []byte("x")); err != nil {
			t.Fatalf("Commit after recovery: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir, Options{NoSync: true, Logger: quiet})
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer s.Close()
		if got := s.Messages(); !slices.Equal(got, append(mids, newMID)) {
			t.Fatalf("second Open: Messages() = %v, want %v + %d", got, mids, newMID)
		}
	})
}
