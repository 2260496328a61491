package g7api

import (
	"net/url"
	"testing"
)

// The expected signatures were computed by hand, outside Go:
//
//	printf 'GET\n\n\n1700000000000\n/v1/device/truck/history_location?from=...' |
//	    openssl dgst -sha256 -hmac 'test-secret' -binary | base64
func TestSign(t *testing.T) {
	t.Parallel()
	q := url.Values{
		"to": {"2026-10-31 00:00:00"}, "plate_num": {"沪A12345"}, "timeInterval": {"0"}, "from": {"2026-10-01 00:00:00"},
	}
	sts := StringToSign("get", "", "", 1700000000000, HistoryPath, q)
	wantSTS := "GET\n\n\n1700000000000\n/v1/device/truck/history_location?from=2026-10-01 00:00:00&plate_num=沪A12345&timeInterval=0&to=2026-10-31 00:00:00"
	if sts != wantSTS {
		t.Fatalf("string to sign:\n%q\nwant\n%q", sts, wantSTS)
	}
	if got, want := Sign("test-secret", sts), "HjqltzIBOiElXMziH72gdSuNGinpOIZWNKxc5EiOlVo="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	if got, want := Authorization("k1", "abc="), "g7ac k1:abc="; got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
}

func TestSignWithBody(t *testing.T) {
	t.Parallel()
	md5 := ContentMD5([]byte(`{"a":1}`))
	if md5 != "u2y1xo30ZSlByvZSo2by2A==" {
		t.Fatalf("Content-MD5 %s", md5)
	}
	sts := StringToSign("POST", md5, "application/json", 1700000000000, "/v1/x", nil)
	if got, want := Sign("test-secret", sts), "mBi1ZCH0EZMNpqGsCbGFDLpalQnWVGHsxCllKHpKP7g="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	if ContentMD5(nil) != "" {
		t.Error("a request without a body has no Content-MD5")
	}
}
