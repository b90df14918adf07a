package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The writer goroutine is the only one that writes segments or changes the
// index. Each turn it takes every queued record (up to a batch limit), adds
// a bounded amount of compaction work, writes it all with pwritev, fsyncs
// once, applies the records to the index and releases the waiters: the
// group commit. Records queued while one fsync runs form the next batch, so
// the batch size follows the load with no timer.
//
// The commits overlap: while a batch's fdatasync runs (in a goroutine of
// its own), the writer takes the next batch, writes it and starts its
// sync too, and only then waits for the first. Two syncs of one file at
// once cost little more than one, and a commit no longer waits for the
// whole sync before its own. Batches are released in order: a batch's
// records are applied and acknowledged only when its own sync and every
// earlier batch's are done, and when an earlier batch's sync fails the
// later one fails with it (its bytes are cut off with it, or the spool
// fails), whatever its own sync said. At most two batches are in flight.
//
// What needs the index as of every record written (compaction's copies
// carry a snapshot of states; a roll trims the segment) waits for the
// batch in flight first: the writer settles it and works alone.

const (
	maxBatchBytes   = 8 << 20
	maxBatchRecords = 1024
	// compactBudget bounds the bytes compaction adds to one batch, so that
	// it delays the commits sharing that fsync by little.
	compactBudget = 1 << 20
	iovMax        = 1024 // IOV_MAX on Linux and the BSDs

	// zeroAhead is how far past the append offset the current segment is
	// kept written with zeros. fdatasync after overwriting written blocks
	// is data only; after growing the file it must also commit the new
	// length through the file system's journal, which on ext4 costs a
	// third more CPU and latency. Growing in steps of zeroAhead pays that
	// once a mebibyte instead of once a batch.
	zeroAhead = 1 << 20

	// Bounds of the commit delay: what it adds to a commit's latency.
	minCommitDelay = 100 * time.Microsecond
	maxCommitDelay = time.Millisecond

	// compactPauseTime is how long compaction waits after a batch ran out
	// of space.
	compactPauseTime = time.Second
)

// flight is a batch written to its segment whose sync may still run.
type flight struct {
	reqs     []*request
	copies   []copyRec
	g        *segment
	end      int64 // where its records end in g
	grew     int64 // what g's file grew by
	extended bool  // it wrote zeros ahead: its sync is no measure of the next
	synced   chan syncResult
}

type syncResult struct {
	err  error
	took time.Duration
}

func (s *Spool) run() {
	defer close(s.done)
	defer s.discardPrepared()
	var fl *flight // the batch whose sync runs while the next one is written
	for {
		s.delayCommit()
		if fl != nil && s.needsQuiet(fl) {
			s.settle(fl, nil)
			fl = nil
			s.maintain()
		}
		reqs, closed := s.take()
		var copies []copyRec
		if fl == nil && !closed && s.failure() == nil && !time.Now().Before(s.compactPause) {
			s.compactPause = time.Time{}
			copies = s.planCompaction()
		}
		if len(reqs) == 0 && len(copies) == 0 {
			if fl != nil {
				// Nothing to write beside it: its sync, or the next
				// record, whichever comes first.
				select {
				case r := <-fl.synced:
					fl.synced <- r
					s.settle(fl, nil)
					fl = nil
					s.maintain()
				case <-s.wake:
				}
				continue
			}
			if closed {
				return
			}
			s.idle()
			continue
		}
		s.batch, s.spare = s.spare, nil // reqs is next's until it is settled
		fl = s.writeBatch(copies, reqs, fl)
		if fl != nil && fl.synced == nil {
			s.settle(fl, nil) // NoSync: nothing to wait for
			fl = nil
		}
		if fl == nil {
			s.maintain()
		} else {
			// Safe beside a batch in flight: a segment is dead by the
			// index of the batches settled, which the one in flight can
			// only add records to (in the current segment).
			s.deleteDead()
		}
	}
}

// maintain is the work after a batch when none is in flight.
func (s *Spool) maintain() {
	if s.failure() == nil {
		s.rollEarly()
		s.prepareNext()
	}
	s.deleteDead()
}

// needsQuiet reports whether the next turn needs every batch settled: the
// segment is full (a roll trims it), space is tight (an early roll), or
// compaction has work (its copies carry a snapshot of recipient states,
// which must follow every state record written before them).
func (s *Spool) needsQuiet(fl *flight) bool {
	if fl.end >= s.opts.SegmentSize || s.failure() != nil || s.tight() {
		return true
	}
	if time.Now().Before(s.compactPause) {
		return false
	}
	for _, g := range s.x.segs {
		if s.x.compactable(g) {
			return true
		}
	}
	return false
}

