package g7api

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Header names of a signed request.
const (
	HeaderTimestamp     = "X-G7-OpenAPI-Timestamp"
	HeaderContentMD5    = "Content-MD5"
	HeaderAuthorization = "Authorization"
	// AuthScheme starts the Authorization header: "g7ac <key>:<signature>".
	AuthScheme = "g7ac"
)

// StringToSign is what a request's signature is computed over:
//
//	METHOD \n Content-MD5 \n Content-Type \n timestamp \n path?k1=v1&k2=v2
//
// with the query parameters sorted by name (a name's several values in
// their own order, sorted too), each written name=value unescaped, joined
// by "&"; without parameters the last line is the path alone. Content-MD5
// and Content-Type are the request's headers, empty for a GET without a
// body. timestamp is X-G7-OpenAPI-Timestamp, epoch milliseconds.
func StringToSign(method, contentMD5, contentType string, timestamp int64, path string, query url.Values) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(contentMD5)
	b.WriteByte('\n')
	b.WriteString(contentType)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(timestamp, 10))
	b.WriteByte('\n')
	b.WriteString(path)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range query {
			if !yield(k) {
				return
			}
		}
	})
	sep := byte('?')
	for _, k := range names {
		values := slices.Sorted(slices.Values(query[k]))
		for _, v := range values {
			b.WriteByte(sep)
			sep = '&'
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	return b.String()
}

// Sign returns base64(HMAC-SHA256(secret, stringToSign)): the signature
// of the Authorization header. It is a pure function of its inputs.
func Sign(secret, stringToSign string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Authorization returns the Authorization header's value for key and a
// signature: "g7ac <key>:<signature>".
func Authorization(key, signature string) string {
	return AuthScheme + " " + key + ":" + signature
}

// ContentMD5 returns the Content-MD5 header of a body: base64 of its MD5.
// A request without a body sends none.
func ContentMD5(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	sum := md5.Sum(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}
