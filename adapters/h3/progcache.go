package h3

import (
	"runtime"
	"sync"
	"weak"
)

// program is a compiled cell program (see program.go). It never changes
// once built.
type program struct {
	words []uint64
}

// progCache shares the programs of listed cells between the cursors in
// them: a listed cell's disc is its cap, so its program is the same for
// every cursor. Vehicles gather at depots and in industrial parks, so
// sharing saves memory, and a cursor entering a cell that another cursor
// is in skips building the program.
//
// The cache holds its programs weakly: a program lives as long as a
// cursor uses it (and until the next garbage collection after that), and
// its entry goes with it. So the memory of programs is that of the
// distinct cells vehicles are in, whatever the number of vehicles, with no
// budget to tune. Every change to the Index clears the cache (cursors
// notice the change and stop using their programs).
//
// It is the one thing cursors write to in the Index, hence the mutex.
type progCache struct {
	mu sync.Mutex
	m  map[uint64]weak.Pointer[program]
}

func newProgCache() *progCache {
	return &progCache{m: map[uint64]weak.Pointer[program]{}}
}

func (pc *progCache) get(cell uint64) *program {
	pc.mu.Lock()
	wp, ok := pc.m[cell]
	pc.mu.Unlock()
	if !ok {
		return nil
	}
	return wp.Value()
}

func (pc *progCache) put(cell uint64, p *program) {
	wp := weak.Make(p)
	pc.mu.Lock()
	pc.m[cell] = wp
	pc.mu.Unlock()
	runtime.AddCleanup(p, pc.forget, cleanupArg{cell, wp})
}

type cleanupArg struct {
	cell uint64
	wp   weak.Pointer[program]
}

// forget drops the entry of a program that has been collected, unless the
// cell has a newer program by then.
func (pc *progCache) forget(a cleanupArg) {
	pc.mu.Lock()
	if pc.m[a.cell] == a.wp {
		delete(pc.m, a.cell)
	}
	pc.mu.Unlock()
}

func (pc *progCache) clear() {
	pc.mu.Lock()
	clear(pc.m)
	pc.mu.Unlock()
}
