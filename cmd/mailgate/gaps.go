package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// warnGaps tells the administrator on stderr of the stretches the store
// misses within q's time range (see tracking.Gap): an answer that looks
// complete but is not is the worst kind. A store that cannot say is not
// an error of the search.
func warnGaps(ctx context.Context, s tracking.Store, q tracking.Query, cmd string, stderr io.Writer) {
	gaps, err := s.Gaps(ctx, q.Since, q.Until)
	if err != nil {
		fmt.Fprintf(stderr, "mailgate %s: cannot tell whether records are missing: %v\n", cmd, err)
		return
	}
	for _, g := range gaps {
		if q.Host != "" && g.Host != q.Host {
			continue
		}
		fmt.Fprintf(stderr, "mailgate %s: warning: records of %s between %s and %s may be missing or incomplete: the mail log rolled away before they were stored\n",
			cmd, maillog.Escape(g.Host), localStamp(g.From), localStamp(g.To))
	}
}
