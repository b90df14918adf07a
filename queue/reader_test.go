package queue

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// Reader streams the same body Read returns, for envelopes that fit the
// first read and one that does not, and bodies from empty to larger than
// any buffer.
func TestReaderStreams(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{NoSync: true})
	defer closeSpool(t, s)
	cases := []struct {
		rcpts, size int
	}{{1, 0}, {1, 1}, {2, 5000}, {1000, 3000}, {2, 3 << 20}}
	for i, tc := range cases {
		mid := uint64(i + 1)
		env, body := testEnvelope(mid, tc.rcpts), testBody(mid, tc.size)
		commit(t, s, env, body)
		got, m, err := s.Reader(mid)
		if err != nil {
			t.Fatalf("Reader MID %d: %v", mid, err)
		}
		sameEnvelope(t, got, env)
		if m.Size() != int64(len(body)) {
			t.Errorf("MID %d: Size %d, want %d", mid, m.Size(), len(body))
		}
		// In small reads, so that the checksum is carried across them.
		b, err := io.ReadAll(iotest.HalfReader(m))
		if err != nil || !bytes.Equal(b, body) {
			t.Errorf("MID %d: read %d bytes, %v; want %d bytes", mid, len(b), err, len(body))
		}
		m.Close()
		m.Close()
		if _, err := m.Read(make([]byte, 1)); err == nil {
			t.Errorf("MID %d: Read after Close succeeded", mid)
		}
	}
	if _, _, err := s.Reader(999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reader of a MID never committed: %v, want ErrNotFound", err)
	}
}

// Damage to the body is reported at the end of the stream, where io.EOF
// would have been.
func TestReaderDetectsRot(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{NoSync: true})
	defer closeSpool(t, s)
	body := testBody(1, 100<<10)
	commit(t, s, testEnvelope(1, 1), body)
	e := s.x.msgs[1]
	flipByte(t, e.seg.path, e.off+e.n-100)
	_, m, err := s.Reader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := io.ReadAll(m)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != e.off {
		t.Errorf("reading a damaged body: %v, want a CorruptError at offset %d", err, e.off)
	}
	if len(b) != len(body) {
		t.Errorf("read %d bytes before the error, want %d", len(b), len(body))
	}
}
