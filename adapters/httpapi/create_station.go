package httpapi

import (
	"github.com/gin-gonic/gin"
)

// createStation serves POST /api/v1/stations: a new station, with the id
// its body gives (stations come from other systems) or one the server
// makes. 409 when a station with the id exists.
func (s *server) createStation(c *gin.Context) {
	st, err := s.readStation(c)
	if err != nil {
		fail(c, err)
		return
	}
	res, err := s.cfg.StationCommands.Create(c.Request.Context(), st)
	if err != nil {
		fail(c, err)
		return
	}
	answerWrite(c, res)
}
