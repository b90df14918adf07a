package queue

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const segSuffix = ".seg"

func segName(seq uint64) string { return fmt.Sprintf("%010d%s", seq, segSuffix) }

// listSegments returns the sequence numbers of the segment files in dir,
// ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// scanner holds recovery's read buffers: the head of each payload (which
// holds any envelope whole) and a chunk buffer for streaming long bodies
// through the CRC, so that recovery's memory does not grow with messages.
type scanner struct {
	head  []byte
	chunk []byte
	win   []byte
}

func newScanner() *scanner {
	return &scanner{
		head:  make([]byte, maxEnvelope+64),
		chunk: make([]byte, 256<<10),
		win:   make([]byte, 64<<10),
	}
}

// recover rebuilds the index from the segment files.
func (s *Spool) recover() error {
	seqs, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("queue: recover: %w", err)
	}

	// The salt of the newest readable header is the spool's; it is also
	// the best guess for a segment whose own header is damaged.
	type segFile struct {
		seq    uint64
		f      *os.File
		size   int64
		salt   uint32
		hdrErr error
	}
	files := make([]segFile, 0, len(seqs))
	haveSalt := false
	for _, seq := range seqs {
		path := filepath.Join(s.dir, segName(seq))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			closeFiles(files, func(sf segFile) *os.File { return sf.f })
			return fmt.Errorf("queue: recover: %w", err)
		}
		sf := segFile{seq: seq, f: f}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			closeFiles(files, func(sf segFile) *os.File { return sf.f })
			return fmt.Errorf("queue: recover: %w", err)
		}
		sf.size = fi.Size()
		hdr := make([]byte, segHeaderSize)
		if _, err := f.ReadAt(hdr, 0); err != nil && err != io.EOF {
			f.Close()
			closeFiles(files, func(sf segFile) *os.File { return sf.f })
			return fmt.Errorf("queue: recover %s: %w", path, err)
		}
		hseq, salt, err := parseSegHeader(hdr)
		if err == nil && hseq != seq {
			err = fmt.Errorf("segment header says sequence %d", hseq)
		}
		if err == nil {
			sf.salt, s.salt, haveSalt = salt, salt, true
		}
		sf.hdrErr = err
		files = append(files, sf)
	}
	if !haveSalt {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			closeFiles(files, func(sf segFile) *os.File { return sf.f })
			return fmt.Errorf("queue: recover: %w", err)
		}
		s.salt = binary.LittleEndian.Uint32(b[:])
	}

	// A last file with no whole header is a crash while the segment was
	// being created: nothing in it was ever acknowledged.
	if n := len(files); n > 0 && files[n-1].hdrErr != nil && files[n-1].size <= segHeaderSize {
		sf := files[n-1]
		files = files[:n-1]
		sf.f.Close()
		if err := os.Remove(filepath.Join(s.dir, segName(sf.seq))); err != nil {
			closeFiles(files, func(sf segFile) *os.File { return sf.f })
			return fmt.Errorf("queue: recover: %w", err)
		}
	}

	sc := newScanner()
	for i, sf := range files {
		g := &segment{seq: sf.seq, path: filepath.Join(s.dir, segName(sf.seq)), f: sf.f, salt: sf.salt, size: sf.size, zeroEnd: sf.size}
		g.refs.Store(1)
		s.x.segs = append(s.x.segs, g)
		s.recovery.Segments++
		if sf.hdrErr != nil {
			g.salt = s.salt
			g.damaged = true
			s.corrupt(g, 0, segHeaderSize, sf.hdrErr)
		}
		last := i == len(files)-1 && !g.damaged
		if err := s.scan(sc, g, segHeaderSize, last); err != nil {
			closeFiles(files[i+1:], func(sf segFile) *os.File { return sf.f })
			return err
		}
	}

	// Appends go to the last segment only if its header is sound.
	if len(s.x.segs) == 0 || s.x.current().damaged {
		next := uint64(1)
		if len(seqs) > 0 {
			next = seqs[len(seqs)-1] + 1
		}
		if _, err := s.createSegment(next); err != nil {
			return err
		}
	}
	s.recovery.Splits = s.x.moveSplit()
	s.recovery.Bounces = s.x.bounceReported(s.dsns)
	s.dsns = nil
	s.liveBytes.Store(s.x.liveBytes())
	s.recovery.Messages = len(s.x.msgs)
	s.deleteDead()
	return s.failure()
}

