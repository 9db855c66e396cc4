# `make run`: set up and run the main job; `make test`: set up and run the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch lies on local disk; pinning it keeps pip from fetching a CUDA build.
TORCH := torch==2.13.0
# The main job: the whole study, a fixed amount of quick work (about 10 minutes here). Data: $FERLAB_DATA, else
# ../shared/data/fer2013.zip; running it again resumes (or just rewrites) the same report.
REPORT ?= runs/report-quick

.PHONY: run test lint setup setup-test clean

$(BIN)/ferlab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[lab]' $(TORCH)
	touch $@

$(VENV)/.test-extras: $(BIN)/ferlab
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' $(TORCH)
	touch $@

setup: $(BIN)/ferlab
setup-test: $(VENV)/.test-extras

run: setup
	$(BIN)/ferlab report --quick --out $(REPORT)

lint: setup-test
	$(BIN)/ruff check src tests benchmarks experiments reliability
	$(BIN)/ruff format --check src tests benchmarks experiments reliability
	$(BIN)/lint-imports

test: setup-test lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV)
