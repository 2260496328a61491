package vehicles

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tmsfleet/tms/adapters/postgres"
)

// Sample is a fix reduced to what a track's shape needs: its time (Unix
// microseconds, as Postgres keeps it) and its place.
type Sample struct {
	UnixMicro int64
	Lat, Lng  float64
}

// Time is the sample's fix time.
func (s Sample) Time() time.Time { return time.UnixMicro(s.UnixMicro).UTC() }

// pgEpochMicro is Postgres's epoch, 2000-01-01 UTC, in Unix microseconds:
// binary timestamptz values count from it.
const pgEpochMicro = 946_684_800_000_000

// ScanTrack calls fn with each of plate's fixes in [from, to), in fix-time
// order, as they are read from the database: memory stays bounded
// whatever the window's length (a year of one fix a second is 31.5
// million). fn's error stops the scan and is returned as it is.
//
// The query is an index-only scan of the primary key, which carries the
// columns read; the values are decoded from Postgres's binary format
// directly, which makes the scan several times faster than Scan.
func (s *Store) ScanTrack(ctx context.Context, plate string, from, to time.Time, fn func(Sample) error) error {
	rows, err := s.pool.Query(ctx, `
		SELECT fix_time, lat, lng FROM positions
		WHERE plate = $1 AND fix_time >= $2 AND fix_time < $3
		ORDER BY fix_time`, plate, from, to)
	if err != nil {
		return fmt.Errorf("track of %s: %w", plate, err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	raw := len(fds) == 3 && fds[0].Format == pgtype.BinaryFormatCode && fds[0].DataTypeOID == pgtype.TimestamptzOID &&
		fds[1].Format == pgtype.BinaryFormatCode && fds[1].DataTypeOID == pgtype.Float8OID &&
		fds[2].Format == pgtype.BinaryFormatCode && fds[2].DataTypeOID == pgtype.Float8OID
	for rows.Next() {
		var smp Sample
		if v := rows.RawValues(); raw && len(v[0]) == 8 && len(v[1]) == 8 && len(v[2]) == 8 {
			smp.UnixMicro = int64(binary.BigEndian.Uint64(v[0])) + pgEpochMicro
			smp.Lat = math.Float64frombits(binary.BigEndian.Uint64(v[1]))
			smp.Lng = math.Float64frombits(binary.BigEndian.Uint64(v[2]))
		} else {
			var at time.Time
			if err := rows.Scan(&at, &smp.Lat, &smp.Lng); err != nil {
				return fmt.Errorf("track of %s: %w", plate, err)
			}
			smp.UnixMicro = at.UnixMicro()
		}
		if err := fn(smp); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("track of %s: %w", plate, err)
	}
	return nil
}

// FixesAt returns plate's fixes taken at times, which lie in [from, to),
// in fix-time order: the whole rows of the fixes a simplified track kept.
// A time without a fix (retention dropped it meanwhile) is left out.
func (s *Store) FixesAt(ctx context.Context, plate string, from, to time.Time, times []time.Time) ([]Fix, error) {
	// One index lookup per time: with fix_time = ANY($2) beside the
	// window's bounds, the generic plan Postgres settles on after a few
	// executions scans the whole window and tests every fix against the
	// array (2.4 s for 2,000 times in a vehicle-month, against 55 ms).
	rows, err := s.pool.Query(ctx, `
		SELECT p.fix_time, p.received_at, p.lat, p.lng, p.speed_kmh, p.course_deg, p.flags
		FROM unnest($2::timestamptz[]) AS t(at)
		JOIN positions p ON p.plate = $1 AND p.fix_time = t.at
		WHERE t.at >= $3 AND t.at < $4
		ORDER BY p.fix_time`, plate, times, from, to)
	if err != nil {
		return nil, fmt.Errorf("fixes of %s: %w", plate, err)
	}
	out, err := collectFixes(rows)
	if err != nil {
		return nil, fmt.Errorf("fixes of %s: %w", plate, err)
	}
	return out, nil
}

// collectFixes reads rows of fix_time, received_at, lat, lng, speed_kmh,
// course_deg, flags into fixes, decoding Postgres's binary format
// directly (a day's track is 8,640 rows; Scan would spend most of the
// query's time converting them).
func collectFixes(rows pgx.Rows) ([]Fix, error) {
	defer rows.Close()
	fds := rows.FieldDescriptions()
	want := []uint32{pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.Float8OID, pgtype.Float8OID, pgtype.Float8OID,
		pgtype.Float8OID, pgtype.TextArrayOID}
	raw := len(fds) == len(want)
	for i := 0; raw && i < len(want); i++ {
		raw = fds[i].Format == pgtype.BinaryFormatCode && fds[i].DataTypeOID == want[i]
	}
	var out []Fix
	for rows.Next() {
		var f Fix
		if !raw || !decodeFix(rows.RawValues(), &f) {
			if err := rows.Scan(&f.FixTime, &f.ReceivedAt, &f.Lat, &f.Lng, &f.SpeedKmh, &f.CourseDeg, &f.Flags); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// decodeFix decodes a row of collectFixes's columns in binary format;
// false for any value it does not expect, which Scan then reads.
func decodeFix(v [][]byte, f *Fix) bool {
	for i := range 5 {
		if len(v[i]) != 8 {
			return false
		}
	}
	f.FixTime = time.UnixMicro(int64(binary.BigEndian.Uint64(v[0])) + pgEpochMicro).UTC()
	f.ReceivedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(v[1])) + pgEpochMicro).UTC()
	f.Lat = math.Float64frombits(binary.BigEndian.Uint64(v[2]))
	f.Lng = math.Float64frombits(binary.BigEndian.Uint64(v[3]))
	f.SpeedKmh = math.Float64frombits(binary.BigEndian.Uint64(v[4]))
	switch len(v[5]) {
	case 0:
		if v[5] != nil {
			return false
		}
	case 8:
		c := math.Float64frombits(binary.BigEndian.Uint64(v[5]))
		f.CourseDeg = &c
	default:
		return false
	}
	flags, ok := decodeTextArray(v[6])
	f.Flags = flags
	return ok
}

// decodeTextArray decodes a one-dimensional text[] without NULLs in
// Postgres's binary array format: ndim, has-null, element type, then per
// dimension its length and lower bound, then each element's length and
// bytes.
func decodeTextArray(b []byte) ([]string, bool) {
	if len(b) < 12 {
		return nil, false
	}
	ndim, hasNull := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if ndim == 0 {
		return []string{}, true
	}
	if ndim != 1 || hasNull != 0 || len(b) < 20 {
		return nil, false
	}
	n := int(int32(binary.BigEndian.Uint32(b[12:])))
	b = b[20:]
	out := make([]string, 0, n)
	for range n {
		if len(b) < 4 {
			return nil, false
		}
		l := int(int32(binary.BigEndian.Uint32(b)))
		if l < 0 || len(b) < 4+l {
			return nil, false
		}
		out = append(out, string(b[4:4+l]))
		b = b[4+l:]
	}
	return out, len(b) == 0
}

// HistoryFrom returns when the positions history starts: retention has
// dropped everything before it. ok is false while it has dropped nothing.
func (s *Store) HistoryFrom(ctx context.Context) (from time.Time, ok bool, err error) {
	return HistoryFrom(ctx, s.pool, PositionsTable)
}

// ExportQuery selects fixes for an export: one vehicle's (Plate set) or
// the whole fleet's, with From <= fix_time < To.
type ExportQuery struct {
	Plate    string
	From, To time.Time
}

// Export counts the fixes q selects and, when they are at most max, calls
// fn with each of them, one vehicle after another in plate order and each
// vehicle's in fix-time order, as they are read. Both happen in one
// read-only snapshot, so the count is that of the rows streamed. When q
// selects more than max fixes, Export streams none and returns a count
// above max (max+1: it stops counting there). fn's error stops the
// stream and is returned as it is.
func (s *Store) Export(ctx context.Context, q ExportQuery, max int64, fn func(plate string, f *Fix) error) (int64, error) {
	where, args := `fix_time >= $1 AND fix_time < $2`, []any{q.From, q.To}
	if q.Plate != "" {
		where += ` AND plate = $3`
		args = append(args, q.Plate)
	}
	var n int64
	err := postgres.InSnapshot(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if n, err = postgres.CountUpTo(ctx, tx, "positions", where, args, max+1); err != nil || n > max {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags
			FROM positions WHERE `+where+` ORDER BY plate, fix_time`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var plate string
		var f Fix
		for rows.Next() {
			f.Flags = f.Flags[:0]
			if err := rows.Scan(&plate, &f.FixTime, &f.ReceivedAt, &f.Lat, &f.Lng, &f.SpeedKmh, &f.CourseDeg, &f.Flags); err != nil {
				return err
			}
			if err := fn(plate, &f); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return n, fmt.Errorf("export positions: %w", err)
	}
	return n, nil
}
