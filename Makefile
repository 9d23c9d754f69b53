# tenantvec developer commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
N      ?= 200

.DEFAULT_GOAL := help
.PHONY: help install wheel demo test test-install lint fmt bench bench-provision bench-api bench-ingest bench-quality bench-tenancy bench-neon bench-scale-to-zero bench-faults bench-cli bench-serving bench-scale bench-backup bench-move bench-fleet bench-install bench-precision bench-peers bench-floor clean

help: ## List the developer commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "tenantvec needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=constraints.txt $(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install tenantvec with pinned versions

wheel: $(STAMP) ## Build dist/tenantvec-<version>-py3-none-any.whl (install it elsewhere; docs: README, Installing)
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation --wheel-dir dist .

demo: $(STAMP) ## Start the embedded Postgres and walk through two isolated tenants
	$(VENV)/bin/tenantctl demo

test: $(STAMP) ## Run the test suite against a real embedded Postgres (two workers), the docs' examples included
	$(PY) -m pytest -n 2 -m "not install"

test-install: $(STAMP) ## Install the wheel as the README says into fresh virtualenvs and use each install (~2 min)
	$(PY) -m pytest -m install

lint: $(STAMP) ## ruff (lint + format check), mypy --strict and the layer contracts (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: bench-install bench-provision bench-api bench-ingest bench-quality bench-tenancy bench-neon bench-scale-to-zero bench-faults bench-cli bench-serving bench-scale bench-backup bench-move bench-fleet bench-precision bench-peers bench-floor ## Run every benchmark

bench-install: $(STAMP) ## Fresh virtualenvs: the client, the LangChain store, the server (packages, MB, seconds); write docs/benchmarks.md
	$(PY) -m bench.install --write docs/benchmarks.md

bench-provision: $(STAMP) ## Create and delete N tenants (N=200); write docs/benchmarks.md
	$(PY) -m bench.provision --tenants $(N) --write docs/benchmarks.md

bench-api: $(STAMP) ## Routing overhead and 100-tenant fan-out through the API; write docs/benchmarks.md
	$(PY) -m bench.api --write docs/benchmarks.md

bench-ingest: $(STAMP) ## Ingest throughput (1024 dims, batches of 500): library, API, ChromaDB; write docs/benchmarks.md
	$(PY) -m bench.ingest --write docs/benchmarks.md

bench-backup: $(STAMP) ## Back up and restore tenants of 1K/10K/100K chunks vs plain pg_dump/pg_restore (~20 min); write docs/benchmarks.md
	$(PY) -m bench.backup --runs 2 --write docs/benchmarks.md

bench-move: $(STAMP) ## Move tenants of 1K/10K/100K chunks between two servers while they serve, vs plain pg_dump | pg_restore; write docs/benchmarks.md
	$(PY) -m bench.move --write docs/benchmarks.md

bench-fleet: $(STAMP) ## Operator commands (list, reconcile, doctor, migrate --all, gc) as the fleet grows 1K to 10K tenants (as far as the disk allows); write docs/benchmarks.md
	$(PY) -m bench.fleet --write docs/benchmarks.md

bench-quality: $(STAMP) ## Recall@5 and MRR (vector, keyword, hybrid) on our docs, hash vs wordllama; write docs/benchmarks.md
	$(PY) -m bench.quality --write docs/benchmarks.md

bench-tenancy: $(STAMP) ## Shared table vs partitions vs database per tenant (~7 min); write docs/tenancy-benchmark.md + plots
	$(PY) -m bench.tenancy --write docs/tenancy-benchmark.md

bench-neon: $(STAMP) ## Neon API calls per create and tenants/min under 700 req/min, via the fake Neon API (~5 min); write docs/benchmarks.md
	$(PY) -m bench.neon --write docs/benchmarks.md

bench-scale-to-zero: $(STAMP) ## Idle memory per instance vs database tenant, cold starts, a neighbour waking (~3 min); write docs/benchmarks.md
	$(PY) -m bench.scale_to_zero --write docs/benchmarks.md

bench-faults: $(STAMP) ## Random kills per backend, a greedy neighbour, a dead server, a closed database, a catalog outage (~8 min); write docs/benchmarks.md
	$(PY) -m bench.faults --write docs/benchmarks.md

bench-scale: $(STAMP) ## One API process and 1,000 tenants: memory and /metrics series; write docs/benchmarks.md
	$(PY) -m bench.scale --write docs/benchmarks.md

bench-cli: $(STAMP) ## tenantctl's start-up (--help, tenants list), this tree vs an older revision; write docs/benchmarks.md
	$(PY) -m bench.cli --write docs/benchmarks.md

bench-serving: $(STAMP) ## The API next to direct psycopg: 50 tenants, 200K x 1024 chunks, 1 and 8 clients, CPU per search; write docs/benchmarks.md
	$(PY) -m bench.serving --write docs/benchmarks.md

bench-precision: $(STAMP) ## A tenant's index at full vs half precision: size, build time, recall, latency (random and docstring embeddings, 20K x 1024; ~10 min); write docs/benchmarks.md
	$(PY) -m bench.precision --output docs/benchmarks.md

bench-peers: $(STAMP) ## tenantvec (API, direct psycopg) vs ChromaDB (embedded, chroma run) at equal recall: search and ingest, random and docstring embeddings, 50K x 1024 (~45 min); write docs/benchmarks.md
	$(PY) -m bench.peers --output docs/benchmarks.md

bench-floor: $(STAMP) ## The API's CPU per 1024-d search beside direct psycopg, the API without its search lane, and a bare uvicorn + psycopg app (~4 min); write docs/benchmarks.md
	$(PY) -m bench.floor --output docs/benchmarks.md

clean: ## Remove .venv and caches (not TENANTVEC_HOME)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
