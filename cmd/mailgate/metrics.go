package main

import (
	"slices"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/metrics"
)

// metricsOptions are the configured names that bound the metrics' labels:
// destinations, the HATs' DNS lists, the work queue's stages, the content
// filters, the quarantines.
func metricsOptions(cfg *config.Config) metrics.Options {
	o := metrics.Options{Destinations: destinationNames(cfg)}
	for _, l := range cfg.Listeners {
		if l.HAT == nil {
			continue
		}
		for _, z := range l.HAT.DNSLists() {
			if !slices.Contains(o.DNSLists, z) {
				o.DNSLists = append(o.DNSLists, z)
			}
		}
	}
	if cfg.MailPolicies == nil {
		return o
	}
	// The stages' names: building them connects to nothing (an engine's
	// client dials when it scans), and a configuration that names a bad
	// engine fails the start later, where serve builds them for real.
	st, _ := stages(cfg, event.Discard)
	for name := range st {
		o.Stages = append(o.Stages, name)
	}
	for _, f := range cfg.ContentFilters {
		o.ContentFilters = append(o.ContentFilters, f.Name)
	}
	for _, q := range cfg.Quarantines {
		o.Quarantines = append(o.Quarantines, q.Name)
	}
	return o
}
