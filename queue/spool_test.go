package queue

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/mailgate/mailgate/internal/wait"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testEnvelope is a plausible envelope for mid with n recipients.
func testEnvelope(mid uint64, n int) *Envelope {
	env := &Envelope{
		MID:        mid,
		ICID:       mid/3 + 1,
		Listener:   "InboundMail",
		ClientIP:   "127.0.0.1",
		ClientHost: "localhost",
		Helo:       "client.example.net",
		TLS:        "TLSv1.3 TLS_AES_128_GCM_SHA256",
		From:       fmt.Sprintf("sender%d@example.net", mid),
		Received:   time.Date(2026, 3, 17, 18, 24, 37, int(mid%1000)*1000, time.UTC),
		BodyType:   "8BITMIME",
	}
	for i := range n {
		env.Rcpts = append(env.Rcpts, Recipient{RID: i, Addr: fmt.Sprintf("rcpt%d-%d@example.com", mid, i)})
	}
	return env
}

// testBody is a message of about size bytes whose content depends on mid,
// so that a record read back in place of another is noticed.
func testBody(mid uint64, size int) []byte {
	r := rand.New(rand.NewPCG(mid, 7))
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <%d@example.net>\r\nSubject: test %d\r\n\r\n", mid, mid)
	for b.Len() < size {
		line := make([]byte, 1+r.IntN(76))
		for i := range line {
			line[i] = byte(' ' + r.IntN(95))
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()[:max(size, 0)]
}

func openSpool(t testing.TB, dir string, o Options) *Spool {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func closeSpool(t testing.TB, s *Spool) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func commit(t testing.TB, s *Spool, env *Envelope, body []byte) {
	t.Helper()
	if err := s.Commit(context.Background(), env, body); err != nil {
		t.Fatalf("Commit MID %d: %v", env.MID, err)
	}
}

// checkMessage asserts that mid is in s with exactly env and body.
func checkMessage(t testing.TB, s *Spool, env *Envelope, body []byte) {
	t.Helper()
	got, gotBody, err := s.Read(env.MID)
	if err != nil {
		t.Fatalf("Read MID %d: %v", env.MID, err)
	}
	if !bytes.Equal(gotBody, body) {
		t.Errorf("MID %d: body differs: got %d bytes, want %d", env.MID, len(gotBody), len(body))
	}
	sameEnvelope(t, got, env)
	// Head gives the same envelope and the body's first bytes, whether the
	// envelope fits its first read or not (a thousand recipients).
	for _, max := range []int{0, 1, 1000, 64 << 10} {
		got, head, size, err := s.Head(env.MID, max)
		if err != nil {
			t.Fatalf("Head(MID %d, %d): %v", env.MID, max, err)
		}
		if size != int64(len(body)) || !bytes.Equal(head, body[:min(len(body), max)]) {
			t.Errorf("Head(MID %d, %d) = %d bytes of %d, want %d of %d", env.MID, max, len(head), size, min(len(body), max), len(body))
		}
		sameEnvelope(t, got, env)
	}
}

func sameEnvelope(t testing.TB, got, want *Envelope) {
	t.Helper()
	if !got.Received.Equal(want.Received) {
		t.Errorf("MID %d: Received = %v, want %v", want.MID, got.Received, want.Received)
	}
	g, w := *got, *want
	g.Received, w.Received = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("MID %d: envelope\n got %+v\nwant %+v", want.MID, g, w)
	}
}

func TestCommitReopen(t *testing.T) {
	big := testBody(99, 3<<20) // longer than recovery's read buffers
	tests := []struct {
		name string
		env  *Envelope
		body []byte
	}{
		{"plain", testEnvelope(1, 1), testBody(1, 1024)},
		{"null sender, no TLS, no rDNS", &Envelope{MID: 2, ICID: 9, ClientIP: "::1", Rcpts: []Recipient{{0, "postmaster@example.com"}}}, testBody(2, 300)},
		{"SMTPUTF8", &Envelope{MID: 3, From: "jörg@exämple.de", SMTPUTF8: true, BodyType: "8BITMIME",
			Rcpts: []Recipient{{0, "用户@例子.广告"}}, Received: time.Unix(1700000000, 5)}, []byte("Subject: ü\r\n\r\nGrüße\r\n")},
		{"many recipients, sparse RIDs", testEnvelope(4, 0), testBody(4, 10<<10)},
		{"empty body", testEnvelope(5, 2), nil},
		{"large body", testEnvelope(6, 3), big},
		{"body holding a record magic", testEnvelope(7, 1), bytes.Repeat([]byte(recMagic+"xxxxxxxxxxxxxxxx"), 100)},
	}
	for i := range 1000 {
		tests[3].env.Rcpts = append(tests[3].env.Rcpts, Recipient{RID: i * 3, Addr: fmt.Sprintf("r%d@example.com", i)})
	}

	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	for _, tt := range tests {
		commit(t, s, tt.env, tt.body)
	}
	closeSpool(t, s)

	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if rec := s.Recovery(); rec.Messages != len(tests) || rec.Truncated != 0 || len(rec.Corrupt) != 0 {
		t.Errorf("Recovery = %+v, want %d messages and no damage", rec, len(tests))
	}
	var want []uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMessage(t, s, tt.env, tt.body) })
		want = append(want, tt.env.MID)
	}
	if got := s.Messages(); !slices.Equal(got, want) {
		t.Errorf("Messages() = %v, want %v (commit order)", got, want)
	}
	if got := s.MaxMID(); got != 7 {
		t.Errorf("MaxMID() = %d, want 7", got)
	}
}

