# Two commands do all set-up on a fresh machine:
#   make demo   builds the default attribution run from the music21 corpus, then runs the baseline scenario on it
#   make test   runs the test suite (CI calls this through .ci/run)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RSIM   := $(VENV)/bin/royaltysim
STAMP  := $(VENV)/.installed

.PHONY: setup system-packages demo economy-demo attribution test test-slow bench clean

# The test suite loads the Content ID pages in headless Chromium and renders their audio with FluidSynth and the
# General MIDI soundfont (Debian packages). As root (CI on a fresh Debian machine) setup installs what is missing;
# otherwise it names the command to run, and those tests fail until it has been run.
APT_PACKAGES := chromium fluidsynth fluid-soundfont-gm

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "missing Debian packages:$$missing; install them with: sudo apt-get install -y$$missing" >&2; fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first (it lies on local disk); an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	# torch named again: kronfluence needs torchvision, whose newest release would pull a newer CUDA torch
	$(PY) -m pip install -q -e ".[attribution,dev,dashboard,discovery]" "torch==2.13.0"
	touch $(STAMP)

setup: system-packages $(STAMP)

# Rebuild the shipped default attribution run (about 8 minutes on 2 idle cores), then simulate on it.
demo: attribution economy-demo

attribution: $(STAMP)
	$(RSIM) attribution build configs/attribution-default.yaml --out runs/default
	$(RSIM) attribution show runs/default

# The economy alone, on the shipped run (under a minute).
economy-demo: $(STAMP)
	$(RSIM) run scenarios/baseline.yaml --out out/baseline --force
	@echo "report: out/baseline/report.html"

test: system-packages $(STAMP)
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
