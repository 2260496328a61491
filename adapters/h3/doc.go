// Package h3 is a geofence.Index backed by Uber's H3 grid of hexagons
// (github.com/uber/h3-go): which stations, circles or polygons, possibly
// overlapping, is a GPS fix inside?
//
// # H3 is the filter, the geometry is the answer
//
// The answers are those of Shape.Contains, bit for bit: haversine circles
// on the contract's sphere, polygons with straight longitude/latitude
// edges, edges inside (see package geo). H3 only narrows down which shapes
// a fix must be tested against, and tells when a test can be skipped
// because the answer is certain. Nothing in the index depends on rounding
// going one way: every decision it takes by itself is made with a margin
// many orders of magnitude above the rounding of the computation, in the
// direction that only costs an extra exact test.
//
// # Cells, caps and classes
//
// Everything the index says about an H3 cell, it says about the cell's
// cap: the disc around the cell's centre whose radius is the distance to
// its farthest vertex, widened by 6 mm and a relative 1e-6. The cap
// contains the cell (its edges are great-circle arcs between the
// vertices), and a point H3 puts in the cell is in its cap. A cell is, for
// a shape:
//
//   - in, when its cap is certainly inside the shape: for a circle of
//     radius r around c, when dist(centre, c) + capRadius + margin ≤ r; for
//     polygons, when the longitude/latitude rectangle that bounds the cap
//     (latitudes ± the radius, longitudes ± asin(sin radius / cos lat), all
//     longitudes when the cap reaches a pole, two rectangles when it
//     crosses the antimeridian) meets no edge of any ring and a corner of
//     it is inside (a closed ring's crossing parity only changes across its
//     edges, so one exact point test decides the whole rectangle);
//   - out, when its cap is certainly disjoint from the shape;
//   - bound otherwise: the cap may meet the shape's edges.
//
// Rectangle-against-edge tests are the separating-axis test, with
// orientation signs taken only when they exceed a bound on their rounding
// error; anything uncertain counts as "may meet", which only makes a cell
// bound.
//
// # Which cells list a shape
//
// Fixes are looked up at the base resolution (Config.Resolution, default
// 9: hexagons with an edge of about 175 m). Each cell in the index lists
// the shapes it is in for (interior) and those it is bound for
// (boundary), as slots into one arena; interior shapes need no test,
// boundary shapes get the exact test. A shape is listed as follows:
//
//   - Every base cell whose cap meets the shape's edges is listed bound.
//     They are found by a breadth-first search over H3 neighbours from
//     seeds on the edges (the rim of a circle, a vertex of every ring),
//     expanding bound cells: the cells whose hexagon meets a connected
//     curve are connected (three hexagons meet at each vertex), and a cap
//     meeting the curve outside its own hexagon meets it in a neighbour's.
//   - The interior is listed at the coarsest resolution that fits: the
//     finest resolution L at which the shape's bounding disc covers no more
//     than Config.CoarseCells cells (a 300 m station stays at resolution 8,
//     a 50 km hazard zone goes down to 5). At L, the search expands in cells
//     too and lists them interior. At every resolution between L and the
//     base, the bound search runs as well, and the children of every bound
//     cell are classified: in children are listed interior, bound ones are
//     refined further. A 50 km circle thus costs about 2,000 boundary cells
//     and a few hundred interior ones instead of 75,000.
//
// H3's hierarchy is not exact: an aperture-7 child sticks out of its
// parent, so "the descendants of a cell", which is what a lookup by index
// digits finds, are not "the points of its cap". Two things make the
// coarse listing exact anyway. A coarse interior claim is trusted only
// where it holds: a lookup treats the shape as certain only if the whole
// disc the cursor works in lies inside the coarse cell's cap, and tests it
// otherwise. And nothing is lost by refining only bound cells: follow a base
// cell's ancestors up while their caps meet the shape; the coarsest such
// ancestor is at L (found by the search there) or its parent's cap is
// disjoint from the shape while its own overlaps its parent's (a child's
// centre lies inside its parent), so it straddles the edge, is bound and
// was found by the search at its resolution; from there down, the chain is
// classified child by child. So every base cell whose cap meets a shape
// has the shape listed, bound at the cell or interior at the cell or an
// ancestor. The tests check these H3 properties on random cells of every
// resolution.
//
// # Lookup
//
// A lookup finds the fix's base cell with h3.LatLngToCell, the cell's
// entry, and the entries of its ancestors at the resolutions the index
// uses (an ancestor's index is the cell's index with the resolution field
// set and the finer digits set to 7: bit manipulation, not cgo), and
// merges their lists into one, in key order. That costs about 2-4 µs, most
// of it the cgo call, so a Cursor avoids it: it remembers a disc in which
// its list holds (the cell's cap for a listed cell; for a cell no shape
// meets, the disc through the fix around the cell's centre, which the cap
// contains), and a fix inside the disc, told by a bound on the haversine
// that needs no trigonometry, reuses the list. The cap is larger than the
// hexagon and overlaps the neighbours', so a parked vehicle's GPS noise at
// a cell edge does not bounce between cells, and a vehicle at 60 km/h
// needs an H3 lookup for about one fix in twenty.
//
// The list is compiled into a small program (program.go) that a fix runs
// front to back in one sequential run of memory: interior shapes are
// answers; circles are tested with a fast form of the haversine (a series
// instead of sines, no arcsine) that answers only when the fix is clear of
// the circle's edge by a relative two millionths, and otherwise defers to
// Circle.Contains itself; polygons keep only the edges that meet the
// disc's rectangle, the crossing parity of the other edges being a
// function of the fix's latitude computed when the program is built, and
// are evaluated with geo.Orient, the contract's exact orientation. The programs of
// listed cells are the same for every cursor, so cursors in the same cell
// share them (held weakly: they live as long as a cursor uses them).
//
// Near(p, distance) answers from the cursor's program when the disc around
// p of the distance (converted to cover both the true distance and the
// equirectangular distance of Shape.OutsideBy) lies in the cursor's disc:
// every shape with a point, or a point of one of its rings' edges (which
// OutsideBy measures to, even for a stray hole), in a cell's cap is listed
// for it. Otherwise it looks in longitude/latitude buckets of the shapes'
// bounding boxes.
//
// # Performance and memory
//
// On one core of the development machine (where a cgo LatLngToCell costs
// about 1.3 µs), with 10,000 stations clustered in the cities of the
// Yangtze delta and 10,000 vehicles moving at 0-120 km/h or parked, one
// fix a second each, the index decides 1.5-1.7 million fixes a second
// (BenchmarkLocate; one fix in fifteen needs an H3 lookup); a uniform 1 km
// grid that tests every candidate exactly does about 0.45 million, brute
// force about 800. Of the 0.55 µs of CPU a fix costs, about a third goes
// to the cells vehicles enter (H3 lookup, map lookups, programs), a fifth
// to circle tests, a fifth to polygon tests, and the rest mostly to
// fetching each vehicle's program from memory.
//
// 100,000 stations and 100,000 cursors take about 190 MB of heap in all,
// the stations' own coordinates included, whether spread over ten
// metropolitan regions or packed ten times denser into the delta's seven
// cities (BenchmarkMemory). Adding a station of the benchmark's mix takes
// about 0.1 ms (mostly cgo, about 3 µs per cell classified), a 50 km
// circle about 35 ms, a 50 km polygon of 4,000 vertices about 0.3 s;
// removing one is much cheaper.
//
// # Concurrency and invalid input
//
// Add, Remove and Len must not run concurrently with anything else on the
// Index. Cursors may locate concurrently, each on its own goroutine, as
// long as nothing adds or removes meanwhile; a cursor notices that the
// index changed and starts over. A fix that is not geo.Point.Valid is in
// no station, and Near returns every key for it. Add rejects shapes it
// cannot index exactly (see ErrShape).
//
// # The cost of a shape, known in advance
//
// Adding a shape costs about 3 µs per cell its cover classifies, and the
// count grows with the shape's boundary over the cell size: a 300 m circle
// classifies about 25 cells, a 50 km one about 7,000, a polygon of 300 km
// of edges tens of thousands. Before any work, Add bounds that count from
// the shape's coordinates alone (coverBound: linear in the vertices, no
// H3) and refuses a shape whose bound exceeds Config.MaxCoverCells with
// ErrTooLarge. Config.Indexable makes the same check without an Index, so
// that the station commands refuse, when a station is defined, exactly the
// shapes the geofence's index would refuse: one configuration, one
// answer. The bound is conservative (2.5 to about 18 times the real count
// in the tests); a cover that ever classified twice its bound would be
// stopped and refused as a bug.
package h3
