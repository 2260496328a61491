package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/tmsfleet/tms/adapters/kafka"
)

// kafkaSecurity returns the TLS and SASL settings of every Kafka client
// (nil, nil: plaintext without authentication), every bad setting named.
// TLS is on with KAFKA_TLS, or when any KAFKA_TLS_* file or server name is
// set: a CA file given for a connection left in the clear would be a
// mistake nobody notices.
func (c *config) kafkaSecurity() (*tls.Config, *kafka.SASL, error) {
	var errs []error
	var tc *tls.Config
	if c.KafkaTLS || c.KafkaTLSCAFile != "" || c.KafkaTLSCertFile != "" || c.KafkaTLSKeyFile != "" || c.KafkaTLSServerName != "" {
		var err error
		tc, err = tlsFiles("KAFKA_TLS", c.KafkaTLSCAFile, c.KafkaTLSCertFile, c.KafkaTLSKeyFile, c.KafkaTLSServerName)
		errs = append(errs, err)
	}
	var sasl *kafka.SASL
	switch mech := strings.ToUpper(strings.TrimSpace(c.KafkaSASLMechanism)); {
	case mech != "":
		sasl = &kafka.SASL{Mechanism: mech, Username: c.KafkaSASLUsername, Password: c.KafkaSASLPassword}
		switch mech {
		case kafka.SCRAMSHA256, kafka.SCRAMSHA512, kafka.Plain:
		default:
			errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM: %q: must be %s, %s or %s", c.KafkaSASLMechanism,
				kafka.SCRAMSHA256, kafka.SCRAMSHA512, kafka.Plain))
		}
		if c.KafkaSASLUsername == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM %s", mech))
		}
		if c.KafkaSASLPassword == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM %s", mech))
		}
	case c.KafkaSASLUsername != "" || c.KafkaSASLPassword != "":
		errs = append(errs, errors.New("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is not "+
			"(SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN): the credentials would not be used"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return tc, sasl, nil
}

// kafkaSecured reports whether any Kafka TLS or SASL setting is set: the
// embedded broker speaks neither, so they need KAFKA_BROKERS.
func (c *config) kafkaSecured() bool {
	return c.KafkaTLS || c.KafkaTLSCAFile != "" || c.KafkaTLSCertFile != "" || c.KafkaTLSKeyFile != "" ||
		c.KafkaTLSServerName != "" || c.KafkaSASLMechanism != "" || c.KafkaSASLUsername != "" || c.KafkaSASLPassword != ""
}

// mqttTLS returns the TLS settings of the MQTT client for the broker at
// brokerURL: nil (the system's roots) unless a MQTT_TLS_* setting is set,
// which a broker URL without TLS (tcp://, ws://) refuses: the settings
// would be silently ignored and the feed's credentials sent in the clear.
func (c *config) mqttTLS(brokerURL string) (*tls.Config, error) {
	if c.MQTTTLSCAFile == "" && c.MQTTTLSCertFile == "" && c.MQTTTLSKeyFile == "" && c.MQTTTLSServerName == "" {
		return nil, nil
	}
	if brokerURL == "" {
		return nil, errors.New("MQTT_TLS_*: set, but no MQTT broker is configured (MQTT_URL, G7_MQTT_HOST): the embedded broker speaks no TLS")
	}
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, fmt.Errorf("MQTT_URL: %w", err)
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps", "wss":
	default:
		return nil, fmt.Errorf("MQTT_TLS_*: set, but the broker's URL has scheme %q, without TLS (use ssl:// or wss://; G7's TLS port is 8883)", u.Scheme)
	}
	return tlsFiles("MQTT_TLS", c.MQTTTLSCAFile, c.MQTTTLSCertFile, c.MQTTTLSKeyFile, c.MQTTTLSServerName)
}

// tlsFiles builds a client TLS config from the PEM files of the settings
// prefix_CA_FILE (the roots that sign the server's certificate; empty:
// the system's), prefix_CERT_FILE and prefix_KEY_FILE (a client
// certificate, both or neither) and prefix_SERVER_NAME (the name the
// server's certificate must hold; empty: the host dialled). TLS 1.2 at
// least.
func tlsFiles(prefix, caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	var errs []error
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_CA_FILE: %w", prefix, err))
		} else {
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("%s_CA_FILE: %s holds no PEM certificate", prefix, caFile))
			}
		}
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_CERT_FILE, %s_KEY_FILE: %w", prefix, prefix, err))
		} else {
			tc.Certificates = []tls.Certificate{cert}
		}
	case certFile != "" || keyFile != "":
		errs = append(errs, fmt.Errorf("%s_CERT_FILE and %s_KEY_FILE: a client certificate needs both", prefix, prefix))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tc, nil
}
