package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/adapters/dashboard"
)

// maxAttributionRunes bounds SessionSettings.TileAttribution: a credit
// line, not a page.
const maxAttributionRunes = 200

// SessionSettings are how a client should show the fleet, the same for
// every caller: GET /api/v1/session hands them out with the caller's role,
// so that the dashboard is configured by the server it talks to.
type SessionSettings struct {
	// TileURL is the map tile URL template (dashboard.CheckTileURL): http
	// or https, with {z}, {x} and {y}. Empty: no tiles, a plain
	// background. cmd/ defaults it to OpenStreetMap's standard tiles.
	TileURL string
	// TileAttribution is the credit the map shows for its tiles: plain
	// text (no '<' or '>': clients may put it into HTML, as Leaflet's
	// attribution control does), at most 200 characters, no control
	// characters.
	TileAttribution string
	// OfflineAfter is how old a vehicle's latest fix may be before a
	// client shows it offline; whole seconds. Default 10 min.
	OfflineAfter time.Duration
}

func (s *SessionSettings) setDefaults() {
	if s.OfflineAfter == 0 {
		s.OfflineAfter = 10 * time.Minute
	}
}

func (s *SessionSettings) validate() []error {
	var errs []error
	if _, err := dashboard.CheckTileURL(s.TileURL); err != nil {
		errs = append(errs, fmt.Errorf("session: %w", err))
	}
	if err := checkPlainText(s.TileAttribution, maxAttributionRunes); err != nil {
		errs = append(errs, fmt.Errorf("session: tile attribution: %w", err))
	}
	if s.OfflineAfter < time.Second {
		errs = append(errs, fmt.Errorf("session: OfflineAfter %s must be at least 1s", s.OfflineAfter))
	}
	return errs
}

// checkPlainText reports text that is not one line of plain text of at
// most max characters.
func checkPlainText(text string, max int) error {
	if !utf8.ValidString(text) {
		return errors.New("not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > max {
		return fmt.Errorf("%d characters, at most %d", n, max)
	}
	if strings.ContainsAny(text, "<>") {
		return fmt.Errorf("%q holds '<' or '>': plain text only, no HTML", text)
	}
	if strings.ContainsFunc(text, unicode.IsControl) {
		return fmt.Errorf("%q holds a control character", text)
	}
	return nil
}

// sessionJSON is GET /api/v1/session's answer.
type sessionJSON struct {
	Role      Role                 `json:"role"`
	Dashboard dashboardSessionJSON `json:"dashboard"`
}

// dashboardSessionJSON is SessionSettings as clients read them.
type dashboardSessionJSON struct {
	TileURL         string `json:"tile_url"`
	TileAttribution string `json:"tile_attribution"`
	OfflineAfterS   int64  `json:"offline_after_s"`
}

// session serves GET /api/v1/session: what the caller's token may do and
// how a client should look. A dashboard calls it at login, to check the
// token and learn its role before it opens anything else.
func (s *server) session(c *gin.Context) {
	role, _ := RoleFrom(c.Request.Context())
	set := s.cfg.Session
	writeJSON(c, http.StatusOK, contentJSON, sessionJSON{
		Role: role,
		Dashboard: dashboardSessionJSON{
			TileURL: set.TileURL, TileAttribution: set.TileAttribution,
			OfflineAfterS: int64(set.OfflineAfter / time.Second),
		},
	})
}
