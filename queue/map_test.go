//go:build unix

package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/wait"
)

// sink keeps a read the test makes for its fault from being compiled away.
var sink byte

// mapped counts the mappings of path in this process, from /proc/self/maps
// (-1 where there is no /proc: the check is skipped).
func mapped(path string) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return -1
	}
	return strings.Count(string(b), path)
}

// Map gives the bytes Read gives, for bodies read into memory (below
// mapMin) and mapped ones, records that start anywhere in a page, an
// envelope of many recipients, and bodies of several checksum chunks; its
// segment is held until Close, which unmaps, and may be called again.
func TestMapEqualsRead(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{NoSync: true})
	defer closeSpool(t, s)
	cases := []struct {
		rcpts, size int
	}{{1, 0}, {1, 100}, {1, mapMin - 1000}, {1, mapMin}, {1, mapMin + 1}, {1000, 100 << 10}, {2, 3 << 20}, {1, 5<<20 + 123}}
	for i, tc := range cases {
		mid := uint64(i + 1)
		env, body := testEnvelope(mid, tc.rcpts), testBody(mid, tc.size)
		commit(t, s, env, body)
		e := s.x.msgs[mid]
		refs := e.seg.refs.Load()
		m, err := s.Map(mid)
		if err != nil {
			t.Fatalf("Map MID %d: %v", mid, err)
		}
		if got := m.Bytes(); !bytes.Equal(got, body) {
			t.Errorf("MID %d: Bytes gives %d bytes, want the %d committed", mid, len(got), len(body))
		}
		if isMapped := m.mem != nil; isMapped != (e.n >= mapMin) {
			t.Errorf("MID %d (record of %d bytes): mapped %v, want %v", mid, e.n, isMapped, e.n >= mapMin)
		}
		if got := e.seg.refs.Load(); got != refs+1 {
			t.Errorf("MID %d: the segment has %d users while mapped, want %d", mid, got, refs+1)
		}
		if n := mapped(e.seg.path); m.mem != nil && n == 0 {
			t.Errorf("MID %d: no mapping of %s in /proc/self/maps", mid, e.seg.path)
		}
		if err := m.Close(); err != nil {
			t.Errorf("MID %d: Close: %v", mid, err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("MID %d: second Close: %v", mid, err)
		}
		if m.Bytes() != nil {
			t.Errorf("MID %d: Bytes after Close is not nil", mid)
		}
		if got := e.seg.refs.Load(); got != refs {
			t.Errorf("MID %d: the segment has %d users after Close, want %d", mid, got, refs)
		}
		if n := mapped(e.seg.path); n > 0 {
			t.Errorf("MID %d: %d mappings of %s left after Close", mid, n, e.seg.path)
		}
	}
	if _, err := s.Map(999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Map of a MID never committed: %v, want ErrNotFound", err)
	}
}

// Damage anywhere in the body, in the first checksum chunk, a later one
// or the last byte, is the CorruptError that Read returns, and leaves
// neither the segment held nor anything mapped.
func TestMapDetectsRot(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		at   func(n int64) int64 // the damaged byte, from the record's start
	}{
		{"copy", 2000, func(n int64) int64 { return n - 1 }},
		{"first chunk", 3 << 20, func(n int64) int64 { return recHeaderSize + 300 }},
		{"later chunk", 3 << 20, func(n int64) int64 { return mapChunk + 12345 }},
		{"last byte", 3<<20 + 7, func(n int64) int64 { return n - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSpool(t, t.TempDir(), Options{NoSync: true})
			defer closeSpool(t, s)
			// Another message first, so that the record starts within a page.
			commit(t, s, testEnvelope(1, 1), testBody(1, 333))
			commit(t, s, testEnvelope(2, 1), testBody(2, tc.size))
			e := s.x.msgs[2]
			flipByte(t, e.seg.path, e.off+tc.at(e.n))
			refs := e.seg.refs.Load()
			_, _, rerr := s.Read(2)
			m, err := s.Map(2)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Offset != e.off || ce.Length != e.n || ce.Err.Error() != "payload checksum mismatch" {
				t.Errorf("Map of a damaged body: %v, %v; want a CorruptError at offset %d as Read's: %v", m, err, e.off, rerr)
			}
			if got := e.seg.refs.Load(); got != refs {
				t.Errorf("the segment has %d users after a failed Map, want %d", got, refs)
			}
			if n := mapped(e.seg.path); n > 0 {
				t.Errorf("%d mappings of %s left after a failed Map", n, e.seg.path)
			}
		})
	}
}

