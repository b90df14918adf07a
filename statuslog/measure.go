package statuslog

import "runtime/metrics"

// RAMUsed returns the bytes of memory the Go runtime holds from the
// system (the ESA's RAMUsd).
func RAMUsed() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
