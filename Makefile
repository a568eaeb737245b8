# Two commands do all set-up on a fresh machine:
#   make demo   builds the default attribution run from the music21 corpus, then runs the baseline scenario on it
#   make test   runs the test suite (CI calls this through .ci/run)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RSIM   := $(VENV)/bin/royaltysim
STAMP  := $(VENV)/.installed

.PHONY: setup demo economy-demo attribution test test-slow bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first (it lies on local disk); an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[attribution,dev]"
	touch $(STAMP)

setup: $(STAMP)

# Rebuild the shipped default attribution run (about 8 minutes on 2 idle cores), then simulate on it.
demo: attribution economy-demo

attribution: $(STAMP)
	$(RSIM) attribution build configs/attribution-default.yaml --out runs/default
	$(RSIM) attribution show runs/default

# The economy alone, on the shipped run (under a minute).
economy-demo: $(STAMP)
	$(RSIM) run scenarios/baseline.yaml --out out/baseline --force
	@echo "report: out/baseline/report.html"

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Benchmarks (slow; results go to benchmarks/RESULTS.md). dattri, the external TRAK peer, is only needed here.
bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/attribution_build.py
	$(PY) benchmarks/economy_scale.py --full
	$(PY) benchmarks/economy_vs_agents.py
	$(RSIM) attribution build configs/attribution-small.yaml --out runs/small -q
	$(RSIM) attribution groundtruth runs/small --config configs/groundtruth-small.yaml --workers 2
	$(PY) benchmarks/attribution_faithfulness.py --run runs/small

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
