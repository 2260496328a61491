package deploy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v4"
)

type compose struct {
	Services map[string]struct {
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Command     []string          `yaml:"command"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// required matches a compose interpolation that refuses to start without
// the variable: ${NAME:?message}.
func required(name string) *regexp.Regexp {
	return regexp.MustCompile(`\$\{` + name + `:\?[^}]*\}`)
}

// TestHostileComposeHasNoDefaultSecrets reads docker-compose.yml as a
// deployer would use it: every secret (API tokens, the database and MQTT
// passwords) must come from the deployer, compose refusing to start
// without it, and every published port must be bound to 127.0.0.1 unless
// TMS_PUBLISH_ADDRESS says otherwise. Before, the compose file fixed an
// operator token anyone could read here, published 8080 and 1883 on every
// interface, and its Mosquitto let anyone publish.
func TestHostileComposeHasNoDefaultSecrets(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	secrets := map[string]string{
		"TMS_API_TOKENS": "TMS_API_TOKENS", "POSTGRES_PASSWORD": "POSTGRES_PASSWORD",
		"G7_MQTT_POSITION_SECRET": "MQTT_PASSWORD", "MQTT_PASSWORD": "MQTT_PASSWORD",
	}
	found := map[string]bool{}
	for name, svc := range c.Services {
		for k, v := range svc.Environment {
			if from, ok := secrets[k]; ok {
				found[k] = true
				if !required(from).MatchString(v) {
					t.Errorf("%s: %s is %q, not a required ${%s:?...}", name, k, v, from)
				}
			}
			if k == "DATABASE_URL" && !required("POSTGRES_PASSWORD").MatchString(v) {
				t.Errorf("%s: DATABASE_URL %q does not take its password from a required POSTGRES_PASSWORD", name, v)
			}
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "${TMS_PUBLISH_ADDRESS:-127.0.0.1}:") && !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q on every interface", name, p)
			}
		}
	}
	for _, k := range []string{"TMS_API_TOKENS", "POSTGRES_PASSWORD", "G7_MQTT_POSITION_SECRET", "MQTT_PASSWORD"} {
		if !found[k] {
			t.Errorf("no service sets %s", k)
		}
	}
}

// TestHostileComposeMosquittoRequiresAPassword runs the real Mosquitto
// with deploy/mosquitto/mosquitto.conf and the password file made as the
// compose service makes it: an anonymous client and a wrong password are
// refused, the configured user is let in.
func TestHostileComposeMosquittoRequiresAPassword(t *testing.T) {
	t.Parallel()
	mosquitto, err := exec.LookPath("mosquitto")
	if err != nil {
		if mosquitto, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Fatal("mosquitto is not installed (apt-get install mosquitto; make test does it)")
		}
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		if passwd, err = exec.LookPath("/usr/bin/mosquitto_passwd"); err != nil {
			t.Fatal("mosquitto_passwd is not installed")
		}
	}
	dir := t.TempDir()
	// What the compose service runs first.
	c := readCompose(t)
	if cmd := strings.Join(c.Services["mosquitto"].Command, " "); !strings.Contains(cmd, "mosquitto_passwd -c -b /mosquitto/data/passwd") {
		t.Fatalf("the compose mosquitto no longer makes its password file as this test does: %s", cmd)
	}
	if out, err := exec.Command(passwd, "-c", "-b", filepath.Join(dir, "passwd"), "tms", "s3cret-for-test").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	raw, err := os.ReadFile("mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := strings.ReplaceAll(string(raw), "/mosquitto/data/", dir+"/")
	conf = strings.Replace(conf, "listener 1883", fmt.Sprintf("listener %d 127.0.0.1", port), 1)
	if os.Geteuid() == 0 {
		// Started as root, mosquitto would become the mosquitto user, who
		// cannot read the test's directory.
		conf += "user root\n"
	}
	if conf == string(raw) || !strings.Contains(conf, dir) {
		t.Fatal("mosquitto.conf no longer has the paths this test rewrites")
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broker := exec.CommandContext(ctx, mosquitto, "-c", confPath)
	var logs strings.Builder
	broker.Stdout, broker.Stderr = &logs, &logs
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = broker.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto:\n%s", logs.String())
		}
	})
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	connect := func(user, password string) error {
		opts := paho.NewClientOptions().AddBroker(url).SetClientID("deploy-test-" + user + password).
			SetUsername(user).SetPassword(password).SetConnectTimeout(5 * time.Second).SetConnectRetry(false)
		cl := paho.NewClient(opts)
		tok := cl.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("no answer")
		}
		if tok.Error() == nil {
			cl.Disconnect(0)
		}
		return tok.Error()
	}
	// The broker takes a moment to listen: the configured user shows when.
	deadline := time.Now().Add(20 * time.Second)
	for err := connect("tms", "s3cret-for-test"); err != nil; err = connect("tms", "s3cret-for-test") {
		select {
		case <-exited:
			t.Fatal("mosquitto exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the configured user cannot connect: %v", err)
		}
	}
	if err := connect("", ""); err == nil {
		t.Error("an anonymous client was let in")
	}
	if err := connect("tms", "wrong"); err == nil {
		t.Error("a wrong password was let in")
	}
}
