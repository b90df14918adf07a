package queue

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Message is the body of a live message read as a stream, for a sender
// that must not hold a large message whole. It holds the message's segment
// open until Close. The record's checksum is verified as the body is read:
// at its end Read returns a *CorruptError instead of io.EOF if the bytes
// are not those written, so a reader must treat what it read as void
// unless it reached io.EOF.
type Message struct {
	g    *segment
	body *io.SectionReader
	crc  uint32 // of the payload so far
	want uint32
	at   int64 // of the record, for errors
	n    int64 // record length
	seq  uint64
	err  error
}

// Reader returns a live message's envelope and its body as a stream.
func (s *Spool) Reader(mid uint64) (*Envelope, *Message, error) {
	g, off, n, err := s.locate(mid)
	if err != nil {
		return nil, nil, err
	}
	env, m, err := openMessage(g, off, n)
	if err != nil {
		g.release()
		return nil, nil, fmt.Errorf("queue: read MID %d: %w", mid, err)
	}
	return env, m, nil
}

func openMessage(g *segment, off, n int64) (*Envelope, *Message, error) {
	corrupt := func(err error) error { return &CorruptError{Segment: g.path, Offset: off, Length: n, Err: err} }
	want := min(n, recHeaderSize+headSlack)
	for {
		rec := make([]byte, want)
		if _, err := g.f.ReadAt(rec, off); err != nil {
			return nil, nil, fmt.Errorf("%s offset %d: %w", g.path, off, err)
		}
		h, ok := parseRecHeader(rec, g.salt)
		if !ok || h.typ != recMessage || h.n != n-recHeaderSize {
			return nil, nil, corrupt(errors.New("bad record header"))
		}
		seq, env, bodyOff, err := decodeMessage(rec[recHeaderSize:])
		if errors.Is(err, errTruncated) && want < n && want < recHeaderSize+maxEnvelope+64 {
			// An envelope longer than the slack (many recipients).
			want = min(n, recHeaderSize+maxEnvelope+64)
			continue
		}
		if err != nil {
			return nil, nil, corrupt(err)
		}
		start := off + recHeaderSize + int64(bodyOff)
		return env, &Message{
			g:    g,
			body: io.NewSectionReader(g.f, start, off+n-start),
			crc:  crc(g.salt, rec[recHeaderSize:recHeaderSize+bodyOff]),
			want: h.crc,
			at:   off,
			n:    n,
			seq:  seq,
		}, nil
	}
}

// Size is the body's length.
func (m *Message) Size() int64 { return m.body.Size() }

func (m *Message) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	k, err := m.body.Read(p)
	m.crc = crc32.Update(m.crc, castagnoli, p[:k])
	if err == io.EOF && m.crc != m.want {
		err = &CorruptError{Segment: m.g.path, Offset: m.at, Length: m.n, Err: errors.New("payload checksum mismatch")}
	}
	if err != nil {
		m.err = err
	}
	return k, err
}

// Close lets the segment go. It is safe to call more than once.
func (m *Message) Close() error {
	if m.g != nil {
		m.g.release()
		m.g = nil
		m.err = ErrClosed
	}
	return nil
}
