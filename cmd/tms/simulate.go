package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tmsfleet/tms/adapters/httpapi"
	"github.com/tmsfleet/tms/simulator"
)

func simulateCommand(cfg *config) *cobra.Command {
	sc := simulator.Config{}
	var clientID, areaName, apiURL, token string
	var stationRadius float64
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Drive a demo fleet: G7-shaped position batches over MQTT, stations and jobs through the API",
		Long: `Publishes G7-shaped batches ({"data":[{plateNum, lng, lat, speed, course,
gps_time}...]}) at QoS 1 to the feed topic: vehicles with Chinese plates
driving between loading, unloading and oil sites around Shanghai, dwelling at
them, some parked. The fleet is deterministic for a seed.

Before it publishes, it defines each site as a station through the API (a
circle, named and typed as the site; id sim.<area>.<site>), creating what is
missing and leaving what is already defined so. With --jobs N it also creates
N jobs through the API (a loading stop, sometimes a quality check there, one
or two unloading stops; external_ref sim:<area>:<seed>:<n>, so that a second
run repeats them instead of adding more) and drives their vehicles through
their stops; the other vehicles keep their work cycle.

With 'make run' up, 'tms simulate' needs no flags: it publishes to the same
broker and topic tms subscribes to (MQTT_URL, else G7_MQTT_HOST, else the
embedded broker of the tms serve running on the same TMS_DATA_DIR, else
TMS_MQTT_LISTEN), finds the API at TMS_HTTP_ADDR, and takes the first
operator token of TMS_API_TOKENS, else the one 'make run' keeps in
$TMS_DATA_DIR/api-tokens/operator. Without --jobs, a missing API or token is
logged and only positions are published.`,
		Example: `  tms simulate --vehicles 200 --interval 1s
  tms simulate --vehicles 50 --jobs 10                # jobs through the API, driven stop by stop
  tms simulate --area yard --vehicles 5 --jobs 3 --dwell 20s   # a small yard: jobs done in minutes
  tms simulate --vehicles 5000 --rate 5000            # steady load, positions/s
  tms simulate --vehicles 50 --fault-rate 0.05        # some bad items, for the dead-letter topic`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cfg.logger()
			if err != nil {
				return err
			}
			sc.BrokerURL = cfg.mqttURL()
			if r, ok := findRunning(cfg.DataDir); sc.BrokerURL == "" && ok && r.MQTTURL != "" {
				sc.BrokerURL = r.MQTTURL
			}
			if sc.BrokerURL == "" {
				sc.BrokerURL = "tcp://" + cfg.MQTTListen
			}
			if sc.TLS, err = cfg.mqttTLS(cfg.mqttURL()); err != nil {
				return err
			}
			sc.Topic, sc.ClientID, sc.Logger = cfg.G7Topic, clientID, log
			sc.Username, sc.Password = cfg.G7AccessID, cfg.G7Secret
			area, ok := simulator.Areas()[areaName]
			if !ok {
				return fmt.Errorf("--area %q: one of %s", areaName, strings.Join(areaNames(), ", "))
			}
			sc.Area = area()
			if stationRadius != 0 {
				sc.Area.StationRadiusM = stationRadius
			}
			sc.APIURL = apiURL
			if sc.APIURL != "" {
				var from string
				sc.APIToken, from, err = apiToken(token, cfg.APITokens, cfg.DataDir)
				if err != nil {
					return err
				}
				if from != "" {
					log.Info("API operator token found", "from", from) // where from, never the token
				}
			}
			switch {
			case sc.Jobs > 0 && sc.APIURL == "":
				return errors.New("--jobs needs the tms API: give its URL with --api")
			case sc.Jobs > 0 && sc.APIToken == "":
				return errors.New("--jobs needs an operator token of the API: --token, an entry <token>:operator in TMS_API_TOKENS, " +
					"or $TMS_DATA_DIR/api-tokens/operator, which 'tms serve' writes when TMS_API_TOKENS is unset")
			}
			sim, err := simulator.New(sc)
			if err != nil {
				return err
			}
			return sim.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	cfg.bindMQTTFlags(f)
	f.StringVar(&clientID, "client-id", simulator.DefaultClientID, "MQTT client id of the simulator")
	f.IntVar(&sc.Vehicles, "vehicles", simulator.DefaultVehicles, "fleet size")
	f.DurationVar(&sc.Interval, "interval", simulator.DefaultInterval, "time between two fixes of one vehicle")
	f.Float64Var(&sc.RatePerSecond, "rate", 0, "total positions per second, spread evenly (overrides --interval)")
	f.IntVar(&sc.BatchSize, "batch", simulator.DefaultBatchSize, "items per MQTT message")
	f.Uint64Var(&sc.Seed, "seed", 1, "seed of the fleet (same seed, same fleet)")
	f.Int64Var(&sc.MaxPositions, "max-positions", 0, "stop after this many positions (0: run until interrupted)")
	f.DurationVar(&sc.Duration, "duration", 0, "stop after this long (0: run until interrupted)")
	f.Float64Var(&sc.FaultRate, "fault-rate", 0, "share of deliberately invalid items, 0..1")
	f.StringVar(&cfg.G7AccessID, "username", cfg.G7AccessID, "MQTT user name (G7_MQTT_POSITION_ACCESS_ID)")
	f.StringVar(&areaName, "area", "shanghai", "where the fleet drives: "+strings.Join(areaNames(), " or ")+" (a small yard, for quick demos)")
	f.Float64Var(&stationRadius, "station-radius", 0, "radius in metres of the stations defined around the sites (0: the area's, 200 in shanghai)")
	f.DurationVar(&sc.Dwell, "dwell", 0, "typical stay at a site, each lasting 0.5 to 1.5 times it (0: 3 to 40 minutes by the site's kind)")
	f.IntVar(&sc.Jobs, "jobs", 0, "jobs to create through the API and drive (needs the API and an operator token)")
	f.StringVar(&apiURL, "api", apiBase(cfg.HTTPAddr), "base URL of the tms API, for stations and jobs, taken from TMS_HTTP_ADDR (\"\": none)")
	f.StringVar(&token, "token", "", "operator token of the API (default: the first operator token of TMS_API_TOKENS, else $TMS_DATA_DIR/api-tokens/operator)")
	return cmd
}

