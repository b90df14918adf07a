package scanstage

import (
	"fmt"
	"io"
	"sync"
)

// spoolReaderAt is an io.ReaderAt over a spool message's stream: the
// engines' clients read a message front to back (io.SectionReader from 0),
// so a read at the stream's position continues it, and any other (a
// client's retry from the start) opens the message again. The message is
// never held whole in memory, and its checksum is still verified at its
// end (a damaged spool is the read's error).
type spoolReaderAt struct {
	open func() (io.ReadCloser, error)
	size int64

	mu  sync.Mutex
	r   io.ReadCloser
	pos int64
}

func (s *spoolReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil || off != s.pos {
		if s.r != nil {
			s.r.Close()
			s.r = nil
		}
		r, err := s.open()
		if err != nil {
			return 0, err
		}
		s.r, s.pos = r, 0
		if off > 0 {
			n, err := io.CopyN(io.Discard, r, off)
			s.pos = n
			if err != nil {
				return 0, fmt.Errorf("scanstage: skip to %d: %w", off, err)
			}
		}
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	if err == nil && s.pos == s.size {
		// The last byte: the stream's end verifies the checksum.
		var one [1]byte
		if _, cerr := s.r.Read(one[:]); cerr != io.EOF {
			err = fmt.Errorf("scanstage: the message as stored: %w", cerr)
			if cerr == nil {
				err = fmt.Errorf("scanstage: the message as stored is longer than %d bytes", s.size)
			}
		}
	}
	return n, err
}

func (s *spoolReaderAt) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
}
