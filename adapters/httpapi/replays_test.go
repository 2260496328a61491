package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/replays"
)

// replayVisit is a visit for a seeded run: entered in after base, exited
// out after base (open when out < in).
func replayVisit(plate string, in, out time.Duration, entry, exit []string, cause string) replays.Visit {
	v := replays.Visit{
		VisitID: event.ID("test-replay-visit", plate, base.Add(in).Format(time.RFC3339Nano)),
		Vehicle: plate, EnteredAt: base.Add(in), EntryFlags: entry, ExitFlags: exit, InitialCause: cause,
	}
	if out >= in {
		exited, dwell := base.Add(out), (out - in).Seconds()
		v.ExitedAt, v.DwellS = &exited, &dwell
	}
	if v.EntryFlags == nil {
		v.EntryFlags = []string{}
	}
	if v.ExitFlags == nil {
		v.ExitFlags = []string{}
	}
	return v
}

// replayWorld is what the replay tests read: four runs, stored through
// the real store as `tms replay geofence` stores them.
type replayWorld struct {
	api *testAPI
	// done found visits (in entry order, as the API pages them); empty
	// found none; running has not finished; failed failed.
	done, empty, running, failed replays.Run
	visits                       []replays.Visit
}

func newReplayWorld(t *testing.T) *replayWorld {
	t.Helper()
	pool := openPool(t, testenv.FromEnv(os.LookupEnv))
	store := replays.NewStore(pool)
	run := func(station string, startedMin int) replays.Run {
		r := replays.Run{ID: uuid.NewString(), StationID: station, StationVersion: 3,
			From: base.Add(-30 * 24 * time.Hour), To: base, StartedAt: base.Add(time.Duration(startedMin) * time.Minute)}
		if err := store.Start(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	w := &replayWorld{
		done: run("S1", 0), empty: run("S1", 60), running: run("S2", 30), failed: run("S2", 120),
	}
	s, ms, us := time.Second, time.Millisecond, time.Microsecond
	w.visits = []replays.Visit{
		replayVisit("沪A12345", 0, 600*s, []string{geofence.FlagInitial}, nil, geofence.CauseFirstSeen),
		replayVisit("京B00001", 0, -1, nil, nil, ""), // the same entry time: ordered by visit id
		replayVisit("沪A12345", 900*s+125*ms, 912*s+500*ms, []string{geofence.FlagInterpolated}, []string{geofence.FlagInterpolated}, ""),
		replayVisit("粤C77777", 1000*s, 1000*s, []string{geofence.FlagLate}, []string{geofence.FlagLate}, ""),
		replayVisit("京B00001", 1200*s, 4000*s, []string{geofence.FlagGap}, []string{geofence.FlagGap}, ""),
		replayVisit("沪A12345", 3000*s, -1, nil, nil, ""),
		replayVisit("粤C77777", 3600*s+us, 3700*s, nil, nil, ""), // Postgres keeps microseconds: so do cursors
	}
	// Stored in another order than the API's, which is the store's job.
	stored := slices.Clone(w.visits)
	slices.Reverse(stored)
	if err := store.Finish(t.Context(), w.done.ID, 4321, stored, base.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := store.Finish(t.Context(), w.empty.ID, 10, nil, base.Add(61*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := store.Fail(t.Context(), w.failed.ID, errors.New("replay: read tms.positions[3]: broker gone"), base.Add(121*time.Minute)); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(w.visits, func(a, b replays.Visit) int {
		if c := a.EnteredAt.Compare(b.EnteredAt); c != 0 {
			return c
		}
		return strings.Compare(a.VisitID, b.VisitID)
	})
	w.api = newDBAPI(t, pool)
	return w
}

func replayIDs(rs []replayJSON) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func runIDs(rs ...replays.Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func replayVisitIDs(vs []replayVisitJSON) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.VisitID
	}
	return out
}

func storedVisitIDs(vs []replays.Visit) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.VisitID
	}
	return out
}

// specSchema returns a schema of openapi.json, to check answers against.
func specSchema(t *testing.T, name string) *openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatal(err)
	}
	ref := doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		t.Fatalf("openapi.json has no schema %s", name)
	}
	return ref.Value
}

