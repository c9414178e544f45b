# sluice: `make` (or `make help`) lists the targets.
#
# Images are tagged sluice/<part>:$(TAG); TAG is exported as SLUICE_TAG so that Compose,
# Terraform and the e2e suite use exactly the images `make images` built.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Evaluated once per make run (`:=`): other commits landing mid-build must not change it.
ifeq ($(origin TAG),undefined)
TAG := $(shell git describe --always --dirty 2>/dev/null || echo dev)
endif
export SLUICE_TAG := $(TAG)
# Classic builder on purpose: Docker 20.10 hosts without BuildKit must build the same way.
export DOCKER_BUILDKIT := 0
# Quiet build: only the errors (and not the legacy builder's deprecation notice) are shown.
DOCKER_BUILD := build() { out=$$(docker build -q "$$@" 2>&1) || { echo "$$out" >&2; return 1; }; }; build
BIN := bin/docker
# -version and sluice_build_info name TAG and the commit even where the go command stamps no
# VCS data (GOFLAGS=-buildvcs=false).
REVISION := $(shell git rev-parse HEAD 2>/dev/null)
BUILDINFO := github.com/sluice-ingest/sluice/internal/buildinfo
GOBUILD := CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath \
	-ldflags "-s -w -X $(BUILDINFO).version=$(TAG) -X $(BUILDINFO).revision=$(REVISION)"

# Compose v2 plugin if present, else docker-compose 1.29 (both run compose/compose.yaml).
COMPOSE_BIN ?= $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)
PROJECT ?= sluice
# Extra files (local overrides) can be appended: COMPOSE_FILES="compose/compose.yaml my.yaml".
COMPOSE_FILES ?= compose/compose.yaml
COMPOSE = $(COMPOSE_BIN) -p $(PROJECT) $(addprefix -f ,$(COMPOSE_FILES))
SLUICE_BIND ?= 127.0.0.1
SLUICE_PORT ?= 9501
SLUICE_HTTP_PORT ?= 9502
SLUICE_NOACK_PORT ?= 9503
SLUICE_STATS_PORT ?= 8404
export SLUICE_BIND SLUICE_PORT SLUICE_HTTP_PORT SLUICE_NOACK_PORT SLUICE_STATS_PORT

# TLS=1: HAProxy terminates TLS on the data ports with the certificates in CERTS (make certs
# makes development ones); MTLS=1 also requires client certificates signed by CERTS/ca.pem.
CERTS ?= certs
ifeq ($(TLS),1)
COMPOSE_FILES += compose/tls.yaml
export SLUICE_TLS_DIR := $(abspath $(CERTS))
ifeq ($(MTLS),1)
export HAPROXY_TLS_CLIENT_CA := /etc/sluice/tls/ca.pem
endif
endif

# MONITORING=1: Prometheus (alert rules, every part scraped) and redis_exporter, from
# compose/monitoring.yaml; Prometheus is published on SLUICE_BIND:SLUICE_PROMETHEUS_PORT.
SLUICE_PROMETHEUS_PORT ?= 9090
export SLUICE_PROMETHEUS_PORT
ifeq ($(MONITORING),1)
COMPOSE_FILES += compose/monitoring.yaml
endif

# Dev-only passwords so that `make up` works out of the box. compose.yaml itself has no
# default and refuses to start without them; set your own for anything but a laptop.
DEV_REDIS_PASSWORD := sluice-dev-only-redis
# One per ACL user of redis/redis.conf, and the Sentinels' own.
DEV_REDIS_USERS := REPLICATION SENTINEL INGEST BACKUP STATUS CONSUMER MONITORING
DEV_STATS_PASSWORD := sluice-dev-only-stats
COMPOSE_TARGETS := up down down-volumes ps logs send scale wait-healthy status consume
$(COMPOSE_TARGETS): export REDIS_PASSWORD ?= $(DEV_REDIS_PASSWORD)
$(foreach u,$(DEV_REDIS_USERS),$(eval $$(COMPOSE_TARGETS) $$(BACKUP_TARGETS): export REDIS_$(u)_PASSWORD ?= sluice-dev-only-$(shell echo $(u) | tr A-Z a-z)))
$(COMPOSE_TARGETS): export SENTINEL_PASSWORD ?= sluice-dev-only-sentinels
$(COMPOSE_TARGETS): export HAPROXY_STATS_PASSWORD ?= $(DEV_STATS_PASSWORD)
HAPROXY_STATS_USER ?= admin
export HAPROXY_STATS_USER

