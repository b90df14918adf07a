package outbound

// SetCrashPoint makes f be called at the points where a crash leaves the
// spool half-way through an outcome (Options.crashPoint).
func SetCrashPoint(o *Options, f func(point string)) { o.crashPoint = f }
