package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
	"github.com/spf13/pflag"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/adapters/httpapi"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/ingest"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/projections"
)

// config is every setting of tms, read from the environment (and a .env
// file when present); flags override it. .env.example lists each variable
// with its default.
type config struct {
	DatabaseURL      string   `env:"DATABASE_URL"`
	KafkaBrokers     []string `env:"KAFKA_BROKERS" envSeparator:","`
	KafkaNamespace   string   `env:"TMS_KAFKA_NAMESPACE"`
	KafkaPartitions  int32    `env:"TMS_KAFKA_PARTITIONS" envDefault:"12"`
	KafkaReplication int16    `env:"TMS_KAFKA_REPLICATION_FACTOR" envDefault:"-1"`
	KafkaMinInsync   int16    `env:"TMS_KAFKA_MIN_INSYNC_REPLICAS" envDefault:"0"`
	// How the roles wait out Kafka errors (docs/reliability.md).
	KafkaRetryBackoff    time.Duration `env:"TMS_KAFKA_RETRY_BACKOFF" envDefault:"250ms"`
	KafkaRetryBackoffMax time.Duration `env:"TMS_KAFKA_RETRY_BACKOFF_MAX" envDefault:"10s"`
	KafkaProduceStall    time.Duration `env:"TMS_KAFKA_PRODUCE_STALL" envDefault:"5s"`
	KafkaListen          string        `env:"TMS_KAFKA_LISTEN" envDefault:"127.0.0.1:9092"`
	// Encrypted and authenticated connections (docs/security.md,
	// "Connections"; checked by connections.go).
	KafkaTLS           bool   `env:"KAFKA_TLS"`
	KafkaTLSCAFile     string `env:"KAFKA_TLS_CA_FILE"`
	KafkaTLSCertFile   string `env:"KAFKA_TLS_CERT_FILE"`
	KafkaTLSKeyFile    string `env:"KAFKA_TLS_KEY_FILE"`
	KafkaTLSServerName string `env:"KAFKA_TLS_SERVER_NAME"`
	KafkaSASLMechanism string `env:"KAFKA_SASL_MECHANISM"`
	KafkaSASLUsername  string `env:"KAFKA_SASL_USERNAME"`
	KafkaSASLPassword  string `env:"KAFKA_SASL_PASSWORD"`
	MQTTTLSCAFile      string `env:"MQTT_TLS_CA_FILE"`
	MQTTTLSCertFile    string `env:"MQTT_TLS_CERT_FILE"`
	MQTTTLSKeyFile     string `env:"MQTT_TLS_KEY_FILE"`
	MQTTTLSServerName  string `env:"MQTT_TLS_SERVER_NAME"`
	InstanceID         string `env:"TMS_INSTANCE_ID"`
	DataDir            string `env:"TMS_DATA_DIR" envDefault:"./data"`
	MQTTURL            string `env:"MQTT_URL"`
	MQTTListen         string `env:"TMS_MQTT_LISTEN" envDefault:"127.0.0.1:1883"`
	HTTPAddr           string `env:"TMS_HTTP_ADDR" envDefault:":8080"`
	Roles              string `env:"TMS_ROLES" envDefault:"all"`
	APITokens          string `env:"TMS_API_TOKENS"`
	LocalPostgresPort  int    `env:"TMS_POSTGRES_PORT" envDefault:"5433"`
	LogLevel           string `env:"TMS_LOG_LEVEL" envDefault:"info"`
	ProjectorMembers   int    `env:"TMS_PROJECTOR_MEMBERS" envDefault:"3"`

	// The HTTP server's limits (httpapi.ServerConfig, httpapi.RateLimit)
	// and the database pools, one per purpose.
	HTTPReadHeaderTimeout time.Duration `env:"TMS_HTTP_READ_HEADER_TIMEOUT" envDefault:"5s"`
	HTTPReadTimeout       time.Duration `env:"TMS_HTTP_READ_TIMEOUT" envDefault:"30s"`
	HTTPWriteTimeout      time.Duration `env:"TMS_HTTP_WRITE_TIMEOUT" envDefault:"60s"`
	HTTPIdleTimeout       time.Duration `env:"TMS_HTTP_IDLE_TIMEOUT" envDefault:"90s"`
	HTTPMaxHeaderBytes    int           `env:"TMS_HTTP_MAX_HEADER_BYTES" envDefault:"262144"`
	HTTPMaxConnections    int           `env:"TMS_HTTP_MAX_CONNECTIONS" envDefault:"4096"`
	HTTPShutdownTimeout   time.Duration `env:"TMS_HTTP_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	HTTPTokenRate         float64       `env:"TMS_HTTP_TOKEN_RATE" envDefault:"100"`
	HTTPTokenBurst        int           `env:"TMS_HTTP_TOKEN_BURST" envDefault:"200"`
	HTTPAddressRate       float64       `env:"TMS_HTTP_ADDRESS_RATE" envDefault:"10"`
	HTTPAddressBurst      int           `env:"TMS_HTTP_ADDRESS_BURST" envDefault:"20"`
	HTTPMaxAddresses      int           `env:"TMS_HTTP_MAX_ADDRESSES" envDefault:"10000"`
	HTTPRefusalPause      time.Duration `env:"TMS_HTTP_RATE_LIMIT_PAUSE" envDefault:"500ms"`
	HTTPReadyzInterval    time.Duration `env:"TMS_HTTP_READYZ_INTERVAL" envDefault:"1s"`
	HTTPPlaybackMaxFixes  int           `env:"TMS_HTTP_PLAYBACK_MAX_FIXES" envDefault:"100000"`
	JobCommandTimeout     time.Duration `env:"TMS_JOB_COMMAND_TIMEOUT" envDefault:"20s"`
	JobCommandDecide      time.Duration `env:"TMS_JOB_COMMAND_DECIDE_TIMEOUT" envDefault:"5s"`
	JobCommandMaxWaiting  int           `env:"TMS_JOB_COMMAND_MAX_WAITING" envDefault:"64"`
	PostgresAPIConns      int32         `env:"TMS_POSTGRES_API_MAX_CONNS" envDefault:"16"`
	PostgresProjectConns  int32         `env:"TMS_POSTGRES_PROJECT_MAX_CONNS" envDefault:"10"`

	// The geofence's defaults; stations may override detection.
	ReorderWindow     time.Duration `env:"TMS_GEOFENCE_REORDER_WINDOW" envDefault:"3s"`
	SilenceGap        time.Duration `env:"TMS_GEOFENCE_SILENCE_GAP" envDefault:"10m"`
	EnterConfirmFixes int           `env:"TMS_GEOFENCE_ENTER_CONFIRM_FIXES" envDefault:"1"`
	EnterConfirm      time.Duration `env:"TMS_GEOFENCE_ENTER_CONFIRM" envDefault:"0s"`
	ExitMarginM       float64       `env:"TMS_GEOFENCE_EXIT_MARGIN_M" envDefault:"30"`
	ExitConfirmFixes  int           `env:"TMS_GEOFENCE_EXIT_CONFIRM_FIXES" envDefault:"1"`
	ExitConfirm       time.Duration `env:"TMS_GEOFENCE_EXIT_CONFIRM" envDefault:"0s"`
	MaxVehicles       int           `env:"TMS_GEOFENCE_MAX_VEHICLES" envDefault:"200000"`
	SnapshotFormat    string        `env:"TMS_GEOFENCE_SNAPSHOT_FORMAT" envDefault:"binary"`

	// The job processor (docs/jobs.md).
	JobsDecisionDelay time.Duration `env:"TMS_JOBS_DECISION_DELAY" envDefault:"8s"`
	JobsSettle        time.Duration `env:"TMS_JOBS_SETTLE" envDefault:"38s"`
	JobsAmendHorizon  time.Duration `env:"TMS_JOBS_AMEND_HORIZON" envDefault:"2h"`
	JobsMaxTrackFixes int           `env:"TMS_JOBS_MAX_TRACK_FIXES" envDefault:"100000"`
	JobsMaxVehicles   int           `env:"TMS_JOBS_MAX_VEHICLES" envDefault:"200000"`

	// Trips and stops (issue 9 part 1; docs/history.md, "Trips and stops").
	TripsMinDistanceM float64       `env:"TMS_TRIPS_MIN_DISTANCE_M" envDefault:"200"`
	TripsParking      time.Duration `env:"TMS_TRIPS_PARKING" envDefault:"180s"`
	TripsGap          time.Duration `env:"TMS_TRIPS_GAP" envDefault:"1h"`
	TripsMoveFixes    int           `env:"TMS_TRIPS_MOVE_FIXES" envDefault:"2"`
	TripsLateHorizon  time.Duration `env:"TMS_TRIPS_LATE_HORIZON" envDefault:"2h"`
	TripsMaxAhead     time.Duration `env:"TMS_TRIPS_MAX_AHEAD" envDefault:"5m"`
	LogFormat         string        `env:"TMS_LOG_FORMAT" envDefault:"text"`

	// The WebSocket hub's limits (docs/security.md, "WebSocket").
	WSAllowedOrigins         []string      `env:"TMS_WS_ALLOWED_ORIGINS" envSeparator:","`
	WSMaxConnections         int           `env:"TMS_WS_MAX_CONNECTIONS" envDefault:"256"`
	WSMaxConnectionsPerToken int           `env:"TMS_WS_MAX_CONNECTIONS_PER_TOKEN" envDefault:"32"`
	WSMaxMessageBytes        int64         `env:"TMS_WS_MAX_MESSAGE_BYTES" envDefault:"65536"`
	WSMaxFilterEntries       int           `env:"TMS_WS_MAX_FILTER_ENTRIES" envDefault:"1000"`
	WSMaxPendingBytes        int64         `env:"TMS_WS_MAX_PENDING_BYTES" envDefault:"4194304"`
	WSMaxPendingFrames       int           `env:"TMS_WS_MAX_PENDING_FRAMES" envDefault:"1024"`
	WSMaxSnapshotRows        int           `env:"TMS_WS_MAX_SNAPSHOT_ROWS" envDefault:"10000"`
	WSMaxConcurrentSnapshots int           `env:"TMS_WS_MAX_CONCURRENT_SNAPSHOTS" envDefault:"8"`
	WSMaxSnapshotsPerToken   int           `env:"TMS_WS_MAX_SNAPSHOTS_PER_TOKEN" envDefault:"2"`
	WSSnapshotTimeout        time.Duration `env:"TMS_WS_SNAPSHOT_TIMEOUT" envDefault:"10s"`
	WSWriteTimeout           time.Duration `env:"TMS_WS_WRITE_TIMEOUT" envDefault:"10s"`
	WSPongTimeout            time.Duration `env:"TMS_WS_PONG_TIMEOUT" envDefault:"60s"`
	// Replay over the WebSocket (issue 9, part 3; docs/history.md,
	// "Replay over the WebSocket").
	WSMaxReplays              int           `env:"TMS_WS_MAX_REPLAYS" envDefault:"64"`
	WSMaxReplaysPerToken      int           `env:"TMS_WS_MAX_REPLAYS_PER_TOKEN" envDefault:"8"`
	WSMaxReplaysPerConnection int           `env:"TMS_WS_MAX_REPLAYS_PER_CONNECTION" envDefault:"4"`
	WSReplayMaxSpeed          float64       `env:"TMS_WS_REPLAY_MAX_SPEED" envDefault:"1000"`
	WSReplayMaxRange          time.Duration `env:"TMS_WS_REPLAY_MAX_RANGE" envDefault:"8784h"`
	WSReplayPageRows          int           `env:"TMS_WS_REPLAY_PAGE_ROWS" envDefault:"500"`
	WSReplayQueryTimeout      time.Duration `env:"TMS_WS_REPLAY_QUERY_TIMEOUT" envDefault:"10s"`
	// Limits of the ingest role against hostile publishers
	// (docs/security.md, "Ingest (MQTT)").
	MQTTMaxPacketBytes int `env:"TMS_MQTT_MAX_PACKET_BYTES" envDefault:"1048576"`
	G7MaxItems         int `env:"TMS_G7_MAX_ITEMS" envDefault:"10000"`
	G7MaxLetters       int `env:"TMS_G7_MAX_LETTERS" envDefault:"100"`
	// G7's event feeds (docs/g7.md).
	G7EventMaxBytes    int           `env:"TMS_G7_EVENT_MAX_BYTES" envDefault:"4096"`
	G7EventMaxDuration time.Duration `env:"TMS_G7_EVENT_MAX_DURATION" envDefault:"2208h"`
	// What one station definition may cost (docs/security.md, Stations).
	// Every role reads them: the API refuses what the geofence could not
	// index, from the same settings the geofence's index is built with.
	StationMaxPoints     int `env:"TMS_STATION_MAX_POINTS" envDefault:"2000"`
	StationMaxCoverCells int `env:"TMS_STATION_MAX_COVER_CELLS" envDefault:"1048576"`

	// History (issue 9, part 2; docs/history.md): the positions history's
	// monthly partitions and retention (project role), simplified tracks
	// and exports (api role). Checked by history.go.
	PositionsRetention       time.Duration `env:"TMS_POSITIONS_RETENTION" envDefault:"0s"`
	PositionsPartitionsAhead int           `env:"TMS_POSITIONS_PARTITIONS_AHEAD" envDefault:"2"`
	PositionsMaintenance     time.Duration `env:"TMS_POSITIONS_MAINTENANCE_INTERVAL" envDefault:"1h"`
	TrackMaxPoints           int           `env:"TMS_TRACK_MAX_POINTS" envDefault:"10000"`
	TrackBuffer              int           `env:"TMS_TRACK_BUFFER" envDefault:"300000"`
	TrackStopRadiusM         float64       `env:"TMS_TRACK_STOP_RADIUS_M" envDefault:"50"`
	TrackStopMin             time.Duration `env:"TMS_TRACK_STOP_MIN" envDefault:"3m"`
	TrackTimeout             time.Duration `env:"TMS_TRACK_TIMEOUT" envDefault:"60s"`
	TrackMaxConcurrent       int           `env:"TMS_TRACK_MAX_CONCURRENT" envDefault:"4"`
	ExportMaxRange           time.Duration `env:"TMS_EXPORT_MAX_RANGE" envDefault:"8784h"`
	ExportMaxRows            int64         `env:"TMS_EXPORT_MAX_ROWS" envDefault:"10000000"`
	ExportTimeout            time.Duration `env:"TMS_EXPORT_TIMEOUT" envDefault:"30m"`
	ExportMaxConcurrent      int           `env:"TMS_EXPORT_MAX_CONCURRENT" envDefault:"2"`

	// Rebuilding read models without downtime (issue 9, part 4; `tms
	// rebuild`, docs/history.md "Rebuilding read models without
	// downtime").
	RebuildMembers           int           `env:"TMS_REBUILD_MEMBERS" envDefault:"3"`
	RebuildMaxBatch          int           `env:"TMS_REBUILD_MAX_BATCH" envDefault:"50000"`
	RebuildSwitchLockTimeout time.Duration `env:"TMS_REBUILD_SWITCH_LOCK_TIMEOUT" envDefault:"2s"`
	RebuildSwitchWait        time.Duration `env:"TMS_REBUILD_SWITCH_WAIT" envDefault:"10s"`
	RebuildProgressInterval  time.Duration `env:"TMS_REBUILD_PROGRESS_INTERVAL" envDefault:"1s"`
	RebuildLogInterval       time.Duration `env:"TMS_REBUILD_LOG_INTERVAL" envDefault:"10s"`

	// The web dashboard (docs/dashboard.md, "Serving and settings"). Set
	// to the empty string, TMS_DASHBOARD_TILE_URL means no tiles (see
	// loadConfig).
	DashboardTileURL         string        `env:"TMS_DASHBOARD_TILE_URL" envDefault:"https://tile.openstreetmap.org/{z}/{x}/{y}.png"`
	DashboardTileAttribution string        `env:"TMS_DASHBOARD_TILE_ATTRIBUTION" envDefault:"© OpenStreetMap contributors"`
	DashboardOfflineAfter    time.Duration `env:"TMS_DASHBOARD_OFFLINE_AFTER" envDefault:"10m"`

	// The original system's names for its G7 feed, accepted as they were.
	G7Host     string `env:"G7_MQTT_HOST"`
	G7Port     int    `env:"G7_MQTT_PORT" envDefault:"1883"`
	G7QoS      int    `env:"G7_MQTT_QOS" envDefault:"1"`
	G7Topic    string `env:"G7_MQTT_POSITION_TOPIC" envDefault:"g7/positions"`
	G7ClientID string `env:"G7_MQTT_POSITION_CLIENT_ID" envDefault:"tms-ingest"`
	G7AccessID string `env:"G7_MQTT_POSITION_ACCESS_ID"`
	G7Secret   string `env:"G7_MQTT_POSITION_SECRET"`
	// G7's event feeds, each optional (empty: not subscribed), subscribed
	// in the position feed's session (docs/g7.md).
	G7StopTopic string `env:"G7_MQTT_STOP_TOPIC"`
	G7IdleTopic string `env:"G7_MQTT_IDLE_TOPIC"`
	G7EMSTopic  string `env:"G7_MQTT_EMS_TOPIC"`
	// MQTTShareGroup, when set, makes the position subscription a shared
	// one ($share/<group>/<topic>): the ingest instances with the same
	// group split the feed, each message going to one of them
	// (docs/reliability.md, "Several instances").
	MQTTShareGroup string `env:"TMS_MQTT_SHARE_GROUP"`
	// How long a role waits between attempts to reach Postgres at start
	// (migrations, the pools' first connection): doubling from the first
	// to the second (docs/reliability.md, "Postgres and MQTT outages").
	PostgresRetryBackoff    time.Duration `env:"TMS_POSTGRES_RETRY_BACKOFF" envDefault:"250ms"`
	PostgresRetryBackoffMax time.Duration `env:"TMS_POSTGRES_RETRY_BACKOFF_MAX" envDefault:"10s"`
	// Backfill is G7's HTTP API, for `tms backfill g7` (backfill.go).
	Backfill g7APISettings
}

