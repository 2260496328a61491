package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/job"
)

func jobIDs(list []jobJSON) []string {
	out := make([]string, len(list))
	for i, j := range list {
		out[i] = j.ID
	}
	return out
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	pool, h := seedJobHistory(t)
	a := newDBAPI(t, pool)
	ord1, second, ord3, ord4 := h.ord1.JobID, h.second.JobID, h.ord3.JobID, h.ord4.JobID
	cases := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"everything, newest first", nil, []string{ord4, ord3, second, ord1}},
		{"by vehicle, normalised", url.Values{"vehicle": {" 沪a00001 "}}, []string{second, ord1}},
		{"by status", url.Values{"status": {"cancelled"}}, []string{ord4}},
		{"by statuses", url.Values{"status": {"active", "completed"}}, []string{ord3, second, ord1}},
		{"by station, any stop", url.Values{"station": {"U2"}}, []string{ord4, second}},
		{"created in [from, to)", url.Values{"created_from": {rfc(at(15))}, "created_to": {rfc(at(200))}}, []string{ord3, second}},
		{"completed in [from, to)", url.Values{"completed_from": {rfc(at(1400))}, "completed_to": {"2025-03-10T16:23:20.001+08:00"}}, []string{ord1}},
		{"completed after", url.Values{"completed_from": {rfc(at(1401))}}, nil},
		{"every filter", url.Values{"vehicle": {"沪B00002"}, "status": {"active"}, "station": {"L"}, "created_to": {rfc(at(101))}}, []string{ord3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := decode[jobListJSON](t, a.get(t, "/api/v1/jobs?"+c.query.Encode()), "application/json")
			if !slices.Equal(jobIDs(got.Jobs), c.want) && !(len(got.Jobs) == 0 && len(c.want) == 0) {
				t.Errorf("got  %v\nwant %v", jobIDs(got.Jobs), c.want)
			}
			if got.NextCursor != nil || got.Jobs == nil {
				t.Errorf("next_cursor %v, jobs %v", got.NextCursor, got.Jobs)
			}
			// Page by one: the same jobs in the same order.
			var paged []jobJSON
			q := url.Values{}
			for k, v := range c.query {
				q[k] = v
			}
			q.Set("limit", "1")
			for range 10 {
				page := decode[jobListJSON](t, a.get(t, "/api/v1/jobs?"+q.Encode()), "application/json")
				paged = append(paged, page.Jobs...)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			if !slices.Equal(jobIDs(paged), jobIDs(got.Jobs)) {
				t.Errorf("paged %v\nwhole %v", jobIDs(paged), jobIDs(got.Jobs))
			}
		})
	}

	t.Run("every bad parameter is named", func(t *testing.T) {
		t.Parallel()
		q := url.Values{
			"vehicle": {"no plate!"}, "station": {"a b"}, "status": {"done"}, "limit": {"0"}, "cursor": {"x"},
			"created_from": {rfc(at(10))}, "created_to": {rfc(at(10))}, "completed_to": {"yesterday"},
		}
		path := "/api/v1/jobs"
		wantProblem(t, a.get(t, path+"?"+q.Encode()), path, http.StatusBadRequest,
			"vehicle", "station", "status", "limit", "cursor", "created_from", "completed_to")
	})
}

