package h3

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/tmsfleet/tms/domain/geofence"
)

// Index is a geofence.Index backed by H3 cells. See the package
// documentation for how it works.
//
// Add, Remove and Len must not run concurrently with anything else on the
// Index. Several goroutines may each locate with their own Cursor at the
// same time, as long as no Add or Remove runs meanwhile: cursors only read
// the Index, except for its cache of compiled cell programs, which has its
// own lock. A Cursor itself is for one goroutine.
type Index struct {
	cfg Config

	byKey map[geofence.Key]int32 // key → slot
	slots []*shapeRec            // slot → shape; nil when free
	free  []int32

	// cells maps an H3 cell to what it lists. An entry's list is
	// arena[off:off+n]: n slots, the first nIn of them shapes whose cap
	// classification was "in" (interior), then the "bound" ones, each part
	// in ascending key order. Only base-resolution entries have bound
	// shapes.
	cells   map[uint64]entry
	arena   []int32
	garbage int

	levelCount [maxRes + 1]int // entries per resolution
	coarse     []int           // resolutions below the base that have entries

	near nearIndex

	// gen changes with every Add and Remove; cursors compare it with the
	// one their cache was built at.
	gen uint64

	progs    *progCache
	bld      *builder
	geoCache map[uint64]cellGeo

	fallbacks   atomic.Int64 // Locates answered by testing every shape
	compactions int          // for tests
}

// entry is one listed cell. With its centre and cap radius stored here, a
// cursor needs no cgo to learn the cap of a listed cell.
type entry struct {
	lat, lng    float64
	r           float32
	off, n, nIn uint32
}

// New returns an empty Index.
func New(cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ix := &Index{
		cfg:      cfg,
		byKey:    map[geofence.Key]int32{},
		cells:    map[uint64]entry{},
		geoCache: map[uint64]cellGeo{},
		near:     newNearIndex(cfg.NearBucketDegrees),
		progs:    newProgCache(),
	}
	ix.bld = newBuilder(ix)
	return ix, nil
}

var _ geofence.Index = (*Index)(nil)

// Add implements geofence.Index. It returns an error wrapping ErrShape for
// a shape it does not index (see ErrShape), and an error for a key that is
// indexed already; the Index is unchanged then. The Index keeps s, its
// circle and its polygons: they must not change afterwards.
func (ix *Index) Add(key geofence.Key, s geofence.Shape) error {
	if _, dup := ix.byKey[key]; dup {
		return fmt.Errorf("h3: key %d is indexed already", key)
	}
	sh, err := newShapeRec(key, s)
	if err != nil {
		return err
	}
	cov, err := ix.cover(sh)
	if err != nil {
		return err
	}
	var slot int32
	if n := len(ix.free); n > 0 {
		slot = ix.free[n-1]
		ix.free = ix.free[:n-1]
		ix.slots[slot] = sh
	} else {
		slot = int32(len(ix.slots))
		ix.slots = append(ix.slots, sh)
	}
	ix.byKey[key] = slot
	cells := make([]uint64, len(cov))
	for i, c := range cov {
		ix.insert(c, slot)
		cells[i] = c.cell
	}
	sh.cells = packCells(cells)
	ix.near.add(slot, sh)
	ix.changed()
	ix.maybeCompact()
	return nil
}

// Remove implements geofence.Index.
func (ix *Index) Remove(key geofence.Key) {
	slot, ok := ix.byKey[key]
	if !ok {
		return
	}
	sh := ix.slots[slot]
	unpackCells(sh.cells, func(c uint64) { ix.delete(c, slot) })
	ix.near.remove(slot, sh)
	delete(ix.byKey, key)
	ix.slots[slot] = nil
	ix.free = append(ix.free, slot)
	ix.changed()
	ix.maybeCompact()
}

// Len implements geofence.Index.
func (ix *Index) Len() int { return len(ix.byKey) }

// NewCursor implements geofence.Index.
func (ix *Index) NewCursor() geofence.Cursor { return &Cursor{ix: ix} }

func (ix *Index) changed() {
	ix.gen++
	ix.progs.clear()
	ix.coarse = ix.coarse[:0]
	for l := 0; l < ix.cfg.Resolution; l++ {
		if ix.levelCount[l] > 0 {
			ix.coarse = append(ix.coarse, l)
		}
	}
}

// insert lists slot in cell, keeping the list's parts in key order. A
// list at the end of the arena grows in place; any other is copied to the
// end, and its old place becomes garbage.
func (ix *Index) insert(c covCell, slot int32) {
	cell, interior := c.cell, c.interior
	e, ok := ix.cells[cell]
	if !ok {
		e = entry{lat: c.geo.lat, lng: c.geo.lng, r: c.geo.r, off: uint32(len(ix.arena))}
		ix.levelCount[cellRes(cell)]++
	}
	key := ix.slots[slot].key
	old := ix.arena[e.off : e.off+e.n]
	lo, hi := 0, int(e.nIn)
	if !interior {
		lo, hi = int(e.nIn), int(e.n)
	}
	pos := lo + ix.search(old[lo:hi], key)
	if int(e.off+e.n) == len(ix.arena) {
		ix.arena = append(ix.arena, 0)
		list := ix.arena[e.off : e.off+e.n+1]
		copy(list[pos+1:], list[pos:e.n])
		list[pos] = slot
	} else {
		off := uint32(len(ix.arena))
		ix.arena = append(ix.arena, old[:pos]...)
		ix.arena = append(ix.arena, slot)
		ix.arena = append(ix.arena, old[pos:]...)
		ix.garbage += int(e.n)
		e.off = off
	}
	e.n++
	if interior {
		e.nIn++
	}
	ix.cells[cell] = e
}

// search returns where key goes in a key-ordered list of slots.
func (ix *Index) search(list []int32, key geofence.Key) int {
	i, _ := slices.BinarySearchFunc(list, key, func(s int32, k geofence.Key) int {
		sk := ix.slots[s].key
		switch {
		case sk < k:
			return -1
		case sk > k:
			return 1
		}
		return 0
	})
	return i
}

// delete removes slot from cell's list, and the entry when it is empty.
func (ix *Index) delete(cell uint64, slot int32) {
	e, ok := ix.cells[cell]
	if !ok {
		return
	}
	list := ix.arena[e.off : e.off+e.n]
	i := slices.Index(list, slot)
	if i < 0 {
		return
	}
	copy(list[i:], list[i+1:])
	if uint32(i) < e.nIn {
		e.nIn--
	}
	e.n--
	if int(e.off+e.n+1) == len(ix.arena) {
		ix.arena = ix.arena[:len(ix.arena)-1]
	} else {
		ix.garbage++
	}
	if e.n == 0 {
		delete(ix.cells, cell)
		ix.levelCount[cellRes(cell)]--
		return
	}
	ix.cells[cell] = e
}

// maybeCompact compacts the arena when at least half of it is garbage.
func (ix *Index) maybeCompact() {
	if ix.garbage > 1<<12 && ix.garbage > len(ix.arena)/2 {
		ix.compact()
	}
}

// compact copies every live list into a new arena.
func (ix *Index) compact() {
	live := len(ix.arena) - ix.garbage
	arena := make([]int32, 0, live+live/4)
	for c, e := range ix.cells {
		off := uint32(len(arena))
		arena = append(arena, ix.arena[e.off:e.off+e.n]...)
		e.off = off
		ix.cells[c] = e
	}
	ix.arena = arena
	ix.garbage = 0
	ix.compactions++
}
