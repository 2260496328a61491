package httpapi

import (
	"context"

	"github.com/tmsfleet/tms/projections/vehicles"
)

// VehicleStore is what the API reads vehicles through; *vehicles.Store
// implements it. Implementations must be safe for concurrent use: every
// request calls them from its own goroutine.
type VehicleStore interface {
	// List returns the vehicles q selects, ordered by plate.
	List(ctx context.Context, q vehicles.ListQuery) ([]vehicles.Vehicle, error)
	// Get returns one vehicle, or an error wrapping vehicles.ErrNotFound
	// when tms has never received a fix from it.
	Get(ctx context.Context, plate string) (vehicles.Vehicle, error)
	// Track returns the fixes q selects, in fix-time order. It returns no
	// error for a vehicle it does not know: the caller tells an unknown
	// vehicle from an empty window with Get.
	Track(ctx context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error)
}
