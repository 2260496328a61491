package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// The TestSecure... tests run tms against services that require
// encryption and authentication (services.sh --secure, part of make
// test): a Kafka broker whose only listener is SASL_SSL with SCRAM-SHA-512,
// Mosquitto's TLS listener, and Postgres over TLS with its certificate
// verified (docs/security.md, "Connections").

// TestSecurePipelineOverTLSAndSASL publishes positions over MQTT/TLS with
// mosquitto_pub (a client tms did not write), and follows them through tms
// (every Kafka client of every role on SASL_SSL) into Postgres over TLS and
// out of the API and the WebSocket; a station created through the API
// (a command through Kafka, answered from the read model) is entered and
// left, so the geofence's transactions ran on the secure broker too.
// Every connection tms holds to the database is encrypted, and nothing
// tms printed holds a password.
func TestSecurePipelineOverTLSAndSASL(t *testing.T) {
	t.Parallel()
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal("mosquitto_pub is not installed (apt-get install mosquitto-clients; make test does it)")
	}
	svc := testenv.FromEnv(os.LookupEnv).Secured(t)
	d := tmsproc.New(t, svc, binary, "TMS_LOG_LEVEL=debug")
	d.Start()

	code, _, _ := post(t, d, "/api/v1/stations", `{"id":"SEC1","name":"secure yard","type":"loading",
		"geometry":{"type":"Point","coordinates":[121.4737,31.2304]},"radius_m":300}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /stations = %d, want 201 (the command went through Kafka and the read model)", code)
	}
	ws := subscribe(d, t, `{"subscribe":{"vehicles":["沪A54321"]}}`)

	// The fixes come after the station's creation: a fix is judged
	// against the stations as they stood when it was taken.
	fix := time.Now().Add(time.Second).Truncate(time.Second)
	var items []string
	// Inside the station for 4 s, then 5 km away for 8 s (past the 3 s
	// reorder window): one visit, closed.
	for i := range 7 {
		lat, lng := 31.2304, 121.4737
		if i >= 3 {
			lat, lng = 31.2754, 121.4737
		}
		items = append(items, fmt.Sprintf(`{"plateNum":"沪A54321","lng":%v,"lat":%v,"speed":30,"gps_time":%d}`,
			lng, lat, fix.Add(time.Duration(i)*2*time.Second).UnixMilli()))
	}
	items = append(items, `{"plateNum":"沪A54321","lng":121.4,"lat":95,"speed":3,"gps_time":1}`) // a dead letter
	host, port := mqttHostPort(t, d.MQTTURL)
	if out, err := exec.Command(pub, "-h", host, "-p", port, "--cafile", svc.MQTTCAFile, "-q", "1", "-t", d.Topic,
		"-m", `{"data":[`+strings.Join(items, ",")+`]}`).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub over TLS: %v: %s", err, out)
	}

	var v apiVehicle
	tmsproc.Eventually(t, 60*time.Second, "沪A54321 in the API with its seven fixes", func() bool {
		return d.Get("/api/v1/vehicles/"+url.PathEscape("沪A54321"), &v) == 200 && v.PositionsCount == 7
	})
	if got := ws.positions(t, 7); len(got) != 7 {
		t.Errorf("WebSocket pushed %v, want 7 positions", got)
	}
	var visits struct {
		Visits []struct {
			StationID string  `json:"station_id"`
			DwellS    float64 `json:"dwell_s"`
			Open      bool    `json:"open"`
		} `json:"visits"`
	}
	q := url.Values{"station": {"SEC1"}, "from": {fix.Add(-time.Hour).Format(time.RFC3339)}, "to": {fix.Add(time.Hour).Format(time.RFC3339)}}
	tmsproc.Eventually(t, 60*time.Second, "the visit of SEC1, closed", func() bool {
		return d.Get("/api/v1/visits?"+q.Encode(), &visits) == 200 && len(visits.Visits) == 1 && !visits.Visits[0].Open
	})
	if letters := deadLetters(d, t, 1); letters[0].Reason != "latitude_out_of_range" {
		t.Errorf("dead letter = %+v", letters[0])
	}

	var total, encrypted int64
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE s.ssl)
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
		WHERE a.datname = current_database() AND a.application_name LIKE 'tms-%'`).Scan(&total, &encrypted); err != nil {
		t.Fatal(err)
	}
	if total == 0 || encrypted != total {
		t.Errorf("tms holds %d connections to its database, %d of them encrypted; want all, and some", total, encrypted)
	}
	d.Stop()
	for _, secret := range []string{svc.KafkaSASL.Password} {
		if strings.Contains(d.Output(), secret) {
			t.Errorf("tms printed the Kafka password (at debug level):\n%s", d.Output())
		}
	}
}

