# Everything a fresh machine needs: `make demo` and `make test` set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup demo test test-all lint bench-env clean

setup: $(VENV)/.installed

# constraints-ci.txt pins torch to the CPU wheel that these machines have on disk.
$(VENV)/.installed: pyproject.toml constraints-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints-ci.txt -e ".[train,export,bench,dev]"
	touch $@

demo: setup
	$(BIN)/sim2real demo

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-env: setup
	$(BIN)/sim2real bench env

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
