// Package queue is mailgate's durable spool and its persistent ID counters.
//
// The rule it carries: no acknowledged message is lost. The receiving side
// sends "250" after DATA only when Commit has returned nil, and Commit
// returns nil only when the message and its envelope are fsynced. A crash
// at any moment loses nothing acknowledged; Open finds every unfinished
// message again.
//
// # Journal
//
// The spool is an append-only journal split into segment files,
// NNNNNNNNNN.seg (a sequence number, ten digits or more), in one directory.
// One writer goroutine appends; concurrent Commits share one pwritev and one
// fdatasync (group commit), which is what lets a disk whose sync takes a few
// hundred microseconds accept thousands of messages a second. Under load the
// writer waits about one sync's time before taking a batch when another
// commit is due in that window (the commit delay), so that more share it.
//
// The current segment is kept written with zeros for up to a mebibyte ahead
// of its appends: an append then overwrites blocks that exist, and
// fdatasync has only data to flush, no new file length to commit through the
// file system's journal. A segment is trimmed to its records when it stops
// taking appends (it rolls, or the spool closes); a zero tail that a crash
// left behind is free space, not damage.
//
// A segment starts with a 32-byte header: the magic "MGSPOOL\x00", the format
// version (1, uint16), a 32-bit salt, the segment's sequence number and a
// CRC-32C of the header. Records follow, each a 20-byte header (magic
// "MGR\xa5", type, payload length, CRC-32C of the payload, CRC-32C of the
// header) and the payload. Both record checksums are seeded with the salt,
// which is random per spool: recovery's search for the next record after a
// damaged region cannot be fooled by a record someone wrote into a message
// body. Integers in headers are little-endian.
//
// Records are of four kinds (payload encodings in record.go):
//
//   - message: the envelope (versioned compact binary) and the message bytes;
//   - state: the delivery state of some recipients of a message (status,
//     attempts, last and next attempt, last reply);
//   - finish: the message is done;
//   - work: the work queue (mail policies, their stages) is done with the
//     message, with what it adds to it; or the message is in quarantines,
//     or released from them and to be scanned again (work.go). The last
//     work record of a message is the one that holds.
//
// A message split by a per-recipient mail policy is committed as a child
// whose envelope names its parent (Envelope.Parent) and keeps the parent's
// RIDs; the parent then records those recipients as Moved. Recovery treats
// a live child's RIDs as moved from its live parent even when the crash
// came before that state record, so each recipient is delivered once.
//
// # Stages
//
// A message too large to hold in memory is written by the receiving side
// to a Stage as it arrives: a file created in the spool directory and
// unlinked at once, whose CRC is computed as it is written. CommitStage
// makes it an ordinary message record: the writer copies the stage into
// the segment within a group commit, and the record's CRC is the
// envelope's joined to the stage's (CRC-32C is affine, so the two combine
// without reading the body again). A crash leaves no stage behind to
// recover: what it held was never acknowledged. (Open deletes any stage-*
// file a crash between creating and unlinking one left.)
//
// # Reading
//
// Read returns a live message's bytes on the heap, verified against the
// record's checksum. Reader streams them, for a sender that must not hold
// a large message whole, and verifies them at their end. Map gives them
// whole without a copy, for a MIME parse: on Unix a read-only mapping of
// the segment's pages (a message under 64 KiB is read instead, as on
// other systems), verified before it is handed out. A Reader and a Mapping
// hold their segment's file open: a segment deleted meanwhile (its message
// finished or compacted away) is unlinked, and stays readable to them
// until they are closed. The spool never cuts a segment file short of a
// live record, so a mapping never loses its pages under it.
//
// # Recovery
//
// Open replays every segment in order. Zeros from the end of the records to
// the end of a file are the stretch written ahead, and are trimmed. A record
// that is incomplete or fails its checksums at the end of the last segment
// is a write that was never acknowledged: it is truncated away. Bad bytes anywhere else are damage:
// Open skips them up to the next valid record, reports them in Recovery
// (segment, offset, length), keeps a copy under corrupt/, and recovers
// everything else. The index it rebuilds holds, per live message, where its
// record is and its recipients' states; never a body.
//
// # Space
//
// A segment is deleted, once it is not the one being written, when none of
// its records is needed: no live message's record or later state, and no
// finish record that still hides an older copy of its message. A mostly
// dead segment is compacted: the writer copies its live messages, with a
// snapshot of their states, into the current segment (a bounded amount per
// group commit, sharing its fsync), after which the old segment is deleted.
// A large message is verified by reading it through and then copied from
// file to file, never whole in memory.
//
// When free space is tight (below twice the floor, or 4 MiB), the writer
// writes no zeros ahead, and rolls the current segment as soon as half of
// it is dead, so that compaction returns a finished message's space within
// a few batches instead of when the segment reaches its 64 MiB.
//
// # Disk full
//
// Options.MinFree is a free-space floor, checked with a statfs cached for
// 100 ms: below it Room and Commit refuse new messages with ErrNoSpace
// (Commit while the message would leave less than half the floor), while
// state and finish records, which let space be returned, are still written.
//
// A write or fsync that fails with ENOSPC or EDQUOT does not fail the
// spool: the batch is cut off (the segment truncated back to its last
// acknowledged record and the truncation synced), its callers get
// ErrNoSpace, and the next batch is written in its place. A record whose
// Commit failed is thus never recovered, so the sender's retry cannot make
// a duplicate.
//
// # Failure
//
// If a write or sync fails for another reason, or the cut itself fails,
// every record of that batch gets the error and the spool goes read-only
// for good (ErrFailed): after a failed fsync the
// kernel may have dropped the pages, and a later fsync could succeed without
// them. Reopening recovers whatever did reach the disk.
package queue
