# Keel: the two commands are `make run` and `make test`.
GO        ?= go
BIN       := bin/keel
DATA_DIR  ?= ./keel-data
LISTEN    ?= 127.0.0.1:8080
# Agents join here (simulated fleets with --credentials $(DATA_DIR)/agent.nk, compute nodes with their own: keel host credentials); empty: in-process only.
NATS_LISTEN ?= 127.0.0.1:4222
FAKE_HOSTS ?= 3
PKGS      := ./...

.PHONY: build run run-libvirt test test-short bench lint deps clean

build:
	$(GO) build -o $(BIN) ./cmd/keel

# Starts the control plane on the embedded default: embedded NATS (exposed to
# agents holding its credentials on $(NATS_LISTEN)), a private PostgreSQL
# under $(DATA_DIR) (unless KEEL_DATABASE_URL is set) and a few simulated
# hosts. Ctrl-C stops everything it started.
run: deps build
	./$(BIN) serve --data-dir $(DATA_DIR) --listen $(LISTEN) --nats-listen=$(NATS_LISTEN) --fake-hosts $(FAKE_HOSTS)

# Like run, with one real libvirt compute node (root; scripts/run-libvirt.sh).
run-libvirt: deps build
	@exec env DATA_DIR=./keel-data-libvirt LISTEN=$(LISTEN) NATS_LISTEN=$(NATS_LISTEN) bash scripts/run-libvirt.sh

# Installs what is missing (Debian packages when root), then runs unit and
# integration tests with the race detector against real NATS and Postgres.
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Benchmarks with their same-run baselines; ends with BENCH summary lines.
bench: deps build
	$(GO) run ./cmd/keelbench

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

deps:
	@bash scripts/install-deps.sh

clean:
	rm -rf bin
