package main

import (
	"github.com/spf13/cobra"

	"github.com/tmsfleet/tms/simulator"
)

func simulateCommand(cfg *config) *cobra.Command {
	sc := simulator.Config{}
	var clientID string
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Drive a demo fleet: G7-shaped position batches over MQTT",
		Long: `Publishes G7-shaped batches ({"data":[{plateNum, lng, lat, speed, course,
gps_time}...]}) at QoS 1 to the feed topic: vehicles with Chinese plates
driving between loading, unloading and oil sites around Shanghai, dwelling at
them, some parked. The fleet is deterministic for a seed.

With 'make run' up, 'tms simulate' needs no flags: it publishes to the same
broker and topic tms subscribes to (MQTT_URL, else G7_MQTT_HOST, else the
embedded broker of the tms serve running on the same TMS_DATA_DIR, else
TMS_MQTT_LISTEN).`,
		Example: `  tms simulate --vehicles 200 --interval 1s
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
			sc.Topic, sc.ClientID, sc.Logger = cfg.G7Topic, clientID, log
			sc.Username, sc.Password = cfg.G7AccessID, cfg.G7Secret
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
	return cmd
}
