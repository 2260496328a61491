package simulator

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestNewFillsInDefaults(t *testing.T) {
	t.Parallel()
	s, err := New(Config{BrokerURL: "tcp://localhost:1883"})
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Topic != DefaultTopic || c.ClientID != DefaultClientID || c.QoS != 1 || c.Vehicles != DefaultVehicles ||
		c.Interval != time.Second || c.BatchSize != 50 || c.StringShare != 0.2 || c.FaultRate != 0 ||
		c.MaxInFlight != 64 || c.PublishTimeout != 10*time.Second || c.LogEvery != 10*time.Second ||
		c.Area.Name != "Shanghai" || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
	if len(s.Plates()) != DefaultVehicles {
		t.Errorf("%d plates", len(s.Plates()))
	}
	s, err = New(Config{BrokerURL: "tcp://localhost:1883", StringShare: -1})
	if err != nil || s.cfg.StringShare != 0 {
		t.Errorf("a negative string share means none: %v, %v", s.cfg.StringShare, err)
	}
}

func TestValidateRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	ok := func(c *Config) { c.BrokerURL = "tcp://localhost:1883" }
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no broker":           {func(c *Config) { c.BrokerURL = "" }, "broker URL is required"},
		"broker without host": {func(c *Config) { c.BrokerURL = "localhost" }, "scheme://host:port"},
		"wildcard topic":      {func(c *Config) { c.Topic = "g7/#" }, "without wildcards"},
		"QoS 3":               {func(c *Config) { c.QoS = 3 }, "QoS 3"},
		"too many vehicles":   {func(c *Config) { c.Vehicles = MaxVehicles + 1 }, "vehicles"},
		"sub-ms interval":     {func(c *Config) { c.Interval = time.Microsecond }, "at least 1ms"},
		"negative rate":       {func(c *Config) { c.RatePerSecond = -1 }, "rate"},
		"NaN rate":            {func(c *Config) { c.RatePerSecond = math.NaN() }, "rate"},
		"rate above 1/ms":     {func(c *Config) { c.Vehicles = 2; c.RatePerSecond = 2001 }, "more than once per millisecond"},
		"huge batch":          {func(c *Config) { c.BatchSize = MaxBatchSize + 1 }, "batch size"},
		"start in real time":  {func(c *Config) { c.Start = t0 }, "needs Accelerated"},
		"fault rate 2":        {func(c *Config) { c.FaultRate = 2 }, "fault rate"},
		"string share 2":      {func(c *Config) { c.StringShare = 2 }, "string share"},
		"negative limit":      {func(c *Config) { c.MaxPositions = -1 }, "negative"},
		"bad area":            {func(c *Config) { c.Area = Area{Name: "x", RadiusKm: 1} }, "two sites"},
		"jobs without API":    {func(c *Config) { c.Jobs = 3; c.APIToken = "t" }, "need the API"},
		"jobs without token":  {func(c *Config) { c.Jobs = 3; c.APIURL = "http://localhost:8080" }, "need the API"},
		"too many jobs":       {func(c *Config) { c.Jobs = MaxJobs + 1 }, "jobs"},
		"API not HTTP":        {func(c *Config) { c.APIURL = "tcp://localhost:8080" }, "API URL"},
		"token with a space":  {func(c *Config) { c.APIToken = "a b" }, "API token"},
		"negative dwell":      {func(c *Config) { c.Dwell = -time.Second }, "dwell"},
		"tiny stations":       {func(c *Config) { c.Area = Yard(); c.Area.StationRadiusM = 5 }, "station radius"},
	} {
		c := Config{}
		ok(&c)
		tc.edit(&c)
		c.setDefaults()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	c := Config{Vehicles: 2, RatePerSecond: 1e6, Accelerated: true}
	ok(&c)
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("an accelerated clock spaces fixes by Interval whatever the rate: %v", err)
	}
}

func TestPasswordsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	c := Config{BrokerURL: "tcp://user:s3cret@"}
	c.setDefaults()
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("%v", err)
	}
}