func areaNames() []string {
	var names []string
	for name := range simulator.Areas() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// apiBase is the URL of the API that listens on TMS_HTTP_ADDR, as seen
// from this machine: ":8080" and "0.0.0.0:8080" are http://127.0.0.1:8080.
func apiBase(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// apiToken finds the operator token the simulator writes with: the flag,
// else the first operator token of TMS_API_TOKENS, else the file `tms
// serve` keeps under the data dir when TMS_API_TOKENS is unset. from says
// where it came from (never the token); both are empty when there is none.
func apiToken(flag, tokens, dataDir string) (token, from string, err error) {
	if flag != "" {
		return flag, "--token", nil
	}
	if tokens != "" {
		if _, err := httpapi.ParseTokens(tokens); err != nil {
			return "", "", err
		}
		for _, entry := range strings.Split(tokens, ",") {
			entry = strings.TrimSpace(entry)
			colon := strings.LastIndexByte(entry, ':')
			if colon > 0 && strings.TrimSpace(entry[colon+1:]) == string(httpapi.RoleOperator) {
				return strings.TrimSpace(entry[:colon]), "TMS_API_TOKENS", nil
			}
		}
		return "", "", nil // only viewers: nothing to write with
	}
	path := filepath.Join(dataDir, "api-tokens", string(httpapi.RoleOperator))
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", "", nil
	case err != nil:
		return "", "", fmt.Errorf("API token: %w", err)
	}
	return strings.TrimSpace(string(raw)), path, nil
}