E2E_TIMEOUT ?= 40m

.PHONY: help
help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-20s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "  (TAG=$(TAG), compose: $(or $(COMPOSE_BIN),not found))"

## ---- prerequisites -----------------------------------------------------------------

# As root it installs what is missing (no packaged service is started); otherwise it prints
# the apt-get command to run. Quiet when everything is present.
.PHONY: deps deps-up
# BASE_FROM=registry builds the base image FROM debian:bookworm-slim (DEBIAN_IMAGE) on hosts
# that reach a container registry: no root, no debootstrap. The default is the offline path.
BASE_FROM ?= debootstrap
export BASE_FROM
DEPS_UP := $(if $(filter registry,$(BASE_FROM)),,up)

deps: ## install the Debian packages `make up` and `make test` need (tools/deps.sh)
	@tools/deps.sh $(DEPS_UP) test

deps-up: ## install only what `make up` needs (debootstrap for the base image; nothing with BASE_FROM=registry)
	@$(if $(DEPS_UP),tools/deps.sh up,echo ">> BASE_FROM=registry: the base image needs no Debian package on this host")

## ---- images ------------------------------------------------------------------------

.PHONY: images images-base images-infra images-ingest images-backup images-monitoring images-status
images: images-infra images-ingest images-backup images-monitoring images-status ## build every image (base image is cached by its inputs)
	@echo ">> images tagged $(TAG)"

images-base: ## debootstrap base image sluice/base:<hash of inputs> (skipped when it exists)
	@images/build-base.sh >/dev/null

images-infra: ## sluice/redis and sluice/haproxy on the base image
	@base=$$(images/build-base.sh); \
	echo ">> sluice/redis:$(TAG) (from $$base)"; \
	$(DOCKER_BUILD) --build-arg BASE=$$base -t sluice/redis:$(TAG) -f images/redis/Dockerfile redis ; \
	echo ">> sluice/haproxy:$(TAG)"; \
	$(DOCKER_BUILD) --build-arg BASE=$$base -t sluice/haproxy:$(TAG) -f images/haproxy/Dockerfile haproxy

images-monitoring: ## sluice/monitoring (Prometheus + redis_exporter from Debian) on the base image
	@base=$$(images/build-base.sh); \
	echo ">> sluice/monitoring:$(TAG)"; \
	$(DOCKER_BUILD) --build-arg BASE=$$base -t sluice/monitoring:$(TAG) -f images/monitoring/Dockerfile monitoring

images-ingest: ## static ingest binary + sluice/ingest (FROM scratch)
	@echo ">> go build ./services/ingest"
	@mkdir -p $(BIN)
	@$(GOBUILD) -o $(BIN)/ingest ./services/ingest
	@echo ">> sluice/ingest:$(TAG)"
	@$(DOCKER_BUILD) -t sluice/ingest:$(TAG) -f services/ingest/Dockerfile $(BIN)

images-backup: ## static backup binary + sluice/backup (FROM scratch)
	@echo ">> go build ./services/backup"
	@mkdir -p $(BIN)
	@$(GOBUILD) -o $(BIN)/backup ./services/backup
	@echo ">> sluice/backup:$(TAG)"
	@$(DOCKER_BUILD) -t sluice/backup:$(TAG) -f services/backup/Dockerfile $(BIN)

images-status: ## static status binary + sluice/status (FROM scratch; `make status` runs it)
	@echo ">> go build ./tools/status"
	@mkdir -p $(BIN)
	@$(GOBUILD) -o $(BIN)/status ./tools/status
	@echo ">> sluice/status:$(TAG)"
	@$(DOCKER_BUILD) -t sluice/status:$(TAG) -f tools/status/Dockerfile $(BIN)

## ---- local stack (compose/compose.yaml) ----------------------------------------------