// loadConfig reads .env (without overriding the real environment) and the
// environment.
func loadConfig() (config, error) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return config{}, fmt.Errorf(".env: %w", err)
	}
	var c config
	if err := env.Parse(&c); err != nil {
		return config{}, fmt.Errorf("environment: %w", err)
	}
	// env gives a variable set to "" its default; an empty tile URL is a
	// choice (no tiles: an installation without internet, or that must
	// not send its users' map views to a third party), so it is kept.
	if v, ok := os.LookupEnv("TMS_DASHBOARD_TILE_URL"); ok && strings.TrimSpace(v) == "" {
		c.DashboardTileURL = ""
	}
	return c, nil
}

// bindConnectionFlags registers the flags shared by the commands that talk
// to Kafka, Postgres and MQTT, with the environment's values as defaults.
func (c *config) bindConnectionFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "Postgres connection string (DATABASE_URL; empty: a local cluster under the data dir)")
	fs.StringSliceVar(&c.KafkaBrokers, "kafka-brokers", c.KafkaBrokers, "Kafka seed brokers (KAFKA_BROKERS; empty: the embedded broker)")
	fs.StringVar(&c.InstanceID, "instance-id", c.InstanceID, "stable identity of this process for static consumer-group membership (TMS_INSTANCE_ID)")
	fs.StringVar(&c.KafkaNamespace, "kafka-namespace", c.KafkaNamespace, "prefix of topic and group names (TMS_KAFKA_NAMESPACE)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "where embedded state lives (TMS_DATA_DIR)")
	fs.StringVar(&c.KafkaListen, "kafka-listen", c.KafkaListen, "where the embedded Kafka broker listens (TMS_KAFKA_LISTEN)")
	fs.IntVar(&c.LocalPostgresPort, "postgres-port", c.LocalPostgresPort, "port of the local Postgres cluster (TMS_POSTGRES_PORT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (TMS_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json (TMS_LOG_FORMAT)")
}