func closeFiles[T any](ts []T, f func(T) *os.File) {
	for _, t := range ts {
		f(t).Close()
	}
}

func (x *index) liveBytes() int64 {
	var n int64
	for _, e := range x.msgs {
		n += e.n
	}
	return n
}

// scan replays the records of g from off. In the last segment a bad record
// with nothing valid after it is a torn write: it is cut off. Anywhere else
// bad bytes are reported and skipped up to the next valid record.
func (s *Spool) scan(sc *scanner, g *segment, off int64, last bool) error {
	size := g.size
	for off < size {
		h, head, err := sc.record(g, off, size)
		if err != nil {
			return err
		}
		if head != nil {
			if derr := s.replay(g, off, h, head); derr != nil {
				// Checksums good but the payload does not decode: a bug or
				// a newer format, not a torn write. Skip that one record.
				s.corrupt(g, off, recHeaderSize+h.n, derr)
			}
			s.recovery.Records++
			off += recHeaderSize + h.n
			continue
		}
		next, err := sc.resync(g, off+1, size)
		if err != nil {
			return err
		}
		if next < 0 {
			zero, err := allZero(g.f, off, size)
			if err != nil {
				return fmt.Errorf("queue: recover %s: %w", g.path, err)
			}
			if zero {
				// The zeros the writer keeps ahead of its appends: free
				// space, whether a crash left them or a lost trim.
				if err := g.f.Truncate(off); err != nil {
					return fmt.Errorf("queue: recover: trim %s: %w", g.path, err)
				}
				g.size, g.zeroEnd = off, off
				return nil
			}
		}
		if next < 0 && last {
			if err := g.f.Truncate(off); err != nil {
				return fmt.Errorf("queue: recover: truncate torn tail of %s: %w", g.path, err)
			}
			if !s.opts.NoSync {
				if err := s.syncFile(g.f); err != nil {
					return fmt.Errorf("queue: recover: fsync %s: %w", g.path, err)
				}
			}
			s.recovery.Truncated += size - off
			g.size, g.zeroEnd = off, off
			return nil
		}
		if next < 0 {
			next = size
		}
		s.corrupt(g, off, next-off, errors.New("bad record"))
		off = next
	}
	return nil
}

// allZero reports whether the bytes of f from off to end are all zero.
func allZero(f *os.File, off, end int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < end {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += int64(n)
		if err != nil && !(err == io.EOF && off >= end) {
			return false, err
		}
	}
	return true, nil
}

// corrupt records a damaged region and keeps a copy of its bytes under
// corrupt/ for whoever investigates; the segment itself is deleted as usual
// once nothing live remains in it.
func (s *Spool) corrupt(g *segment, off, n int64, err error) {
	ce := &CorruptError{Segment: g.path, Offset: off, Length: n, Err: err}
	s.recovery.Corrupt = append(s.recovery.Corrupt, ce)
	s.log.Error("queue: corrupt spool data skipped", "segment", g.path, "offset", off, "length", n, "err", err)

	dir := filepath.Join(s.dir, "corrupt")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.log.Error("queue: cannot keep corrupt bytes", "err", err)
		return
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s-%d", segName(g.seq), off))
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = io.Copy(f, io.NewSectionReader(g.f, off, n))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		s.log.Error("queue: cannot keep corrupt bytes", "file", dst, "err", err)
	}
}

