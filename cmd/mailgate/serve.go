package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/alert"
	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/health"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/logsub"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/metrics"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
	"github.com/mailgate/mailgate/stats"
	"github.com/mailgate/mailgate/statuslog"
	"github.com/mailgate/mailgate/workqueue"
)

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var file string
	fs.StringVar(&file, "config", "", "configuration `file` (default: the embedded default)")
	fs.StringVar(&file, "c", "", "short for --config")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file` until the gateway stops (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile to `file` when the gateway is told to stop, before it stops (for performance work)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "mailgate:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "mailgate:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	var cfg *config.Config
	if file == "" {
		cfg = config.Default()
	} else {
		c, err := config.Load(file)
		if err != nil {
			fmt.Fprintln(stderr, "mailgate:", err)
			return 1
		}
		cfg = c
	}
	for _, w := range cfg.Warnings {
		logger.Warn("mailgate: configuration", "warning", w.Error())
	}
	g, err := start(cfg, logger)
	if err != nil {
		logger.Error("mailgate: start", "err", err)
		return 1
	}
	// From here the gateway's diagnostics reach its log subscriptions too,
	// those of packages that log with slog's default among them.
	logger = g.log
	slog.SetDefault(logger)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	code := 0
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				g.reopenLogs()
				g.reloadUsers()
				continue
			}
			logger.Info("mailgate: shutting down", "signal", sig.String(), "grace", cfg.ShutdownTimeout)
			break wait
		case err := <-g.failed:
			// A listener that no longer accepts: the gateway does not run
			// on without it. It stops as on SIGTERM, and exits 1 for its
			// supervisor to restart it.
			logger.Error("mailgate: a listener's accept loop died; shutting down", "err", err, "grace", cfg.ShutdownTimeout)
			code = 1
			break wait
		}
	}
	signal.Stop(sigs)
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			logger.Error("mailgate: heap profile", "err", err)
		}
	}
	if err := g.stop(); err != nil {
		logger.Error("mailgate: stop", "err", err)
		return 1
	}
	return code
}

// writeHeapProfile writes the heap as it is now, the queue and the caches
// still in memory, after a collection so that what is in use is current.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// gateway is a running mailgate: its stores, logs and listeners.
type gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	ids       *queue.Counters
	spool     *queue.Spool
	mailLog   *maillog.Writer
	debugLogs []*maillog.Writer
	delivery  *outbound.Manager
	work      *workqueue.Queue  // nil without mail_policies
	quar      *quarantine.Store // with the work queue
	control   *control.Server
	listeners []*inbound.Listener
	certs     *certWatch
	serving   sync.WaitGroup
	tracking  *trackingService
	subs      *logsub.Set       // the log subscriptions' outputs
	status    *statuslog.Logger // nil without a status log subscription
	stats     *stats.Collector
	metrics   *metrics.Metrics
	health    *health.Checker
	logWatch  *logWatch
	failed    chan error // a listener's accept loop died
	alerts    *alert.Alerter
}

// start opens everything in dependency order and starts the listeners; on
// an error it closes what it opened.
func start(cfg *config.Config, logger *slog.Logger) (_ *gateway, err error) {
	// g, not the result: "return nil, err" must not hide it from the cleanup.
	g := &gateway{cfg: cfg, log: logger, metrics: metrics.New(metricsOptions(cfg)),
		health: &health.Checker{}, failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			g.stopDelivery(ctx)
			cancel()
			g.close()
		}
	}()
	spoolDir := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if g.ids, err = queue.OpenCounters(filepath.Join(cfg.DataDir, "counters")); err != nil {
		return nil, err
	}
	minFree := cfg.MinFreeSpace
	if minFree == config.MinFreeAuto {
		minFree = queue.AutoMinFree
	}
	if g.spool, err = queue.Open(spoolDir, queue.Options{MinFree: minFree, Logger: logger}); err != nil {
		return nil, err
	}
	// A MID in the spool above the counters' file (a lost file, a restore)
	// must never be handed out again.
	if err := g.ids.Ensure(queue.MID, g.spool.MaxMID()); err != nil {
		return nil, err
	}
	g.health.SetSpool(g.spool)
	g.metrics.Watch(metrics.Sources{Spool: g.spool, Problems: g.health.Problems})
	st := g.spool.Stats()
	logger.Info("mailgate: spool recovered", "dir", spoolDir, "messages", st.Messages, "segments", st.Segments, "bytes", st.Bytes)

	hostname := cfg.Hostname
	// The subscriptions first: what follows logs to them too.
	if g.subs, err = logsub.Open(cfg.Logs.Subscriptions, logsub.Options{Version: "mailgate " + version,
		Serial: hostname, Logger: logger}); err != nil {
		return nil, err
	}
	logger = slog.New(logsub.Handler(logger.Handler(), g.subs.Log(config.LogGateway)))
	g.log = logger
	lc := cfg.Logs.Mail
	if g.mailLog, err = maillog.Open(lc.Path, maillog.Options{Level: lc.Level, MaxSize: lc.MaxSize,
		MaxFiles: lc.MaxFiles, Version: "mailgate " + version, Serial: hostname, RollEvery: lc.Schedule.RollEvery,
		RollDaily: lc.Schedule.RollDaily, RollAt: lc.Schedule.RollAt, MaxAge: lc.Schedule.MaxAge}); err != nil {
		return nil, err
	}
	g.logWatch = watchMailLog(g.mailLog, logger, mailLogCheckInterval)
	g.metrics.Watch(metrics.Sources{MailLog: g.mailLog})
	if g.tracking, err = startTracking(cfg, g.mailLog, logger, opsHandlers{metrics: g.metrics.Handler(), ready: g.health.Problems}); err != nil {
		return nil, err
	}
	// The status counters, the Lifetime column saved in the data directory.
	if g.stats, err = stats.New(stats.Options{Path: filepath.Join(cfg.DataDir, "stats.json"),
		Spool: g.spool, IDs: g.ids, Logger: logger}); err != nil {
		return nil, err
	}
	g.tracking.watch(g.metrics)
	dns := resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout)
	// The sender-authentication checks ask 4 to 6 questions a message, most
	// of them the same for every message of a domain: theirs is a resolver
	// with a cache (dns.cache_size). Delivery and the HAT keep theirs.
	authDNS := resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout).WithCache(cfg.DNS.CacheSize)
	srv := &inbound.Server{
		Hostname:   hostname,
		Postmaster: cfg.Postmaster,
		Spool:      g.spool,
		IDs:        g.ids,
		Events:     g.events(),
		DNS:        inbound.NewResolver(dns, cfg.DNS.Timeout),
		Auth:       mailauth.New(authDNS),
		AuthServID: cfg.AuthServID,
		Lists:      resolver.NewLists(dns, cfg.DNS.ListTimeout, cfg.DNS.ListCacheSize),
		Logger:     logger,
		DKIM:       cfg.DKIMSigning,

		ListenerEvents: g.metrics.Listener,
		Pressure:       inbound.NewPressure(cfg.Limits, g.spool.Load, g.events()),
	}
	srv.Lists.OnFailure = g.metrics.DNSListFailed
	debugByPath := map[string]*maillog.Writer{}
	debugLog := func(d config.DebugLog) (*maillog.Writer, error) {
		if w := debugByPath[d.Path]; w != nil {
			return w, nil
		}
		w, err := maillog.Open(d.Path, maillog.Options{Level: event.Info, MaxSize: d.MaxSize,
			MaxFiles: d.MaxFiles, Version: "mailgate " + version, Serial: hostname, RollEvery: d.Schedule.RollEvery,
			RollDaily: d.Schedule.RollDaily, RollAt: d.Schedule.RollAt, MaxAge: d.Schedule.MaxAge})
		if err != nil {
			return nil, err
		}
		debugByPath[d.Path] = w
		g.debugLogs = append(g.debugLogs, w)
		return w, nil
	}
	for _, d := range cfg.Logs.InjectionDebug {
		w, err := debugLog(d.DebugLog)
		if err != nil {
			return nil, err
		}
		// The transcript goes to the tracking store too: "track --events"
		// shows it within the message's timeline.
		sinks := event.Multi{w, g.tracking.sink()}
		if l := g.subs.Log(config.LogInjectionDebug); l != nil {
			sinks = append(sinks, l)
		}
		srv.Debug = append(srv.Debug, debuglog.New(d.Match, d.Sessions, sinks))
	}
	o := outbound.Options{Hostname: hostname, Spool: g.spool, IDs: g.ids, Events: event.Multi{srv.Events, g.metrics.Delivery()},
		Resolver: dns, Routes: cfg.Routes, Delivery: cfg.Delivery, Logger: logger, Attempted: g.metrics.Attempted}
	for _, d := range cfg.Logs.DomainDebug {
		w, err := debugLog(d.DebugLog)
		if err != nil {
			return nil, err
		}
		sinks := event.Multi{w}
		if l := g.subs.Log(config.LogDomainDebug); l != nil {
			sinks = append(sinks, l)
		}
		o.Debug = append(o.Debug, debuglog.New(d.Match, d.Sessions, sinks))
	}
	if cfg.MailPolicies != nil {
		// Before delivery starts: the work queue claims the messages whose
		// work was not done when the gateway stopped, and delivery leaves
		// them to it.
		st, err := stages(cfg, srv.Events)
		if err != nil {
			return nil, err
		}
		// The quarantines find the messages they hold; a release hands
		// one back to the work queue.
		if g.quar, err = quarantine.New(quarantine.Options{Spool: g.spool, Quarantines: cfg.Quarantines,
			Events: event.Multi{srv.Events, g.metrics.Delivery()}, Logger: logger, Resume: func(mid uint64) { g.work.Resume(mid) }}); err != nil {
			return nil, err
		}
		g.work, err = workqueue.New(workqueue.Options{Spool: g.spool, IDs: g.ids,
			Policies: &cfg.MailPolicies.MailPolicies, Workers: cfg.MailPolicies.Workers, Stages: st,
			Next: func(env *queue.Envelope) { g.delivery.Enqueue(env) }, Events: event.Multi{srv.Events, g.metrics.Delivery()}, Logger: logger,
			Hostname: cfg.Hostname, BounceFrom: cfg.Delivery.Bounce.From,
			RetryMin: cfg.MailPolicies.InitialRetry, RetryMax: cfg.MailPolicies.MaxRetry,
			Quarantines: g.quar, StageRan: g.metrics.StageRan})
		if err != nil {
			return nil, err
		}
		o.Claimed = g.work.Claimed
		g.metrics.Watch(metrics.Sources{WorkQueue: g.work, Quarantines: g.quar})
		srv.DataCheck = dataCheck(cfg, st)
	}
	if g.delivery, err = outbound.New(o); err != nil {
		return nil, err
	}
	g.stats.Attach(g.delivery)
	g.metrics.Watch(metrics.Sources{Delivery: g.delivery})
	if cfg.Delivery.Suspended {
		logger.Warn("mailgate: delivery is suspended (delivery.suspended): messages are received and queued, none is delivered")
	}
	// Before the listeners: what the spool holds from before starts moving
	// at once, and each new message is handed over as it is committed.
	// (Suspended, Start does nothing: the queue commands still work.)
	if err := g.delivery.Start(); err != nil {
		return nil, err
	}
	srv.Queued = g.delivery.Enqueue
	if g.work != nil {
		g.work.Start()
		g.quar.Start()
		srv.Handoff = g.work.Submit
	}
	if g.control, err = control.Listen(control.SocketPath(cfg.DataDir), g.delivery, logger, control.WithStats(g.stats)); err != nil {
		return nil, err
	}
	if g.work != nil {
		g.control.ServeWorkQueue(g.work)
		g.control.ServeQuarantines(g.quar)
		g.tracking.serveQuarantines(g.quar)
	}
	for _, lc := range cfg.Listeners {
		l, err := srv.Listen(lc)
		if err != nil {
			return nil, err
		}
		g.listeners = append(g.listeners, l)
		logger.Info("mailgate: listening", "listener", lc.Name, "address", l.Addr().String(), "type", lc.Type)
	}
	g.certs = watchCertificates(servedCertificates(cfg), logger, certCheckInterval)
	if l := g.subs.Log(config.LogStatus); l != nil {
		g.status = statuslog.Start(cfg.Logs.StatusInterval, func() event.Status {
			return statuslog.Line(g.stats.Status(false), statuslog.RAMUsed())
		}, l)
	}
	if g.alerts, err = g.startAlerts(); err != nil {
		return nil, err
	}
	g.metrics.Watch(metrics.Sources{Alerts: g.alertCounts})
	checked := make([]health.Listener, len(g.listeners))
	for i, l := range g.listeners {
		checked[i] = l
		g.serving.Add(1)
		go func() {
			defer g.serving.Done()
			if err := l.Serve(); err != nil {
				logger.Error("mailgate: listener stopped", "listener", l.Name(), "err", err)
				// Before the gateway hears of it: it may stop at once,
				// and the alert must be in the spool by then.
				g.alerts.Hold(alert.ListenerDown(l.Name(), l.Addr().String(), err))
				select {
				case g.failed <- err:
				default: // the gateway is stopping already
				}
			}
		}()
	}
	g.health.SetListeners(checked)
	return g, nil
}

// events is the mail log's event stream: its file first, then tracking
// and the status counters, then the subscriptions' outputs.
func (g *gateway) events() event.Sink {
	sinks := event.Multi{g.mailLog, g.tracking.sink(), g.stats}
	if l := g.subs.Log(config.LogMail); l != nil {
		sinks = append(sinks, l)
	}
	return sinks
}

// subsFlush bounds the time the syslog senders have at shutdown to send
// the lines they hold; what is left is dropped, counted and logged.
const subsFlush = 2 * time.Second

// destinationNames are the destinations that always get a label value of
// their own in the metrics: the routes and the destination controls.
func destinationNames(cfg *config.Config) []string {
	var names []string
	for _, r := range cfg.Routes {
		names = append(names, r.Domain)
	}
	for _, d := range cfg.Delivery.Destinations {
		if d.Domain != config.DefaultDestination {
			names = append(names, d.Domain)
		}
	}
	return names
}

func (g *gateway) reopenLogs() {
	for _, w := range append([]*maillog.Writer{g.mailLog}, g.debugLogs...) {
		if w == nil {
			continue
		}
		if err := w.Reopen(); err != nil {
			g.log.Error("mailgate: reopen log", "err", err)
		}
	}
	if err := g.subs.Reopen(); err != nil {
		g.log.Error("mailgate: reopen log", "err", err)
	}
	g.log.Info("mailgate: logs reopened")
}

// reloadUsers reads the SMTP AUTH users files again; a file that does not
// load leaves its users as they were.
func (g *gateway) reloadUsers() {
	for _, l := range g.listeners {
		db := l.Users()
		if db == nil {
			continue
		}
		if err := db.Reload(); err != nil {
			g.log.Error("mailgate: reload users", "err", err)
			continue
		}
		g.log.Info("mailgate: users reloaded", "file", db.Path(), "users", db.Len())
	}
}

// stop drains the listeners, then the deliveries, within the shutdown
// timeout; kills what remains (a cut delivery is retried after restart);
// then closes the stores and logs.
func (g *gateway) stop() error {
	g.health.Stopping() // load balancers move away during the drain
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range g.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Shutdown(ctx)
		}()
	}
	wg.Wait()
	g.serving.Wait()
	g.stopDelivery(ctx)
	return g.close()
}

// stopDelivery closes the control socket, so that no queue command
// runs while the queue manager stops, then stops the work queue and the
// queue manager.
func (g *gateway) stopDelivery(ctx context.Context) {
	if g.alerts != nil {
		g.alerts.Stop() // it commits to the spool and hands to delivery
	}
	if g.control != nil {
		if err := g.control.Close(ctx); err != nil {
			g.log.Warn("mailgate: control socket closed", "err", err)
		}
	}
	if g.quar != nil {
		g.quar.Stop()
	}
	if g.work != nil {
		// Stages under way are cut: their messages stay in the spool
		// without an outcome, and the next start works on them again.
		if err := g.work.Stop(ctx); err != nil {
			g.log.Warn("mailgate: work queue stopped", "err", err)
		}
	}
	if g.delivery != nil {
		if err := g.delivery.Stop(ctx); err != nil {
			g.log.Warn("mailgate: delivery stopped", "err", err)
		}
	}
}

func (g *gateway) close() error {
	if g.status != nil {
		g.status.Stop() // before the stats it reads
	}
	if g.certs != nil {
		g.certs.close()
	}
	if g.tracking != nil {
		g.tracking.stop()
	}
	if g.logWatch != nil {
		g.logWatch.close()
	}
	var errs []error
	if g.stats != nil {
		// After the deliveries, whose last events it counts.
		errs = append(errs, g.stats.Close())
	}
	if g.spool != nil {
		st := g.spool.Stats()
		g.log.Info("mailgate: spool closed", "messages", st.Messages, "records_written", st.Records,
			"batches", st.Batches, "fsyncs", st.Syncs, "segments", st.Segments, "bytes", st.Bytes)
		errs = append(errs, g.spool.Close())
	}
	if g.ids != nil {
		errs = append(errs, g.ids.Close())
	}
	for _, w := range append([]*maillog.Writer{g.mailLog}, g.debugLogs...) {
		if w != nil {
			errs = append(errs, w.Close())
		}
	}
	// Last: the subscriptions have the lines of everything above. The
	// syslog senders get subsFlush to send what they hold.
	ctx, cancel := context.WithTimeout(context.Background(), subsFlush)
	defer cancel()
	errs = append(errs, g.subs.Close(ctx))
	return errors.Join(errs...)
}