// bindMQTTFlags registers the MQTT flags.
func (c *config) bindMQTTFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.MQTTURL, "mqtt-url", c.MQTTURL, "MQTT broker, tcp://host:1883 or ssl://host:8883 (MQTT_URL; empty: G7_MQTT_HOST, else the embedded broker)")
	fs.StringVar(&c.G7Topic, "mqtt-topic", c.G7Topic, "topic of the G7 position feed (G7_MQTT_POSITION_TOPIC)")
	fs.StringVar(&c.MQTTListen, "mqtt-listen", c.MQTTListen, "where the embedded MQTT broker listens (TMS_MQTT_LISTEN)")
}

// mqttURL is the broker to use: MQTT_URL, else the original system's
// G7_MQTT_HOST and G7_MQTT_PORT, else "" for the embedded broker.
func (c *config) mqttURL() string {
	switch {
	case c.MQTTURL != "":
		return c.MQTTURL
	case c.G7Host != "":
		scheme := "tcp"
		if c.G7Port == 8883 {
			scheme = "ssl"
		}
		return fmt.Sprintf("%s://%s:%d", scheme, c.G7Host, c.G7Port)
	}
	return ""
}

// positionFilter is the ingest subscription's topic filter:
// G7_MQTT_POSITION_TOPIC, shared in TMS_MQTT_SHARE_GROUP when that is set.
func (c *config) positionFilter() (string, error) {
	return c.shared("G7_MQTT_POSITION_TOPIC", c.G7Topic)
}

