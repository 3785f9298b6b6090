# irtrepro: the two commands a user needs are `make report` and `make test`.
# Both create the virtual environment .venv and install the package when missing, with the
# exact versions of requirements.lock (the ones the tests and the report were run with);
# `make install LOCK=` installs the newest versions pyproject.toml allows instead.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MANIFEST ?= data_manifest.yaml
REPORTS ?= reports
# settings of the model parts (YAML), e.g. .ci/small-report.yaml for a quick run of the chain
SETTINGS ?=
# a trained segmentation model file (train-seg --annotations): segment with it, train none
MODEL ?=
JOBS ?= 2
LOCK ?= requirements.lock
STAMP := $(VENV)/.installed

# pip installs without compiling bytecode (half the install time: most of it was compiling
# torch's thousands of modules); Python compiles what is actually imported on first use and
# caches it in __pycache__. That cache needs bytecode writing on, also where the environment
# sets PYTHONDONTWRITEBYTECODE: without it every process (test workers, report workers)
# would recompile torch & co. on import, ~20 s each.
export PYTHONDONTWRITEBYTECODE =

# glibc malloc: keep freed memory in the heap instead of returning every large block to the
# kernel (torch allocates and frees multi-MB activations each layer; with the defaults each one
# is a fresh mmap whose pages fault in again: ~1 M page faults and 10-20 % system time per
# U-Net pass on 2 cores; with these settings segmentation of 256 frames on 2 threads ran at
# 37-50 instead of 25-34 frames/s, system time 0.1 instead of 3 s). Costs: the process keeps its peak heap (peak RSS ~3 GB for make report). Override with
# `make report MALLOC_TRIM_THRESHOLD_=...` or unset them for the glibc defaults.
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296

.PHONY: install lock report evaluate test test-slow bench lint clean help sysdeps

help:
	@echo "make report   build every figure and table of the default study into $(REPORTS)/"
	@echo "make evaluate the nested protocol of every model (folds x 3 seeds; 30-60 min on 2 cores,"
	@echo "              resumable) into $(REPORTS)/evaluation/; make report quotes it"
	@echo "make test     run the test suite"
	@echo "make test-slow  the longer end-to-end tests (the default U-Nets, ~5 min)"
	@echo "make bench    run the benchmarks (prints figures)"
	@echo "make lint     ruff"
	@echo "make clean    remove generated data, reports and caches (keeps .venv)"
	@echo "make sysdeps  install chromium and exiftool with apt-get when missing (tests use them)"
	@echo "make lock     rewrite requirements.lock from the versions installed in $(VENV)"

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile $(if $(LOCK),--constraint $(LOCK)) -e '.[dev,cluster]'
	touch $(STAMP)

# The lock is what `make install` installs: pip constraints of every package in the venv.
lock: $(STAMP)
	@{ echo "# Exact versions the tests and the report were run with (pip constraints):"; \
	   echo "# make install uses them; make lock rewrites this file from $(VENV)."; \
	   $(PY) -m pip freeze --exclude-editable | grep -v '^irtrepro'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)

# Debian packages some tests need: chromium (HTML report in a headless browser) and exiftool
# (independent reference for FLIR sequences). Installs only what is missing, only as root with
# apt-get; never fails (the tests that need them skip with a reason).
sysdeps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v exiftool >/dev/null 2>&1 || missing="$$missing libimage-exiftool-perl"; \
	if [ -z "$$missing" ]; then echo "sysdeps: chromium and exiftool present"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "sysdeps: not root or no apt-get: install$$missing yourself (the tests needing it skip)"; \
	else (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing) \
	  || echo "sysdeps: apt-get install$$missing failed (the tests needing it skip)"; fi

report: $(STAMP)
	$(VENV)/bin/irtrepro -v report --manifest $(MANIFEST) --out $(REPORTS) \
	  $(if $(SETTINGS),--settings $(SETTINGS)) $(if $(MODEL),--model $(MODEL))

evaluate: $(STAMP)
	$(VENV)/bin/irtrepro -v evaluate --manifest $(MANIFEST) --out $(REPORTS)/evaluation \
	  $(if $(MODELS),--models $(MODELS)) $(if $(MINUTES),--max-minutes $(MINUTES))

test: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest -n $(JOBS) -q -m "not slow" tests

test-slow: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest -q -m slow tests

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check irtrepro tests analyses benchmarks

clean:
	rm -rf data/demo data/study.nc data/study.zarr data/cache reports/figures reports/tables reports/index.html
	find . -name __pycache__ -prune -exec rm -rf {} +