.PHONY: up down down-volumes ps logs send wait-healthy
up: deps-up images $(if $(filter 1,$(TLS)),$(CERTS)/server.pem) ## build images, start the stack (TLS=1 [MTLS=1] for TLS, MONITORING=1 for Prometheus), wait until healthy, print endpoints
	@test -n "$(COMPOSE_BIN)" || { echo "neither 'docker compose' nor docker-compose found" >&2; exit 1; }
	@echo ">> $(COMPOSE_BIN) up -d (project $(PROJECT), tag $(TAG))"
	@$(COMPOSE) up -d --remove-orphans
	@$(MAKE) --no-print-directory wait-healthy
	@echo ">> sluice is up"
	@echo "   TCP with acks (newline-delimited):   $(if $(filter 1,$(TLS)),tls://)$(SLUICE_BIND):$(SLUICE_PORT)"
	@echo "   HTTP (POST /v1/messages):            $(if $(filter 1,$(TLS)),https,http)://$(SLUICE_BIND):$(SLUICE_HTTP_PORT)/v1/messages"
	@echo "   TCP without acks (syslog, nc):       $(if $(filter 1,$(TLS)),tls://)$(SLUICE_BIND):$(SLUICE_NOACK_PORT)"
	@echo "   HAProxy stats:    http://$(SLUICE_BIND):$(SLUICE_STATS_PORT)/stats    (user $(HAPROXY_STATS_USER))"
	@echo "   HAProxy metrics:  http://$(SLUICE_BIND):$(SLUICE_STATS_PORT)/metrics  (same basic auth)"
	@if [ "$$HAPROXY_STATS_PASSWORD" = "$(DEV_STATS_PASSWORD)" ]; then echo "   dev password:     $(DEV_STATS_PASSWORD)"; fi
	@$(if $(filter compose/monitoring.yaml,$(COMPOSE_FILES)),echo "   Prometheus:       http://$(SLUICE_BIND):$(SLUICE_PROMETHEUS_PORT)/  (API: /api/v1/alerts, /api/v1/targets; Grafana: import monitoring/dashboard.json)",true)
	@echo "   try: make send; make ps; make logs; make down"

.PHONY: certs
certs: ## development CA, server and client certificates in CERTS (default certs/; HOSTS=a,b adds names)
	@echo ">> devcerts -dir $(CERTS)"
	@$(GO) run ./tools/devcerts -dir $(CERTS) $(if $(HOSTS),-hosts $(HOSTS))

$(CERTS)/server.pem:
	@$(MAKE) --no-print-directory certs

WAIT_HEALTHY_S ?= 180
wait-healthy: ## wait until every container of the stack is healthy
	@echo ">> waiting up to $(WAIT_HEALTHY_S)s for every container to be healthy"
	@deadline=$$(( $$(date +%s) + $(WAIT_HEALTHY_S) )); \
	while :; do \
		ids=$$($(COMPOSE) ps -q); \
		states=$$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $$ids); \
		bad=$$(awk '$$2 != "healthy"' <<<"$$states"); \
		if [ -n "$$ids" ] && [ -z "$$bad" ]; then break; fi; \
		if [ "$$(date +%s)" -ge "$$deadline" ]; then \
			echo "!! not healthy after $(WAIT_HEALTHY_S)s:" >&2; echo "$$bad" >&2; exit 1; \
		fi; \
		sleep 2; \
	done

down: ## stop and remove the stack (keeps Redis data and backups)
	@echo ">> $(COMPOSE_BIN) down"
	@$(COMPOSE) down --remove-orphans

down-volumes: ## stop the stack and delete its volumes (all Redis data and backups)
	@echo ">> $(COMPOSE_BIN) down --volumes"
	@$(COMPOSE) down --remove-orphans --volumes

INGEST ?= 3
.PHONY: scale
scale: ## run INGEST ingest containers (make scale INGEST=5; HAProxy's server-template has 10 slots)
	@echo ">> $(COMPOSE_BIN) up -d --scale ingest=$(INGEST)"
	@$(COMPOSE) up -d --no-recreate --scale ingest=$(INGEST)
	@$(MAKE) --no-print-directory wait-healthy

ps: ## containers of the stack and their health
	@$(COMPOSE) ps

logs: ## follow the stack's logs
	@$(COMPOSE) logs -f --tail=100

