package httpapi_test

import (
	"fmt"

	"github.com/tmsfleet/tms/adapters/httpapi"
)

// ParseTokens reads TMS_API_TOKENS; its errors name the entry at fault by
// position, never the token, so cmd/ can log them.
func ExampleParseTokens() {
	tokens, err := httpapi.ParseTokens("s3cret-dashboard:viewer, s3cret-ops:operator")
	fmt.Println(tokens, err)

	_, err = httpapi.ParseTokens("s3cret-dashboard:viewer,s3cret-ops:admin")
	fmt.Println(err)
	// Output:
	// map[s3cret-dashboard:viewer s3cret-ops:operator] <nil>
	// TMS_API_TOKENS entry 2: unknown role "admin" (want viewer or operator)
}