// idle waits for a record, or for the end of a pause of compaction.
func (s *Spool) idle() {
	if s.compactPause.IsZero() {
		<-s.wake
		return
	}
	t := time.NewTimer(time.Until(s.compactPause))
	defer t.Stop()
	select {
	case <-s.wake:
	case <-t.C:
	}
}

// delayCommit lets the next batch grow for about one sync's time, when
// records arrive fast enough for another to come in that window. It stops
// early once as many records wait as the last batch had: with a fixed
// number of committers (a benchmark, a burst) no more are coming.
func (s *Spool) delayCommit() {
	if s.syncTime == 0 {
		return // NoSync, or no sync yet
	}
	d := min(max(s.syncTime, minCommitDelay), maxCommitDelay)
	target := max(s.lastBatch, 2)
	s.qmu.Lock()
	n, gap := len(s.queue), s.arrivalGap
	s.qmu.Unlock()
	if n == 0 || n >= target || gap == 0 || gap > d {
		return
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case <-deadline.C:
			return
		case <-s.wake:
			s.qmu.Lock()
			n, closed := len(s.queue), s.closed
			s.qmu.Unlock()
			if n >= target || closed {
				return
			}
		}
	}
}

// take removes up to one batch of records from the queue, skipping those
// whose caller gave up. closed reports that Close was called; records queued
// before it are still taken.
func (s *Spool) take() (reqs []*request, closed bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	reqs = s.batch[:0]
	size, i := 0, 0
	for ; i < len(s.queue); i++ {
		r := s.queue[i]
		if len(reqs) > 0 && (size+r.size() > maxBatchBytes || len(reqs) == maxBatchRecords) {
			break
		}
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // cancelled
		}
		reqs = append(reqs, r)
		size += r.size()
	}
	n := copy(s.queue, s.queue[i:])
	clear(s.queue[n:])
	s.queue = s.queue[:n]
	s.batch = reqs
	return reqs, s.closed
}

// copyRec is what compaction moves: a live message (its record copied
// verbatim and a snapshot of its recipient states), or the finish record of
// a finished message (env nil) that older copies still need.
type copyRec struct {
	mid      uint64
	rec      []byte
	env      *Envelope
	seq      uint64
	stateRec []byte // nil when no recipient has a state
	states   []ridState
	workRec  []byte // nil when the message has no work record
	work     *Work
	off      int64

	// A large message's payload is not read into rec, which then holds
	// the header only: it is copied from src at srcOff, tail bytes.
	src    *segment
	srcOff int64
	tail   int64
}

func (c *copyRec) size() int64 { return int64(len(c.rec)) + c.tail }

