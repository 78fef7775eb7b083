package broker

import (
	"log/slog"
	"time"
)

// outage logs the start and the end of a run of failures once each, and the
// failures in between at debug level, so an outage does not flood the log.
type outage struct {
	log   *slog.Logger
	what  string
	down  bool
	since time.Time
	n     int
}

func (o *outage) fail(err error) {
	o.n++
	if !o.down {
		o.down, o.since = true, time.Now()
		o.log.Warn(o.what+" fails; retrying with back-off", "err", err)
		return
	}
	o.log.Debug(o.what+" still fails", "err", err, "failures", o.n)
}

func (o *outage) ok() {
	if o.down {
		o.log.Info(o.what+" works again", "after", time.Since(o.since).Round(time.Millisecond).String(), "failures", o.n)
	}
	o.down, o.n = false, 0
}
