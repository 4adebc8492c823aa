# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fixtures notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/capi-audit demo --out reports/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check capi_audit tests benchmarks tools notebooks

test: $(STAMP) lint
	MPLBACKEND=Agg $(VENV)/bin/pytest tests
	$(VENV)/bin/pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks

notebooks: $(STAMP)
	$(PY) tools/build_notebooks.py
	cd notebooks && ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace *.ipynb

bench: $(STAMP)
	$(PY) benchmarks/run.py

fixtures: $(STAMP)
	$(PY) -m capi_audit.synth.fixtures

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
