# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs crossent, runs the main job on the bundled data
#   make test   creates or reuses .venv, installs the test dependencies, runs the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is always pinned: on these machines 2.13.0 is a CPU build on local disk,
# while an unpinned torch downloads a CUDA build of several GB.
TORCH  := torch==2.13.0

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall only when the project's metadata changes.
$(VENV)/.installed-base: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[experiments]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[all]"
	touch $@ $(VENV)/.installed-base

# The seeds' worked examples, then seed 004's experiments on the bundled data
# (about a minute of CPU): report.html, report.md, results.json and plots in report/.
demo: $(VENV)/.installed-base
	$(PY) -m crossent.demo
	$(VENV)/bin/crossent report --out report

test: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 -q
	$(VENV)/bin/ruff check .

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy src/crossent

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
