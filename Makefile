# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv if it is absent and install the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint

$(PY):
	python3 -m venv $(VENV)

# `python -m cuda_ext.build` compiles the fused patch-embedding op (CPU always, CUDA
# wherever a toolkit exists) into cuda_ext/_build/; it is a no-op when up to date, and
# test/demo run it so that changed C++/CUDA sources are rebuilt.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --progress-bar on -e ".[dev]"
	$(PY) -m cuda_ext.build
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m cuda_ext.build
	$(PY) -m domains.remote_sensing.train

test: install
	$(PY) -m cuda_ext.build
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
