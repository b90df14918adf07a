package main

import (
	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/filter"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/scan"
	"github.com/mailgate/mailgate/scan/clamd"
	"github.com/mailgate/mailgate/scan/rspamd"
	"github.com/mailgate/mailgate/scan/spamd"
	"github.com/mailgate/mailgate/scanstage"
	"github.com/mailgate/mailgate/workqueue"
)

// extraStages, when set (by a file built for tests only), adds stages to
// those of the configuration.
var extraStages func(cfg *config.Config) map[string]workqueue.Stage

// stages are the engines and content filters the mail policies may name:
// the configured scanners by their key in the scanners section (rspamd,
// spamassassin, clamav), and the content filters. Engines and content
// filters share one namespace: a content filter's name wins. events gets
// the engines' verdict lines.
func stages(cfg *config.Config, events event.Sink) (map[string]workqueue.Stage, error) {
	m := map[string]workqueue.Stage{}
	if extraStages != nil {
		for name, st := range extraStages(cfg) {
			m[name] = st
		}
	}
	if o := cfg.Scanners.Rspamd; o != nil {
		c, err := rspamd.New(*o)
		if err != nil {
			return nil, err
		}
		m["rspamd"] = &scanstage.Spam{Engine: c, Events: events}
	}
	if o := cfg.Scanners.SpamAssassin; o != nil {
		m["spamassassin"] = &scanstage.Spam{Engine: spamd.New(*o), Events: events}
	}
	if o := cfg.Scanners.ClamAV; o != nil {
		m["clamav"] = &scanstage.Virus{Engine: clamd.New(*o), Events: events}
	}
	for name, st := range filter.Stages(cfg.ContentFilters) {
		m[name] = st
	}
	return m, nil
}

// dataCheck is the listeners' reject at SMTP time, when an incoming
// policy asks for it, with the engines of st; nil otherwise.
func dataCheck(cfg *config.Config, st map[string]workqueue.Stage) inbound.DataCheck {
	if !scanstage.Rejecting(&cfg.MailPolicies.MailPolicies) {
		return nil
	}
	a := &scanstage.AtData{Policies: &cfg.MailPolicies.MailPolicies,
		Spam: map[string]scan.SpamEngine{}, Virus: map[string]scan.VirusEngine{}}
	for name, s := range st {
		switch s := s.(type) {
		case *scanstage.Spam:
			a.Spam[name] = s.Engine
		case *scanstage.Virus:
			a.Virus[name] = s.Engine
		}
	}
	return a
}