// writeBatch writes a batch after fl (nil: after the records settled),
// starts its sync, then settles fl. It returns the batch in flight, or nil
// when it failed (its callers have their error then).
func (s *Spool) writeBatch(copies []copyRec, reqs []*request, fl *flight) *flight {
	if err := s.failure(); err != nil {
		s.finishAfter(fl, reqs, err)
		return nil
	}
	cur := s.x.current()
	at := cur.size // where the batch starts
	if fl != nil {
		at = fl.end
	}
	if at >= s.opts.SegmentSize {
		// needsQuiet settled any batch in flight: fl is nil.
		switch g, err := s.nextSegment(cur.seq + 1); {
		case err == nil:
			s.trim(cur)
			cur = g
			at = cur.size
		case isNoSpace(err):
			// The full segment takes the batch: a finish record written
			// now is what lets space be returned.
		default:
			s.finishBatch(reqs, s.fail(err))
			return nil
		}
	}
	tight := s.tight()
	oldLen := max(at, cur.zeroEnd)

	// A staged body, or a large record compaction moves, is copied from
	// its file between the writes of the records before and after it.
	iov := s.iov[:0]
	off := at
	var err error
	for i := range copies {
		c := &copies[i]
		c.off = off
		iov = append(iov, c.rec)
		off += int64(len(c.rec))
		if c.src != nil && err == nil {
			err = pwritevAll(cur.f, iov, at)
			if err == nil {
				err = copyRange(cur.f, off, c.src.f, c.srcOff, c.tail)
			}
			clear(iov)
			off += c.tail
			iov, at = iov[:0], off
		}
		if c.stateRec != nil {
			iov = append(iov, c.stateRec)
			off += int64(len(c.stateRec))
		}
		if c.workRec != nil {
			iov = append(iov, c.workRec)
			off += int64(len(c.workRec))
		}
	}
	for _, r := range reqs {
		r.off = off
		iov = append(iov, r.rec)
		if len(r.body) > 0 {
			iov = append(iov, r.body)
		}
		off += int64(r.size())
		if r.stage != nil && err == nil {
			err = pwritevAll(cur.f, iov, at)
			if err == nil {
				err = copyStage(cur.f, r.off+int64(len(r.rec)+len(r.body)), r.stage)
			}
			clear(iov)
			iov, at = iov[:0], off
		}
	}
	extended := off > cur.zeroEnd && !s.opts.NoSync && !tight
	if extended {
		end := (off/zeroAhead + 1) * zeroAhead
		iov = append(iov, zeros[:end-off])
		cur.zeroEnd = end
	}
	if err == nil {
		err = pwritevAll(cur.f, iov, at)
	}
	clear(iov) // do not keep message bodies alive until the next batch
	s.iov = iov[:0]
	if err != nil {
		// The batch before is settled first: the cut-off goes back to
		// the last record acknowledged, which may be one of its.
		s.finishAfter(fl, reqs, nil)
		s.finishBatch(reqs, s.failWrite(cur, fmt.Errorf("write %s: %w", cur.path, err)))
		return nil
	}
	next := &flight{reqs: reqs, copies: copies, g: cur, end: off, extended: extended,
		grew: max(off, cur.zeroEnd) - oldLen}
	if !s.opts.NoSync {
		next.synced = make(chan syncResult, 1)
		go func() {
			t0 := time.Now()
			err := s.syncFile(cur.f)
			next.synced <- syncResult{err, time.Since(t0)}
		}()
	}
	if fl != nil && !s.settle(fl, next) {
		return nil // failed with fl
	}
	return next
}

// finishAfter settles fl, if any, then fails reqs with err (unless nil).
func (s *Spool) finishAfter(fl *flight, reqs []*request, err error) {
	if fl != nil {
		s.settle(fl, nil)
	}
	if err != nil {
		s.finishBatch(reqs, err)
	}
}

// settle waits for fl's sync, then applies its records to the index and
// releases their callers. next, when not nil, is the batch written after
// fl, its sync started: if fl's sync failed, next fails with it, and settle
// returns false.
func (s *Spool) settle(fl *flight, next *flight) bool {
	if fl.synced != nil {
		r := <-fl.synced
		if r.err != nil {
			if next != nil && next.synced != nil {
				<-next.synced // nothing may write or cut g while it syncs
			}
			err := s.failWrite(fl.g, fmt.Errorf("fsync %s: %w", fl.g.path, r.err))
			s.finishBatch(fl.reqs, err)
			s.recycle(fl)
			if next != nil {
				s.finishBatch(next.reqs, err)
				s.recycle(next)
			}
			return false
		}
		if !fl.extended { // a mebibyte of zeros is not what the next batch will cost
			s.syncTime += (r.took - s.syncTime) / 8
		}
		s.syncHist.observeDuration(r.took)
		s.nSyncs.Add(1)
	}
	s.apply(fl)
	s.recycle(fl)
	return true
}

// recycle keeps a settled batch's slice for a later one.
func (s *Spool) recycle(fl *flight) {
	clear(fl.reqs) // do not keep bodies alive
	if s.spare == nil {
		s.spare = fl.reqs[:0]
	}
}

