package main

import (
	"log/slog"
	"time"

	"github.com/mailgate/mailgate/maillog"
)

// mailLogCheckInterval is how often the mail log's failures are looked at.
const mailLogCheckInterval = 10 * time.Second

// logWatch reports the mail log writer's failures in the gateway's own
// log as they grow: the writer itself logs only its first error, and a
// disk that fills, empties and fills again would be silent after that. One
// line per interval at most, and one when writes work again.
type logWatch struct {
	w    *maillog.Writer
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
}

func watchMailLog(w *maillog.Writer, log *slog.Logger, every time.Duration) *logWatch {
	lw := &logWatch{w: w, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go lw.run(every)
	return lw
}

func (lw *logWatch) run(every time.Duration) {
	defer close(lw.done)
	t := time.NewTicker(every)
	defer t.Stop()
	last := lw.w.Stats()
	failing := false
	for {
		select {
		case <-lw.stop:
			return
		case <-t.C:
		}
		st := lw.w.Stats()
		errs, lost, dropped := st.WriteErrors-last.WriteErrors, st.LostLines-last.LostLines, st.Dropped-last.Dropped
		switch {
		case errs > 0 || dropped > 0:
			failing = true
			lw.log.Error("mailgate: mail log writes failing; the lost lines are counted in mailgate_mail_log_lost_lines_total",
				"write_errors", errs, "lines_lost", lost, "lines_dropped", dropped, "err", st.LastError)
		case failing:
			failing = false
			lw.log.Info("mailgate: mail log writes work again", "write_errors_total", st.WriteErrors,
				"lines_lost_total", st.LostLines, "lines_dropped_total", st.Dropped)
		}
		last = st
	}
}

func (lw *logWatch) close() {
	close(lw.stop)
	<-lw.done
}