func TestCommitRejects(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{NoSync: true})
	defer closeSpool(t, s)
	tests := []struct {
		name string
		env  *Envelope
	}{
		{"MID 0", testEnvelope(0, 1)},
		{"no recipients", testEnvelope(2, 0)},
		{"negative RID", &Envelope{MID: 3, Rcpts: []Recipient{{-1, "a@b"}}}},
		{"RID twice", &Envelope{MID: 4, Rcpts: []Recipient{{0, "a@b"}, {0, "c@d"}}}},
	}
	for _, tt := range tests {
		if err := s.Commit(context.Background(), tt.env, []byte("x")); err == nil {
			t.Errorf("%s: Commit succeeded", tt.name)
		}
	}
	commit(t, s, testEnvelope(5, 1), []byte("x"))
	if err := s.Commit(context.Background(), testEnvelope(5, 1), []byte("y")); err == nil {
		t.Error("second Commit of a live MID succeeded")
	}
}

// TestTornTail cuts the last segment at every offset inside its last record,
// as a crash during that write would: the record must vanish, everything
// before it must stay, and the spool must take new commits.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	s := openSpool(t, src, Options{})
	envs := []*Envelope{testEnvelope(1, 1), testEnvelope(2, 2), testEnvelope(3, 1)}
	bodies := [][]byte{testBody(1, 500), testBody(2, 700), testBody(3, 600)}
	for i := range envs {
		commit(t, s, envs[i], bodies[i])
	}
	seg := s.x.current().path
	start, end := s.x.msgs[3].off, s.x.msgs[3].off+s.x.msgs[3].n
	closeSpool(t, s)
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != end {
		t.Fatalf("segment is %d bytes, last record ends at %d", len(data), end)
	}

	for cut := start; cut < end; cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s := openSpool(t, dir, Options{NoSync: true})
		rec := s.Recovery()
		if rec.Truncated != cut-start || len(rec.Corrupt) != 0 {
			t.Fatalf("cut at %d: Recovery = %+v, want %d bytes truncated, no corruption", cut, rec, cut-start)
		}
		if got := s.Messages(); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("cut at %d: Messages() = %v, want [1 2]", cut, got)
		}
		for i := range 2 {
			checkMessage(t, s, envs[i], bodies[i])
		}
		commit(t, s, envs[2], bodies[2])
		closeSpool(t, s)

		s = openSpool(t, dir, Options{NoSync: true})
		if rec := s.Recovery(); rec.Truncated != 0 || len(rec.Corrupt) != 0 {
			t.Fatalf("cut at %d, after recommit: Recovery = %+v", cut, rec)
		}
		for i := range envs {
			checkMessage(t, s, envs[i], bodies[i])
		}
		closeSpool(t, s)
		if t.Failed() {
			t.Fatalf("cut at %d", cut)
		}
	}
}

