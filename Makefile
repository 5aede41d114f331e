# bigdata-lab — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
LAB_SERVICES_DIR ?= /tmp/lab-services
export LAB_SERVICES_DIR
# The integration tests that need the services (and tmux) sit behind this feature (Cargo.toml).
TEST_FEATURES := --features service-tests

.PHONY: all build demo demo-headless test test-with-services test-unit lint fmt services-up services-down sample clean bench

all: build

build:
	$(CARGO) build

## The embedded end-to-end pipeline on the checked-in sample (no Docker needed).
demo: build
	$(CARGO) run --quiet -- demo

demo-headless: build
	$(CARGO) run --quiet -- demo --headless

## Unit tests and integration tests against real services started on 127.0.0.1 by tests/services/
## (PostgreSQL, a Kafka-protocol broker, HDFS, Spark, Airflow) and stopped afterwards, then the
## Docker runtime's tests against a throwaway Docker engine (test-docker). -k: both always run.
## Serialised with flock: the services live on fixed ports, so a second `make test` on the same
## machine would otherwise restart (and then stop) the first one's PostgreSQL and broker.
test:
	@mkdir -p "$(LAB_SERVICES_DIR)"
	@flock "$(LAB_SERVICES_DIR)/.lock" $(MAKE) -k --no-print-directory test-with-services test-docker

# The services start while the tests compile (a cold build is most of a CI run); the build waits
# for nothing and the tests wait for both.
test-with-services:
	@trap 'tests/services/down.sh' EXIT; \
	tests/services/up.sh >"$(LAB_SERVICES_DIR)/up.log" 2>&1 & up=$$!; \
	$(CARGO) test $(TEST_FEATURES) --all-targets --no-run; built=$$?; \
	if ! wait $$up; then cat "$(LAB_SERVICES_DIR)/up.log" >&2; echo "tests/services/up.sh failed" >&2; exit 1; fi; \
	[ $$built -eq 0 ] || exit $$built; \
	set -a; . "$(LAB_SERVICES_DIR)/services.env"; set +a; \
	$(CARGO) test $(TEST_FEATURES) --all-targets --no-fail-fast

## The tests that need no service: unit, embedded and fuzz tests (what a plain `cargo test` runs).
test-unit:
	$(CARGO) test

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets $(TEST_FEATURES) -- -D warnings

fmt:
	$(CARGO) fmt

services-up:
	tests/services/up.sh

services-down:
	tests/services/down.sh

## Every stage against what users would use instead (kafka-python, confluent-kafka, kcat, PySpark,
## DuckDB), on this machine, in one run (about 23 min on 2 cores, 13 of them the cold build of `make demo`):
## target/bench/{results.json,report.md}.
## Installs its peers (apt, pip into .venv), builds release, runs its own services on 3xxxx ports
## (LAB_BENCH_*_PORT, LAB_BENCH_SERVICES_DIR) so it never collides with `make test`. ARGS="--only batch".
bench:
	benches/run.sh $(ARGS)

## Regenerate the checked-in sample (deterministic: same seed, same bytes).
sample: build
	$(CARGO) run --quiet -- dataset generate --out datasets/sample --reviews 1500 --seed 7 --invalid-rate 0.01

clean:
	$(CARGO) clean
	rm -rf .lab

## The lab's services in Docker (stacks/lambda.toml by default; ARGS="--stack minimal", "--only kafka,postgres", ...).
.PHONY: lab-up lab-down lab-ps test-docker
lab-up: build
	$(CARGO) run --quiet -- up $(ARGS)

lab-down: build
	$(CARGO) run --quiet -- down $(ARGS)

lab-ps: build
	$(CARGO) run --quiet -- ps $(ARGS)

## The Docker runtime against a real, throwaway engine (root; installs docker.io and busybox-static
## if missing). The engine lives in its own network namespace, so the test binary runs inside it
## (published ports are on that namespace's loopback); it is built outside first.
LAB_DOCKER_DIR ?= /tmp/lab-docker
LAB_DOCKER_NETNS ?= labdk
export LAB_DOCKER_DIR LAB_DOCKER_NETNS
test-docker:
	$(CARGO) test $(TEST_FEATURES) --no-run --test docker_stack
	@trap 'tests/docker/engine.sh stop' EXIT; \
	tests/docker/engine.sh start >/dev/null && \
	DOCKER_HOST=unix://$(LAB_DOCKER_DIR)/docker.sock \
	  nsenter --net=/run/netns/$(LAB_DOCKER_NETNS) $(CARGO) test $(TEST_FEATURES) --offline --test docker_stack -- --ignored
