# make run: create .venv, install, run the main job (the budget frontier) on the embedded digits data.
# make test: same install, then the test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	WANDB_MODE=offline $(BIN)/python -m lth_lightning +experiment=frontier

test: $(STAMP)
	WANDB_MODE=offline $(BIN)/python -m pytest -n 2  # one process a core, one torch thread each (tests/conftest.py)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benches all

clean:
	rm -rf outputs multirun cache