// apply makes a synced batch's records the index's and releases their
// callers.
func (s *Spool) apply(fl *flight) {
	cur, reqs, copies := fl.g, fl.reqs, fl.copies
	s.nBatches.Add(1)
	s.nRecords.Add(uint64(len(reqs)))
	if len(reqs) > 0 { // not a batch of compaction alone
		s.batchHist.observe(float64(len(reqs)), uint64(len(reqs)))
	}
	s.lastBatch = len(reqs)

	errs := make([]error, len(reqs))
	var live int64
	s.wrote(fl.grew)
	s.mu.Lock()
	cur.size = fl.end
	cur.zeroEnd = max(cur.zeroEnd, fl.end)
	for _, c := range copies {
		if c.env == nil {
			s.x.applyFinish(cur, c.mid)
			continue
		}
		s.nCopied.Add(1)
		s.x.applyMessage(cur, c.off, c.size(), c.seq, c.env)
		if c.stateRec != nil {
			s.x.applyState(cur, c.mid, c.states)
		}
		if c.work != nil {
			s.x.applyWork(cur, c.mid, *c.work)
		}
	}
	for i, r := range reqs {
		switch r.typ {
		case recMessage:
			delete(s.inflight, r.mid)
			s.x.applyMessage(cur, r.off, int64(r.size()), r.seq, r.env)
			live += int64(r.size())
		case recState:
			if !s.x.applyState(cur, r.mid, r.states) {
				errs[i] = ErrNotFound
			}
		case recWork:
			if !s.x.applyWork(cur, r.mid, *r.work) {
				errs[i] = ErrNotFound
			}
		case recFinish:
			if e := s.x.msgs[r.mid]; e != nil {
				live -= e.n
			}
			if !s.x.applyFinish(cur, r.mid) {
				errs[i] = ErrNotFound
			}
		}
	}
	s.mu.Unlock()
	s.liveBytes.Add(live)
	for i, r := range reqs {
		r.done <- errs[i]
	}
}

// finishBatch fails every record of a batch that was not (or not surely)
// written.
func (s *Spool) finishBatch(reqs []*request, err error) {
	s.mu.Lock()
	for _, r := range reqs {
		if r.typ == recMessage {
			delete(s.inflight, r.mid)
		}
	}
	s.mu.Unlock()
	for _, r := range reqs {
		r.done <- err
	}
}

// failWrite handles a write or sync of the batch at the end of g that
// failed. When the file system is full the batch is cut off again: g is
// truncated to its last acknowledged record and the truncation synced, so
// that no byte of a record whose caller hears of the failure can be
// recovered later (it would be a message delivered after its sender was
// told 4xx, and again after the retry). The spool then goes on: the next
// batch is written where this one was. Any other error, or a failure of
// the cut itself, fails the spool for good.
//
// Cutting off after a failed fsync is safe, fsyncgate notwithstanding:
// everything before g.size was synced by an earlier fsync that succeeded,
// and the page that holds both old and new bytes is rewritten by the
// truncation and synced again.
func (s *Spool) failWrite(g *segment, err error) error {
	if !isNoSpace(err) {
		return s.fail(err)
	}
	cut := g.f.Truncate(g.size)
	if cut == nil && !s.opts.NoSync {
		cut = s.syncFile(g.f)
	}
	if cut != nil {
		return s.fail(fmt.Errorf("%w; cutting the batch off: %w", err, cut))
	}
	g.zeroEnd = g.size
	s.recheckSpace()
	// The copies of the batch were not made: compaction starts over, after
	// a pause, so that a spool too full to compact does not spin.
	for _, h := range s.x.segs {
		h.cursor = 0
	}
	s.compactPause = time.Now().Add(compactPauseTime)
	return fmt.Errorf("%w: %w", ErrNoSpace, err)
}

// rollEarly starts a new segment when space is tight and most of the
// current one is dead (finished messages): compaction then moves its few
// live records and deletes it, instead of its space coming back only when
// it fills up to SegmentSize.
func (s *Spool) rollEarly() {
	cur := s.x.current()
	dead := cur.size - segHeaderSize - cur.copyCost
	if dead < minRollDead || dead*2 < cur.size || !s.tight() {
		return
	}
	if _, err := s.nextSegment(cur.seq + 1); err != nil {
		if !isNoSpace(err) {
			s.fail(err)
		}
		return
	}
	s.trim(cur)
	s.nEarlyRolls.Add(1)
}

var zeros = make([]byte, zeroAhead)

// trim cuts the zeros written ahead off a segment that will take no more
// appends. It is tidiness, not safety: recovery reads a tail of zeros as
// free space, so a trim lost in a crash does no harm.
func (s *Spool) trim(g *segment) {
	if g.zeroEnd <= g.size {
		return
	}
	if err := g.f.Truncate(g.size); err != nil {
		s.log.Warn("queue: trim segment", "segment", g.path, "err", err)
		return
	}
	g.zeroEnd = g.size
}

// prepared is the next segment, made ahead by a goroutine of its own so
// that zero-filling new segment space is off the commit path: its header
// and zeros up to SegmentSize written and synced under a stage- name
// (which Open deletes, should a crash leave one). A roll then only renames
// it and syncs the directory, and no batch in it grows the file.
type prepared struct {
	seq  uint64
	tmp  string
	size int64
	f    *os.File
	done chan error
}

