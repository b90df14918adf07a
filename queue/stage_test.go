package queue

import (
	"context"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// stage writes body to a new stage in chunks of varied size, as a session
// copying a message would.
func stage(t testing.TB, s *Spool, body []byte, seed uint64) *Stage {
	t.Helper()
	st, err := s.NewStage()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for p := body; len(p) > 0; {
		k := min(len(p), 1+r.IntN(40<<10))
		if _, err := st.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if st.Size() != int64(len(body)) {
		t.Fatalf("Size = %d, want %d", st.Size(), len(body))
	}
	return st
}

func TestCRCConcat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 3<<20)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for _, cut := range []int{0, 1, 100, 1 << 20, 1<<20 + 1, 3<<20 - 5, 3 << 20} {
		salt := r.Uint32()
		want := crc(salt, b)
		got := crcConcat(crc(salt, b[:cut]), crc32.Update(0, castagnoli, b[cut:]), int64(len(b)-cut))
		if got != want {
			t.Errorf("cut at %d: crcConcat = %08x, want %08x", cut, got, want)
		}
	}
}

// A staged message is an ordinary record: read back whole and by its
// head, before and after a reopen (whose recovery checks its CRC), among
// small messages committed at the same time.
func TestStageCommit(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{SegmentSize: 4 << 20})
	sizes := []int{0, 1, 100 << 10, 3<<20 + 7, 9 << 20}
	var wg sync.WaitGroup
	for i, size := range sizes {
		mid := uint64(1 + i)
		wg.Go(func() {
			st := stage(t, s, testBody(mid, size), mid)
			if err := s.CommitStage(context.Background(), testEnvelope(mid, 2), st); err != nil {
				t.Errorf("CommitStage MID %d: %v", mid, err)
			}
		})
		wg.Go(func() { commit(t, s, testEnvelope(100+mid, 1), testBody(100+mid, 2000)) })
	}
	wg.Wait()
	check := func() {
		for i, size := range sizes {
			mid := uint64(1 + i)
			checkMessage(t, s, testEnvelope(mid, 2), testBody(mid, size))
			checkMessage(t, s, testEnvelope(100+mid, 1), testBody(100+mid, 2000))
		}
	}
	check()
	closeSpool(t, s)
	s = openSpool(t, dir, Options{SegmentSize: 4 << 20})
	defer closeSpool(t, s)
	if rec := s.Recovery(); rec.Messages != 2*len(sizes) || len(rec.Corrupt) > 0 || rec.Truncated > 0 {
		t.Errorf("recovery %+v, want %d messages and nothing damaged", rec, 2*len(sizes))
	}
	check()
	if files := stageFiles(t, dir); len(files) > 0 {
		t.Errorf("stage files left: %v", files)
	}
}

func stageFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// A stage that is not committed leaves nothing: not a message, not a file,
// whether it is aborted, the spool closes under it, or a crash left its
// file behind.
func TestStageNotCommitted(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	aborted := stage(t, s, testBody(1, 200<<10), 1)
	aborted.Abort()
	if err := s.CommitStage(context.Background(), testEnvelope(1, 1), aborted); err == nil {
		t.Error("CommitStage of an aborted stage succeeded")
	}
	open := stage(t, s, testBody(2, 200<<10), 2)
	if files := stageFiles(t, dir); len(files) > 0 {
		t.Errorf("a stage has a name in the spool directory: %v", files)
	}
	closeSpool(t, s)
	if _, err := s.NewStage(); err == nil {
		t.Error("NewStage on a closed spool succeeded")
	}
	if err := s.CommitStage(context.Background(), testEnvelope(2, 1), open); err == nil {
		t.Error("CommitStage on a closed spool succeeded")
	}
	// What a crash between creating and unlinking a stage leaves.
	if err := os.WriteFile(filepath.Join(dir, stagePrefix+"123"), testBody(3, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if mids := s.Messages(); len(mids) > 0 {
		t.Errorf("messages %v after stages that were never committed", mids)
	}
	if files := stageFiles(t, dir); len(files) > 0 {
		t.Errorf("stage files left after Open: %v", files)
	}
}

// A staged message committed after a head (the header fields the
// receiving side writes once the message has arrived) is the head then
// the stage, and its envelope keeps Auth (a version 2 payload), before and
// after a reopen; one without Auth is still written as version 1.
func TestStageCommitAfter(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{SegmentSize: 4 << 20})
	head := []byte("Authentication-Results: mx.test; spf=pass smtp.mailfrom=a@example.net\r\n")
	type msg struct {
		env  *Envelope
		body []byte
	}
	var msgs []msg
	for i, size := range []int{0, 100 << 10, 3<<20 + 7} {
		env := testEnvelope(uint64(40+i), 2)
		if i > 0 {
			env.Auth = []byte(`{"spf":[{"identity":"mailfrom","result":"pass"}]}`)
		}
		rest := testBody(env.MID, size)
		if err := s.CommitStageAfter(context.Background(), env, head, stage(t, s, rest, uint64(i))); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg{env, append(append([]byte(nil), head...), rest...)})
	}
	plain := testEnvelope(50, 1)
	commit(t, s, plain, testBody(50, 10))
	msgs = append(msgs, msg{plain, testBody(50, 10)})
	for _, m := range msgs {
		checkMessage(t, s, m.env, m.body)
	}
	closeSpool(t, s)
	s = openSpool(t, dir, Options{SegmentSize: 4 << 20})
	defer closeSpool(t, s)
	if r := s.Recovery(); len(r.Corrupt) > 0 {
		t.Fatalf("recovery found damage: %+v", r)
	}
	for _, m := range msgs {
		checkMessage(t, s, m.env, m.body)
	}
	if b := appendMessagePrefix(nil, 1, plain); b[0] != payloadVersion {
		t.Errorf("an envelope without Auth is written as version %d", b[0])
	}
}
