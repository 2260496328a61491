package h3

// The layout of a 64-bit H3 cell index, as the H3 library defines it:
//
//	bit 63      reserved, 0
//	bits 59-62  mode (1 for a cell)
//	bits 56-58  reserved, 0 for a cell
//	bits 52-55  resolution, 0-15
//	bits 45-51  base cell, 0-121
//	bits 0-44   fifteen 3-bit digits; the digit of resolution r is at bits
//	            3*(15-r) to 3*(15-r)+2, and every digit finer than the
//	            cell's resolution is 7
//
// A cell's ancestor at resolution r is therefore the same index with the
// resolution field set to r and the digits of resolutions r+1 to 15 set to
// 7: pure bit manipulation, which is why lookups do it here instead of
// through cgo (h3.Cell.Parent costs a cgo call).

const (
	maxRes    = 15
	resOffset = 52
	resMask   = uint64(0xf) << resOffset
)

// cellRes returns the resolution of a cell index.
func cellRes(h uint64) int { return int(h >> resOffset & 0xf) }

// cellParent returns the ancestor of cell h at resolution r, which must not
// be finer than h's own resolution (for r equal to it, h itself).
func cellParent(h uint64, r int) uint64 {
	h = h&^resMask | uint64(r)<<resOffset
	return h | (uint64(1)<<(3*(maxRes-r)) - 1)
}
