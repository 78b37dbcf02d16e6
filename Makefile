# Two commands on a fresh machine with only python3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -c "from gateway_bridge.decoder import Decoder; Decoder.warm_up()"  # compile the decoder's kernels once (~15 s cold)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/feature-service demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/feature-service bench ingest
	$(BIN)/feature-service bench engine

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
