package stats

import "time"

// ringSeconds is the longest rate window: 15 minutes, one bucket a second.
const ringSeconds = 15 * 60

// ring counts the rated counters per second over the last ringSeconds:
// 900 buckets of six counts, 43 KB, whatever the traffic.
type ring struct {
	head    int64 // Unix second of the newest bucket; 0 before the first count
	buckets [ringSeconds][len(rated)]uint64
}

// ratedIndex is a counter's column in the ring, -1 for one not rated.
var ratedIndex = func() (ix [numCounters]int) {
	for i := range ix {
		ix[i] = -1
	}
	for i, k := range rated {
		ix[k] = i
	}
	return ix
}()

// advance moves the ring to second s, zeroing the buckets it passes.
func (r *ring) advance(s int64) {
	if s <= r.head {
		return
	}
	if r.head == 0 || s-r.head >= ringSeconds {
		r.buckets = [ringSeconds][len(rated)]uint64{}
	} else {
		for t := r.head + 1; t <= s; t++ {
			r.buckets[t%ringSeconds] = [len(rated)]uint64{}
		}
	}
	r.head = s
}

func (r *ring) add(now time.Time, k Counter, n uint64) {
	i := ratedIndex[k]
	if i < 0 {
		return
	}
	s := now.Unix()
	r.advance(s)
	if s <= r.head-ringSeconds {
		return // from a clock that went back by more than the ring
	}
	r.buckets[s%ringSeconds][i] += n
}

// perHour is the rate of counter column i over the window seconds ending
// at now, in events per hour, as the ESA gives it ("100 recipients in a
// single minute is 6,000 per hour for the 1-minute interval").
func (r *ring) perHour(now time.Time, i int, window int64) uint64 {
	end := now.Unix()
	var sum uint64
	for t := end - window + 1; t <= end; t++ {
		if t > r.head || t <= r.head-ringSeconds {
			continue
		}
		sum += r.buckets[t%ringSeconds][i]
	}
	return sum * 3600 / uint64(window)
}
