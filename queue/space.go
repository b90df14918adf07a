package queue

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// ErrNoSpace is wrapped by the error of a Commit refused or undone for want
// of disk space: below the free-space floor (Options.MinFree), or a write
// or sync that failed with ENOSPC or EDQUOT and was cut off again. Unlike
// ErrFailed it is a definite outcome: nothing of the record is on the disk
// or will be recovered, so the sender's retry cannot cause a duplicate, and
// the spool goes on accepting records as soon as there is room.
var ErrNoSpace = errors.New("queue: insufficient disk space")

// AutoMinFree, as Options.MinFree, sets the floor to 5 % of the file
// system, at most 512 MiB.
const AutoMinFree = -1

const (
	autoMinFreeMax = 512 << 20
	// spaceCacheTime is how long a statfs of the spool's file system is
	// trusted; the bytes appended meanwhile are subtracted from it.
	spaceCacheTime = 100 * time.Millisecond
	// tightMin is the free space below which the spool is tight even with
	// no floor: it writes no zeros ahead and rolls mostly dead segments.
	tightMin = 4 << 20
	// minRollDead is the least dead space in the current segment worth an
	// early roll when space is tight.
	minRollDead = 256 << 10
)

// space watches the free space of the spool's file system.
type space struct {
	floor  int64                                       // bytes; 0: none
	statfs func(string) (free, total int64, err error) // nil: unknown on this platform

	mu      sync.Mutex
	free    int64 // at checked, less the bytes appended since
	known   bool
	checked time.Time
	low     bool // below the floor at the last check; logged on each change
}

func (s *Spool) initSpace() {
	s.space.statfs = statfs
	if s.space.statfs == nil {
		return
	}
	free, total, err := s.space.statfs(s.dir)
	if err != nil {
		s.log.Warn("queue: cannot read the free space of the spool's file system; no floor", "dir", s.dir, "err", err)
		return
	}
	s.space.floor = s.opts.MinFree
	if s.opts.MinFree < 0 {
		s.space.floor = min(total/20, autoMinFreeMax)
	}
	s.space.free, s.space.known, s.space.checked = free, true, time.Now()
}

// freeSpace returns the free space of the spool's file system, from a
// statfs at most spaceCacheTime old less what was appended since. ok is
// false when it is not known.
func (s *Spool) freeSpace() (free int64, ok bool) {
	sp := &s.space
	if sp.statfs == nil {
		return 0, false
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if time.Since(sp.checked) >= spaceCacheTime {
		f, _, err := sp.statfs(s.dir)
		sp.free, sp.known, sp.checked = f, err == nil, time.Now()
	}
	return sp.free, sp.known
}

// wrote subtracts n appended bytes from the cached free space.
func (s *Spool) wrote(n int64) {
	s.space.mu.Lock()
	s.space.free -= n
	s.space.mu.Unlock()
}

// recheckSpace makes the next freeSpace call a statfs.
func (s *Spool) recheckSpace() {
	s.space.mu.Lock()
	s.space.checked = time.Time{}
	s.space.mu.Unlock()
}

// Room reports whether the spool takes a new message of size bytes (0 when
// not known): nil, or an error wrapping ErrNoSpace while the free space of
// its file system is below the floor, or when the message would leave less
// than half of it (as Commit would find). It is cheap (a statfs at most
// every 100 ms), for the receiving side to ask before a transaction
// starts, with the size the client declared. Records that free space
// (states, finishes) are never refused by the floor.
func (s *Spool) Room(size int64) error {
	if err := s.roomFor(0); err != nil || size <= 0 {
		return err
	}
	return s.roomFor(size)
}

// roomFor is Room for a message record of n bytes: it is refused when it
// would leave less than half the floor, the half that stays for the
// records that free space and for compaction.
func (s *Spool) roomFor(n int64) error {
	floor := s.space.floor
	if floor == 0 {
		return nil
	}
	free, ok := s.freeSpace()
	if !ok {
		return nil
	}
	sp := &s.space
	sp.mu.Lock()
	defer sp.mu.Unlock()
	need := floor
	if sp.low {
		need += floor / 16 // so that the state does not flap at the edge
	}
	low := free < need
	if n > 0 {
		// A transaction started above the floor may end a little below it.
		low = free-n < floor/2
	} else if low != sp.low {
		sp.low = low
		if low {
			s.log.Warn("queue: free space below the floor, refusing new messages", "dir", s.dir, "free", free, "floor", floor)
		} else {
			s.log.Info("queue: free space above the floor again, accepting messages", "dir", s.dir, "free", free, "floor", floor)
		}
	}
	if low {
		return fmt.Errorf("%w: %d bytes free, floor %d", ErrNoSpace, free, floor)
	}
	return nil
}

// tight reports whether free space is short enough for the writer to save
// it: no zeros written ahead, mostly dead segments rolled early so that
// compaction can return their space.
func (s *Spool) tight() bool {
	free, ok := s.freeSpace()
	return ok && free < max(2*s.space.floor, tightMin)
}

// isNoSpace reports whether a write or sync error means the file system is
// full (or the user's quota is), which cutting the write off undoes.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// FreeSpace returns the free space of the spool's file system, as the
// free-space floor sees it (a statfs at most spaceCacheTime old); ok is
// false when it is not known.
func (s *Spool) FreeSpace() (free int64, ok bool) { return s.freeSpace() }

// MinFree returns the free-space floor in bytes (Options.MinFree resolved:
// AutoMinFree made a size); 0 when there is none or the free space of the
// file system is not known.
func (s *Spool) MinFree() int64 { return s.space.floor }
