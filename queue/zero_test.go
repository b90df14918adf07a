package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// copyDir copies the segment files of a spool that is still open: the state
// a crash would leave, zeros ahead and all.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(from, "*.seg"))
	if err != nil || len(names) == 0 {
		t.Fatalf("segments in %s: %v %v", from, names, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(n)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The current segment is kept written with zeros ahead of its appends; a
// crash leaves them, and recovery must read them as free space: no
// corruption, nothing "torn", every message whole.
func TestZerosAheadAreFreeSpace(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	for mid := uint64(1); mid <= 20; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 700))
	}
	seg := filepath.Join(dir, segName(1))
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != zeroAhead {
		t.Errorf("current segment is %d bytes, want the zeroed stretch of %d", fi.Size(), zeroAhead)
	}
	b, _ := os.ReadFile(seg)
	if end := s.x.current().size; !bytes.Equal(b[end:], make([]byte, len(b)-int(end))) {
		t.Error("the stretch ahead of the appends is not zeros")
	}

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	c := openSpool(t, crashed, Options{})
	rec := c.Recovery()
	if len(rec.Corrupt) != 0 || rec.Truncated != 0 || rec.Messages != 20 {
		t.Errorf("recovery of a crashed spool: %+v", rec)
	}
	for mid := uint64(1); mid <= 20; mid++ {
		checkMessage(t, c, testEnvelope(mid, 1), testBody(mid, 700))
	}
	commit(t, c, testEnvelope(21, 1), testBody(21, 700)) // and it goes on
	closeSpool(t, c)

	// A clean Close trims the zeros.
	closeSpool(t, s)
	if fi, _ := os.Stat(seg); fi.Size() >= zeroAhead {
		t.Errorf("closed segment is %d bytes: not trimmed", fi.Size())
	}
}

// A segment that rolled but whose trim was lost in a crash has zeros at
// its end although it is not the last: still free space, not damage.
func TestLostTrimOfOlderSegment(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{SegmentSize: 4096})
	for mid := uint64(1); mid <= 12; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 1000))
	}
	closeSpool(t, s)
	first := filepath.Join(dir, segName(1))
	f, err := os.OpenFile(first, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 100000))
	f.Close()
	if names, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(names) < 2 {
		t.Fatalf("want several segments, have %v", names)
	}
	s = openSpool(t, dir, Options{SegmentSize: 4096})
	defer closeSpool(t, s)
	if rec := s.Recovery(); len(rec.Corrupt) != 0 {
		t.Errorf("zeros after an older segment's records reported as damage: %+v", rec.Corrupt[0])
	}
	for mid := uint64(1); mid <= 12; mid++ {
		checkMessage(t, s, testEnvelope(mid, 1), testBody(mid, 1000))
	}
}
