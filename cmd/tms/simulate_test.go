package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSimulateFindsTheAPIAsMakeRunStartsIt(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"[::]:8080":      "http://127.0.0.1:8080",
		"10.0.0.5:8080":  "http://10.0.0.5:8080",
		"localhost:8081": "http://localhost:8081",
		"[::1]:8080":     "http://[::1]:8080",
		"8080":           "",
	} {
		if got := apiBase(addr); got != want {
			t.Errorf("TMS_HTTP_ADDR %q: API at %q, want %q", addr, got, want)
		}
	}
}

func TestSimulateFindsAnOperatorToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "api-tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "api-tokens", "operator")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		flag, tokens, dataDir string
		want, from            string
	}{
		"the flag first":          {"from-flag", "a:operator", dir, "from-flag", "--token"},
		"the first operator":      {"", "v1:viewer, o:1:operator ,o2:operator", dir, "o:1", "TMS_API_TOKENS"},
		"only viewers":            {"", "v1:viewer", dir, "", ""},
		"the file make run keeps": {"", "", dir, "from-file", file},
		"nothing":                 {"", "", t.TempDir(), "", ""},
	} {
		got, from, err := apiToken(tc.flag, tc.tokens, tc.dataDir)
		if err != nil || got != tc.want || from != tc.from {
			t.Errorf("%s: %q from %q, %v; want %q from %q", name, got, from, err, tc.want, tc.from)
		}
	}
	if _, _, err := apiToken("", "no-role", dir); err == nil {
		t.Error("a malformed TMS_API_TOKENS is accepted")
	}
}