// TestTornSegmentCreation: a crash while a new segment was being created
// leaves a file shorter than its header, which holds nothing acknowledged.
func TestTornSegmentCreation(t *testing.T) {
	for _, n := range []int{0, 1, segHeaderSize - 1, segHeaderSize} {
		dir := t.TempDir()
		s := openSpool(t, dir, Options{NoSync: true})
		commit(t, s, testEnvelope(1, 1), testBody(1, 100))
		next := s.x.current().seq + 1
		closeSpool(t, s)
		hdr := make([]byte, segHeaderSize)
		putSegHeader(hdr, next, 0)
		hdr[5] ^= 0xff // only matters when the whole header is there
		if err := os.WriteFile(filepath.Join(dir, segName(next)), hdr[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		s = openSpool(t, dir, Options{NoSync: true})
		checkMessage(t, s, testEnvelope(1, 1), testBody(1, 100))
		if len(s.Recovery().Corrupt) != 0 {
			t.Errorf("header of %d bytes: corruption reported: %v", n, s.Recovery().Corrupt[0])
		}
		commit(t, s, testEnvelope(2, 1), testBody(2, 100))
		closeSpool(t, s)
	}
}

// TestCorruption damages bytes before the tail: recovery must report the
// segment and offset, skip only the damaged record, and keep the rest.
func TestCorruption(t *testing.T) {
	tests := []struct {
		name     string
		victim   uint64 // the message whose record is damaged
		lastSeg  bool   // victim in the last segment (else an older one)
		at       func(off, n int64) int64
		wantLost bool
	}{
		{"body byte, older segment", 2, false, func(off, n int64) int64 { return off + n - 10 }, true},
		{"body byte, last segment", 10, true, func(off, n int64) int64 { return off + n/2 }, true},
		{"length field, last segment", 10, true, func(off, n int64) int64 { return off + 9 }, true},
		{"magic, older segment", 3, false, func(off, n int64) int64 { return off }, true},
		{"segment header, older segment", 1, false, func(off, n int64) int64 { return 13 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Five messages of 1 KB in each 4 KB segment.
			s := openSpool(t, dir, Options{SegmentSize: 4 << 10, NoSync: true})
			var mids []uint64
			for mid := uint64(1); mid <= 12; mid++ {
				commit(t, s, testEnvelope(mid, 1), testBody(mid, 1024))
				mids = append(mids, mid)
			}
			e := s.x.msgs[tt.victim]
			seg, at := e.seg.path, tt.at(e.off, e.n)
			if isLast := e.seg == s.x.current(); isLast != tt.lastSeg {
				t.Fatalf("victim in last segment = %v, want %v", isLast, tt.lastSeg)
			}
			recOff := e.off
			closeSpool(t, s)
			flipByte(t, seg, at)

			s = openSpool(t, dir, Options{NoSync: true})
			defer closeSpool(t, s)
			rec := s.Recovery()
			if len(rec.Corrupt) != 1 {
				t.Fatalf("Recovery.Corrupt = %v, want one region", rec.Corrupt)
			}
			ce := rec.Corrupt[0]
			wantOff := recOff
			if !tt.wantLost {
				wantOff = 0
			}
			if ce.Segment != seg || ce.Offset != wantOff {
				t.Errorf("corruption reported at %s offset %d, want %s offset %d", ce.Segment, ce.Offset, seg, wantOff)
			}
			if rec.Truncated != 0 {
				t.Errorf("Truncated = %d: damage before valid records is not a torn tail", rec.Truncated)
			}
			if !strings.Contains(ce.Error(), filepath.Base(seg)) || !strings.Contains(ce.Error(), fmt.Sprint(wantOff)) {
				t.Errorf("error %q does not name the segment and offset", ce)
			}
			kept, err := os.ReadFile(filepath.Join(dir, "corrupt", fmt.Sprintf("%s-%d", filepath.Base(seg), wantOff)))
			if err != nil || int64(len(kept)) != ce.Length {
				t.Errorf("corrupt bytes kept: %d bytes, %v; want %d", len(kept), err, ce.Length)
			}
			for _, mid := range mids {
				if mid == tt.victim && tt.wantLost {
					if _, _, err := s.Read(mid); !errors.Is(err, ErrNotFound) {
						t.Errorf("damaged MID %d: Read error %v, want ErrNotFound", mid, err)
					}
					continue
				}
				checkMessage(t, s, testEnvelope(mid, 1), testBody(mid, 1024))
			}
			commit(t, s, testEnvelope(100, 1), testBody(100, 10))
		})
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// TestReadDetectsRot: damage after Open is caught by Read's checksum check.
func TestReadDetectsRot(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{NoSync: true})
	defer closeSpool(t, s)
	commit(t, s, testEnvelope(1, 1), testBody(1, 2000))
	e := s.x.msgs[1]
	flipByte(t, e.seg.path, e.off+e.n-1)
	var ce *CorruptError
	if _, _, err := s.Read(1); !errors.As(err, &ce) || ce.Offset != e.off {
		t.Errorf("Read after damage: %v, want a CorruptError at offset %d", err, e.off)
	}
	// Head reads the envelope only: damage there is seen in its structure.
	flipByte(t, e.seg.path, e.off+recHeaderSize)
	if _, _, _, err := s.Head(1, 0); !errors.As(err, &ce) || ce.Offset != e.off {
		t.Errorf("Head after damage to the envelope: %v, want a CorruptError at offset %d", err, e.off)
	}
	if _, _, _, err := s.Head(2, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head of a MID never committed: %v, want ErrNotFound", err)
	}
}

func TestConcurrentCommit(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{SegmentSize: 256 << 10})
	const workers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				mid := uint64(w*each + i + 1)
				if err := s.Commit(context.Background(), testEnvelope(mid, 1+i%3), testBody(mid, 1024)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := s.Stats()
	t.Logf("%d commits in %d batches, %d fsyncs", st.Records, st.Batches, st.Syncs)
	if st.Records != workers*each || st.Syncs >= st.Records {
		t.Errorf("Stats = %+v: want %d records sharing fewer fsyncs", st, workers*each)
	}
	closeSpool(t, s)

	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if n := len(s.Messages()); n != workers*each {
		t.Fatalf("%d messages after reopen, want %d", n, workers*each)
	}
	for mid := uint64(1); mid <= workers*each; mid++ {
		i := int(mid-1) % each
		checkMessage(t, s, testEnvelope(mid, 1+i%3), testBody(mid, 1024))
	}
}

func TestRecipientState(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	ctx := context.Background()
	commit(t, s, testEnvelope(1, 3), testBody(1, 100))
	last := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	delayed := RecipientState{Status: Pending, Attempts: 2, Last: last, Next: last.Add(2 * time.Minute),
		Reason: "4.3.2 - Not accepting messages at this time ('421', ['4.3.2 try again later'])"}
	done := RecipientState{Status: Delivered, Attempts: 1, Last: last, Reason: "250 2.0.0 Ok: queued as 3jjSKc6HnKz4GTHJ"}
	if err := s.SetRecipientState(ctx, 1, []int{0, 2}, delayed); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecipientState(ctx, 1, []int{0}, done); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		mid  uint64
		rids []int
		st   RecipientState
	}{
		{2, []int{0}, done},                         // no such message
		{1, []int{3}, done},                         // no such RID
		{1, nil, done},                              // no RIDs
		{1, []int{1}, RecipientState{Status: 9}},    // no such status
		{1, []int{1}, RecipientState{Attempts: -1}}, // negative count
	} {
		if err := s.SetRecipientState(ctx, bad.mid, bad.rids, bad.st); err == nil {
			t.Errorf("SetRecipientState(%d, %v, %+v) succeeded", bad.mid, bad.rids, bad.st)
		}
	}
	want := map[int]RecipientState{0: done, 1: {}, 2: delayed}
	check := func(when string) {
		t.Helper()
		got, err := s.RecipientStates(1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d states, want %d", when, len(got), len(want))
		}
		for rid, w := range want {
			g := got[rid]
			if g.Status != w.Status || g.Attempts != w.Attempts || !g.Last.Equal(w.Last) || !g.Next.Equal(w.Next) || g.Reason != w.Reason {
				t.Errorf("%s: RID %d state %+v, want %+v", when, rid, g, w)
			}
		}
	}
	check("before reopen")
	checkWalk(t, s)
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	check("after reopen")
	checkWalk(t, s)
	if err := s.Finish(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecipientStates(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecipientStates after Finish: %v, want ErrNotFound", err)
	}
	if err := s.Finish(ctx, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Finish: %v, want ErrNotFound", err)
	}
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if got := s.Messages(); len(got) != 0 {
		t.Errorf("finished message back after reopen: %v", got)
	}
}

// checkWalk checks Walk against what the spool's files and the other
// accessors say: every live message once, in commit order by Seq, with its
// envelope's arrival and recipients and their states.
func checkWalk(t *testing.T, s *Spool) {
	t.Helper()
	var got []LiveMessage
	s.Walk(func(m *LiveMessage) {
		c := *m
		c.Rcpts = slices.Clone(m.Rcpts)
		got = append(got, c)
	})
	slices.SortFunc(got, func(a, b LiveMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	mids := make([]uint64, len(got))
	for i, m := range got {
		mids[i] = m.MID
	}
	if want := s.Messages(); !slices.Equal(mids, want) {
		t.Fatalf("Walk's MIDs by Seq %v, Messages %v", mids, want)
	}
	for _, m := range got {
		env, _, _, err := s.Head(m.MID, 0)
		if err != nil {
			t.Fatal(err)
		}
		states, err := s.RecipientStates(m.MID)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Received.Equal(env.Received) || len(m.Rcpts) != len(env.Rcpts) {
			t.Fatalf("MID %d: Walk says received %v with %d recipients, the envelope %v with %d",
				m.MID, m.Received, len(m.Rcpts), env.Received, len(env.Rcpts))
		}
		for i, r := range m.Rcpts {
			w := env.Rcpts[i]
			st := states[w.RID]
			if r.RID != w.RID || r.Domain != strings.ToLower(w.Addr[strings.LastIndexByte(w.Addr, '@')+1:]) || r.State.Status != st.Status || r.State.Attempts != st.Attempts ||
				!r.State.Next.Equal(st.Next) || r.State.Reason != st.Reason {
				t.Errorf("MID %d: Walk's recipient %+v, the spool's RID %d <%s> %+v", m.MID, r, w.RID, w.Addr, st)
			}
		}
	}
}

// segFiles lists the segment files in dir.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestFinishDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSpool(t, dir, Options{SegmentSize: 8 << 10})
	for mid := uint64(1); mid <= 40; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 1000))
	}
	before := segFiles(t, dir)
	if len(before) < 5 {
		t.Fatalf("only %d segments", len(before))
	}
	first := s.x.msgs[1].seg.path
	// Finish the first 30: their segments hold nothing live any more.
	for mid := uint64(1); mid <= 30; mid++ {
		if err := s.Finish(ctx, mid); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "spent segments deleted", func() bool {
		_, err := os.Stat(first)
		return errors.Is(err, os.ErrNotExist)
	})
	after := segFiles(t, dir)
	if len(after) >= len(before) {
		t.Errorf("segments before %v, after %v", before, after)
	}
	if st := s.Stats(); st.Deleted == 0 || st.Segments != len(after) {
		t.Errorf("Stats = %+v with %d files", st, len(after))
	}
	closeSpool(t, s)

	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	want := []uint64{31, 32, 33, 34, 35, 36, 37, 38, 39, 40}
	if got := s.Messages(); !slices.Equal(got, want) {
		t.Errorf("Messages() after reopen = %v, want %v", got, want)
	}
	for _, mid := range want {
		checkMessage(t, s, testEnvelope(mid, 1), testBody(mid, 1000))
	}
}

// TestFinishOutlivesOlderCopy: a finish record must stay on disk as long as
// an older segment still holds the message, or the message would come back.
func TestFinishOutlivesOlderCopy(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// 3 KB messages in 8 KB segments: three messages fill a segment.
	s := openSpool(t, dir, Options{SegmentSize: 8 << 10})
	body := func(mid uint64) []byte { return testBody(mid, 3<<10) }
	segOf := func(mid uint64) *segment {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.x.msgs[mid].seg
	}
	finish := func(mids ...uint64) {
		t.Helper()
		for _, mid := range mids {
			if err := s.Finish(ctx, mid); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, mid := range []uint64{1, 2, 3, 10, 11, 12} {
		commit(t, s, testEnvelope(mid, 1), body(mid))
	}
	a, b := segOf(1), segOf(10)
	if segOf(3) != a || segOf(12) != b || a == b {
		t.Fatal("layout: want 1-3 in segment A, 10-12 in segment B")
	}
	// Segment C: the finish records of 1 (whose record is in A, kept by
	// the live 2 and 3) and of 10-12 (compaction may move the last of them
	// here first), then messages until C is full; they finish in D.
	finish(1, 10, 11, 12)
	var inC []uint64
	var c *segment
	last := uint64(13)
	for ; ; last++ {
		commit(t, s, testEnvelope(last, 1), body(last))
		if c == nil {
			c = segOf(last)
		}
		if segOf(last) != c {
			break
		}
		inC = append(inC, last)
	}
	if c == b || c == a {
		t.Fatal("layout: want a third segment")
	}
	finish(inC...)
	// B and C hold nothing live: both go, C once compaction has re-emitted
	// the finish record that hides MID 1 in A into the current segment.
	wait.Until(t, "segments B and C deleted", func() bool {
		_, errB := os.Stat(b.path)
		_, errC := os.Stat(c.path)
		return errors.Is(errB, os.ErrNotExist) && errors.Is(errC, os.ErrNotExist)
	})
	if _, err := os.Stat(a.path); err != nil {
		t.Fatalf("segment A with live messages is gone: %v", err)
	}
	closeSpool(t, s)

	s = openSpool(t, dir, Options{})
	if _, _, err := s.Read(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finished MID 1 is back after reopen (Read: %v)", err)
	}
	// Once 2 and 3 finish, A goes, and everything else but the last.
	finish(2, 3)
	wait.Until(t, "segment A deleted", func() bool {
		_, err := os.Stat(a.path)
		return errors.Is(err, os.ErrNotExist)
	})
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if got := s.Messages(); !slices.Equal(got, []uint64{last}) {
		t.Errorf("Messages() = %v, want [%d]", got, last)
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSpool(t, dir, Options{SegmentSize: 16 << 10})
	const n = 60
	for mid := uint64(1); mid <= n; mid++ {
		commit(t, s, testEnvelope(mid, 2), testBody(mid, 1000))
	}
	// A long-lived message in each old segment, with a recipient state
	// that must survive the move; everything else finishes.
	keep := map[uint64]bool{}
	for _, g := range s.x.segs[:len(s.x.segs)-1] {
		keep[g.mids[0]] = true
	}
	st := RecipientState{Status: Pending, Attempts: 3, Next: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reason: "4.4.1 timeout"}
	for mid := range keep {
		if err := s.SetRecipientState(ctx, mid, []int{1}, st); err != nil {
			t.Fatal(err)
		}
	}
	old := segFiles(t, dir)
	for mid := uint64(1); mid <= n; mid++ {
		if !keep[mid] {
			if err := s.Finish(ctx, mid); err != nil {
				t.Fatal(err)
			}
		}
	}
	wait.Until(t, "old segments compacted away", func() bool {
		files := segFiles(t, dir)
		return !slices.ContainsFunc(old[:len(old)-1], func(f string) bool { return slices.Contains(files, f) })
	})
	if st := s.Stats(); st.Copied < uint64(len(keep)) {
		t.Errorf("Stats.Copied = %d, want at least %d", st.Copied, len(keep))
	}
	check := func(when string) {
		t.Helper()
		if got := len(s.Messages()); got != len(keep) {
			t.Fatalf("%s: %d messages, want %d", when, got, len(keep))
		}
		for mid := range keep {
			checkMessage(t, s, testEnvelope(mid, 2), testBody(mid, 1000))
			states, err := s.RecipientStates(mid)
			if err != nil {
				t.Fatal(err)
			}
			if g := states[1]; g.Attempts != 3 || !g.Next.Equal(st.Next) || g.Reason != st.Reason || states[0] != (RecipientState{}) {
				t.Errorf("%s: MID %d states %+v", when, mid, states)
			}
		}
	}
	check("after compaction")
	checkWalk(t, s)
	order := s.Messages()
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	check("after reopen")
	checkWalk(t, s)
	if got := s.Messages(); !slices.Equal(got, order) {
		t.Errorf("commit order changed by compaction and reopen: %v, was %v", got, order)
	}
}

// TestFsyncFailure: a failed fsync fails every record of its batch, and the
// spool accepts nothing more, though it still reads.
func TestFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	commit(t, s, testEnvelope(1, 1), testBody(1, 100))

	// The first batch's sync fails; the second batch's, which runs beside
	// it, succeeds, and must not be believed: after a failed fsync the
	// kernel may have dropped pages of both. The rest queue behind them.
	release := make(chan struct{})
	entered := make(chan int, 2)
	var mu sync.Mutex
	calls := 0
	s.syncFile = func(f *os.File) error {
		mu.Lock()
		calls++
		call := calls
		mu.Unlock()
		if call <= 2 {
			entered <- call
			<-release
		}
		if call == 2 {
			return fdatasync(f)
		}
		return errors.New("EIO (injected)")
	}
	const n = 10
	errs := make(chan error, n)
	go func() { errs <- s.Commit(context.Background(), testEnvelope(2, 1), testBody(2, 100)) }()
	<-entered
	go func() { errs <- s.Commit(context.Background(), testEnvelope(3, 1), testBody(3, 100)) }()
	<-entered
	for mid := uint64(4); mid < 2+n; mid++ {
		go func() { errs <- s.Commit(context.Background(), testEnvelope(mid, 1), testBody(mid, 100)) }()
	}
	wait.Until(t, "commits queued", func() bool {
		s.qmu.Lock()
		defer s.qmu.Unlock()
		return len(s.queue) == n-2
	})
	close(release)
	for range n {
		if err := <-errs; !errors.Is(err, ErrFailed) {
			t.Errorf("Commit during failure: %v, want ErrFailed", err)
		}
	}
	if err := s.Commit(context.Background(), testEnvelope(50, 1), nil); !errors.Is(err, ErrFailed) {
		t.Errorf("Commit after failure: %v, want ErrFailed", err)
	}
	if err := s.Finish(context.Background(), 1); !errors.Is(err, ErrFailed) {
		t.Errorf("Finish after failure: %v, want ErrFailed", err)
	}
	checkMessage(t, s, testEnvelope(1, 1), testBody(1, 100))
	if got := s.Messages(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("Messages() = %v: failed commits must not enter the index", got)
	}
	if err := s.Close(); !errors.Is(err, ErrFailed) {
		t.Errorf("Close: %v, want the failure", err)
	}
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	checkMessage(t, s, testEnvelope(1, 1), testBody(1, 100))
	commit(t, s, testEnvelope(51, 1), testBody(51, 10))
}

// TestCommitCanceled: a Commit whose context ends while it waits in the
// queue returns at once and writes nothing.
func TestCommitCanceled(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	// Two batches in flight, their syncs held: the next record waits in
	// the queue.
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	var mu sync.Mutex
	held := 0
	s.syncFile = func(f *os.File) error {
		mu.Lock()
		held++
		hold := held <= 2
		mu.Unlock()
		if hold {
			entered <- struct{}{}
			<-release
		}
		return f.Sync()
	}
	first := make(chan error, 2)
	go func() { first <- s.Commit(context.Background(), testEnvelope(1, 1), testBody(1, 100)) }()
	<-entered
	go func() { first <- s.Commit(context.Background(), testEnvelope(4, 1), testBody(4, 100)) }()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- s.Commit(ctx, testEnvelope(2, 1), testBody(2, 100)) }()
	wait.Until(t, "second commit queued", func() bool {
		s.qmu.Lock()
		defer s.qmu.Unlock()
		return len(s.queue) == 1
	})
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Commit: %v", err)
	}
	close(release)
	for range 2 {
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, testEnvelope(3, 1), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a done context: %v", err)
	}
	// MID 2 is free again: the canceled commit left nothing behind.
	commit(t, s, testEnvelope(2, 1), testBody(2, 50))
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if got := s.Messages(); !slices.Equal(got, []uint64{1, 4, 2}) {
		t.Errorf("Messages() = %v, want [1 4 2]", got)
	}
	checkMessage(t, s, testEnvelope(2, 1), testBody(2, 50))
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{NoSync: true})
	s2, err := Open(dir, Options{NoSync: true, Logger: quiet})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a spool in use succeeded")
	}
	// The error names the holder, so that an administrator can stop it.
	if want := fmt.Sprintf("(PID %d; stop it first, e.g. kill %d)", os.Getpid(), os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder %q", err, want)
	}
	closeSpool(t, s)
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Commit(context.Background(), testEnvelope(1, 1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if _, _, err := s.Read(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	closeSpool(t, openSpool(t, dir, Options{NoSync: true}))
}

// TestMemoryBoundedByIndex: reopening a spool full of large messages must
// not bring their bodies into memory.
func TestMemoryBoundedByIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MB")
	}
	dir := t.TempDir()
	s := openSpool(t, dir, Options{NoSync: true})
	const n, size = 512, 256 << 10
	body := testBody(1, size)
	for mid := uint64(1); mid <= n; mid++ {
		commit(t, s, testEnvelope(mid, 1), body)
	}
	closeSpool(t, s)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s = openSpool(t, dir, Options{NoSync: true})
	defer closeSpool(t, s)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KB for %d messages of %d KB", grown>>10, n, size>>10)
	if len(s.Messages()) != n {
		t.Fatalf("%d messages", len(s.Messages()))
	}
	if grown > n*size/16 {
		t.Errorf("heap grew by %d bytes for %d bytes of messages: bodies kept in memory?", grown, n*size)
	}
}

