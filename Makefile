# pipeline: tracked Optuna searches over the seed notebooks' Keras models.
# Every target that needs Python depends on the virtual environment, which it builds itself.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
RAY_STAMP := $(VENV)/.ray-stamp
DOCS_STAMP := $(VENV)/.docs-stamp
# setuptools' notes on editable installs (BuildBackendWarning) are no news to the user
PIP := PYTHONWARNINGS=ignore $(BIN)/python -m pip

DATASET ?= imdb
N_TRIALS ?= 30
TIMEOUT ?= 600
STUDY ?=
SPACE ?=
TABLE ?= blog-imdb
SEEDS ?= 3
TOP ?= 10
OUTPUT ?=
PORT ?= 5000
SERVE_PORT ?= 5001
MODEL ?= imdb
DASHBOARD_PORT ?= 8080
PYTEST_ARGS ?=
# PyTorch's CPU build, which lies on these machines' disk (a plain `torch` pulls a CUDA build
# of several GB); `make install TORCH=` leaves PyTorch out
TORCH ?= torch==2.13.0

WORKERS ?= 1
RAY ?=
SEARCH_ARGS := --n-trials $(N_TRIALS) --timeout $(TIMEOUT) --workers $(WORKERS) \
	$(if $(STUDY),--study $(STUDY)) $(if $(SPACE),--space $(SPACE)) $(if $(RAY),--ray $(RAY))

.DEFAULT_GOAL := help
.PHONY: help install test test-fast fuzz lint format search train reproduce export datasets ui serve dashboard bench bench-speed bench-search bench-ensemble bench-model bench-custom bench-gru bench-gpu bench-gpu-cpu gpu-kit soak wheel cluster docs screenshots clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: DATASET=$(DATASET) N_TRIALS=$(N_TRIALS) TIMEOUT=$(TIMEOUT) STUDY= SPACE= TABLE=$(TABLE)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev,jax]' $(TORCH)
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project, its dev extra, JAX and PyTorch

# Ray (about 285 MB): for the tests, and for `make search RAY=...` on first use
$(RAY_STAMP): $(STAMP)
	$(PIP) install --quiet -e '.[ray]'
	touch $(RAY_STAMP)

# MkDocs, its Material theme and Selenium: for the documentation site and its pictures
$(DOCS_STAMP): $(STAMP)
	$(PIP) install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

# NO_MKDOCS_2_WARNING: Material's banner about a successor of MkDocs, no news to the reader
docs: $(DOCS_STAMP) ## Build the documentation site strictly into site/ (a broken link or picture fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	@echo "site/index.html: open it, or run $(BIN)/mkdocs serve"

screenshots: $(DOCS_STAMP) ## Pictures for docs/images/ from a real small IMDB search, in headless Chromium (apt: chromium chromium-driver)
	PIPELINE_DATA_DIR=$${PIPELINE_DATA_DIR:-../shared/data} $(BIN)/python docs/screenshots.py

# Two pytest processes, an idle one taking tests from the other's queue (work stealing):
# many tests wait on heartbeats and servers. On a 2-core machine: 22 min, against 25 min
# when each test file stayed in one process (the longest files ended alone).
TEST_WORKERS ?= 2
test: $(STAMP) $(RAY_STAMP) ## Run the whole test suite (CI runs this; TEST_WORKERS=2 pytest processes)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the tests not marked slow
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

fuzz: $(STAMP) ## Property-based tests with a long, random budget (12,800 examples, ~2 min)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/test_fuzz.py -p no:cacheprovider --hypothesis-show-statistics $(PYTEST_ARGS)

lint: $(STAMP) ## Check style with ruff, and the layers of docs/architecture.md with import-linter
	$(BIN)/ruff check pipeline tests bench examples docs/hooks.py docs/screenshots.py
	$(BIN)/ruff format --check pipeline tests bench examples docs/hooks.py docs/screenshots.py
	$(BIN)/lint-imports

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff check --fix pipeline tests bench examples docs/hooks.py docs/screenshots.py
	$(BIN)/ruff format pipeline tests bench examples docs/hooks.py docs/screenshots.py

datasets: $(STAMP) ## List the datasets and where their data is
	$(BIN)/pipeline datasets

search: $(STAMP) $(if $(RAY),$(RAY_STAMP)) ## Run an Optuna study: make search DATASET=imdb N_TRIALS=30 [RAY=local WORKERS=2]
	$(BIN)/pipeline search $(DATASET) $(SEARCH_ARGS)

train: $(STAMP) ## Train the seed recipe once: make train DATASET=reuters ARGS="epochs=9"
	$(BIN)/pipeline train $(DATASET) $(ARGS)

reproduce: $(STAMP) $(if $(RAY),$(RAY_STAMP)) ## Reproduce a seed table: make reproduce TABLE=blog-imdb SEEDS=3
	$(BIN)/pipeline reproduce $(TABLE) --seeds $(SEEDS) --workers $(WORKERS) \
		$(if $(OUTPUT),--output $(OUTPUT)) $(if $(RAY),--ray $(RAY))