SEND_COUNT ?= 100
send: ## send a few messages through HAProxy (loadgen) and show the queue length on the master
	@echo ">> loadgen: $(SEND_COUNT) messages to $(SLUICE_BIND):$(SLUICE_PORT)"
	@$(GO) run ./services/loadgen -addr $(SLUICE_BIND):$(SLUICE_PORT) -n $(SEND_COUNT) -c 2 -size 32 \
		-no-progress -timeout 60s -run-id make-send-$$(date +%s)
	@master=$$($(COMPOSE) exec -T sentinel-1 sh -c 'REDISCLI_AUTH="$$SENTINEL_PASSWORD" redis-cli --raw -p 26379 SENTINEL get-master-addr-by-name sluice' | sed -n 1p | tr -d '\r'); \
	echo ">> master is $$master; data_queue length:"; \
	$(COMPOSE) exec -T "$$master" sh -c 'REDISCLI_AUTH="$$REDIS_PASSWORD" redis-cli --user admin -p "$${REDIS_PORT:-6379}" LLEN data_queue'

## ---- status (tools/status) ------------------------------------------------------------

# The stack publishes only HAProxy's ports, so the status binary runs inside the stack's
# network (a throwaway container of the FROM-scratch sluice/status image) and reaches every
# part by its service name. -it only when make runs on a terminal (Ctrl-C reaches -watch).
STATUS_NETWORK ?= $(PROJECT)_default
.PHONY: status
status: images-status ## one screen: master, replicas and lag, Sentinels, ingest ready, HAProxy, queue, acks/s, p99, last backup (WATCH=1 redraws every 2 s)
	@docker network inspect $(STATUS_NETWORK) >/dev/null 2>&1 || { \
		echo "!! the stack is not running: no Docker network $(STATUS_NETWORK) (project $(PROJECT)); start it with make up" >&2; exit 1; }
	@export STATUS_REDIS_USERNAME="$${STATUS_REDIS_USERNAME:-status}" \
		STATUS_REDIS_PASSWORD="$${STATUS_REDIS_PASSWORD:-$$REDIS_STATUS_PASSWORD}" \
		STATUS_SENTINEL_PASSWORD="$${STATUS_SENTINEL_PASSWORD:-$$SENTINEL_PASSWORD}" \
		STATUS_HAPROXY_STATS_USER="$${STATUS_HAPROXY_STATS_USER:-$$HAPROXY_STATS_USER}" \
		STATUS_HAPROXY_STATS_PASSWORD="$${STATUS_HAPROXY_STATS_PASSWORD:-$$HAPROXY_STATS_PASSWORD}"; \
	tty=; if [ -t 0 ] && [ -t 1 ]; then tty=-it; fi; \
	docker run --rm $$tty --network $(STATUS_NETWORK) \
		-e STATUS_REDIS_USERNAME -e STATUS_REDIS_PASSWORD -e STATUS_SENTINEL_USERNAME -e STATUS_SENTINEL_PASSWORD \
		-e STATUS_HAPROXY_STATS_USER -e STATUS_HAPROXY_STATS_PASSWORD \
		sluice/status:$(TAG) $(if $(filter 1,$(WATCH)),-watch)

## ---- consumer (services/consumer, see README "Consuming") --------------------------

# Redis is not published by the stack, so the static consumer binary runs in a throwaway
# container on the stack's network (the sluice/redis image, entrypoint replaced; the binary is
# bind-mounted, so this needs a local Docker daemon). It finds the master through the
# Sentinels, recovers its own name's list first, and writes the messages to stdout.
CONSUME_COUNT ?= 100
CONSUME_NAME ?= make-consume
.PHONY: consume
consume: ## take CONSUME_COUNT messages from the running stack's queue with the consumer CLI (stdout)
	@mkdir -p $(BIN)
	@$(GOBUILD) -o $(BIN)/consumer ./services/consumer
	@docker image inspect sluice/redis:$(TAG) >/dev/null 2>&1 || \
		{ echo "sluice/redis:$(TAG) is missing: make images-infra (or make up) first" >&2; exit 1; }
	@echo ">> consumer -n $(CONSUME_COUNT) (name $(CONSUME_NAME)) on network $(PROJECT)_default" >&2
	@docker run --rm --network $(PROJECT)_default --entrypoint /consumer \
		-v "$(abspath $(BIN))/consumer:/consumer:ro" \
		-e CONSUMER_SENTINEL_ADDRS=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379 \
		-e CONSUMER_REDIS_USERNAME=consumer -e CONSUMER_REDIS_PASSWORD="$$REDIS_CONSUMER_PASSWORD" -e CONSUMER_SENTINEL_PASSWORD="$$SENTINEL_PASSWORD" -e CONSUMER_NAME=$(CONSUME_NAME) \
		-e CONSUMER_BLOCK=1s -e CONSUMER_RETRY_TIMEOUT=10s \
		sluice/redis:$(TAG) -n $(CONSUME_COUNT)