// TestSpaceBounded: with a steady stream where some messages stay queued
// for long, compaction and deletion keep the files within a small multiple
// of the live data, however much has passed through.
func TestSpaceBounded(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{SegmentSize: 64 << 10, NoSync: true})
	defer closeSpool(t, s)
	ctx := context.Background()
	var passed int64
	for mid := uint64(1); mid <= 8000; mid++ {
		body := testBody(mid, crashBodySize(mid))
		commit(t, s, testEnvelope(mid, 2), body)
		passed += int64(len(body))
		setState, finish := crashPlan(mid) // 5 in 8 finish at once, 3 stay
		if setState {
			if err := s.SetRecipientState(ctx, mid, []int{0}, crashState); err != nil {
				t.Fatal(err)
			}
		}
		if finish {
			if err := s.Finish(ctx, mid); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Let the writer finish the compaction it has planned.
	wait.Until(t, "compaction settled", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return !slices.ContainsFunc(s.x.segs, s.x.compactable)
	})
	st := s.Stats()
	t.Logf("%d KB passed, %d KB live in %d messages, %d KB in %d segment files; %d copied, %d deleted",
		passed>>10, st.LiveBytes>>10, st.Messages, st.Bytes>>10, st.Segments, st.Copied, st.Deleted)
	if st.Messages != 3000 {
		t.Errorf("%d live messages, want 3000", st.Messages)
	}
	if limit := 2*st.LiveBytes + 2*(64<<10); st.Bytes > limit {
		t.Errorf("segment files hold %d bytes for %d live: more than %d", st.Bytes, st.LiveBytes, limit)
	}
}

