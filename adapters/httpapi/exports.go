package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// Exports: GET /api/v1/exports/{kind}?vehicle=&from=&to=&format=csv|ndjson
// streams one read model's rows over a range as CSV or as newline-
// delimited GeoJSON features, from a database cursor to the client as
// they are read: memory stays bounded whatever the range. Each kind is
// one entry of exportKinds.

// exportQuery is a validated export request.
type exportQuery struct {
	kind, format string
	// vehicle is empty for the whole fleet.
	vehicle  string
	from, to time.Time
}

// exportKind is one read model that can be exported.
type exportKind struct {
	// columns are the CSV's header line.
	columns []string
	// positions marks the positions history, which retention drops.
	positions bool
	// run counts q's rows, and streams them to w when they are at most
	// max; it returns the count, above max when it streamed nothing.
	run func(ctx context.Context, s *server, q exportQuery, max int64, w *exportWriter) (int64, error)
}

// exportKinds are the exports served, by the name in the path.
var exportKinds = map[string]exportKind{
	"positions": {
		columns:   []string{"plate", "fix_time", "received_at", "lat", "lng", "speed_kmh", "course_deg", "flags"},
		positions: true,
		run:       exportPositions,
	},
	"visits": {
		columns: []string{"visit_id", "vehicle", "station_id", "station_type", "station_version", "entered_at", "exited_at",
			"dwell_s", "open", "entry_flags", "exit_flags", "initial_cause", "gap_s", "exit_gap_s"},
		run: exportVisits,
	},
	"jobs": {
		columns: []string{"id", "vehicle", "external_ref", "status", "created_at", "started_at", "completed_at", "cancelled_at",
			"cancel_reason", "revision", "distance_empty_m", "distance_loaded_m", "distance_total_m", "cargo_weight_kg",
			"cargo_description", "stops"},
		run: exportJobs,
	},
	"trips": {
		columns: []string{"id", "vehicle", "revision", "open", "start_time", "start_lat", "start_lng", "start_station_id",
			"end_time", "end_lat", "end_lng", "end_station_id", "duration_s", "distance_m", "max_speed_kmh", "avg_speed_kmh",
			"moving_s", "idle_s", "fixes", "fixes_dropped", "distance_dropped_m", "job_id", "flags"},
		run: exportTrips,
	},
}

// Content types of exports.
const (
	contentCSV    = "text/csv; charset=utf-8"
	contentNDJSON = "application/x-ndjson"
)

// exportRowsTrailer is the HTTP trailer that gives an export's row count
// once every row is sent.
const exportRowsTrailer = "Tms-Export-Rows"

// parseExport reads and checks an export request, naming every bad field.
func parseExport(c *gin.Context, now time.Time, maxRange time.Duration) (exportQuery, error) {
	p := newParams(c.Request)
	q := exportQuery{kind: c.Param("kind")}
	if _, ok := exportKinds[q.kind]; !ok {
		names := make([]string, 0, len(exportKinds))
		for k := range exportKinds {
			names = append(names, k)
		}
		slices.Sort(names)
		p.fail("kind", "%q is not an export; want one of %s", q.kind, strings.Join(names, ", "))
	}
	if v, ok := p.single("vehicle"); ok {
		q.vehicle = p.plate("vehicle", v)
	}
	from, to, ok := p.window(now, defaultTrackWindow)
	if ok && to.Sub(from) > maxRange {
		p.fail("from", "the range %s to %s is longer than an export may cover, %s (TMS_EXPORT_MAX_RANGE): "+
			"export it in parts", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), maxRange)
	}
	q.from, q.to = from, to
	q.format = p.oneOf("format", "csv", "csv", "ndjson")
	return q, p.err()
}

// export serves GET /api/v1/exports/{kind}. The rows are counted first,
// in the snapshot they are then streamed from, so that an export over
// History.ExportMaxRows is answered 400 before any is sent. Once the
// answer has begun, an error (History.ExportTimeout, the database)
// aborts the connection: the client sees an incomplete transfer, never a
// part taken for the whole. A complete export ends with the
// Tms-Export-Rows trailer.
func (s *server) export(c *gin.Context) {
	q, err := parseExport(c, s.cfg.Now(), s.cfg.History.ExportMaxRange)
	if err != nil {
		fail(c, err)
		return
	}
	kind := exportKinds[q.kind]
	h := s.cfg.History
	var keptFrom *time.Time
	if kind.positions {
		if keptFrom, err = s.historyWindow(c, q.from, q.to); err != nil {
			fail(c, err)
			return
		}
	}
	release, err := s.exports.acquire(c.Request.Context(), 0, &busyError{
		what: "exports", setting: "TMS_EXPORT_MAX_CONCURRENT", limit: h.MaxExports, retryAfter: 10 * time.Second})
	if err != nil {
		fail(c, err)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.ExportTimeout)
	defer cancel()
	w := newExportWriter(c, q, kind.columns, h.ExportWriteTimeout, keptFrom)
	n, err := kind.run(ctx, s, q, h.ExportMaxRows, w)
	if err == nil && n > h.ExportMaxRows {
		p := &params{}
		p.fail("from", "the export holds more than %d rows (TMS_EXPORT_MAX_ROWS): narrow from and to, or name a vehicle, "+
			"and export the range in parts", h.ExportMaxRows)
		err = p.err()
	}
	if err == nil {
		err = w.finish()
	}
	if err == nil {
		return
	}
	if !w.started {
		fail(c, err)
		return
	}
	s.log.WarnContext(c.Request.Context(), "export cut short; aborting the connection", "kind", q.kind, "rows_sent", w.rows, "err", err)
	panic(http.ErrAbortHandler)
}

