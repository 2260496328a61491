package simulator

import (
	"math/rand/v2"
	"strings"
)

// provinces are the plate prefixes of a Shanghai-based fleet, weighted
// roughly as trucks around Shanghai are registered: mostly local, then the
// neighbouring provinces, a few from further away.
var provinces = []struct {
	char   string
	weight int
}{
	{"沪", 45}, {"苏", 15}, {"浙", 12}, {"皖", 8}, {"鲁", 5},
	{"京", 3}, {"豫", 3}, {"赣", 3}, {"闽", 2}, {"鄂", 2}, {"湘", 2},
}

var provinceWeightTotal = func() int {
	n := 0
	for _, p := range provinces {
		n += p.weight
	}
	return n
}()

// Plate alphabets. Real plates leave out I and O, which read as 1 and 0.
const (
	plateOffices = "ABCDEFGHJKLMN"
	plateLetters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	plateDigits  = "0123456789"
	// plateMaxLetters: the 2007 standard allows at most two letters among
	// the five serial characters.
	plateMaxLetters = 2
	// plateLetterChance is the chance that a serial character is a letter
	// (while letters are still allowed).
	plateLetterChance = 0.25
)

// newPlate draws a plate such as 沪A3K7Q2 from rnd: province character,
// issuing-office letter, five serial characters.
func newPlate(rnd *rand.Rand) string {
	var b strings.Builder
	b.Grow(3 + 1 + 5)
	w := rnd.IntN(provinceWeightTotal)
	for _, p := range provinces {
		if w < p.weight {
			b.WriteString(p.char)
			break
		}
		w -= p.weight
	}
	b.WriteByte(plateOffices[rnd.IntN(len(plateOffices))])
	letters := 0
	for range 5 {
		if letters < plateMaxLetters && rnd.Float64() < plateLetterChance {
			b.WriteByte(plateLetters[rnd.IntN(len(plateLetters))])
			letters++
			continue
		}
		b.WriteByte(plateDigits[rnd.IntN(len(plateDigits))])
	}
	return b.String()
}
