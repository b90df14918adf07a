package main

import (
	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/filter"
	"github.com/mailgate/mailgate/workqueue"
)

// extraStages, when set (by a file built for tests only), adds stages to
// those of the configuration.
var extraStages func(cfg *config.Config) map[string]workqueue.Stage

// stages are the engines and content filters the mail policies may name.
// The scanners and filters register here as they are built; until then a
// policy naming one fails the start with the name. Engines and content
// filters share one namespace: a content filter's name wins.
func stages(cfg *config.Config) map[string]workqueue.Stage {
	m := map[string]workqueue.Stage{}
	if extraStages != nil {
		for name, st := range extraStages(cfg) {
			m[name] = st
		}
	}
	for name, st := range filter.Stages(cfg.ContentFilters) {
		m[name] = st
	}
	return m
}