export: $(STAMP) ## Best trials as markdown: make export DATASET=imdb [STUDY=..] [TOP=10]
	$(BIN)/pipeline export $(DATASET) $(if $(STUDY),--study $(STUDY)) --top $(TOP) \
		$(if $(OUTPUT),--output $(OUTPUT))

ui: $(STAMP) ## Open the MLflow UI on http://127.0.0.1:5000 (PORT=5000)
	$(BIN)/pipeline ui --port $(PORT)

serve: $(STAMP) ## Serve a registered champion: make serve MODEL=imdb SERVE_PORT=5001
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow models serve -m models:/$(MODEL)@champion \
		--env-manager local -h 127.0.0.1 -p $(SERVE_PORT)

dashboard: $(STAMP) ## Open optuna-dashboard on http://127.0.0.1:8080 (DASHBOARD_PORT=8080)
	$(BIN)/pipeline dashboard --port $(DASHBOARD_PORT)

cluster: $(STAMP) $(RAY_STAMP) ## A three-host Ray rehearsal in network namespaces, a node killed mid-study (root, ~4 min): bench/results/cluster.md
	PIPELINE_DATA_DIR=$${PIPELINE_DATA_DIR:-../shared/data} $(BIN)/python bench/cluster.py

wheel: $(STAMP) ## The project as a wheel in dist/, what a cluster node installs
	rm -rf dist && $(PIP) wheel --quiet --no-deps --no-build-isolation -w dist .
	rm -rf build pipeline.egg-info  # (an old egg-info here would shadow the installed entry points)
	@ls -l dist/*.whl

clean: ## Remove caches (keeps .venv and mlruns/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info

bench: bench-speed bench-search bench-ensemble bench-model bench-custom bench-gru bench-cli ## The benchmarks below (~80 min on 2 cores)

bench-cli: $(STAMP) ## How fast the commands answer, median of 5 runs (~5 min; BENCH_BEFORE=DIR adds another checkout's times): bench/results/cli.md
	$(BIN)/python bench/cli_speed.py

bench-ensemble: $(STAMP) ## Ensembles against the best trial, 3 seeds of each default search (~25 min; BENCH_WIDE=1 adds the wide spaces, ~60 min more): bench/results/ensembles.md
	PIPELINE_DATA_DIR=$${PIPELINE_DATA_DIR:-../shared/data} $(BIN)/python bench/ensemble_quality.py

bench-gru: $(STAMP) ## Your own GRU (examples/imdb_gru.py) for one epoch on each Keras backend (~6 min): bench/results/gru_backends.md
	PIPELINE_DATA_DIR=$${PIPELINE_DATA_DIR:-../shared/data} $(BIN)/python bench/gru_backends.py

bench-speed: $(STAMP) $(RAY_STAMP) ## Floor ratio, tables, memory, tracking vs the seed recipe, each Keras backend, Ray vs local workers (~20 min): bench/results/latest.md, backends.md, ray.md
	$(BIN)/python bench/run.py
	$(BIN)/python bench/backends.py
	$(BIN)/python bench/ray_speed.py

bench-custom: $(STAMP) ## Your own model: a Conv1D (examples/imdb_cnn.py) vs the MLP, 20 IMDB trials each (~4 min): bench/results/custom_model.md
	$(BIN)/python bench/custom_model.py

bench-model: $(STAMP) ## The registered model on raw IMDB reviews (~3 min): bench/results/model_serving.md
	$(BIN)/python bench/model_serving.py

gpu-kit: $(STAMP) ## What a GPU machine without network access needs: py3.12 wheels and IMDB's cache, in .gpu-kit/ (must fit 64 MiB)
	$(BIN)/python bench/gpu_kit.py

bench-gpu: ## On a GPU machine (its python3, no .venv): the kit's wheels, then JAX/PyTorch searches: gpu.md in OUT
	python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu-kit/wheels/*.whl
	PYTHONPATH=/tmp/site:$(CURDIR) PIPELINE_DATA_DIR=$(CURDIR)/.gpu-kit/data python3 bench/gpu.py --out $${OUT:-bench/results}

bench-gpu-cpu: $(STAMP) ## The same searches on this CPU, as bench-gpu's baseline: bench/results/gpu_cpu.json
	PIPELINE_DATA_DIR=$(CURDIR)/.gpu-kit/data $(BIN)/python bench/gpu.py --cpu

soak: $(STAMP) ## 4 workers, PostgreSQL, an MLflow server and chaos (workers killed for up to 7 min): bench/results/soak.md
	PIPELINE_DATA_DIR=$${PIPELINE_DATA_DIR:-../shared/data} $(BIN)/python bench/soak.py

bench-search: $(STAMP) ## Search quality vs recipe and seed tables (~50 min): bench/results/search_quality.md
	$(BIN)/python bench/search_quality.py