// prepareNext starts making the segment after the current one, unless one
// is made or being made, or space is short: its zeros take SegmentSize of
// the disk ahead of time, so only a disk with that to spare many times
// over gets them.
func (s *Spool) prepareNext() {
	if s.prep != nil || s.opts.NoSync {
		return
	}
	free, ok := s.freeSpace()
	if !ok || free < 4*s.opts.SegmentSize+2*max(2*s.space.floor, tightMin) {
		return
	}
	f, err := os.CreateTemp(s.dir, stagePrefix+"segment-*")
	if err != nil {
		s.log.Warn("queue: cannot prepare the next segment", "err", err)
		return
	}
	p := &prepared{seq: s.x.current().seq + 1, tmp: f.Name(), size: s.opts.SegmentSize, f: f, done: make(chan error, 1)}
	s.prep = p
	s.wrote(p.size)
	salt := s.salt
	go func() {
		hdr := make([]byte, segHeaderSize)
		putSegHeader(hdr, p.seq, salt)
		_, err := f.WriteAt(hdr, 0)
		for off := int64(segHeaderSize); err == nil && off < p.size; off += zeroAhead {
			_, err = f.WriteAt(zeros[:min(zeroAhead, p.size-off)], off)
		}
		if err == nil {
			// Not s.syncFile, which tests replace to fail the commits'
			// syncs: this file holds no record yet.
			err = fdatasync(f)
		}
		p.done <- err
	}()
}

// nextSegment makes segment seq the current one: the prepared one when it
// is that segment and was made, else a new one.
func (s *Spool) nextSegment(seq uint64) (*segment, error) {
	p := s.prep
	if p == nil {
		return s.createSegment(seq)
	}
	s.prep = nil
	err := <-p.done
	if err == nil && p.seq == seq {
		path := filepath.Join(s.dir, segName(seq))
		if err = os.Rename(p.tmp, path); err == nil {
			if err = s.syncDir(); err != nil {
				// The name may or may not be durable: nothing is written
				// in the file yet, so it is used, and the spool fails as
				// after any other failed sync of its directory.
				p.f.Close()
				return nil, s.fail(err)
			}
			g := &segment{seq: seq, path: path, f: p.f, salt: s.salt, size: segHeaderSize, zeroEnd: p.size}
			g.refs.Store(1)
			s.mu.Lock()
			s.x.segs = append(s.x.segs, g)
			s.mu.Unlock()
			return g, nil
		}
	}
	s.log.Warn("queue: the prepared segment is not used", "segment", seq, "err", err)
	s.dropPrepared(p)
	return s.createSegment(seq)
}

// discardPrepared removes a prepared segment not used (the spool closes).
func (s *Spool) discardPrepared() {
	if p := s.prep; p != nil {
		s.prep = nil
		<-p.done
		s.dropPrepared(p)
	}
}

func (s *Spool) dropPrepared(p *prepared) {
	p.f.Close()
	if err := os.Remove(p.tmp); err != nil {
		// Harmless but for the space: Open deletes stage- files.
		s.log.Warn("queue: remove the prepared segment", "file", p.tmp, "err", err)
	}
	s.wrote(-p.size)
}

// createSegment creates segment seq and makes it the current one. No record
// in it is acknowledged before its header and its directory entry are
// durable.
func (s *Spool) createSegment(seq uint64) (*segment, error) {
	path := filepath.Join(s.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: new segment: %w", err)
	}
	if err := s.initSegment(f, seq); err != nil {
		f.Close()
		// Not in the index, nothing in it acknowledged: gone, so that the
		// next try can create it again. If the removal is lost in a crash,
		// recovery reads the file as a segment created at the crash.
		if rerr := os.Remove(path); rerr != nil {
			return nil, s.fail(fmt.Errorf("queue: new segment %s: %w; removing it: %w", path, err, rerr))
		}
		return nil, fmt.Errorf("queue: new segment %s: %w", path, err)
	}
	g := &segment{seq: seq, path: path, f: f, salt: s.salt, size: segHeaderSize, zeroEnd: segHeaderSize}
	g.refs.Store(1)
	s.mu.Lock()
	s.x.segs = append(s.x.segs, g)
	s.mu.Unlock()
	return g, nil
}

// initSegment writes a new segment's header and makes it and its
// directory entry durable.
func (s *Spool) initSegment(f *os.File, seq uint64) error {
	hdr := make([]byte, segHeaderSize)
	putSegHeader(hdr, seq, s.salt)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return err
	}
	if s.opts.NoSync {
		return nil
	}
	if err := s.syncFile(f); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return s.syncDir()
}

