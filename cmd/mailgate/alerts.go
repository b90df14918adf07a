package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/mailgate/mailgate/alert"
	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/metrics"
	"github.com/mailgate/mailgate/scan/clamd"
	"github.com/mailgate/mailgate/scan/rspamd"
	"github.com/mailgate/mailgate/scan/spamd"
	"github.com/mailgate/mailgate/stats"
)

// engineProber makes a scanning engine's client an alert.Prober: its
// Ping (clamd's PING, spamd's PING, rspamd's /ping) is the probe.
type engineProber struct {
	name  string
	class alert.Class
	ping  func(ctx context.Context) error
}

func (p engineProber) Name() string                    { return p.name }
func (p engineProber) Probe(ctx context.Context) error { return p.ping(ctx) }

// scannerProbers are the configured scanning engines, each with its
// alert class. A client of its own: a probe is one connection, like any
// scan's.
func scannerProbers(sc config.Scanners) ([]engineProber, error) {
	var ps []engineProber
	if o := sc.ClamAV; o != nil {
		ps = append(ps, engineProber{name: clamd.Name + " (clamd " + o.Address + ")", class: alert.AntiVirus, ping: clamd.New(*o).Ping})
	}
	if o := sc.SpamAssassin; o != nil {
		ps = append(ps, engineProber{name: spamd.Name + " (spamd " + o.Address + ")", class: alert.AntiSpam, ping: spamd.New(*o).Ping})
	}
	if o := sc.Rspamd; o != nil {
		c, err := rspamd.New(*o)
		if err != nil {
			return nil, fmt.Errorf("scanners.rspamd: %w", err)
		}
		ps = append(ps, engineProber{name: rspamd.Name + " (" + o.URL + ")", class: alert.AntiSpam, ping: c.Ping})
	}
	return ps, nil
}

// startAlerts builds the alerts' checks over the gateway's gauges and
// starts them.
func (g *gateway) startAlerts() (*alert.Alerter, error) {
	ac := g.cfg.Alerts
	floor := g.spool.MinFree()
	warn := ac.DiskFreeBelow
	if warn == config.DiskFreeAuto {
		warn = 2 * floor
	}
	checks := []alert.Check{
		alert.QueueCheck(func() alert.QueueState {
			s := g.stats.Status(false)
			q := alert.QueueState{Messages: s.Gauges.QueueMessages}
			if s.Oldest != nil {
				q.OldestMID, q.Oldest = s.Oldest.MID, s.Oldest.Received
			}
			return q
		}, ac.QueueMaxAge, ac.QueueMaxMessages),
		alert.DestinationCheck(func() []alert.Destination {
			// TopHosts reads every queued message's envelope for the
			// down destinations' recipients: a round with none down
			// (nearly all of them) leaves the queue alone.
			if !g.stats.AnyDown() {
				return nil
			}
			hosts, err := g.stats.TopHosts(stats.SortActive, 0)
			if err != nil {
				return nil // no queue manager yet
			}
			ds := make([]alert.Destination, 0, len(hosts))
			for _, h := range hosts {
				ds = append(ds, alert.Destination{Name: h.Name, Down: h.Down, Active: h.Gauges.Active})
			}
			return ds
		}, ac.DestinationDown),
		alert.DiskCheck(g.spool.FreeSpace, g.cfg.DataDir, warn, floor),
		alert.LogCheck(g.cfg.Logs.Mail.Path, func() alert.LogFailures {
			s := g.mailLog.Stats()
			return alert.LogFailures{WriteErrors: s.WriteErrors, LostLines: s.LostLines, Dropped: s.Dropped, LastError: s.LastError}
		}),
	}
	if g.certs != nil {
		var certs []alert.Certificate
		for file, leaf := range g.certs.certs {
			certs = append(certs, alert.Certificate{File: file, Leaf: leaf})
		}
		slices.SortFunc(certs, func(a, b alert.Certificate) int { return cmp.Compare(a.File, b.File) })
		checks = append(checks, alert.CertificateCheck(certs, ac.CertificateExpiry))
	}
	if g.tracking.usesStore() {
		checks = append(checks, alert.ProbeCheck(g.tracking, alert.System, ac.ProbeTimeout,
			"Mail flows without it: the feed holds the newest lines in memory and catches up from the mail log once the store answers. Check the store ("+
				g.cfg.Tracking.Driver+"): is it running, does it take connections from this host, is its disk full?"))
	}
	engines, err := scannerProbers(g.cfg.Scanners)
	if err != nil {
		return nil, err
	}
	for _, p := range engines {
		checks = append(checks, alert.ProbeCheck(p, p.class, ac.ProbeTimeout,
			"Messages that need this engine wait in the work queue (or pass unscanned, by the policy's scan_failure) until it answers. Start it, or look at its own log."))
	}
	a := alert.New(alert.Options{Hostname: g.cfg.Hostname, From: ac.From, To: ac.To, Version: "mailgate " + version,
		Interval: ac.CheckInterval, RepeatInterval: ac.RepeatInterval, Checks: checks,
		Spool: g.spool, IDs: g.ids, Enqueue: g.delivery.Enqueue, Events: g.events(), Logger: g.log})
	a.Start()
	return a, nil
}

// usesStore reports whether the service opens a tracking store.
func (t *trackingService) usesStore() bool { return t.feed != nil || t.httpLn != nil }

// Name is the tracking store's name in alerts.
func (t *trackingService) Name() string {
	return fmt.Sprintf("The tracking store (%s)", cmp.Or(t.cfg.Tracking.Driver, "sqlite"))
}

// Probe asks the tracking store for this gateway's watermark: an answer
// means it takes queries. Before the store could be opened, the error of
// the last try.
func (t *trackingService) Probe(ctx context.Context) error {
	t.mu.Lock()
	s, openErr := t.store, t.openErr
	t.mu.Unlock()
	if s == nil {
		if openErr == nil {
			return nil // the first try is under way: not known to fail
		}
		return fmt.Errorf("cannot be opened: %w", openErr)
	}
	if _, err := s.Watermark(ctx, t.cfg.Hostname); err != nil {
		return err
	}
	return nil
}

// alertCounts are the alerts' counts for the metrics.
func (g *gateway) alertCounts() []metrics.AlertCount {
	counts, _, _ := g.alerts.Counts()
	out := make([]metrics.AlertCount, len(counts))
	for i, c := range counts {
		out[i] = metrics.AlertCount{Class: string(c.Class), Severity: c.Severity.String(), N: c.N}
	}
	return out
}
