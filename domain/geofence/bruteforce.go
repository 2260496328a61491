package geofence

import (
	"fmt"
	"slices"

	"github.com/tmsfleet/tms/domain/geo"
)

// BruteForce is the Index that tests every shape for every point. It is
// the reference other indexes are checked against, and fine for a
// handful of stations.
type BruteForce struct {
	keys   []Key
	shapes map[Key]Shape
}

// NewBruteForce returns an empty brute-force index.
func NewBruteForce() *BruteForce { return &BruteForce{shapes: map[Key]Shape{}} }

// Add implements Index.
func (b *BruteForce) Add(key Key, s Shape) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, dup := b.shapes[key]; dup {
		return fmt.Errorf("geofence: key %d is indexed already", key)
	}
	b.shapes[key] = s
	i, _ := slices.BinarySearch(b.keys, key)
	b.keys = slices.Insert(b.keys, i, key)
	return nil
}

// Remove implements Index.
func (b *BruteForce) Remove(key Key) {
	if _, ok := b.shapes[key]; !ok {
		return
	}
	delete(b.shapes, key)
	i, _ := slices.BinarySearch(b.keys, key)
	b.keys = slices.Delete(b.keys, i, i+1)
}

// Len implements Index.
func (b *BruteForce) Len() int { return len(b.keys) }

// NewCursor implements Index; brute force keeps nothing between points.
func (b *BruteForce) NewCursor() Cursor { return bruteCursor{b} }

type bruteCursor struct{ b *BruteForce }

func (c bruteCursor) Locate(p geo.Point, dst []Key) []Key {
	for _, k := range c.b.keys {
		if c.b.shapes[k].Contains(p) {
			dst = append(dst, k)
		}
	}
	return dst
}

func (c bruteCursor) Near(p geo.Point, distance float64, dst []Key) []Key {
	for _, k := range c.b.keys {
		if !c.b.shapes[k].OutsideBy(p, distance) {
			dst = append(dst, k)
		}
	}
	return dst
}
