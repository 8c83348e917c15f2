# Two entry points: `make demo` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.evalkit-installed
DATA_DIR ?= $(or $(EVALKIT_DATA_DIR),$(wildcard ../shared/data/tasks))
DEMO_TASKS := SciFact STSBenchmark ATEC BQ LCQMC PAWSX STSB AFQMC QBQTC

CHROMIUM := /usr/bin/chromium

.PHONY: install browser demo test test-fast lint bench clean

install: $(STAMP)

# torch first, pinned: the CPU build that lies on local disk (a bare `torch` would pull a multi-GB CUDA build).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The HTML report test drives Debian's Chromium through Playwright (never Playwright's own browser download).
browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
		(apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null)

demo: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 EVALKIT_DATA_DIR=$(DATA_DIR) \
		$(BIN)/evalkit run --model sentence-transformers/all-MiniLM-L6-v2 --tasks $(DEMO_TASKS) --output results

test: install browser
	$(BIN)/ruff check evalkit tests benchmarks
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q

# The fast lane for the edit-test loop (under 3 minutes here): unit tests, without those marked slow or listed in
# tests/slow_tests.txt (1 s or more in the last measured full run; `python tests/slow_tests.py LOG` regenerates it).
test-fast: install
	$(BIN)/ruff check evalkit tests benchmarks
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q --fast

lint: install
	$(BIN)/ruff check evalkit tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
