package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Stage is the body of a message written to the spool's directory as it
// arrives, so that a large message is never whole in memory: the receiving
// side writes it, then CommitStage turns it into an ordinary message record
// (the writer copies it into the journal within the group commit, and the
// record is durable, as with Commit, before CommitStage returns), or Abort
// drops it.
//
// The file is unlinked as soon as it is created: a crash leaves nothing of
// it, and nothing in it was acknowledged. (A crash between the create and
// the unlink can leave a stage-* file; Open deletes those.)
type Stage struct {
	f       *os.File
	sp      *Spool
	n       int64
	checked int64  // n when the free space was last checked
	crc     uint32 // CRC-32C, unseeded, of the bytes written
	err     error  // the first write error: the stage can only be aborted
}

// stageCheck is how many bytes a stage writes between looks at the free
// space: a thousand sessions sending large messages at once must meet the
// floor, not the end of the disk, which the journal's own records need.
const stageCheck = 1 << 20

const stagePrefix = "stage-"

// NewStage opens a stage for one message body.
func (s *Spool) NewStage() (*Stage, error) {
	s.qmu.Lock()
	closed, failed := s.closed, s.failed
	s.qmu.Unlock()
	switch {
	case failed != nil:
		return nil, fmt.Errorf("queue: new stage: %w", failed)
	case closed:
		return nil, ErrClosed
	}
	f, err := os.CreateTemp(s.dir, stagePrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("queue: new stage: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("queue: new stage: %w", err)
	}
	return &Stage{f: f, sp: s}, nil
}

// Write appends p to the body. The record's limit of a gibibyte applies:
// past it Write fails.
func (st *Stage) Write(p []byte) (int, error) {
	if st.err != nil {
		return 0, st.err
	}
	if st.n+int64(len(p)) > maxPayload {
		st.err = errors.New("queue: stage: message too large for a record")
		return 0, st.err
	}
	if st.n+int64(len(p))-st.checked >= stageCheck {
		if err := st.sp.roomFor(st.n + int64(len(p)) - st.checked); err != nil {
			st.err = fmt.Errorf("queue: stage: %w", err)
			return 0, st.err
		}
		st.checked = st.n + int64(len(p))
	}
	n, err := st.f.Write(p)
	st.sp.wrote(int64(n)) // the cached free space counts stages too
	st.crc = crc32.Update(st.crc, castagnoli, p[:n])
	st.n += int64(n)
	if err != nil {
		st.err = fmt.Errorf("queue: stage: %w", err)
		if isNoSpace(err) {
			// The stage is discarded with the message, so the refusal is
			// as definite as a commit's: the client may retry elsewhere.
			st.err = fmt.Errorf("queue: stage: %w (%w)", ErrNoSpace, err)
		}
		return n, st.err
	}
	return n, nil
}

// ReadAt reads what was written, for a caller that looks back at it (the
// receiving side counting the lines of a long header).
func (st *Stage) ReadAt(p []byte, off int64) (int, error) {
	if st.f == nil {
		return 0, ErrClosed
	}
	return st.f.ReadAt(p, off)
}

// Size is the number of bytes written.
func (st *Stage) Size() int64 { return st.n }

// Abort drops the stage. It may be called after CommitStage, which does
// the same.
func (st *Stage) Abort() {
	if st.f != nil {
		st.f.Close() // unlinked: closing frees its blocks
		st.f = nil
	}
}

// CommitStage stores a message whose body is st, with the contract of
// Commit. The stage is used up whatever the outcome.
func (s *Spool) CommitStage(ctx context.Context, env *Envelope, st *Stage) error {
	return s.CommitStageAfter(ctx, env, nil, st)
}

// CommitStageAfter is CommitStage for a message whose body is head then
// st: the receiving side prepends header fields it could only write once
// the whole message had arrived (Authentication-Results).
func (s *Spool) CommitStageAfter(ctx context.Context, env *Envelope, head []byte, st *Stage) error {
	defer st.Abort()
	if st.err != nil {
		return fmt.Errorf("queue: commit MID %d: %w", env.MID, st.err)
	}
	if st.f == nil {
		return fmt.Errorf("queue: commit MID %d: stage already used", env.MID)
	}
	return s.commit(ctx, env, head, st)
}

// crcShift advances a CRC-32C register over n zero bytes. With it the CRC
// of a concatenation comes from the CRCs of its parts: CRC is affine, so
// Update(c, b) = Update(0, b) ^ shift(c, len(b)). That is what lets a
// stage's CRC be computed while the body arrives, before the envelope that
// precedes it in the record is known.
func crcShift(c uint32, n int64) uint32 {
	r := ^c
	for n > 0 {
		k := min(n, int64(len(zeros)))
		r = crc32.Update(r, castagnoli, zeros[:k])
		n -= k
	}
	return ^r
}

// crcConcat is the CRC of a then b, given the CRC (seeded or not) up to the
// end of a, and b's unseeded CRC and length.
func crcConcat(a, b uint32, bLen int64) uint32 {
	return b ^ crcShift(a, bLen)
}

// copyStage writes the body of st to f at off.
func copyStage(f *os.File, off int64, st *Stage) error {
	return copyRange(f, off, st.f, 0, st.n)
}

// copyRange copies n bytes of src at srcOff to dst at dstOff. Only the
// writer uses the files' offsets (everyone else reads and writes at
// explicit offsets), so it may move them.
func copyRange(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) error {
	// ReadFrom of one file into another can copy in the kernel
	// (copy_file_range on Linux) without the bytes passing through here.
	if _, err := dst.Seek(dstOff, io.SeekStart); err != nil {
		return err
	}
	if _, err := src.Seek(srcOff, io.SeekStart); err != nil {
		return err
	}
	k, err := dst.ReadFrom(&io.LimitedReader{R: src, N: n})
	if err == nil && k != n {
		err = fmt.Errorf("copied %d of %d bytes", k, n)
	}
	return err
}

// removeStages deletes what stages a crash left behind.
func (s *Spool) removeStages() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("queue: recover: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				return fmt.Errorf("queue: recover: %w", err)
			}
		}
	}
	return nil
}
