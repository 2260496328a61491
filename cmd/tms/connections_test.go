package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/kafka"
)

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestKafkaSecuritySettings(t *testing.T) {
	t.Parallel()
	cert, key := writeCert(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     config
		tls     bool
		sasl    string // the mechanism, "" for none
		wantErr []string
	}{
		{name: "nothing: plaintext", cfg: config{}},
		{name: "KAFKA_TLS alone: system roots", cfg: config{KafkaTLS: true}, tls: true},
		{name: "a CA file implies TLS", cfg: config{KafkaTLSCAFile: cert}, tls: true},
		{name: "client certificate", cfg: config{KafkaTLSCertFile: cert, KafkaTLSKeyFile: key}, tls: true},
		{name: "SCRAM, lower case", cfg: config{KafkaSASLMechanism: "scram-sha-512", KafkaSASLUsername: "tms", KafkaSASLPassword: "pw"},
			sasl: kafka.SCRAMSHA512},
		{name: "unreadable CA", cfg: config{KafkaTLSCAFile: "/nonexistent/ca.pem"}, wantErr: []string{"KAFKA_TLS_CA_FILE", "no such file"}},
		{name: "CA without a certificate", cfg: config{KafkaTLSCAFile: notPEM}, wantErr: []string{"KAFKA_TLS_CA_FILE", "no PEM certificate"}},
		{name: "certificate without key", cfg: config{KafkaTLSCertFile: cert}, wantErr: []string{"KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE"}},
		{name: "key that is no key", cfg: config{KafkaTLSCertFile: cert, KafkaTLSKeyFile: cert}, wantErr: []string{"KAFKA_TLS_KEY_FILE"}},
		{name: "mechanism without credentials", cfg: config{KafkaSASLMechanism: "SCRAM-SHA-256"},
			wantErr: []string{"KAFKA_SASL_USERNAME: required", "KAFKA_SASL_PASSWORD: required"}},
		{name: "unknown mechanism", cfg: config{KafkaSASLMechanism: "GSSAPI", KafkaSASLUsername: "u", KafkaSASLPassword: "p"},
			wantErr: []string{"KAFKA_SASL_MECHANISM", "GSSAPI"}},
		{name: "credentials without mechanism", cfg: config{KafkaSASLUsername: "u", KafkaSASLPassword: "Sekr3t"},
			wantErr: []string{"KAFKA_SASL_MECHANISM is not"}},
		{name: "every problem at once", cfg: config{KafkaTLSCAFile: "/nonexistent", KafkaSASLMechanism: "X"},
			wantErr: []string{"KAFKA_TLS_CA_FILE", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tlsc, sasl, err := tc.cfg.kafkaSecurity()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "Sekr3t") {
					t.Errorf("error %q holds the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tlsc != nil) != tc.tls {
				t.Errorf("TLS = %v, want %v", tlsc != nil, tc.tls)
			}
			switch {
			case tc.sasl == "" && sasl != nil:
				t.Errorf("SASL = %v, want none", sasl)
			case tc.sasl != "" && (sasl == nil || sasl.Mechanism != tc.sasl):
				t.Errorf("SASL = %v, want %s", sasl, tc.sasl)
			}
		})
	}
}

// TestKafkaSASLNeverPrintsThePassword: however a SASL setting or a Kafka
// config holding one is printed, the password is not in it.
func TestKafkaSASLNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	s := &kafka.SASL{Mechanism: kafka.SCRAMSHA512, Username: "tms", Password: "Sekr3t-pw"}
	kc := kafka.Config{Brokers: []string{"b:9093"}, SASL: s}
	var buf strings.Builder
	log, err := (&config{LogLevel: "debug", LogFormat: "json"}).loggerTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "sasl", s, "value", *s, "config", kc)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%+v %#v %s %v", *s, *s, s, kc), fmt.Sprintf("%+v", kc), buf.String(),
	} {
		if strings.Contains(out, "Sekr3t") {
			t.Errorf("the password is printed: %s", out)
		}
		if !strings.Contains(out, "tms") {
			t.Errorf("the user is not printed: %s", out)
		}
	}
}

func TestKafkaConnectionLogsWithoutSASL(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	log, err := (&config{LogLevel: "debug", LogFormat: "text"}).loggerTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("kafka connection", "sasl", saslAttr(nil))
	log.Info("kafka connection", "sasl", saslAttr(&kafka.SASL{Mechanism: kafka.SCRAMSHA512, Username: "tms", Password: "pw"}))
	out := buf.String()
	if strings.Contains(out, "panic") || !strings.Contains(out, "sasl=none") || !strings.Contains(out, "tms") {
		t.Errorf("the kafka connection lines: %s", out)
	}
}

func TestMQTTTLSSettings(t *testing.T) {
	t.Parallel()
	cert, _ := writeCert(t)
	for _, tc := range []struct {
		name, url string
		cfg       config
		tls       bool
		wantErr   string
	}{
		{name: "none", url: "ssl://g7:8883"},
		{name: "CA for ssl://", url: "ssl://g7:8883", cfg: config{MQTTTLSCAFile: cert}, tls: true},
		{name: "CA for wss://", url: "wss://g7/mqtt", cfg: config{MQTTTLSCAFile: cert}, tls: true},
		{name: "CA for tcp://", url: "tcp://g7:1883", cfg: config{MQTTTLSCAFile: cert}, wantErr: "without TLS"},
		{name: "CA for the embedded broker", cfg: config{MQTTTLSCAFile: cert}, wantErr: "embedded broker"},
		{name: "unreadable CA", url: "ssl://g7:8883", cfg: config{MQTTTLSCAFile: "/nonexistent"}, wantErr: "MQTT_TLS_CA_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.cfg.mqttTLS(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tc.tls {
				t.Errorf("TLS = %v, want %v", got != nil, tc.tls)
			}
		})
	}
}