// wantSchema checks that a 200 JSON answer is what openapi.json says.
func wantSchema(t *testing.T, w interface{ Bytes() []byte }, name string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(w.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if err := specSchema(t, name).VisitJSON(v); err != nil {
		t.Errorf("the answer is not a %s as openapi.json has it: %v\n%s", name, err, w.Bytes())
	}
}

func TestReplays(t *testing.T) {
	t.Parallel()
	w := newReplayWorld(t)
	a := w.api

	t.Run("list, newest first", func(t *testing.T) {
		t.Parallel()
		for query, want := range map[string][]string{
			"":                   runIDs(w.failed, w.empty, w.running, w.done),
			"station=S1":         runIDs(w.empty, w.done),
			"station=S2&limit=1": runIDs(w.failed),
			"limit=3":            runIDs(w.failed, w.empty, w.running),
			"station=S9":         {},
		} {
			r := a.get(t, "/api/v1/replays?"+query)
			got := decode[replayListJSON](t, r, "application/json")
			if ids := replayIDs(got.Replays); !slices.Equal(ids, want) {
				t.Errorf("%q: runs %v\nwant %v", query, ids, want)
			}
			wantSchema(t, r.Body, "ReplayList")
		}
	})

	t.Run("every run is marked as derived history", func(t *testing.T) {
		t.Parallel()
		raw := decode[map[string]any](t, a.get(t, "/api/v1/replays"), "application/json")
		wantKeys(t, raw, "replays")
		for _, r := range raw["replays"].([]any) {
			r := r.(map[string]any)
			wantKeys(t, r, "kind", "note", "id", "station_id", "station_version", "from", "to", "started_at", "finished_at",
				"status", "detail", "fixes_read", "visits")
			if r["kind"] != "replay" || r["note"] != replayNote || !strings.Contains(replayNote, "Not live events") {
				t.Errorf("run %v is not marked as derived history", r)
			}
		}
	})

	t.Run("one run", func(t *testing.T) {
		t.Parallel()
		r := a.get(t, "/api/v1/replays/"+w.done.ID)
		wantSchema(t, r.Body, "Replay")
		got := decode[replayJSON](t, r, "application/json")
		if got.Kind != "replay" || got.Note != replayNote || got.ID != w.done.ID || got.StationID != "S1" ||
			got.StationVersion != 3 || !got.From.Equal(w.done.From) || !got.To.Equal(w.done.To) ||
			!got.StartedAt.Equal(base) || got.FinishedAt == nil || !got.FinishedAt.Equal(base.Add(5*time.Minute)) ||
			got.Status != replays.StatusDone || got.Detail != nil || got.FixesRead != 4321 || got.Visits != int64(len(w.visits)) {
			t.Errorf("done run %+v", got)
		}

		got = decode[replayJSON](t, a.get(t, "/api/v1/replays/"+w.running.ID), "application/json")
		if got.Status != replays.StatusRunning || got.FinishedAt != nil || got.Detail != nil || got.Visits != 0 {
			t.Errorf("running run %+v", got)
		}
		got = decode[replayJSON](t, a.get(t, "/api/v1/replays/"+w.failed.ID), "application/json")
		if got.Status != replays.StatusFailed || got.FinishedAt == nil || got.Detail == nil || !strings.Contains(*got.Detail, "broker gone") {
			t.Errorf("failed run %+v", got)
		}
		// Any spelling of the UUID names the same run.
		got = decode[replayJSON](t, a.get(t, "/api/v1/replays/"+strings.ToUpper(w.done.ID)), "application/json")
		if got.ID != w.done.ID {
			t.Errorf("upper-case id: run %s", got.ID)
		}
	})

	t.Run("visits in entry order", func(t *testing.T) {
		t.Parallel()
		r := a.get(t, "/api/v1/replays/"+w.done.ID+"/visits?limit=1000")
		wantSchema(t, r.Body, "ReplayVisitList")
		got := decode[replayVisitListJSON](t, r, "application/json")
		if got.Kind != "replay" || got.Note != replayNote || got.ReplayID != w.done.ID || got.StationID != "S1" || got.NextCursor != nil {
			t.Errorf("page %+v", got)
		}
		if ids := replayVisitIDs(got.Visits); !slices.Equal(ids, storedVisitIDs(w.visits)) {
			t.Fatalf("visits %v\nwant   %v", ids, storedVisitIDs(w.visits))
		}
		for i, v := range got.Visits {
			if want := w.visits[i]; !sameReplayVisit(v, want) {
				t.Errorf("visit %d: %+v\nwant %+v", i, v, want)
			}
		}

		raw := decode[map[string]any](t, a.get(t, "/api/v1/replays/"+w.done.ID+"/visits"), "application/json")
		wantKeys(t, raw, "kind", "note", "replay_id", "station_id", "visits", "next_cursor")
		for _, v := range raw["visits"].([]any) {
			wantKeys(t, v.(map[string]any), "visit_id", "vehicle", "entered_at", "exited_at", "dwell_s", "open",
				"entry_flags", "exit_flags", "initial_cause")
		}

		empty := decode[replayVisitListJSON](t, a.get(t, "/api/v1/replays/"+w.empty.ID+"/visits"), "application/json")
		if empty.Visits == nil || len(empty.Visits) != 0 || empty.NextCursor != nil || empty.Kind != "replay" {
			t.Errorf("a run without visits: %+v", empty)
		}
	})

	t.Run("pages walk every visit once", func(t *testing.T) {
		t.Parallel()
		n := len(w.visits)
		for _, limit := range []int{1, 2, 3, n - 1, n, n + 1} {
			var walked []string
			q := url.Values{"limit": {itoa(limit)}}
			pages := 0
			for {
				r := a.get(t, "/api/v1/replays/"+w.done.ID+"/visits?"+q.Encode())
				page := decode[replayVisitListJSON](t, r, "application/json")
				wantSchema(t, r.Body, "ReplayVisitList")
				pages++
				if len(page.Visits) > limit || (page.NextCursor != nil && len(page.Visits) != limit) {
					t.Fatalf("limit %d: a page of %d, next %v", limit, len(page.Visits), page.NextCursor)
				}
				walked = append(walked, replayVisitIDs(page.Visits)...)
				if page.NextCursor == nil {
					break
				}
				if pages > n+1 {
					t.Fatalf("limit %d: %d pages for %d visits", limit, pages, n)
				}
				q.Set("cursor", *page.NextCursor)
			}
			if !slices.Equal(walked, storedVisitIDs(w.visits)) {
				t.Errorf("limit %d: walked %v\nwant %v", limit, walked, storedVisitIDs(w.visits))
			}
			if want := (n + limit - 1) / limit; pages != want {
				t.Errorf("limit %d: %d pages, want %d (the last page full has no next cursor)", limit, pages, want)
			}
		}
	})

	t.Run("unknown runs are 404", func(t *testing.T) {
		t.Parallel()
		id := uuid.NewString()
		for _, path := range []string{"/api/v1/replays/" + id, "/api/v1/replays/" + id + "/visits"} {
			p := wantProblem(t, a.get(t, path), path, http.StatusNotFound)
			if !strings.Contains(p.Detail, id) || p.Title != "Replay not found" {
				t.Errorf("%s: problem %+v does not name the run", path, p)
			}
		}
	})

	t.Run("bad parameters are named", func(t *testing.T) {
		t.Parallel()
		for target, fields := range map[string][]string{
			"/api/v1/replays?limit=0":                                     {"limit"},
			"/api/v1/replays?limit=1001":                                  {"limit"},
			"/api/v1/replays?limit=x&station=a%20b":                       {"limit", "station"},
			"/api/v1/replays?station=S1&station=S2":                       {"station"},
			"/api/v1/replays/not-a-uuid":                                  {"id"},
			"/api/v1/replays/1234":                                        {"id"},
			"/api/v1/replays/not-a-uuid/visits?limit=-1":                  {"id", "limit"},
			"/api/v1/replays/" + w.done.ID + "/visits?limit=1001":         {"limit"},
			"/api/v1/replays/" + w.done.ID + "/visits?cursor=xyz":         {"cursor"},
			"/api/v1/replays/" + w.done.ID + "/visits?cursor=a&cursor=b":  {"cursor"},
			"/api/v1/replays/" + w.done.ID + "/visits?limit=0&cursor=%25": {"limit", "cursor"},
		} {
			u, err := url.Parse(target)
			if err != nil {
				t.Fatal(err)
			}
			wantProblem(t, a.get(t, target), u.EscapedPath(), http.StatusBadRequest, fields...)
		}
		// Another spelling of the visit id is not of the cursor's form:
		// refused, not handed to Postgres.
		for _, id := range []string{"urn:uuid:" + w.visits[0].VisitID, strings.ToUpper(w.visits[0].VisitID)} {
			target := "/api/v1/replays/" + w.done.ID + "/visits?cursor=" + url.QueryEscape(strconv.FormatInt(w.visits[0].EnteredAt.UnixMicro(), 10)+"_"+id)
			wantProblem(t, a.get(t, target), "/api/v1/replays/"+w.done.ID+"/visits", http.StatusBadRequest, "cursor")
		}
	})

	t.Run("a token is needed", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/api/v1/replays", "/api/v1/replays/" + w.done.ID, "/api/v1/replays/" + w.done.ID + "/visits"} {
			for _, token := range []string{"", "not-a-token"} {
				r := a.do(t, http.MethodGet, path, token)
				wantProblem(t, r, path, http.StatusUnauthorized)
				if r.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", path)
				}
			}
			// Viewers read replays.
			if r := a.do(t, http.MethodGet, path, viewerToken); r.Code != http.StatusOK {
				t.Errorf("%s as a viewer: %d %s", path, r.Code, r.Body)
			}
		}
	})
}

func sameReplayVisit(got replayVisitJSON, want replays.Visit) bool {
	cause := ""
	if got.InitialCause != nil {
		cause = *got.InitialCause
	}
	exited := (got.ExitedAt == nil && want.ExitedAt == nil) ||
		(got.ExitedAt != nil && want.ExitedAt != nil && got.ExitedAt.Equal(*want.ExitedAt))
	return got.VisitID == want.VisitID && got.Vehicle == want.Vehicle && got.EnteredAt.Equal(want.EnteredAt) && exited &&
		equalPtr(got.DwellS, want.DwellS) && got.Open == (want.ExitedAt == nil) &&
		slices.Equal(got.EntryFlags, want.EntryFlags) && slices.Equal(got.ExitFlags, want.ExitFlags) &&
		cause == want.InitialCause && (want.InitialCause != "" || got.InitialCause == nil)
}
