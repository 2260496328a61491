package main

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

// envFields returns the fields of typ that read a variable, those of its
// nested settings structs (fields without an env tag, as env parses them)
// included.
func envFields(typ reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch {
		case f.Tag.Get("env") != "":
			out = append(out, f)
		case f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == typ.PkgPath():
			out = append(out, envFields(f.Type)...)
		}
	}
	return out
}

// TestEnvExampleListsEveryVariable keeps .env.example, the newcomer's
// list of settings, in step with what tms reads.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	t.Parallel()
	var read []string
	fields := envFields(reflect.TypeOf(config{}))
	for _, field := range fields {
		read = append(read, field.Tag.Get("env"))
	}
	f, err := os.Open("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var listed []string
	defaults := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		listed = append(listed, name)
		defaults[name] = value
	}
	for _, name := range read {
		if !slices.Contains(listed, name) {
			t.Errorf("%s is read but not in .env.example", name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(read, name) {
			t.Errorf(".env.example lists %s, which tms does not read", name)
		}
	}
	for _, field := range fields {
		if want, ok := field.Tag.Lookup("envDefault"); ok && defaults[field.Tag.Get("env")] != want {
			t.Errorf(".env.example gives %s=%s, the default is %s", field.Tag.Get("env"), defaults[field.Tag.Get("env")], want)
		}
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "all", want: knownRoles},
		{in: "ingest, api", want: []string{roleIngest, roleAPI}},
		{in: "project", want: []string{roleProject}},
		{in: "ingest,teleport", bad: true},
		{in: " , ", bad: true},
	} {
		got, err := (&config{Roles: c.in}).roles()
		if c.bad {
			if err == nil {
				t.Errorf("roles(%q) accepted", c.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("roles(%q): %v", c.in, err)
			continue
		}
		var names []string
		for r := range got {
			names = append(names, r)
		}
		slices.Sort(names)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("roles(%q) = %v, want %v", c.in, names, want)
		}
	}
}

func TestMQTTURLPrefersMQTTURLThenTheOriginalG7Settings(t *testing.T) {
	t.Parallel()
	if got := (&config{MQTTURL: "ssl://a:8883", G7Host: "b"}).mqttURL(); got != "ssl://a:8883" {
		t.Errorf("got %s", got)
	}
	if got := (&config{G7Host: "mqtt.g7.example", G7Port: 1883}).mqttURL(); got != "tcp://mqtt.g7.example:1883" {
		t.Errorf("got %s", got)
	}
	if got := (&config{G7Host: "mqtt.g7.example", G7Port: 8883}).mqttURL(); got != "ssl://mqtt.g7.example:8883" {
		t.Errorf("got %s", got)
	}
	if got := (&config{}).mqttURL(); got != "" {
		t.Errorf("nothing configured gave %s, want the embedded broker", got)
	}
}

func TestIngestLimitsRefuseZeroAndNegatives(t *testing.T) {
	t.Parallel()
	ok := config{MQTTMaxPacketBytes: 1 << 20, G7MaxItems: 10_000, G7MaxLetters: 100, G7EventMaxBytes: 4096, G7EventMaxDuration: time.Hour}
	if err := ok.ingestLimits(); err != nil {
		t.Fatal(err)
	}
	bad := config{MQTTMaxPacketBytes: 10, G7MaxItems: -1, G7MaxLetters: 0, G7EventMaxBytes: 0, G7EventMaxDuration: -time.Second,
		G7Topic: "g7/p", G7StopTopic: "g7/p"}
	err := bad.ingestLimits()
	for _, name := range []string{"TMS_MQTT_MAX_PACKET_BYTES", "TMS_G7_MAX_ITEMS", "TMS_G7_MAX_LETTERS", "TMS_G7_EVENT_MAX_BYTES",
		"TMS_G7_EVENT_MAX_DURATION", "G7_MQTT_STOP_TOPIC"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s not named in %v", name, err)
		}
	}
}

func TestJobCommandSettings(t *testing.T) {
	t.Parallel()
	ok := config{JobCommandTimeout: 20 * time.Second, JobsDecisionDelay: 8 * time.Second, JobCommandDecide: 5 * time.Second,
		JobCommandMaxWaiting: 64, HTTPPlaybackMaxFixes: 100_000, HTTPShutdownTimeout: 30 * time.Second}
	if cfg, err := ok.jobCommands(); err != nil || cfg.Timeout != 20*time.Second || cfg.MaxWaiting != 64 {
		t.Fatalf("%+v, %v", cfg, err)
	}
	bad := config{JobCommandTimeout: 8 * time.Second, JobsDecisionDelay: 8 * time.Second, JobCommandDecide: 0,
		JobCommandMaxWaiting: 0, HTTPPlaybackMaxFixes: -1, HTTPShutdownTimeout: 8 * time.Second}
	_, err := bad.jobCommands()
	for _, name := range []string{"TMS_JOB_COMMAND_TIMEOUT", "TMS_JOB_COMMAND_DECIDE_TIMEOUT", "TMS_JOB_COMMAND_MAX_WAITING",
		"TMS_HTTP_PLAYBACK_MAX_FIXES", "TMS_HTTP_SHUTDOWN_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s not named in %v", name, err)
		}
	}
}