func TestGetJob(t *testing.T) {
	t.Parallel()
	pool, h := seedJobHistory(t)
	a := newDBAPI(t, pool)

	t.Run("a completed job carries its latest completion", func(t *testing.T) {
		t.Parallel()
		w := a.get(t, "/api/v1/jobs/"+h.ord1.JobID)
		got := decode[jobJSON](t, w, "application/json")
		var raw map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &raw)
		wantKeys(t, raw, "id", "vehicle", "external_ref", "status", "cargo", "stops", "created_at", "started_at",
			"completed_at", "cancelled_at", "cancel_reason", "revision", "duration_s", "distance_m", "legs", "noise", "updated_at")
		wantKeys(t, raw["stops"].([]any)[0].(map[string]any), "index", "station_id", "station_name", "kind", "planned_arrival",
			"point", "status", "arrived_at", "departed_at", "dwell_s", "visit_id", "flags")
		c := h.completion(t, h.ord1.JobID)
		if got.ID != job.IDFor("ORD-1") || got.Vehicle != "沪A00001" || *got.ExternalRef != "ORD-1" || got.Status != job.StatusCompleted ||
			got.Revision != 2 || *got.DurationS != c.DurationS || *got.DistanceM != c.DistanceM || *got.Noise != c.Noise ||
			mustJSON(t, *got.Legs) != mustJSON(t, c.Legs) || got.Cargo.WeightKg != 20000 || got.Cargo.Description != nil ||
			!got.CreatedAt.Equal(at(10)) || !got.StartedAt.Equal(at(10)) || !got.CompletedAt.Equal(at(1400)) ||
			got.CancelledAt != nil || got.CancelReason != nil {
			t.Errorf("ORD-1: %s\nits completion: %s", w.Body, mustJSON(t, c))
		}
		s := got.Stops[1]
		if s.Index != 1 || s.StationID != "U1" || s.StationName != "Site 1" || s.Kind != job.KindUnloading || s.Status != job.StopDeparted ||
			!s.ArrivedAt.Equal(at(1100)) || !s.DepartedAt.Equal(at(1400)) || *s.DwellS != 300 || s.VisitID == nil ||
			s.Point != jobStations["U1"].Point || s.PlannedArrival != nil || s.Flags == nil {
			t.Errorf("stop 1: %+v", s)
		}
	})

	t.Run("a job under way: its progress, nothing of a completion", func(t *testing.T) {
		t.Parallel()
		got := decode[jobJSON](t, a.get(t, "/api/v1/jobs/"+h.second.JobID), "application/json")
		if got.Status != job.StatusActive || got.ExternalRef != nil || !got.StartedAt.Equal(at(1400)) || got.Revision != 0 ||
			got.DurationS != nil || got.DistanceM != nil || got.Legs != nil || got.Noise != nil ||
			got.Stops[0].Status != job.StopArrived || got.Stops[1].Status != job.StopPending || got.Stops[1].ArrivedAt != nil {
			t.Errorf("second job: %+v", got)
		}
	})

	t.Run("a job cancelled while queued", func(t *testing.T) {
		t.Parallel()
		got := decode[jobJSON](t, a.get(t, "/api/v1/jobs/"+h.ord4.JobID), "application/json")
		if got.Status != job.StatusCancelled || got.StartedAt != nil || !got.CancelledAt.Equal(at(300)) ||
			*got.CancelReason != "order withdrawn" || !got.UpdatedAt.Equal(at(300)) {
			t.Errorf("ORD-4: %+v", got)
		}
	})

	t.Run("ids: any UUID form, else 400; unknown 404", func(t *testing.T) {
		t.Parallel()
		upper := "/api/v1/jobs/{" + h.ord3.JobID + "}"
		if got := decode[jobJSON](t, a.get(t, upper), "application/json"); got.ID != h.ord3.JobID {
			t.Errorf("a braced UUID found %s", got.ID)
		}
		wantProblem(t, a.get(t, "/api/v1/jobs/ORD-1"), "/api/v1/jobs/ORD-1", http.StatusBadRequest, "id")
		path := "/api/v1/jobs/" + job.IDFor("nothing")
		wantProblem(t, a.get(t, path), path, http.StatusNotFound)
	})
}

