package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestDialTLSVerifiesTheBroker: an mqtts:// broker is dialled with TLS,
// its certificate checked against the configured roots for the URL's
// host, and refused when it does not verify.
func TestDialTLSVerifiesTheBroker(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	broker := &url.URL{Scheme: "mqtts", Host: srv.Listener.Addr().String()}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	o := paho.NewClientOptions()
	o.SetTLSConfig(&tls.Config{RootCAs: roots})
	c, err := dial(broker, *o)
	if err != nil {
		t.Fatalf("dial %s with the server's root: %v", broker, err)
	}
	c.Close()

	o.SetTLSConfig(&tls.Config{RootCAs: x509.NewCertPool()})
	if c, err := dial(broker, *o); err == nil {
		c.Close()
		t.Fatal("a broker whose certificate does not verify was accepted")
	} else if !errors.As(err, new(*x509.UnknownAuthorityError)) && !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("want an unknown authority, got %v", err)
	}
}
