package web

import (
	"fmt"
	"net/http"

	"github.com/mailgate/mailgate/tracking"
)

// gaps answers GET /api/gaps: the stretches of log the store misses for
// good (tracking.Gap) within the range and of the host the filters name,
// oldest first, so that the page can say a search's answer is incomplete.
// The other filters are accepted and ignored: the page sends its search's.
func (a *api) gaps(w http.ResponseWriter, r *http.Request) {
	q, err := tracking.ParseQuery(r.URL.Query(), a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	gaps, err := a.store.Gaps(r.Context(), q.Since, q.Until)
	if err != nil {
		a.storeFailed(w, r, fmt.Errorf("gaps: %w", err))
		return
	}
	out := []tracking.Gap{}
	for _, g := range gaps {
		if q.Host == "" || g.Host == q.Host {
			out = append(out, g)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