// shared is the filter of the topic of variable name, shared in
// TMS_MQTT_SHARE_GROUP when that is set.
func (c *config) shared(name, topic string) (string, error) {
	g := c.MQTTShareGroup
	if g == "" {
		return topic, nil
	}
	if strings.ContainsAny(g, "/+#") {
		return "", fmt.Errorf("TMS_MQTT_SHARE_GROUP: %q: a share name has no '/', '+' or '#'", g)
	}
	if strings.HasPrefix(topic, "$share/") {
		return "", fmt.Errorf("TMS_MQTT_SHARE_GROUP: %s is a shared filter already; set one or the other", name)
	}
	return "$share/" + g + "/" + topic, nil
}

// eventFeeds are G7's event feeds that are set (G7_MQTT_STOP_TOPIC,
// G7_MQTT_IDLE_TOPIC, G7_MQTT_EMS_TOPIC), their filters shared as the
// position filter is. A feed may not share the position feed's topic or
// another feed's: its messages could not be told apart.
func (c *config) eventFeeds() ([]ingest.EventFeed, error) {
	var out []ingest.EventFeed
	var errs []error
	seen := map[string]string{c.G7Topic: "G7_MQTT_POSITION_TOPIC"}
	for _, f := range []struct {
		name, topic string
		kind        g7event.Kind
	}{
		{"G7_MQTT_STOP_TOPIC", c.G7StopTopic, g7event.KindStop},
		{"G7_MQTT_IDLE_TOPIC", c.G7IdleTopic, g7event.KindIdle},
		{"G7_MQTT_EMS_TOPIC", c.G7EMSTopic, g7event.KindEMS},
	} {
		topic := strings.TrimSpace(f.topic)
		if topic == "" {
			continue
		}
		if other, ok := seen[topic]; ok {
			errs = append(errs, fmt.Errorf("%s: %q is %s's topic too; each feed needs its own", f.name, topic, other))
			continue
		}
		seen[topic] = f.name
		filter, err := c.shared(f.name, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ingest.EventFeed{Filter: filter, Kind: f.kind})
	}
	return out, errors.Join(errs...)
}

