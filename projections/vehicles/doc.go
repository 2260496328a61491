// Package vehicles is the vehicles read model: every accepted position fix
// (the history behind tracks) and each vehicle's latest fix by fix time,
// when it was last heard from and how many fixes it has sent. It holds the
// projection that builds the tables from tms.positions and the queries
// the API and the WebSocket hub read them with.
package vehicles