// exportWriter writes an export's rows: the headers before the first,
// then the rows through a buffer to the client, pushing the write
// deadline forward as they go.
type exportWriter struct {
	c        *gin.Context
	q        exportQuery
	columns  []string
	keptFrom *time.Time
	out      *bufio.Writer
	line     []byte
	rows     int64
	started  bool
}

func newExportWriter(c *gin.Context, q exportQuery, columns []string, writeTimeout time.Duration, keptFrom *time.Time) *exportWriter {
	dw := &deadlineWriter{w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: writeTimeout}
	return &exportWriter{c: c, q: q, columns: columns, keptFrom: keptFrom, out: bufio.NewWriterSize(dw, 64<<10)}
}

// start writes the headers (and the CSV's header line).
func (w *exportWriter) start() error {
	if w.started {
		return nil
	}
	w.started = true
	hd := w.c.Writer.Header()
	ext := "csv"
	hd.Set("Content-Type", contentCSV)
	if w.q.format == "ndjson" {
		ext = "ndjson"
		hd.Set("Content-Type", contentNDJSON)
	}
	name := fmt.Sprintf("%s-%s-%s", w.q.kind, w.q.from.UTC().Format("20060102T150405Z"), w.q.to.UTC().Format("20060102T150405Z"))
	hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, name, ext))
	hd.Set("Trailer", exportRowsTrailer)
	if w.keptFrom != nil {
		hd.Set("Tms-History-From", w.keptFrom.Format(time.RFC3339))
	}
	w.c.Status(http.StatusOK)
	if w.q.format == "csv" {
		_, err := w.out.WriteString(strings.Join(w.columns, ",") + "\n")
		return err
	}
	return nil
}

// row writes one row, w.line, which the caller has filled.
func (w *exportWriter) row() error {
	if err := w.start(); err != nil {
		return err
	}
	w.line = append(w.line, '\n')
	w.rows++
	_, err := w.out.Write(w.line)
	return err
}

// finish writes what is buffered and the row count trailer.
func (w *exportWriter) finish() error {
	if err := w.start(); err != nil {
		return err
	}
	if err := w.out.Flush(); err != nil {
		return err
	}
	w.c.Writer.Header().Set(exportRowsTrailer, strconv.FormatInt(w.rows, 10))
	return nil
}

// deadlineWriter pushes the response's write deadline forward, at most
// once a second, before each write it passes on.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
	pushed  time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.pushed) >= time.Second {
		if err := d.rc.SetWriteDeadline(now.Add(d.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return 0, err
		}
		d.pushed = now
	}
	return d.w.Write(p)
}

