package outbound

import (
	"container/heap"
	"time"
)

// fifo is a queue of MIDs: messages that wait in the spool for room in
// memory. Eight bytes a message is what a waiting message costs.
type fifo struct {
	q    []uint64
	head int
}

func (f *fifo) len() int { return len(f.q) - f.head }

func (f *fifo) push(mid uint64) { f.q = append(f.q, mid) }

func (f *fifo) pop() uint64 {
	mid := f.q[f.head]
	f.head++
	// Move the live part down once the dead part is the larger, so that a
	// long-running queue does not grow without bound.
	if f.head > 1024 && f.head*2 > len(f.q) {
		n := copy(f.q, f.q[f.head:])
		f.q = f.q[:n]
		f.head = 0
	}
	return mid
}

// timer is one entry of the schedule of deferred work: a job of a message
// in memory (j set), or a message that waits in the spool (j nil) until at.
// Entries are never removed early; one that no longer matches what it
// scheduled is skipped when it comes due (see Manager.fire).
type timer struct {
	at  int64 // Unix nanoseconds
	mid uint64
	j   *job
}

type timers []timer

func (t timers) Len() int { return len(t) }
func (t timers) Less(i, k int) bool {
	if t[i].at != t[k].at {
		return t[i].at < t[k].at
	}
	return t[i].mid < t[k].mid
}
func (t timers) Swap(i, k int) { t[i], t[k] = t[k], t[i] }
func (t *timers) Push(x any)   { *t = append(*t, x.(timer)) }
func (t *timers) Pop() any {
	old := *t
	x := old[len(old)-1]
	old[len(old)-1] = timer{}
	*t = old[:len(old)-1]
	return x
}

func (t *timers) add(at time.Time, mid uint64, j *job) {
	heap.Push(t, timer{at: at.UnixNano(), mid: mid, j: j})
}

// next is when the earliest entry is due; ok is false when there is none.
func (t timers) next() (time.Time, bool) {
	if len(t) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, t[0].at), true
}

func popTimer(t *timers) timer { return heap.Pop(t).(timer) }
