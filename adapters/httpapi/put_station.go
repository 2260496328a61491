package httpapi

import (
	"github.com/gin-gonic/gin"
)

// putStation serves PUT /api/v1/stations/{id}: create or replace, subject
// to If-Match (the station must be at that version) and If-None-Match: *
// (it must not exist). The body's id, if any, must be the path's. One 400
// names every bad field of the path, the headers and the body.
func (s *server) putStation(c *gin.Context) {
	p := newParams(c.Request)
	id := p.stationID("id", c.Param("id"))
	cond, condErr := condition(c.Request)
	st, bodyErr := s.readStation(c)
	if st != nil && id != "" {
		st, bodyErr = st.WithID(id)
	}
	if err := joinInvalid(p.err(), condErr, bodyErr); err != nil {
		fail(c, err)
		return
	}
	res, err := s.cfg.StationCommands.Put(c.Request.Context(), st, cond)
	if err != nil {
		fail(c, err)
		return
	}
	answerWrite(c, res)
}
