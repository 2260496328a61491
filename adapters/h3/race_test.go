//go:build race

package h3

// raceEnabled cuts the random worlds the tests check, as the race detector
// makes them about ten times slower.
const raceEnabled = true
