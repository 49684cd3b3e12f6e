# Everything a fresh machine needs: `make demo` and `make test` set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup demo test test-all lint colcon bench-env clean

setup: $(VENV)/.installed

# constraints-ci.txt pins torch to the CPU wheel that these machines have on disk.
$(VENV)/.installed: pyproject.toml constraints-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints-ci.txt -e ".[sim,train,export,bench,ros,calibrate,distributed,sbx,dev]"
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

# The ROS 2 package builds with colcon from pip (no ROS installation needed for an ament_python package).
colcon: setup
	$(BIN)/pip install -q colcon-common-extensions
	mkdir -p build
	cd build && ../$(BIN)/colcon --log-base colcon-log build --base-paths ../ros_ws/src --build-base colcon-build \
		--install-base colcon-install

bench-env: setup
	$(BIN)/sim2real bench env

clean:
	rm -rf $(VENV) out build .pytest_cache .mypy_cache .ruff_cache
