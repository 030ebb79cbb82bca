# make test: create .venv if missing, install with pinned versions, run the suite.
# make demo: same install, then run the main job on the bundled default data.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
STAMP  := $(VENV)/.installed

.PHONY: test demo bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test,interop]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

demo: $(STAMP)
	$(VENV)/bin/grukit forecast

bench: $(STAMP)
	$(PIP) -e ".[bench]"
	$(PY) benchmarks/bench_layer.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