// A mapped message's segment stays open while the message is finished,
// compacted away and its file deleted, and while the spool closes: the
// bytes stay readable until Close, which closes the file.
func TestMapHoldsSegment(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSpool(t, dir, Options{SegmentSize: 256 << 10})
	body := testBody(1, 200<<10)
	commit(t, s, testEnvelope(1, 1), body)
	g := s.x.msgs[1].seg
	m, err := s.Map(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for mid := uint64(2); mid <= 6; mid++ { // into later segments
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 100<<10))
	}
	wait.Until(t, "the finished message's segment deleted", func() bool {
		_, err := os.Stat(g.path)
		return errors.Is(err, os.ErrNotExist)
	})
	closeSpool(t, s)
	if _, err := g.f.Stat(); err != nil {
		t.Errorf("the segment's file, deleted and the spool closed, while mapped: %v, want it open", err)
	}
	if !bytes.Equal(m.Bytes(), body) {
		t.Error("the mapped bytes changed when the segment was deleted")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the segment's file after Close: %v, want it closed", err)
	}
	if _, err := s.Map(2); !errors.Is(err, ErrClosed) {
		t.Errorf("Map after the spool closed: %v, want ErrClosed", err)
	}
}

// A file cut short under a mapping (which the spool never does to a live
// record) faults on the pages it lost: Map returns an error instead of
// crashing, and IsFault tells a fault recovered in the holder's code as
// its mapping's and no other's.
func TestMapFault(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{NoSync: true})
	defer closeSpool(t, s)
	commit(t, s, testEnvelope(1, 1), testBody(1, 300<<10))
	commit(t, s, testEnvelope(2, 1), testBody(2, 300<<10))
	a, err := s.Map(1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := s.Map(2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := s.x.msgs[2]
	if err := os.Truncate(e.seg.path, e.off+recHeaderSize+100); err != nil {
		t.Fatal(err)
	}

	r := func() (r any) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { r = recover() }()
		body := b.Bytes()
		sink = body[len(body)-1]
		return nil
	}()
	if r == nil {
		t.Fatal("reading past the end of the cut file did not fault")
	}
	if !b.IsFault(r) {
		t.Errorf("IsFault(%v) of the mapping that faulted = false", r)
	}
	if a.IsFault(r) {
		t.Errorf("IsFault(%v) of another mapping = true", r)
	}
	if b.IsFault("boom") {
		t.Error("IsFault of a panic that is not a fault = true")
	}

	refs := e.seg.refs.Load()
	if m, err := s.Map(2); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("Map of a record cut short: %v, %v; want an error", m, err)
	}
	if got := e.seg.refs.Load(); got != refs {
		t.Errorf("the segment has %d users after a failed Map, want %d", got, refs)
	}
	if !bytes.Equal(a.Bytes(), testBody(1, 300<<10)) {
		t.Error("the first message's mapping changed")
	}
}

// residentKB is the resident size of the mapping of path in this process,
// from /proc/self/smaps (-1 where there is none to read).
func residentKB(t *testing.T, path string) int {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return -1
	}
	in := false
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-"):
			in = f[5] == path
		case in && len(f) == 3 && f[0] == "Rss:":
			var kb int
			if _, err := fmt.Sscan(f[1], &kb); err != nil {
				t.Fatalf("smaps: %q: %v", l, err)
			}
			return kb
		}
	}
	t.Fatalf("no mapping of %s in /proc/self/smaps", path)
	return 0
}

// Checking a large message's checksum does not leave it resident: the
// pages go back to the page cache a chunk at a time, and only those read
// again come back.
func TestMapLeavesPagesOut(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{NoSync: true})
	defer closeSpool(t, s)
	body := testBody(1, 8<<20)
	commit(t, s, testEnvelope(1, 1), body)
	m, err := s.Map(1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := s.x.msgs[1].seg.path
	kb := residentKB(t, path)
	if kb < 0 {
		t.Skip("no /proc/self/smaps")
	}
	if kb > mapChunk>>10 {
		t.Errorf("%d KiB of the 8 MiB mapping resident after Map, want at most %d", kb, mapChunk>>10)
	}
	if !bytes.Equal(m.Bytes(), body) {
		t.Fatal("the mapping's bytes differ from the body")
	}
	if kb := residentKB(t, path); kb < 8<<10 {
		t.Errorf("%d KiB resident after reading all 8 MiB: the measure does not see the pages", kb)
	}
}
