package web

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/tracking"
)

// TestPageLists: the page's chart, legend and filter know every status and
// every abort kind of the tracking model, and nothing else, so that a kind
// added to the model cannot go missing from the page.
func TestPageLists(t *testing.T) {
	read := func(name string) string {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	words := func(re, s string) []string {
		var out []string
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	want := func(what string, got []string, model []string) {
		t.Helper()
		slices.Sort(model)
		if !slices.Equal(got, model) {
			t.Errorf("%s: %v, want %v", what, got, model)
		}
	}
	var statuses, aborts []string
	for _, s := range tracking.Statuses {
		statuses = append(statuses, string(s))
	}
	for _, a := range tracking.Aborts {
		aborts = append(aborts, string(a))
	}
	chart, page, css := read("chart.js"), read("index.html"), read("style.css")
	order := func(name string) string {
		i := strings.Index(chart, "export const "+name+" = [")
		if i < 0 {
			t.Fatalf("chart.js has no %s", name)
		}
		s := chart[i:]
		return s[:strings.Index(s, "];")]
	}
	want("chart.js STATUS_ORDER", words(`'([a-z_]+)'`, order("STATUS_ORDER")), statuses)
	want("chart.js ABORT_ORDER", words(`'([a-z_]+)'`, order("ABORT_ORDER")), aborts)
	sel := page[strings.Index(page, `id="f-abort"`):]
	sel = sel[:strings.Index(sel, "</select>")]
	want("index.html abort filter", words(`<option value="([a-z_]+)">`, sel), aborts)
	sel = page[strings.Index(page, `id="f-status"`):]
	sel = sel[:strings.Index(sel, "</select>")]
	want("index.html status filter", words(`<option>([a-z_]+)</option>`, sel), statuses)
	want("style.css abort colours", words(`\n\.a-([a-z_]+) \{`, css), aborts)
	want("style.css status colours", words(`\n\.s-([a-z_]+) \{`, css), statuses)
}
