# tms: the two commands a newcomer needs are `make run` and `make test`.
GO ?= go
SERVICES := bash deploy/test/services.sh run --
PYTHON ?= python3
SCHEMATHESIS_VENV := .venv/schemathesis
SCHEMATHESIS := $(SCHEMATHESIS_VENV)/bin/schemathesis
BILLING_VENV := .venv/billing
BILLING := $(BILLING_VENV)/installed

.PHONY: run build test test-hostile test-short chaos bench fuzz vet fmt web no-web

# The dashboard (web/, docs/dashboard.md): Vite builds it into
# adapters/dashboard/static/app/, which the tms binary embeds. A binary
# built without it serves a page saying how to build it.
WEB_BUILD := adapters/dashboard/static/app/index.html
WEB_INSTALLED := web/node_modules/.package-lock.json
WEB_SOURCES := $(shell find web -path web/node_modules -prune -o -type f -print 2>/dev/null)
NODE := $(shell command -v node 2>/dev/null)
# run and build make the dashboard when Node is there, and say why not
# otherwise; test always does (CI has Node).
DASHBOARD := $(if $(NODE),web,no-web)

## run: the whole service on this machine, nothing to configure (embedded
## Kafka, MQTT broker and a local Postgres, state under ./data).
run: $(DASHBOARD)
	$(GO) run ./cmd/tms serve

## build: the tms binary, in ./bin.
build: $(DASHBOARD)
	$(GO) build -o bin/tms ./cmd/tms

## web: the dashboard, built again only when a file under web/ (but
## web/node_modules) is newer than the build; its packages installed
## again (npm ci) only when web/package-lock.json is newer than them.
ifneq ($(wildcard web/package.json),)
web: $(WEB_BUILD)
else
web:
	@echo "web: there is no web/package.json: no dashboard to build"
endif

$(WEB_INSTALLED): web/package-lock.json
	npm --prefix web ci
	@test ! -f $@ || touch $@

$(WEB_BUILD): $(WEB_INSTALLED) $(WEB_SOURCES)
	npm --prefix web run build
	@test ! -f $@ || touch $@

no-web:
	@echo "dashboard not built: node is not on the PATH (install Node.js 20 or newer, then make web); tms serves a page saying so"

## test: every test: the dashboard's unit tests (npm test in web/, after
## make web), then the Go tests against a real Postgres, Mosquitto and Apache Kafka
## that this target starts and stops (deploy/test/services.sh), Schemathesis
## included (it fuzzes the API from its OpenAPI document), and the Python
## billing consumer (examples/billing) on a simulated day of jobs; then the
## one test built without the race detector (simulator/reconnect_test.go:
## a data race inside the MQTT library).
test: vet web $(SCHEMATHESIS) $(BILLING)
	$(if $(wildcard web/package.json),npm --prefix web test)
	TMS_SCHEMATHESIS=$(abspath $(SCHEMATHESIS)) TMS_BILLING_PYTHON=$(abspath $(BILLING_VENV)/bin/python) \
		$(SERVICES) $(GO) test -count=1 -race -timeout 25m ./...
	$(GO) test -count=1 -run 'TestReconnectsAndResendsWhatWasInFlight' ./simulator/

## test-hostile: the hostile-input suite alone (docs/security.md): every
## TestHostile... test, on the same real services.
test-hostile: $(SCHEMATHESIS)
	TMS_SCHEMATHESIS=$(abspath $(SCHEMATHESIS)) $(SERVICES) $(GO) test -count=1 -race -timeout 25m -run Hostile ./...

## chaos: the fault tests (docs/reliability.md) on a three-node Kafka
## cluster (services.sh --cluster): every TestCluster... test, one at a time
## (they stop and start the cluster's nodes). They take about 4 minutes,
## too long for make test. CHAOS selects some: make chaos CHAOS=LeaderKilled.
CHAOS ?= Cluster
chaos:
	bash deploy/test/services.sh run --cluster -- $(GO) test -count=1 -p 1 -timeout 30m -v -run 'Test$(CHAOS)' ./e2e/

# Schemathesis comes from PyPI, at the versions the requirements file pins,
# into a virtual environment of its own; it is made again only when that
# file changes.
$(SCHEMATHESIS): deploy/test/requirements-schemathesis.txt
	rm -rf $(SCHEMATHESIS_VENV)
	$(PYTHON) -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

# The reference billing consumer's environment (confluent-kafka, whose
# wheel bundles librdkafka), from examples/billing/requirements.txt; made
# again only when that file changes.
$(BILLING): examples/billing/requirements.txt
	rm -rf $(BILLING_VENV)
	$(PYTHON) -m venv $(BILLING_VENV)
	$(BILLING_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

## test-short: the tests that need no services (in-process brokers stand in
## for Kafka and MQTT; tests needing Postgres skip).
test-short:
	$(GO) test -count=1 ./...

## bench: the performance figures of docs/performance.md: the pipeline on
## real services, the geofence's restore after a takeover and its decoding
## and encoding per fix, then its index (H3 beside a plain grid, one core)
## and its memory for 100,000 stations and vehicles. BENCH selects
## benchmarks of ./bench (make bench BENCH=History). BenchmarkHistory keeps
## its populated history (21.9 million positions, 4.3 GB) in a Postgres
## cluster of its own under BENCH_HISTORY_DIR, made on the first run and
## reused by the next (delete the directory to make it again).
## BenchmarkDashboard (the page in Chromium with 10,000 vehicles) measures
## for TMS_DASH_BENCH_DURATION (default 10m).
BENCH ?= .
BENCH_HISTORY_DIR ?= /var/tmp/tms-bench-history
bench: web
	TMS_BENCH_HISTORY_DIR=$(BENCH_HISTORY_DIR) $(SERVICES) $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 1x -timeout 90m ./bench/...
	$(SERVICES) $(GO) test -run '^$$' -bench 'Restore' -benchtime 1x -timeout 30m ./pipeline/geofence/
	$(GO) test -run '^$$' -bench 'Codec' -benchtime 1000000x -cpu 1 ./pipeline/geofence/
	$(GO) test -run '^$$' -bench 'Locate/(h3|grid)$$' -benchtime 1000000x -cpu 1 ./adapters/h3/
	$(GO) test -run '^$$' -bench 'Memory/country' -benchtime 1x ./adapters/h3/

## fuzz: run each fuzz target for FUZZTIME (default 60s); new interesting
## inputs stay in the Go cache, copy them to testdata to keep them.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./adapters/g7/
	$(GO) test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME) ./adapters/g7/
	$(GO) test -run '^$$' -fuzz FuzzRecords -fuzztime $(FUZZTIME) ./pipeline/ingest/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./domain/station/
	$(GO) test -run '^$$' -fuzz FuzzProtocol -fuzztime $(FUZZTIME) ./adapters/ws/
	$(GO) test -run '^$$' -fuzz FuzzFromEvent -fuzztime $(FUZZTIME) ./domain/station/
	$(GO) test -run '^$$' -fuzz FuzzValidatePolygon -fuzztime $(FUZZTIME) ./domain/geo/

vet:
	$(GO) vet ./...
	$(GO) mod tidy -diff
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
