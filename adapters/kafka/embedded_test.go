package kafka

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHostileEmbeddedKafkasDataIsPrivate starts the embedded broker on a
// data directory an older tms made readable by everyone (0755): the
// topics hold every vehicle's positions, so the directory must end up
// readable by its owner only.
func TestHostileEmbeddedKafkasDataIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "kafka")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := StartEmbedded(dir, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("the embedded broker's data directory has mode %v, want 0700", fi.Mode().Perm())
	}
}