func TestJobTrack(t *testing.T) {
	t.Parallel()
	pool, h := seedJobHistory(t)
	a := newDBAPI(t, pool)
	ord1 := "/api/v1/jobs/" + h.ord1.JobID + "/track"

	t.Run("json: the window's fixes, each with its stop", func(t *testing.T) {
		t.Parallel()
		got := decode[jobTrackJSON](t, a.get(t, ord1), "application/json")
		if got.JobID != h.ord1.JobID || got.Vehicle != "沪A00001" || !got.From.Equal(at(10)) || !got.To.Equal(at(1400)) ||
			len(got.Stops) != 2 || got.NextCursor != nil {
			t.Fatalf("track %+v", got)
		}
		first, last := got.Points[0], got.Points[len(got.Points)-1]
		if !first.FixTime.Equal(at(10)) || last.FixTime.After(at(1400)) || last.FixTime.Before(at(1390)) {
			t.Errorf("fixes from %s to %s, want the window [10 s, 1400 s]", first.FixTime, last.FixTime)
		}
		// At L from 20 s to 600 s, at U1 from 1100 s to 1400 s.
		for _, p := range got.Points {
			var want *int
			switch {
			case !p.FixTime.Before(at(20)) && !p.FixTime.After(at(600)):
				want = ptr(0)
			case !p.FixTime.Before(at(1100)) && !p.FixTime.After(at(1400)):
				want = ptr(1)
			}
			if (want == nil) != (p.StopIndex == nil) || (want != nil && *want != *p.StopIndex) {
				t.Errorf("fix at %s marked %v, want %v", p.FixTime, p.StopIndex, want)
			}
		}
		// Paged: the same fixes.
		var paged []jobTrackPointJSON
		path := ord1 + "?limit=17"
		for range 100 {
			page := decode[jobTrackJSON](t, a.get(t, path), "application/json")
			paged = append(paged, page.Points...)
			if page.NextCursor == nil {
				break
			}
			path = ord1 + "?limit=17&cursor=" + url.QueryEscape(*page.NextCursor)
		}
		if mustJSON(t, paged) != mustJSON(t, got.Points) {
			t.Errorf("paged %d fixes, whole %d", len(paged), len(got.Points))
		}
	})

	t.Run("geojson: the line and a point per stop", func(t *testing.T) {
		t.Parallel()
		w := a.get(t, ord1+"?format=geojson&limit=5")
		var fc struct {
			Type     string
			Features []struct {
				Geometry struct {
					Type        string
					Coordinates json.RawMessage
				}
				Properties map[string]any
			}
		}
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != contentGeoJSON || json.Unmarshal(w.Body.Bytes(), &fc) != nil {
			t.Fatalf("%d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if fc.Type != "FeatureCollection" || len(fc.Features) != 3 || fc.Features[0].Geometry.Type != "LineString" ||
			fc.Features[0].Properties["feature"] != "track" || fc.Features[0].Properties["next_cursor"] == nil ||
			len(fc.Features[0].Properties["fix_times"].([]any)) != 5 {
			t.Fatalf("%s", w.Body)
		}
		stop := fc.Features[2]
		var coords [2]float64
		_ = json.Unmarshal(stop.Geometry.Coordinates, &coords)
		u1 := jobStations["U1"].Point
		if stop.Geometry.Type != "Point" || coords != [2]float64{u1.Lng, u1.Lat} || stop.Properties["feature"] != "stop" ||
			stop.Properties["station_id"] != "U1" || stop.Properties["status"] != "departed" {
			t.Errorf("stop feature %+v", stop)
		}
	})

	t.Run("playback: distances agree with the completion", func(t *testing.T) {
		t.Parallel()
		got := decode[playbackJSON](t, a.get(t, ord1+"?format=playback&limit=10000"), "application/json")
		c := h.completion(t, h.ord1.JobID)
		if got.TotalDistance != c.DistanceM.Total || c.Revision != 2 {
			t.Errorf("total_distance %v, the completion (revision %d) says %v", got.TotalDistance, c.Revision, c.DistanceM.Total)
		}
		if len(got.Paths) != len(got.Meta) || len(got.Paths) < 100 || got.NextCursor != nil || len(got.Stops) != 2 {
			t.Fatalf("%d paths, %d meta, next %v", len(got.Paths), len(got.Meta), got.NextCursor)
		}
		prev := 0.0
		for i, m := range got.Meta {
			if m.Distance < prev || m.Distance > got.TotalDistance || m.Course == nil || *m.Course != 90 {
				t.Fatalf("meta %d: %+v after %v", i, m, prev)
			}
			prev = m.Distance
		}
		if last := got.Meta[len(got.Meta)-1]; math.Abs(last.Distance-got.TotalDistance) > 0.2 || last.Time.After(at(1400)) {
			t.Errorf("at the last fix (%s) %v driven, total %v", last.Time, last.Distance, got.TotalDistance)
		}
		// Paged: the same points, the same total on every page.
		var paths [][2]float64
		var meta []playbackMeta
		path := ord1 + "?format=playback&limit=33"
		for range 100 {
			page := decode[playbackJSON](t, a.get(t, path), "application/json")
			if page.TotalDistance != got.TotalDistance {
				t.Fatalf("a page's total_distance %v", page.TotalDistance)
			}
			paths, meta = append(paths, page.Paths...), append(meta, page.Meta...)
			if page.NextCursor == nil {
				break
			}
			path = ord1 + "?format=playback&limit=33&cursor=" + url.QueryEscape(*page.NextCursor)
		}
		if mustJSON(t, paths) != mustJSON(t, got.Paths) || mustJSON(t, meta) != mustJSON(t, got.Meta) {
			t.Errorf("paged playback differs from the whole")
		}
	})

	t.Run("playback past its bound is 400 on format", func(t *testing.T) {
		t.Parallel()
		small := newDBAPI(t, pool, func(c *Config) { c.PlaybackMaxFixes = 50 })
		wantProblem(t, small.get(t, ord1+"?format=playback"), "/api/v1/jobs/"+h.ord1.JobID+"/track", http.StatusBadRequest, "format")
		if w := small.get(t, ord1+"?format=json"); w.Code != http.StatusOK {
			t.Errorf("json past the playback bound: %d", w.Code)
		}
	})

	t.Run("a job under way: to now", func(t *testing.T) {
		t.Parallel()
		got := decode[jobTrackJSON](t, a.get(t, "/api/v1/jobs/"+h.second.JobID+"/track?limit=10000"), "application/json")
		lastFix := h.a.Fixes[len(h.a.Fixes)-1].Time
		if !got.From.Equal(at(1400)) || !got.To.Equal(base.Add(time.Hour)) || !got.Points[len(got.Points)-1].FixTime.Equal(lastFix) {
			t.Errorf("window %s..%s", got.From, got.To)
		}
	})

	t.Run("a job that never started: nothing", func(t *testing.T) {
		t.Parallel()
		for _, format := range []string{"json", "playback"} {
			w := a.get(t, "/api/v1/jobs/"+h.ord4.JobID+"/track?format="+format)
			var raw map[string]any
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &raw) != nil || raw["from"] != nil || raw["to"] != nil {
				t.Errorf("%s: %d %s", format, w.Code, w.Body)
			}
		}
		got := decode[playbackJSON](t, a.get(t, "/api/v1/jobs/"+h.ord4.JobID+"/track?format=playback"), "application/json")
		if got.Paths == nil || len(got.Paths) != 0 || got.TotalDistance != 0 || len(got.Stops) != 2 {
			t.Errorf("%+v", got)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		t.Parallel()
		path := "/api/v1/jobs/x/track"
		wantProblem(t, a.get(t, path+"?format=kml&limit=10001&cursor=soon"), path, http.StatusBadRequest, "id", "format", "limit", "cursor")
	})
}