func (s *Spool) syncDir() error {
	if s.opts.NoSync {
		return nil
	}
	if err := s.dirf.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", s.dir, err)
	}
	return nil
}

// deleteDead removes the segments nothing needs any more. The removals are
// made durable before the index forgets them, because forgetting a segment
// can release the finish records (tombs) in a later one, and those may be
// deleted only once the older copies are surely gone.
func (s *Spool) deleteDead() {
	for s.failure() == nil {
		dead := s.x.deletable()
		if len(dead) == 0 {
			return
		}
		removed := dead[:0]
		for _, g := range dead {
			if err := os.Remove(g.path); err != nil {
				// Not a durability problem: the segment only stays.
				s.log.Warn("queue: cannot delete spent segment", "segment", g.path, "err", err)
				g.removeFail = true
				continue
			}
			removed = append(removed, g)
		}
		if err := s.syncDir(); err != nil {
			s.fail(err)
			return
		}
		s.mu.Lock()
		for _, g := range removed {
			s.x.dropSegment(g)
			g.release()
		}
		s.mu.Unlock()
		s.nDeleted.Add(uint64(len(removed)))
	}
}

// planCompaction picks what to move out of the segments worth emptying,
// oldest segment first, up to compactBudget bytes. It reads the message
// records (verifying them) now; the writer puts the copies at the head of
// the batch, before any record of the batch that may finish or update them.
func (s *Spool) planCompaction() []copyRec {
	var out []copyRec
	budget := compactBudget
	for _, g := range s.x.segs {
		if budget <= 0 {
			break
		}
		if !s.x.compactable(g) {
			continue
		}
		nm, ns := len(g.mids), len(g.stateMids)
		for budget > 0 && g.cursor < nm+ns+len(g.tombMids) {
			var mid uint64
			switch i := g.cursor; {
			case i < nm:
				mid = g.mids[i]
			case i < nm+ns:
				mid = g.stateMids[i-nm]
			default:
				mid = g.tombMids[i-nm-ns]
			}
			g.cursor++
			if t := s.x.tombs[mid]; t != nil && t.seg == g {
				rec := newRecord(s.salt, recFinish, appendFinish(nil, mid))
				out = append(out, copyRec{mid: mid, rec: rec})
				budget -= len(rec)
				continue
			}
			e := s.x.msgs[mid]
			if e == nil || e.seg != g && !slices.Contains(e.stateSegs, g) {
				continue
			}
			if slices.ContainsFunc(out, func(c copyRec) bool { return c.mid == mid }) {
				continue
			}
			c, err := s.copyOf(e)
			if err != nil {
				// The message cannot be moved; Read reports the same error
				// to the delivery side, which decides its fate.
				s.log.Error("queue: compaction cannot copy message", "mid", mid, "err", err)
				continue
			}
			out = append(out, c)
			budget -= int(c.size()) + len(c.stateRec) + len(c.workRec)
		}
	}
	return out
}

func (s *Spool) copyOf(e *entry) (copyRec, error) {
	var c copyRec
	if e.n > compactStreamAt {
		var err error
		if c, err = s.streamedCopy(e); err != nil {
			return copyRec{}, err
		}
	} else {
		rec, env, _, err := readMessage(e.seg, e.off, e.n)
		if err != nil {
			return copyRec{}, err
		}
		if e.seg.salt != s.salt {
			// Written under another salt (a segment whose header was damaged
			// was read with a guessed one, or files of two spools were mixed).
			p := rec[recHeaderSize:]
			putRecHeader(rec, s.salt, recMessage, len(p), crc(s.salt, p))
		}
		seq, _, _, _ := decodeMessage(rec[recHeaderSize:]) // verified by readMessage
		c = copyRec{mid: env.MID, rec: rec, env: env, seq: seq}
	}
	env := c.env
	for _, r := range e.rcpts {
		if r.st != nil {
			c.states = append(c.states, ridState{RID: int(r.rid), RecipientState: *r.st})
		}
	}
	if len(c.states) > 0 {
		c.stateRec = newRecord(s.salt, recState, appendState(nil, env.MID, c.states))
	}
	if e.work != nil {
		w := *e.work
		c.work = &w
		c.workRec = newRecord(s.salt, recWork, appendWork(nil, env.MID, w))
	}
	return c, nil
}
