# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv if it is absent and install the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --progress-bar on -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m domains.remote_sensing.train

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