## ---- checks --------------------------------------------------------------------------

.PHONY: test vet test-unit test-terraform test-monitoring test-e2e
test: deps vet test-unit test-terraform test-monitoring test-e2e ## everything CI runs: deps, vet, unit + integration, terraform fmt, alert rules, images, e2e

vet: ## gofmt + go vet
	@echo ">> gofmt"
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/') 2>&1 || true); \
	if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	@echo ">> go vet ./..."
	@$(GO) vet ./...
	@echo ">> go vet -tags e2e ./e2e/... ./terraform/..."
	@$(GO) vet -tags e2e ./e2e/... ./terraform/...
	@echo ">> go vet -tags multihost ./terraform/..."
	@$(GO) vet -tags multihost ./terraform/...

test-unit: ## unit and integration tests (real redis/sentinel/haproxy processes), with -race
	@echo ">> go test -race ./..."
	@$(GO) test -race -count=1 ./...

test-terraform: ## terraform fmt -check (when terraform is installed)
	@if command -v terraform >/dev/null 2>&1 && ls terraform/*.tf >/dev/null 2>&1; then \
		echo ">> terraform fmt -check"; terraform fmt -check -recursive terraform; \
	else echo ">> terraform or terraform/*.tf missing: skipping terraform fmt"; fi

test-monitoring: ## promtool: check monitoring/prometheus.yml and rules.yml, run the alert unit tests (rules_test.yml)
	@command -v promtool >/dev/null || { echo "promtool missing: make deps (Debian package prometheus)" >&2; exit 1; }
	@echo ">> promtool check config monitoring/prometheus.yml"
	@promtool check config monitoring/prometheus.yml >/dev/null
	@echo ">> promtool test rules monitoring/rules_test.yml"
	@promtool test rules monitoring/rules_test.yml

# -p 1: one package at a time (the Terraform apply test and the e2e suite each start a whole stack).
test-e2e: images ## e2e + fault suite + Terraform apply test on real containers (testcontainers, build tag e2e)
	@v2=$$(tools/compose-v2.sh); \
	echo ">> go test -tags e2e ./e2e/... ./terraform/... (SLUICE_TAG=$(TAG), timeout $(E2E_TIMEOUT), Compose v1 and $$v2)"; \
	SLUICE_COMPOSE_V2=$$v2 TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 \
		$(GO) test -tags e2e -count=1 -p 1 -timeout $(E2E_TIMEOUT) -v ./e2e/... ./terraform/...

# Not part of `make test` (it needs root); CI runs it after `make test` (.ci/run), which keeps
# the whole run far below 45 minutes. RELIABILITY.md ("Across hosts") keeps its last result.
MULTIHOST_REPORT ?= $(CURDIR)/.cache/multihost-report.txt
.PHONY: test-multihost
test-multihost: images-infra images-ingest ## host-loss drills on three simulated hosts (netns + dockerd each; root; about 6 minutes): stall, acked, lost, duplicates per drill
	@[ "$$(id -u)" = 0 ] || { echo "make test-multihost needs root (network namespaces, one dockerd per simulated host): sudo make test-multihost" >&2; exit 1; }
	@tools/deps.sh multihost
	@mkdir -p $(dir $(MULTIHOST_REPORT))
	@echo ">> go test -tags multihost ./terraform/multihost/ (SLUICE_TAG=$(TAG); report in $(MULTIHOST_REPORT))"
	@SLUICE_TAG=$(TAG) SLUICE_MULTIHOST_REPORT=$(MULTIHOST_REPORT) \
		$(GO) test -tags multihost -count=1 -timeout 40m -v -run TestDrills ./terraform/multihost/

.PHONY: sentinel-reset
sentinel-reset: ## after replacing a host: Sentinels forget the dead node, one at a time (SENTINEL_PASSWORD=... make sentinel-reset SENTINELS=ip:port,...)
	@[ -n "$(SENTINELS)" ] || { echo "usage: SENTINEL_PASSWORD=... make sentinel-reset SENTINELS=ip:26379,ip:26379,ip:26379 (the password in the environment, not on the command line)" >&2; exit 2; }
	@tools/sentinel-reset.sh "$(SENTINELS)"

.PHONY: compose-v2
compose-v2: ## build Docker Compose v2 from the Go module proxy into .cache/bin (the compose tests run under v1 and v2)
	@tools/compose-v2.sh

## ---- reliability report ----------------------------------------------------------

.PHONY: reliability-report
reliability-report: ## regenerate the scenario table of RELIABILITY.md from e2e/out/scenario-*.json
	@echo ">> reliability-report: e2e/out/scenario-*.json -> RELIABILITY.md"
	@$(GO) run ./e2e/cmd/reliability-report -in e2e/out -doc RELIABILITY.md

## ---- backup and restore (services/backup, see BACKUP.md) ------------------------------

BACKUP_TARGETS := backup backups restore
$(BACKUP_TARGETS): export REDIS_PASSWORD ?= $(DEV_REDIS_PASSWORD)
$(BACKUP_TARGETS): export SENTINEL_PASSWORD ?= sluice-dev-only-sentinels
$(BACKUP_TARGETS): export HAPROXY_STATS_PASSWORD ?= $(DEV_STATS_PASSWORD)

.PHONY: backup backups restore
backup: ## take a verified snapshot now in the running stack (from a replica)
	@echo ">> backup: snapshot now (POST /backup on the backup service)"
	@$(COMPOSE) exec -T backup /backup now

backups: ## list the snapshots in the backups volume
	@echo ">> snapshots in the backups volume"
	@$(COMPOSE) exec -T backup /backup list

# Without CONFIRM=yes it prints what would be overwritten and exits 1 (nothing changes).
# REPLACE=yes drops what the queue holds now instead of appending it after the backup.
restore: ## restore a snapshot: make restore BACKUP=<file> CONFIRM=yes [REPLACE=yes]
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=<snapshot file> CONFIRM=yes (make backups lists them)" >&2; exit 2; }
	@echo ">> restore $(BACKUP) into the running stack$(if $(filter yes,$(CONFIRM)),, (dry run: add CONFIRM=yes))"
	@$(COMPOSE) exec -T -e BACKUP_REDIS_USERNAME=admin -e BACKUP_REDIS_PASSWORD="$$REDIS_PASSWORD" backup /backup restore $(if $(filter yes,$(CONFIRM)),-confirm) $(if $(filter yes,$(REPLACE)),-replace) "$(notdir $(BACKUP))"

## ---- bench --------------------------------------------------------------------------

# Local processes on loopback (redis-server, redis-sentinel, haproxy from the Debian
# packages, plus the ingest binary); every BENCH_* variable is passed through:
# `go run ./bench -h` lists them (e.g. BENCH_MESSAGES=200000 make bench for a quick run).
.PHONY: bench
bench: ## benchmark: ceiling vs acked throughput/latency per mode, writes bench/results.md + chart.png
	@echo ">> go run ./bench (BENCH_MESSAGES=$${BENCH_MESSAGES:-2000000}, stack: local processes)"
	@$(GO) run ./bench
	@echo ">> bench/results.md and bench/chart.png written"

## ---- e2e smoke ----------------------------------------------------------------------

.PHONY: test-smoke
test-smoke: images ## e2e smoke + compose tests only (a few minutes; test-e2e runs them too)
	@echo ">> go test -tags e2e -run 'TestSmoke|TestCompose' ./e2e/ (SLUICE_TAG=$(TAG))"
	@SLUICE_COMPOSE_V2=$$(tools/compose-v2.sh) TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 \
		$(GO) test -tags e2e -count=1 -timeout 15m -v -run 'TestSmoke|TestCompose' ./e2e/
