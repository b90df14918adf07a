package queue

import (
	"errors"
	"io"
)

// compactStreamAt is the record size above which compaction copies a
// message between files instead of through memory, so that moving a large
// message costs the writer no more memory than moving a small one. A
// variable for the tests.
var compactStreamAt int64 = 256 << 10

// streamedCopy prepares the copy of a large live message: its checksum is
// verified by reading it through, and only the record header is kept,
// rewritten when the record was written under another salt.
func (s *Spool) streamedCopy(e *entry) (copyRec, error) {
	env, m, err := openMessage(e.seg, e.off, e.n)
	if err != nil {
		return copyRec{}, err
	}
	// m is not Closed: it holds no reference of its own here, and the
	// segment lives as long as the writer keeps it.
	buf := make([]byte, 256<<10)
	for {
		_, err := m.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return copyRec{}, err
		}
	}
	hdr := make([]byte, recHeaderSize)
	if _, err := e.seg.f.ReadAt(hdr, e.off); err != nil {
		return copyRec{}, err
	}
	h, ok := parseRecHeader(hdr, e.seg.salt)
	if !ok {
		return copyRec{}, &CorruptError{Segment: e.seg.path, Offset: e.off, Length: e.n, Err: errors.New("bad record header")}
	}
	if e.seg.salt != s.salt {
		// The payload's CRC is seeded with the salt; CRC being affine, the
		// one under the new salt follows from the old without the bytes.
		c := h.crc ^ crcShift(e.seg.salt^s.salt, h.n)
		putRecHeader(hdr, s.salt, recMessage, int(h.n), c)
	}
	return copyRec{mid: env.MID, rec: hdr, env: env, seq: m.seq,
		src: e.seg, srcOff: e.off + recHeaderSize, tail: h.n}, nil
}
