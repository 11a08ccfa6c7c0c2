# Two entry points: `make demo` (the main job, offline, local target) and `make test`.
# Dependencies come through uv, whose cache lives outside the clone (~/.cache/uv), so a
# fresh clone installs in seconds once the machine has seen the packages.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint examples clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==0.13.8
	$(UV) pip install -q --compile-bytecode --python $(PY) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m mlops_gen demo build/demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check generator tests bench

examples: $(STAMP)
	$(PY) -m mlops_gen examples

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build .local-ci