// replay applies one verified record to the index. head is the payload, or
// its first part when the payload is longer than a message's head.
func (s *Spool) replay(g *segment, off int64, h recHeader, head []byte) error {
	if int64(len(head)) < h.n && h.typ != recMessage {
		return fmt.Errorf("%v record of %d bytes", h.typ, h.n)
	}
	switch h.typ {
	case recMessage:
		seq, env, _, err := decodeMessage(head)
		if err != nil {
			return err
		}
		if err := checkEnvelope(env); err != nil {
			return err
		}
		s.x.applyMessage(g, off, recHeaderSize+h.n, seq, env)
		if env.BounceOf != 0 {
			if s.dsns == nil {
				s.dsns = map[uint64]dsnRef{}
			}
			s.dsns[env.MID] = dsnRef{env.BounceOf, env.BounceRIDs}
		}
	case recState:
		mid, states, err := decodeState(head)
		if err != nil {
			return err
		}
		s.x.maxMID = max(s.x.maxMID, mid)
		s.x.applyState(g, mid, states)
	case recFinish:
		mid, err := decodeFinish(head)
		if err != nil {
			return err
		}
		s.x.maxMID = max(s.x.maxMID, mid)
		s.x.applyFinish(g, mid)
	case recWork:
		mid, w, err := decodeWork(head)
		if err != nil {
			return err
		}
		s.x.maxMID = max(s.x.maxMID, mid)
		s.x.applyWork(g, mid, w)
	default:
		return fmt.Errorf("unknown record type %d", h.typ)
	}
	return nil
}

// record reads and verifies the record at off. It returns a nil head (and
// no error) when there is no whole valid record there; err is for I/O
// failures only.
func (sc *scanner) record(g *segment, off, size int64) (recHeader, []byte, error) {
	if size-off < recHeaderSize {
		return recHeader{}, nil, nil
	}
	var hb [recHeaderSize]byte
	if _, err := g.f.ReadAt(hb[:], off); err != nil {
		return recHeader{}, nil, fmt.Errorf("queue: recover: read %s at %d: %w", g.path, off, err)
	}
	h, ok := parseRecHeader(hb[:], g.salt)
	if !ok || h.n > size-off-recHeaderSize {
		return recHeader{}, nil, nil
	}
	pos := off + recHeaderSize
	head := sc.head[:min(h.n, int64(len(sc.head)))]
	if _, err := g.f.ReadAt(head, pos); err != nil {
		return recHeader{}, nil, fmt.Errorf("queue: recover: read %s at %d: %w", g.path, pos, err)
	}
	c := crc(g.salt, head)
	for done := int64(len(head)); done < h.n; {
		chunk := sc.chunk[:min(h.n-done, int64(len(sc.chunk)))]
		if _, err := g.f.ReadAt(chunk, pos+done); err != nil {
			return recHeader{}, nil, fmt.Errorf("queue: recover: read %s at %d: %w", g.path, pos+done, err)
		}
		c = crc(c, chunk)
		done += int64(len(chunk))
	}
	if c != h.crc {
		return recHeader{}, nil, nil
	}
	return h, head, nil
}

// resync finds the first valid record at or after from, or returns -1.
func (sc *scanner) resync(g *segment, from, size int64) (int64, error) {
	for pos := from; pos < size; {
		win := sc.win[:min(int64(len(sc.win)), size-pos)]
		if _, err := g.f.ReadAt(win, pos); err != nil {
			return 0, fmt.Errorf("queue: recover: read %s at %d: %w", g.path, pos, err)
		}
		for i := 0; ; {
			j := bytes.Index(win[i:], []byte(recMagic))
			if j < 0 {
				break
			}
			cand := pos + int64(i+j)
			_, head, err := sc.record(g, cand, size)
			if err != nil {
				return 0, err
			}
			if head != nil {
				return cand, nil
			}
			i += j + 1
		}
		if pos+int64(len(win)) >= size {
			break
		}
		// Overlap the windows so a magic split across them is found.
		pos += int64(len(win) - (len(recMagic) - 1))
	}
	return -1, nil
}