func TestTripSettingsAreChecked(t *testing.T) {
	t.Parallel()
	var c config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.readModels(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	c.TripsMinDistanceM, c.TripsGap, c.TripsMoveFixes, c.TripsLateHorizon = 0, time.Minute, 0, 0
	_, err := c.readModels()
	for _, want := range []string{"TMS_TRIPS_", "radius", "gap", "move fixes", "late horizon"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want it to name %s", err, want)
		}
	}
}

// TestDashboardTileURLEmptyMeansNoTiles: env gives a variable set to ""
// its default, but an empty tile URL is a choice (no tiles) and is kept.
func TestDashboardTileURLEmptyMeansNoTiles(t *testing.T) {
	t.Setenv("TMS_DASHBOARD_TILE_URL", " ")
	c, err := loadConfig()
	if err != nil || c.DashboardTileURL != "" {
		t.Errorf("TMS_DASHBOARD_TILE_URL set empty: %q, %v; want no tiles", c.DashboardTileURL, err)
	}
	os.Unsetenv("TMS_DASHBOARD_TILE_URL") // t.Setenv restores it afterwards
	c, err = loadConfig()
	if want := "https://tile.openstreetmap.org/{z}/{x}/{y}.png"; err != nil || c.DashboardTileURL != want {
		t.Errorf("TMS_DASHBOARD_TILE_URL unset: %q, %v; want %s", c.DashboardTileURL, err, want)
	}
}

func TestPositionFilter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		group, topic, want string
		bad                bool
	}{
		{"", "g7/positions", "g7/positions", false},
		{"tms", "g7/positions", "$share/tms/g7/positions", false},
		{"a/b", "g7/positions", "", true},
		{"tms", "$share/x/g7/positions", "", true},
	} {
		cfg := config{MQTTShareGroup: c.group, G7Topic: c.topic}
		got, err := cfg.positionFilter()
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("group %q topic %q: %q, %v; want %q (error: %v)", c.group, c.topic, got, err, c.want, c.bad)
		}
	}
}

func TestEventFeeds(t *testing.T) {
	t.Parallel()
	cfg := config{G7Topic: "g7/positions", G7StopTopic: "g7/stop", G7EMSTopic: " g7/ems "}
	feeds, err := cfg.eventFeeds()
	if err != nil || len(feeds) != 2 || feeds[0].Filter != "g7/stop" || feeds[0].Kind != "stop" ||
		feeds[1].Filter != "g7/ems" || feeds[1].Kind != "ems" {
		t.Errorf("feeds %+v, %v", feeds, err)
	}
	cfg.MQTTShareGroup = "tms"
	if feeds, err = cfg.eventFeeds(); err != nil || feeds[0].Filter != "$share/tms/g7/stop" {
		t.Errorf("shared: %+v, %v", feeds, err)
	}
	for name, bad := range map[string]config{
		"the position topic": {G7Topic: "g7/x", G7IdleTopic: "g7/x"},
		"two feeds":          {G7Topic: "g7/p", G7IdleTopic: "g7/x", G7StopTopic: "g7/x"},
		"shared twice":       {G7Topic: "g7/p", G7IdleTopic: "$share/a/g7/x", MQTTShareGroup: "tms"},
	} {
		if _, err := bad.eventFeeds(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	none := config{G7Topic: "g7/p"}
	if feeds, err := none.eventFeeds(); err != nil || len(feeds) != 0 {
		t.Errorf("no feed set: %+v, %v", feeds, err)
	}
}

// The G7 API settings are read from the environment (nested in config),
// and the secret never shows in the config printed.
func TestG7APISettings(t *testing.T) {
	t.Setenv("G7_API_URL", "https://old.example")
	t.Setenv("G7_API_KEY", "k")
	t.Setenv("G7_API_SECRET", "very-secret-9")
	t.Setenv("G7_API_RETRIES", "0")
	t.Setenv("G7_API_THROTTLE_CODES", "429,isv.rate-limit")
	var c config
	if err := env.Parse(&c); err != nil {
		t.Fatal(err)
	}
	api, err := c.Backfill.g7API(nil)
	if err != nil {
		t.Fatal(err)
	}
	if api.BaseURL != "https://old.example" || api.Key != "k" || string(api.Secret) != "very-secret-9" || api.Retries != -1 ||
		api.Rate != 5 || api.Timeout != 30*time.Second || !slices.Equal(api.ThrottleCodes, []string{"429", "isv.rate-limit"}) {
		t.Errorf("settings %+v", api)
	}
	t.Setenv("G7_API_BASE_URL", "https://new.example")
	if err := env.Parse(&c); err != nil {
		t.Fatal(err)
	}
	if api, _ := c.Backfill.g7API(nil); api.BaseURL != "https://new.example" {
		t.Errorf("G7_API_BASE_URL does not win: %s", api.BaseURL)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, api); strings.Contains(s, "very-secret-9") {
		t.Error("the secret prints")
	}
	c.Backfill.G7APIRate, c.Backfill.G7APITimeout = 0, 0
	if _, err := c.Backfill.g7API(nil); err == nil || !strings.Contains(err.Error(), "G7_API_RATE") || !strings.Contains(err.Error(), "G7_API_TIMEOUT") {
		t.Errorf("zero rate and timeout: %v", err)
	}
}
