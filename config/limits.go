package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits are the gateway's backpressure: when delivery falls behind
// receiving, new messages are first slowed (Postfix's in_flow_delay), then
// refused (452 4.3.1), by three measures, each with a high and a hard
// mark (0: no mark). A state is left when every measure is back below 90 %
// of the mark that set it (hysteresis).
type Limits struct {
	QueueHighWater  int64 // live messages in the spool above which each MAIL FROM waits InFlowDelay
	QueueHardWater  int64 // live messages above which MAIL FROM gets 452 4.3.1
	SpoolHighWater  int64 // bytes of the live messages, as QueueHighWater
	SpoolHardWater  int64
	MemoryHighWater int64 // the gateway's resident memory, as QueueHighWater
	MemoryHardWater int64
	InFlowDelay     time.Duration // the wait of MAIL FROM above a high mark
}

// Backpressure defaults: far above what a gateway that keeps up holds, so
// that only a queue that grows without bound meets them.
const (
	DefaultQueueHighWater = 50000
	DefaultQueueHardWater = 200000
	DefaultInFlowDelay    = time.Second // Postfix's
)

func defaultLimits() Limits {
	return Limits{QueueHighWater: DefaultQueueHighWater, QueueHardWater: DefaultQueueHardWater, InFlowDelay: DefaultInFlowDelay}
}

func (d *decoder) limits(n *yaml.Node, path string, l *Limits) {
	f := d.fields(n, path, "queue_high_water", "queue_hard_water", "spool_high_water", "spool_hard_water",
		"memory_high_water", "memory_hard_water", "in_flow_delay")
	for _, it := range []struct {
		key string
		dst *int64
	}{{"queue_high_water", &l.QueueHighWater}, {"queue_hard_water", &l.QueueHardWater}} {
		if v := f[it.key]; present(v) {
			if m, ok := d.integer(v, join(path, it.key), 0); ok {
				*it.dst = int64(m)
			}
		}
	}
	for _, it := range []struct {
		key string
		dst *int64
	}{{"spool_high_water", &l.SpoolHighWater}, {"spool_hard_water", &l.SpoolHardWater},
		{"memory_high_water", &l.MemoryHighWater}, {"memory_hard_water", &l.MemoryHardWater}} {
		if v := f[it.key]; present(v) {
			if m, ok := d.size(v, join(path, it.key)); ok {
				*it.dst = m
			}
		}
	}
	if v := f["in_flow_delay"]; present(v) {
		if dur, ok := d.duration(v, join(path, "in_flow_delay"), 0); ok {
			l.InFlowDelay = dur
		}
	}
	for _, p := range []struct {
		high, hard string
		hi, ha     int64
	}{{"queue_high_water", "queue_hard_water", l.QueueHighWater, l.QueueHardWater},
		{"spool_high_water", "spool_hard_water", l.SpoolHighWater, l.SpoolHardWater},
		{"memory_high_water", "memory_hard_water", l.MemoryHighWater, l.MemoryHardWater}} {
		if p.hi > 0 && p.ha > 0 && p.ha <= p.hi {
			at := f[p.hard]
			if !present(at) {
				at = f[p.high]
			}
			d.errorf(at, join(path, p.hard), "%d is not above %s %d: messages are slowed first, then refused", p.ha, p.high, p.hi)
		}
	}
}
