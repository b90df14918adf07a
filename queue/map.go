package queue

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// mapMin is the body size below which Map reads the message into memory
// instead of mapping it: for mail of a few kilobytes, most of it, the
// mmap and munmap calls (munmap interrupts every thread that ran the
// process's code to flush its TLB) cost more than the copy, which is
// bounded by mapMin.
const mapMin = 64 << 10

// Mapping is the body of a live message in memory, for a reader that needs
// it whole (a MIME parse): on Unix, a message of more than a few dozen
// kilobytes is a read-only mapping of its segment file's pages, which the
// kernel's page cache holds and may drop and read again at will, not a
// copy on the heap; a smaller one, and any message on other systems, is a
// copy read as Read reads it. The record's checksum was verified over the
// bytes handed out. The message's segment is held open until Close.
//
// The bytes are read-only and valid until Close; after Close a mapping's
// are unmapped, and touching them is a fault that crashes the process.
// (So is reading a page that the disk cannot return, or one of a file cut
// short under the mapping, which the spool never does to a live record:
// IsFault tells a goroutine that has runtime/debug.SetPanicOnFault set,
// and has recovered such a fault, whether it was this mapping's.)
type Mapping struct {
	mu    sync.Mutex
	g     *segment // nil once closed
	mem   []byte   // the mapped pages; nil for a copy
	body  []byte
	unmap func([]byte) error
}

// Map returns the body of a live message in memory: mapped on Unix, see
// Mapping. Its checksum is verified first, as Read does: damage since it
// was written is a *CorruptError, not wrong mail.
func (s *Spool) Map(mid uint64) (*Mapping, error) {
	g, off, n, err := s.locate(mid)
	if err != nil {
		return nil, err
	}
	m, err := mapMessage(g, off, n)
	if err != nil {
		g.release()
		return nil, fmt.Errorf("queue: map MID %d: %w", mid, err)
	}
	return m, nil
}

// readMapping is a Mapping that is a copy: the record read and checked
// as Read does.
func readMapping(g *segment, off, n int64) (*Mapping, error) {
	_, _, body, err := readMessage(g, off, n)
	if err != nil {
		return nil, err
	}
	return &Mapping{g: g, body: body}, nil
}

// Bytes returns the message's body; nil after Close.
func (m *Mapping) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.body
}

// Close unmaps the body and lets the segment go. Nothing may read what
// Bytes returned any more. It is safe to call more than once.
func (m *Mapping) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.g == nil {
		return nil
	}
	var err error
	if m.mem != nil {
		if uerr := m.unmap(m.mem); uerr != nil {
			err = fmt.Errorf("queue: munmap %s: %w", m.g.path, uerr)
		}
	}
	// The file is closed only when its last user lets it go: after the
	// munmap, though a mapping would outlive the descriptor anyway.
	m.g.release()
	m.g, m.mem, m.body = nil, nil, nil
	return err
}

// IsFault reports whether r, a value recovered from a panic, is a memory
// fault at an address of this mapping (runtime/debug.SetPanicOnFault):
// its file could not be read under it.
func (m *Mapping) IsFault(r any) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return faultIn(r, m.mem)
}

// checkRecord verifies the message record rec read or mapped from g/off:
// its header, its checksum as sum computes it, its envelope. It returns the
// envelope and the body, a slice of rec.
func checkRecord(g *segment, off int64, rec []byte, sum func(salt uint32, p []byte) uint32) (*Envelope, []byte, error) {
	n := int64(len(rec))
	corrupt := func(err error) error { return &CorruptError{Segment: g.path, Offset: off, Length: n, Err: err} }
	h, ok := parseRecHeader(rec, g.salt)
	if !ok || h.typ != recMessage || h.n != n-recHeaderSize {
		return nil, nil, corrupt(errors.New("bad record header"))
	}
	p := rec[recHeaderSize:]
	if sum(g.salt, p) != h.crc {
		return nil, nil, corrupt(errors.New("payload checksum mismatch"))
	}
	_, env, bodyOff, err := decodeMessage(p)
	if err != nil {
		return nil, nil, corrupt(err)
	}
	return env, p[bodyOff:], nil
}

// faultIn reports whether r, recovered from a panic, is a memory fault at
// an address in mem.
func faultIn(r any, mem []byte) bool {
	f, ok := r.(interface{ Addr() uintptr })
	if !ok || len(mem) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	a := f.Addr()
	return a >= base && a-base < uintptr(len(mem))
}