// TestCommitsReleasedInOrder: the commits overlap (a batch is written and
// synced while the sync before it runs), but a commit returns only once
// its own sync and every earlier batch's are done, and at most two
// batches are in flight.
func TestCommitsReleasedInOrder(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	defer closeSpool(t, s)
	commit(t, s, testEnvelope(1, 1), testBody(1, 100))
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before closeSpool, which waits for the writer
	synced := make(chan int, 8)
	var mu sync.Mutex
	calls := 0
	s.syncFile = func(f *os.File) error {
		mu.Lock()
		calls++
		call := calls
		mu.Unlock()
		if call == 1 {
			<-release // the first batch's sync takes its time
		}
		err := fdatasync(f)
		synced <- call
		return err
	}
	done := make([]chan error, 5)
	start := func(mid uint64) {
		done[mid] = make(chan error, 1)
		go func() { done[mid] <- s.Commit(context.Background(), testEnvelope(mid, 1), testBody(mid, 100)) }()
	}
	start(2)
	wait.Until(t, "the first batch syncing", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 1
	})
	start(3)
	select {
	case call := <-synced:
		if call != 2 {
			t.Fatalf("sync %d ended first, want the second batch's, beside the first", call)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no second batch was synced while the first one's sync ran")
	}
	// Two batches in flight: the next record waits for the first.
	start(4)
	wait.Until(t, "MID 4 queued", func() bool {
		s.qmu.Lock()
		defer s.qmu.Unlock()
		return len(s.queue) == 1
	})
	select {
	case err := <-done[3]:
		t.Fatalf("MID 3's commit returned (%v) while the batch before it was still syncing", err)
	default:
	}
	if got := s.Messages(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("Messages() = %v while the first batch syncs, want [1]", got)
	}
	free()
	for mid := 2; mid <= 4; mid++ {
		if err := <-done[mid]; err != nil {
			t.Errorf("MID %d: %v", mid, err)
		}
	}
	if got := s.Messages(); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("Messages() = %v, want [1 2 3 4]", got)
	}
}

