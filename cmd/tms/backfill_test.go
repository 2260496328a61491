package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/g7api"
	"github.com/tmsfleet/tms/pipeline/backfill"
)

func TestBackfillFlags(t *testing.T) {
	t.Parallel()
	plates, err := backfillPlates(backfillFlags{plates: []string{"沪a12345 ", "沪A12345", "京B1"}})
	if err != nil || strings.Join(plates, ",") != "沪A12345,京B1" {
		t.Errorf("plates %v, %v", plates, err)
	}
	for _, f := range []backfillFlags{{}, {plates: []string{"x"}, allKnown: true}, {plates: []string{"a b"}}} {
		if _, err := backfillPlates(f); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	for _, f := range []backfillFlags{{from: "2026-10-01T00:00:00Z"}, {from: "2026-10-02T00:00:00Z", to: "2026-10-01T00:00:00Z"},
		{from: "yesterday", to: "2026-10-01T00:00:00Z"}} {
		if _, _, err := backfillRange(f); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	from, to, err := backfillRange(backfillFlags{from: "2026-10-01T00:00:00+08:00", to: "2026-11-01T00:00:00+08:00"})
	if err != nil || !from.Equal(time.Date(2026, 9, 30, 16, 0, 0, 0, time.UTC)) || to.Sub(from) != 31*24*time.Hour {
		t.Errorf("range %s %s %v", from, to, err)
	}
}

// The bar draws the plate and its counts and completes at the end.
func TestBackfillBar(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(48 * time.Hour)
	b := newBackfillBar(&out, 2, to.Sub(from))
	for i, plate := range []string{"沪A00001", "沪A00002"} {
		for _, until := range []time.Time{from.Add(24 * time.Hour), to} {
			b.update(backfill.Update{Plate: plate, From: from, To: to, Page: g7api.Page{Until: until},
				Summary: backfill.Summary{Fetched: int64(1000 * (i + 1)), Added: 900}})
		}
	}
	b.close()
	for _, want := range []string{"沪A00002 (2/2)", "2000 read, +900", "100 %"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the bar does not show %q:\n%s", want, out.String())
		}
	}
}

func TestPrintBackfill(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	resumed := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)
	printBackfill(&out, []backfill.Summary{
		{Plate: "沪A00001", Fetched: 10, Rejected: 1, Known: 2, Added: 7, Pages: 1, Requests: 2, Completed: true, ResumedFrom: &resumed},
		{Plate: "沪A00002", AlreadyDone: true, Completed: true},
		{Plate: "沪A00003", Fetched: 5, Added: 5, Pages: 1, Requests: 1},
	}, resumed, resumed.Add(time.Hour), false, time.Second)
	for _, want := range []string{"done (resumed from 2026-10-05T00:00:00Z)", "already done", "interrupted", "total", "added"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	out.Reset()
	printBackfill(&out, []backfill.Summary{{Plate: "沪A00001", Fetched: 3, Added: 3}}, resumed, resumed.Add(time.Hour), true, time.Second)
	if !strings.Contains(out.String(), "dry run: nothing written") || !strings.Contains(out.String(), "would add") {
		t.Errorf("dry run summary:\n%s", out.String())
	}
}