// TestSecureKafkaWrongPasswordIsNamedAndWaitedOut starts tms with a
// password the broker does not hold for its user (a rotation done in tms's
// settings before the brokers'): it must not exit (a process restarted
// into the same refusal is a crash loop), /readyz must answer 503 naming
// kafka, the log must say once that the brokers refused the user, and the
// password must be printed nowhere. Once the broker takes the new password
// (the rotation completed), tms becomes ready without a restart.
func TestSecureKafkaWrongPasswordIsNamedAndWaitedOut(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv).Secured(t)
	kc := svc.Kafka(t) // the test's own user, allowed to manage users
	user, old, rotated := testenv.Name("rotating"), "0ld-Sekr3t", "N3w-Sekr3t"
	setPassword := func(password string) {
		t.Helper()
		adm, err := kc.NewAdmin("e2e-scram")
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		res, err := adm.AlterUserSCRAMs(t.Context(), nil, []kadm.UpsertSCRAM{
			{User: user, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: password}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("set the SCRAM password of %s: %v", user, err)
		}
	}
	setPassword(old)
	d := tmsproc.New(t, svc, binary, "KAFKA_SASL_USERNAME="+user, "KAFKA_SASL_PASSWORD="+rotated, "TMS_LOG_LEVEL=debug",
		"TMS_KAFKA_RETRY_BACKOFF=100ms", "TMS_KAFKA_RETRY_BACKOFF_MAX=500ms")
	d.Launch()
	var body struct {
		Detail string `json:"detail"`
		Checks map[string]struct {
			Status string `json:"status"`
		} `json:"checks"`
	}
	tmsproc.Eventually(t, 60*time.Second, "/readyz 503 naming kafka", func() bool {
		resp, err := http.Get("http://" + d.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && json.Unmarshal(raw, &body) == nil &&
			body.Checks["kafka"].Status == "failed"
	})
	if !strings.Contains(body.Detail, "kafka") {
		t.Errorf("/readyz detail %q does not name kafka", body.Detail)
	}
	const refusal = `refused SASL SCRAM-SHA-512 authentication as user`
	tmsproc.Eventually(t, 30*time.Second, "the refusal in the log", func() bool { return strings.Contains(d.Output(), refusal) })
	if d.Exited() {
		t.Fatalf("tms exited on a wrong Kafka password:\n%s", d.Output())
	}

	setPassword(rotated)
	tmsproc.Eventually(t, 90*time.Second, "/readyz 200 once the broker takes the password", func() bool {
		resp, err := http.Get("http://" + d.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	out := d.Output()
	if n := strings.Count(out, "Kafka is unreachable or refusing"); n != 1 {
		t.Errorf("the outage was announced %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "SASL_AUTHENTICATION_FAILED"); n > 3 {
		t.Errorf("the refusal was logged %d times, want once (and once by /readyz):\n%s", n, out)
	}
	if !strings.Contains(out, "Kafka answers again") {
		t.Errorf("the end of the outage is not logged:\n%s", out)
	}
	for _, secret := range []string{old, rotated, svc.KafkaSASL.Password} {
		if strings.Contains(out, secret) {
			t.Errorf("tms printed a password:\n%s", out)
		}
	}
	d.Stop()
}

// TestSecurePostgresWithAnotherCAIsRefused runs `tms migrate` with a
// DATABASE_URL that verifies the server's certificate against a CA that
// did not sign it: tms must refuse the connection and say why.
func TestSecurePostgresWithAnotherCAIsRefused(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv).Secured(t)
	u, err := url.Parse(svc.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sslrootcert", otherCA(t))
	u.User = url.UserPassword("postgres", "Sekr3t-db")
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+u.String(), "TMS_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("tms migrate trusted a server certificate its CA did not sign:\n%s", out)
	}
	for _, want := range []string{"postgres", "certificate signed by unknown authority"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "Sekr3t") {
		t.Errorf("tms printed the password:\n%s", out)
	}
}

// otherCA writes a CA certificate that signed nothing the services use.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
