# hilobench: `make run` sets everything up and runs a short demo; `make test` runs the tests.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
FLOOR   ?= .venv-floor
FSTAMP  := $(FLOOR)/.installed
SUITE   ?= suites/ci_smoke.yaml
BASE    ?= HEAD

.PHONY: install run test test-floor lint gate baseline clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[plot,dev,slurm,onnx,openvino]'
	touch $(STAMP)

install: $(STAMP)

# Default job: every attention at the paper's single-layer setting (14x14 tokens, dim 768,
# 12 heads), reference and fused paths, on the CPU; under 2 minutes on 2 cores.
run: $(STAMP)
	$(BIN)/hilobench layer --attn all --res 224 --impl both --batch 16 --budget 1.5

test: $(STAMP)
	$(BIN)/ruff check hilobench tests benchmarks
	$(BIN)/ruff format --check hilobench tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The oldest versions pyproject.toml allows (constraints-floor.txt: torch, numpy, timm ...), in a
# venv of their own; ruff and mypy run in `make test` only.
$(FSTAMP): pyproject.toml constraints-floor.txt
	$(PY) -m venv $(FLOOR)
	$(FLOOR)/bin/pip install -q -c constraints-floor.txt setuptools -e '.[plot,dev,slurm]'
	touch $(FSTAMP)

test-floor: $(FSTAMP)
	$(FLOOR)/bin/python -m pytest

# The cluster executor against a real single-node SLURM started here (needs root and Debian's
# slurm-wlm, slurmdbd, munge and mariadb-server; see docs/cluster.md). Opt-in: CI uses a fake.
.PHONY: test-slurm
test-slurm: $(STAMP)
	benchmarks/local_slurm.sh
	HILOBENCH_REAL_SLURM=1 $(BIN)/python -m pytest -m slurm tests/cluster/test_cluster_slurm.py

lint: $(STAMP)
	$(BIN)/ruff check hilobench tests benchmarks
	$(BIN)/ruff format --check hilobench tests benchmarks

# Speed gate (what a CI job runs on every pull request): BASE and the working tree measured
# interleaved on this machine; exit 1 on a regression. See docs/gate.md.
gate: $(STAMP)
	$(BIN)/hilobench gate --base $(BASE) --suite $(SUITE) --markdown results/runs/gate.md

# Rewrite the committed deterministic baseline (counts, peak tensor bytes) of $(SUITE).
baseline: $(STAMP)
	$(BIN)/hilobench gate --update-baseline --suite $(SUITE)

clean:
	rm -rf $(VENV) $(FLOOR) results/runs .pytest_cache