// Role names, as TMS_ROLES lists them.
const (
	roleIngest   = "ingest"
	roleGeofence = "geofence"
	roleJobs     = "jobs"
	roleProject  = "project"
	roleAPI      = "api"
)

// knownRoles are the roles this build can run, in start order.
var knownRoles = []string{roleIngest, roleGeofence, roleJobs, roleProject, roleAPI}

// roles parses TMS_ROLES.
func (c *config) roles() (map[string]bool, error) {
	out := map[string]bool{}
	for _, r := range strings.Split(c.Roles, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "all":
			for _, k := range knownRoles {
				out[k] = true
			}
		case slices.Contains(knownRoles, r):
			out[r] = true
		case r == "":
		default:
			return nil, fmt.Errorf("TMS_ROLES: unknown role %q (known: all, %s)", r, strings.Join(knownRoles, ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("TMS_ROLES: no role to run")
	}
	return out, nil
}

// logger builds the process logger.
func (c *config) logger() (*slog.Logger, error) { return c.loggerTo(os.Stderr) }

// loggerTo builds a logger writing to w.
func (c *config) loggerTo(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("TMS_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("TMS_LOG_FORMAT: %q is neither text nor json", c.LogFormat)
}

// httpServer returns the HTTP server's limits.
func (c *config) httpServer(log *slog.Logger) httpapi.ServerConfig {
	return httpapi.ServerConfig{
		ReadHeaderTimeout: c.HTTPReadHeaderTimeout, ReadTimeout: c.HTTPReadTimeout, WriteTimeout: c.HTTPWriteTimeout,
		IdleTimeout: c.HTTPIdleTimeout, MaxHeaderBytes: c.HTTPMaxHeaderBytes, MaxConnections: c.HTTPMaxConnections,
		ShutdownTimeout: c.HTTPShutdownTimeout, Logger: log,
	}
}

// session returns what GET /api/v1/session tells dashboards.
func (c *config) session() httpapi.SessionSettings {
	return httpapi.SessionSettings{
		TileURL: c.DashboardTileURL, TileAttribution: c.DashboardTileAttribution, OfflineAfter: c.DashboardOfflineAfter,
	}
}

// rateLimit returns the API's request budgets.
func (c *config) rateLimit() httpapi.RateLimit {
	return httpapi.RateLimit{
		TokenRate: c.HTTPTokenRate, TokenBurst: c.HTTPTokenBurst,
		AddressRate: c.HTTPAddressRate, AddressBurst: c.HTTPAddressBurst, MaxAddresses: c.HTTPMaxAddresses,
		RefusalPause: c.HTTPRefusalPause,
	}
}

// geofence returns the geofence's configuration.
func (c *config) geofence() geofence.Config {
	return geofence.Config{
		ReorderWindow: c.ReorderWindow,
		SilenceGap:    c.SilenceGap,
		Detection: geofence.Detection{
			EnterConfirmFixes: c.EnterConfirmFixes, EnterConfirm: c.EnterConfirm, ExitMarginM: c.ExitMarginM,
			ExitConfirmFixes: c.ExitConfirmFixes, ExitConfirm: c.ExitConfirm,
		},
	}
}

// websocket returns the WebSocket hub's limits; the caller adds what it
// wires (the snapshot source, the caller identity, metrics, logger).
func (c *config) websocket() ws.Config {
	return ws.Config{
		AllowedOrigins: c.WSAllowedOrigins,
		MaxConnections: c.WSMaxConnections, MaxConnectionsPerCaller: c.WSMaxConnectionsPerToken,
		MaxMessageBytes: c.WSMaxMessageBytes, MaxFilterEntries: c.WSMaxFilterEntries,
		MaxPendingBytes: c.WSMaxPendingBytes, MaxPending: c.WSMaxPendingFrames,
		MaxSnapshotRows: c.WSMaxSnapshotRows, MaxConcurrentSnapshots: c.WSMaxConcurrentSnapshots,
		MaxSnapshotsPerCaller: c.WSMaxSnapshotsPerToken, SnapshotTimeout: c.WSSnapshotTimeout,
		WriteTimeout: c.WSWriteTimeout, PongTimeout: c.WSPongTimeout,
		MaxReplays: c.WSMaxReplays, MaxReplaysPerCaller: c.WSMaxReplaysPerToken,
		MaxReplaysPerConnection: c.WSMaxReplaysPerConnection, MaxReplaySpeed: c.WSReplayMaxSpeed,
		MaxReplayRange: c.WSReplayMaxRange, ReplayPageRows: c.WSReplayPageRows, ReplayQueryTimeout: c.WSReplayQueryTimeout,
	}
}

// stationRules are the limits of a station definition's size.
func (c *config) stationRules() station.Rules {
	return station.Rules{MaxPoints: c.StationMaxPoints}
}

// h3 is the configuration of the geofence's station index: the only one,
// so that the station commands (which ask it whether a shape can be
// indexed) and the geofence (which indexes it) cannot disagree.
func (c *config) h3() (h3.Config, error) {
	hc := h3.Config{MaxCoverCells: c.StationMaxCoverCells}
	if err := hc.Validate(); err != nil {
		return h3.Config{}, fmt.Errorf("TMS_STATION_MAX_COVER_CELLS: %w", err)
	}
	return hc, nil
}

// jobRules are the job processor's rules. The decision delay must cover
// the geofence's reorder window: the geofence decides a fix only once it
// has passed, and a job must not be decided before its visits are in.
func (c *config) jobRules() (job.Rules, error) {
	r := job.DefaultRules
	r.DecisionDelay, r.Settle, r.AmendHorizon, r.MaxTrackFixes = c.JobsDecisionDelay, c.JobsSettle, c.JobsAmendHorizon, c.JobsMaxTrackFixes
	if r.DecisionDelay < c.ReorderWindow {
		return r, fmt.Errorf("TMS_JOBS_DECISION_DELAY (%s) must be at least TMS_GEOFENCE_REORDER_WINDOW (%s)", r.DecisionDelay, c.ReorderWindow)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("TMS_JOBS_*: %w", err)
	}
	return r, nil
}

// jobCommands are the job commands' settings; the caller adds what it
// wires. The command timeout must exceed the job processor's decision
// delay: the processor applies a command only after it, so a shorter
// wait could never show the job, and every create would be answered 202.
func (c *config) jobCommands() (jobcmd.Config, error) {
	cfg := jobcmd.Config{Timeout: c.JobCommandTimeout, DecideTimeout: c.JobCommandDecide, MaxWaiting: c.JobCommandMaxWaiting}
	var errs []error
	if c.JobCommandTimeout <= c.JobsDecisionDelay {
		errs = append(errs, fmt.Errorf("TMS_JOB_COMMAND_TIMEOUT (%s) must be longer than TMS_JOBS_DECISION_DELAY (%s)",
			c.JobCommandTimeout, c.JobsDecisionDelay))
	}
	if c.HTTPShutdownTimeout <= c.JobCommandTimeout {
		// A create waits up to the command timeout for its job; a
		// shutdown that cut it short would exit with the request unanswered.
		errs = append(errs, fmt.Errorf("TMS_HTTP_SHUTDOWN_TIMEOUT (%s) must be longer than TMS_JOB_COMMAND_TIMEOUT (%s)",
			c.HTTPShutdownTimeout, c.JobCommandTimeout))
	}
	if c.JobCommandDecide <= 0 {
		errs = append(errs, fmt.Errorf("TMS_JOB_COMMAND_DECIDE_TIMEOUT (%s) must be positive", c.JobCommandDecide))
	}
	if c.JobCommandMaxWaiting < 1 {
		errs = append(errs, fmt.Errorf("TMS_JOB_COMMAND_MAX_WAITING (%d) must be at least 1", c.JobCommandMaxWaiting))
	}
	if c.HTTPPlaybackMaxFixes < 1 {
		errs = append(errs, fmt.Errorf("TMS_HTTP_PLAYBACK_MAX_FIXES (%d) must be at least 1", c.HTTPPlaybackMaxFixes))
	}
	return cfg, errors.Join(errs...)
}

// qos checks G7_MQTT_QOS: QoS 0 would let the broker drop positions.
func (c *config) qos() (byte, error) {
	if c.G7QoS < 1 || c.G7QoS > 2 {
		return 0, errors.New("G7_MQTT_QOS: must be 1 or 2 (" + strconv.Itoa(c.G7QoS) + " would let the broker drop positions)")
	}
	return byte(c.G7QoS), nil
}

// ingestLimits checks the ingest role's limits. Zero is refused rather
// than taken for "the default": a limit set to 0 by mistake must not
// silently become a large one.
func (c *config) ingestLimits() error {
	var errs []error
	if n := c.MQTTMaxPacketBytes; n < mqtt.MinMaxPacketBytes || n > mqtt.MaxMQTTPacketBytes {
		errs = append(errs, fmt.Errorf("TMS_MQTT_MAX_PACKET_BYTES: %d: must be in [%d, %d]", n, mqtt.MinMaxPacketBytes, mqtt.MaxMQTTPacketBytes))
	}
	for _, l := range []struct {
		name string
		v    int
	}{{"TMS_G7_MAX_ITEMS", c.G7MaxItems}, {"TMS_G7_MAX_LETTERS", c.G7MaxLetters}, {"TMS_G7_EVENT_MAX_BYTES", c.G7EventMaxBytes}} {
		if l.v < 1 {
			errs = append(errs, fmt.Errorf("%s: %d: must be at least 1", l.name, l.v))
		}
	}
	if c.G7EventMaxDuration < time.Second {
		errs = append(errs, fmt.Errorf("TMS_G7_EVENT_MAX_DURATION: %s: must be at least 1s", c.G7EventMaxDuration))
	}
	if _, err := c.eventFeeds(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readModels are the settings of the read models whose rows depend on
// more than their topics (the trips' rules), every bad one named.
func (c *config) readModels() (projections.Settings, error) {
	s := projections.DefaultSettings()
	t := &s.Trips
	t.Rules.RadiusM, t.Rules.Parking, t.Rules.Gap, t.Rules.MoveFixes = c.TripsMinDistanceM, c.TripsParking, c.TripsGap, c.TripsMoveFixes
	t.LateHorizon, t.MaxAhead = c.TripsLateHorizon, c.TripsMaxAhead
	if err := t.Validate(); err != nil {
		return s, fmt.Errorf("TMS_TRIPS_* (the radius is TMS_TRIPS_MIN_DISTANCE_M): %w", err)
	}
	return s, nil
}

// rebuildLimits checks the settings of `tms rebuild`, all at once.
func (c *config) rebuildLimits() error {
	var errs []error
	for _, l := range []struct {
		name string
		v    int
	}{{"TMS_REBUILD_MEMBERS", c.RebuildMembers}, {"TMS_REBUILD_MAX_BATCH", c.RebuildMaxBatch}} {
		if l.v < 1 {
			errs = append(errs, fmt.Errorf("%s: %d: must be at least 1", l.name, l.v))
		}
	}
	for _, l := range []struct {
		name string
		v    time.Duration
	}{
		{"TMS_REBUILD_SWITCH_LOCK_TIMEOUT", c.RebuildSwitchLockTimeout}, {"TMS_REBUILD_SWITCH_WAIT", c.RebuildSwitchWait},
		{"TMS_REBUILD_PROGRESS_INTERVAL", c.RebuildProgressInterval}, {"TMS_REBUILD_LOG_INTERVAL", c.RebuildLogInterval},
	} {
		if l.v < time.Millisecond {
			errs = append(errs, fmt.Errorf("%s: %s: must be at least 1ms", l.name, l.v))
		}
	}
	return errors.Join(errs...)
}
