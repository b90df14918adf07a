//go:build unix

package queue

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// mapChunk is how much of a mapping the checksum reads before it lets
// those pages go from the process's resident set.
const mapChunk = 1 << 20

// mapMessage maps the message record at g/off of n bytes, from the page
// that holds its first byte, and verifies it.
func mapMessage(g *segment, off, n int64) (*Mapping, error) {
	if n < mapMin {
		return readMapping(g, off, n)
	}
	page := int64(os.Getpagesize())
	start := off - off%page // mmap's offset must be a multiple of the page size
	size := off + n - start
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s offset %d: a record of %d bytes is too large to map", g.path, off, n)
	}
	rc, err := g.f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", g.path, err)
	}
	var mem []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		mem, merr = unix.Mmap(int(fd), start, int(size), unix.PROT_READ, unix.MAP_SHARED)
	}); err != nil {
		return nil, fmt.Errorf("mmap %s: %w", g.path, err)
	}
	if merr != nil {
		return nil, fmt.Errorf("mmap %s offset %d: %w", g.path, start, merr)
	}
	body, err := checkMapped(g, off, mem, int(off-start))
	if err != nil {
		if uerr := unix.Munmap(mem); uerr != nil {
			err = errors.Join(err, fmt.Errorf("munmap %s: %w", g.path, uerr))
		}
		return nil, err
	}
	return &Mapping{g: g, mem: mem, body: body, unmap: unix.Munmap}, nil
}

// checkMapped verifies the record mapped at mem[at:]. A fault reading it
// (a file cut short under the mapping, a page the disk cannot return) is
// an error, where it would otherwise crash the process.
func checkMapped(g *segment, off int64, mem []byte, at int) (body []byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !faultIn(r, mem) {
				panic(r)
			}
			body, err = nil, fmt.Errorf("%s offset %d: the record's pages cannot be read: %v", g.path, off, r)
		}
	}()
	// The checksum reads the whole record, a chunk at a time, and lets
	// each chunk's pages go from the process's resident set once read
	// (the page cache keeps them): the check alone would otherwise leave
	// the whole message resident, where a parse that reads only the
	// header, or the filters' first MiB of text, touches only those pages
	// again.
	sum := func(salt uint32, p []byte) uint32 {
		c := salt
		from := len(mem) - len(p) // p is the payload, the end of mem
		for a := 0; a < len(mem); a += mapChunk {
			b := min(a+mapChunk, len(mem))
			if lo := max(a, from); lo < b {
				c = crc32.Update(c, castagnoli, mem[lo:b])
			}
			// A hint: where it fails the pages stay resident, as they
			// would without it; nothing is lost.
			_ = unix.Madvise(mem[a:b], unix.MADV_DONTNEED)
		}
		return c
	}
	_, body, err = checkRecord(g, off, mem[at:], sum)
	return body, err
}