// TestPreparedSegment: the segment after the current one is made ahead,
// zero-filled to its full size and synced off the commit path, so that a
// roll only renames it; a spool that closes removes one it did not use,
// and what was committed is all there again.
func TestPreparedSegment(t *testing.T) {
	dir := t.TempDir()
	const segSize = 4 << 20
	s := openSpool(t, dir, Options{SegmentSize: segSize})
	var mids []uint64
	for mid := uint64(1); s.Stats().Segments < 2; mid++ {
		if mid > 200 {
			t.Fatal("no second segment after 200 messages of 64 KiB")
		}
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 64<<10))
		mids = append(mids, mid)
	}
	fi, err := os.Stat(filepath.Join(dir, segName(2)))
	if err != nil {
		t.Fatal(err)
	}
	// An inline segment is zero-filled a mebibyte at a time, by the commits.
	if fi.Size() != segSize {
		t.Errorf("segment 2 is %d bytes after its first batch, want the prepared %d", fi.Size(), segSize)
	}
	closeSpool(t, s)
	if files := stageFiles(t, dir); len(files) > 0 {
		t.Errorf("stage files left after Close: %v", files)
	}
	s = openSpool(t, dir, Options{SegmentSize: segSize})
	defer closeSpool(t, s)
	if got := s.Messages(); !slices.Equal(got, mids) {
		t.Errorf("Messages() = %v, want %v", got, mids)
	}
	checkMessage(t, s, testEnvelope(mids[len(mids)-1], 1), testBody(mids[len(mids)-1], 64<<10))
}

// TestIndexDomains: recipients of one domain share its string, whatever
// the case of their addresses, and the interning map stays bounded.
func TestIndexDomains(t *testing.T) {
	var x index
	a, b := x.domain("a@Example.COM"), x.domain("b@example.com")
	if a != "example.com" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("domains %q and %q are not one shared string", a, b)
	}
	if d := x.domain("postmaster"); d != "" {
		t.Errorf("domain of an address without '@': %q", d)
	}
	for i := range 3 * maxDomains {
		x.domain(fmt.Sprintf("u@d%d.example", i))
	}
	if len(x.domains) > maxDomains {
		t.Errorf("%d domains interned, want at most %d", len(x.domains), maxDomains)
	}
}
