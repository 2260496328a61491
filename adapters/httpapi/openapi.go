package httpapi

import (
	_ "embed" // for the OpenAPI document
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPISpec is the OpenAPI document of every endpoint, written by hand
// next to the handlers; openapi_test.go holds it and the routes together.
//
//go:embed openapi.json
var openAPISpec []byte

// openAPI serves GET /api/v1/openapi.json.
func (s *server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, contentJSON, openAPISpec)
}
