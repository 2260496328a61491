package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// deleteStation serves DELETE /api/v1/stations/{id}: 204 once the read
// model shows the deletion, 404 for a station that does not exist, 412
// when If-Match does not hold.
func (s *server) deleteStation(c *gin.Context) {
	p := newParams(c.Request)
	id := p.stationID("id", c.Param("id"))
	cond, condErr := condition(c.Request)
	if err := joinInvalid(p.err(), condErr); err != nil {
		fail(c, err)
		return
	}
	res, err := s.cfg.StationCommands.Delete(c.Request.Context(), id, cond)
	if err != nil {
		fail(c, err)
		return
	}
	if res.Accepted {
		accepted(c, res)
		return
	}
	c.Status(http.StatusNoContent)
}