func exportPositions(ctx context.Context, s *server, q exportQuery, max int64, w *exportWriter) (int64, error) {
	return s.cfg.Vehicles.Export(ctx, vehicles.ExportQuery{Plate: q.vehicle, From: q.from, To: q.to}, max,
		func(plate string, f *vehicles.Fix) error {
			b := w.line[:0]
			if q.format == "csv" {
				b = appendCSV(b, plate)
				b = appendCSVTime(append(b, ','), &f.FixTime)
				b = appendCSVTime(append(b, ','), &f.ReceivedAt)
				b = appendNumber(append(b, ','), f.Lat)
				b = appendNumber(append(b, ','), f.Lng)
				b = appendNumber(append(b, ','), f.SpeedKmh)
				b = append(b, ',')
				if f.CourseDeg != nil {
					b = appendNumber(b, *f.CourseDeg)
				}
				b = appendCSV(append(b, ','), strings.Join(f.Flags, ";"))
			} else {
				b = append(b, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
				b = appendNumber(b, f.Lng)
				b = appendNumber(append(b, ','), f.Lat)
				b = append(b, `]},"properties":{"plate":`...)
				b = appendJSONString(b, plate)
				b = append(b, `,"fix_time":"`...)
				b = append(f.FixTime.UTC().AppendFormat(b, time.RFC3339Nano), `","received_at":"`...)
				b = append(f.ReceivedAt.UTC().AppendFormat(b, time.RFC3339Nano), `","speed_kmh":`...)
				b = appendNumber(b, f.SpeedKmh)
				b = append(b, `,"course_deg":`...)
				if f.CourseDeg != nil {
					b = appendNumber(b, *f.CourseDeg)
				} else {
					b = append(b, "null"...)
				}
				b = append(b, `,"flags":[`...)
				for i, fl := range f.Flags {
					if i > 0 {
						b = append(b, ',')
					}
					b = appendJSONString(b, fl)
				}
				b = append(b, "]}}"...)
			}
			w.line = b
			return w.row()
		})
}

// visitFeature is a visit as a GeoJSON feature: at its station's
// geometry (null for a station never defined), with the visit as the API
// shows it and the station's radius for a circle.
type visitFeature struct {
	Type       string          `json:"type"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties struct {
		visitJSON
		RadiusM *float64 `json:"radius_m"`
	} `json:"properties"`
}

func exportVisits(ctx context.Context, s *server, q exportQuery, max int64, w *exportWriter) (int64, error) {
	return s.cfg.Visits.Export(ctx, visits.ExportQuery{Vehicle: q.vehicle, From: q.from, To: q.to}, max,
		func(v *visits.Visit, at *visits.StationShape) error {
			b := w.line[:0]
			if q.format == "csv" {
				vj := toVisitJSON(v)
				b = appendCSV(b, vj.VisitID)
				b = appendCSV(append(b, ','), vj.Vehicle)
				b = appendCSV(append(b, ','), vj.StationID)
				b = appendCSV(append(b, ','), vj.StationType)
				b = strconv.AppendInt(append(b, ','), vj.StationVersion, 10)
				b = appendCSVTime(append(b, ','), &vj.EnteredAt)
				b = appendCSVTime(append(b, ','), vj.ExitedAt)
				b = appendCSVNumber(append(b, ','), vj.DwellS)
				b = strconv.AppendBool(append(b, ','), vj.Open)
				b = appendCSV(append(b, ','), strings.Join(vj.EntryFlags, ";"))
				b = appendCSV(append(b, ','), strings.Join(vj.ExitFlags, ";"))
				b = append(b, ',')
				if vj.InitialCause != nil {
					b = appendCSV(b, *vj.InitialCause)
				}
				b = appendCSVNumber(append(b, ','), vj.GapS)
				b = appendCSVNumber(append(b, ','), vj.ExitGapS)
			} else {
				f := visitFeature{Type: "Feature", Geometry: at.Geometry}
				if len(f.Geometry) == 0 {
					f.Geometry = json.RawMessage("null")
				}
				f.Properties.visitJSON, f.Properties.RadiusM = toVisitJSON(v), at.RadiusM
				enc, err := json.Marshal(f)
				if err != nil {
					return err
				}
				b = append(b, enc...)
			}
			w.line = b
			return w.row()
		})
}

// jobFeatureJSON is a job as a GeoJSON feature: the line through its
// stops' stations (a Point for one stop), with the job as the API shows
// it.
type jobFeatureJSON struct {
	Type       string    `json:"type"`
	Geometry   *geometry `json:"geometry"`
	Properties jobJSON   `json:"properties"`
}

func exportJobs(ctx context.Context, s *server, q exportQuery, max int64, w *exportWriter) (int64, error) {
	return s.cfg.Jobs.Export(ctx, jobs.ExportQuery{Vehicle: q.vehicle, From: q.from, To: q.to}, max,
		func(j *jobs.Job) error {
			jj := toJobJSON(j)
			b := w.line[:0]
			if q.format == "csv" {
				stops, err := json.Marshal(jj.Stops)
				if err != nil {
					return err
				}
				b = appendCSV(b, jj.ID)
				b = appendCSV(append(b, ','), jj.Vehicle)
				b = append(b, ',')
				if jj.ExternalRef != nil {
					b = appendCSV(b, *jj.ExternalRef)
				}
				b = appendCSV(append(b, ','), jj.Status)
				b = appendCSVTime(append(b, ','), &jj.CreatedAt)
				b = appendCSVTime(append(b, ','), jj.StartedAt)
				b = appendCSVTime(append(b, ','), jj.CompletedAt)
				b = appendCSVTime(append(b, ','), jj.CancelledAt)
				b = append(b, ',')
				if jj.CancelReason != nil {
					b = appendCSV(b, *jj.CancelReason)
				}
				b = strconv.AppendInt(append(b, ','), int64(jj.Revision), 10)
				var empty, loaded, total *float64
				if jj.DistanceM != nil {
					empty, loaded, total = &jj.DistanceM.Empty, &jj.DistanceM.Loaded, &jj.DistanceM.Total
				}
				b = appendCSVNumber(append(b, ','), empty)
				b = appendCSVNumber(append(b, ','), loaded)
				b = appendCSVNumber(append(b, ','), total)
				b = appendNumber(append(b, ','), jj.Cargo.WeightKg)
				b = append(b, ',')
				if jj.Cargo.Description != nil {
					b = appendCSV(b, *jj.Cargo.Description)
				}
				b = appendCSV(append(b, ','), string(stops))
			} else {
				f := jobFeatureJSON{Type: "Feature", Properties: jj}
				coords := make([][2]float64, len(jj.Stops))
				for i, st := range jj.Stops {
					coords[i] = [2]float64{st.Point.Lng, st.Point.Lat}
				}
				switch len(coords) {
				case 0:
				case 1:
					f.Geometry = &geometry{Type: "Point", Coordinates: coords[0]}
				default:
					f.Geometry = &geometry{Type: "LineString", Coordinates: coords}
				}
				enc, err := json.Marshal(f)
				if err != nil {
					return err
				}
				b = append(b, enc...)
			}
			w.line = b
			return w.row()
		})
}

// appendCSV appends s as a CSV field (RFC 4180): quoted when it holds a
// comma, a quote or a line break, quotes doubled.
func appendCSV(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendCSVTime appends t in RFC 3339 (UTC), nothing for nil.
func appendCSVTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return b
	}
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// appendCSVNumber appends v, nothing for nil.
func appendCSVNumber(b []byte, v *float64) []byte {
	if v == nil {
		return b
	}
	return appendNumber(b, *v)
}

// appendNumber appends v as JSON and CSV read it, in its shortest form;
// a value that is no number (which validation keeps out of the read
// models) as null.
func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, fmt.Sprintf(`\u%04x`, c)...)
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}

// tripFeatureJSON is a trip as a GeoJSON feature: the straight line from
// its start to its end (its track is GET /api/v1/trips/{id}/track), with
// the trip as the API shows it.
type tripFeatureJSON struct {
	Type       string    `json:"type"`
	Geometry   *geometry `json:"geometry"`
	Properties tripJSON  `json:"properties"`
}

func exportTrips(ctx context.Context, s *server, q exportQuery, max int64, w *exportWriter) (int64, error) {
	return s.cfg.Trips.Export(ctx, trips.ExportQuery{Vehicle: q.vehicle, From: q.from, To: q.to}, max,
		func(t *trips.Trip) error {
			tj := toTripJSON(t)
			b := w.line[:0]
			if q.format == "csv" {
				station := func(b []byte, s *segmentStationJSON) []byte {
					if s != nil {
						b = appendCSV(b, s.ID)
					}
					return b
				}
				b = appendCSV(b, tj.ID)
				b = appendCSV(append(b, ','), tj.Vehicle)
				b = strconv.AppendInt(append(b, ','), int64(tj.Revision), 10)
				b = strconv.AppendBool(append(b, ','), tj.Open)
				b = appendCSVTime(append(b, ','), &tj.Start.Time)
				b = appendNumber(append(b, ','), tj.Start.Lat)
				b = appendNumber(append(b, ','), tj.Start.Lng)
				b = station(append(b, ','), tj.Start.Station)
				b = appendCSVTime(append(b, ','), &tj.End.Time)
				b = appendNumber(append(b, ','), tj.End.Lat)
				b = appendNumber(append(b, ','), tj.End.Lng)
				b = station(append(b, ','), tj.End.Station)
				for _, v := range []float64{tj.DurationS, tj.DistanceM, tj.MaxSpeedKmh, tj.AvgSpeedKmh, tj.MovingS, tj.IdleS} {
					b = appendNumber(append(b, ','), v)
				}
				b = strconv.AppendInt(append(b, ','), int64(tj.Fixes), 10)
				b = strconv.AppendInt(append(b, ','), int64(tj.Noise.FixesDropped), 10)
				b = appendNumber(append(b, ','), tj.Noise.DistanceDroppedM)
				b = append(b, ',')
				if tj.JobID != nil {
					b = appendCSV(b, *tj.JobID)
				}
				b = appendCSV(append(b, ','), strings.Join(tj.Flags, ";"))
			} else {
				f := tripFeatureJSON{Type: "Feature", Properties: tj, Geometry: &geometry{Type: "LineString",
					Coordinates: [][2]float64{{tj.Start.Lng, tj.Start.Lat}, {tj.End.Lng, tj.End.Lat}}}}
				enc, err := json.Marshal(f)
				if err != nil {
					return err
				}
				b = append(b, enc...)
			}
			w.line = b
			return w.row()
		})
}
