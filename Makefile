# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fixtures notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,spark]'
	@# The Spark engine's tests need a Java runtime; install a headless one where it is missing.
	@command -v java >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
		|| echo "note: no Java runtime; the Spark tests will be skipped"; }
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/capi-audit demo --out reports/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check capi_audit tests benchmarks tools notebooks

# Two pytest-xdist workers (`make test WORKERS=0` runs in one process). Tests that share a session
# fixture (the fixture audits, the Spark session, the scenario_second report: tests/conftest.py)
# are one xdist group, so each is still computed once; the other worker takes the rest. A
# notebook's cells share one kernel: each notebook runs whole on one worker (loadfile).
WORKERS ?= 2

test: $(STAMP) lint
	MPLBACKEND=Agg $(VENV)/bin/pytest tests -n $(WORKERS) --dist loadgroup
	$(VENV)/bin/pytest -n $(WORKERS) --dist loadfile --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks

notebooks: $(STAMP)
	$(PY) tools/build_notebooks.py
	cd notebooks && ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace *.ipynb

bench: $(STAMP)
	$(PY) benchmarks/run.py

fixtures: $(STAMP)
	$(PY) -m capi_audit.synth.fixtures

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
