# ROX Workbook: the two commands of the README (`make demo`, `make test`) work on a fresh
# machine with only Python 3.11 and make. Everything is installed into .venv from uv.lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
VENV := .venv
UV := $(VENV)/bin/uv
ROX := $(VENV)/bin/rox
SAMPLE := engagements/sample
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_LINK_MODE := copy

.PHONY: demo test lint format lab lock sample clean help install
help:
	@echo "make demo   - install, generate the sample engagement, run it, print the report path"
	@echo "make test   - install and run the whole test suite (ruff included)"
	@echo "make lab    - open JupyterLab on notebooks/"
	@echo "make lock   - re-resolve uv.lock after changing dependencies in pyproject.toml"

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Installed from the lock file only (--frozen): every consultant gets the same versions.
# Byte-compiled at install: every notebook of `rox run` starts a kernel that imports pandas,
# scikit-learn, statsmodels and seaborn, and where PYTHONDONTWRITEBYTECODE is set (common in
# containers) each import would compile from source again: 3x slower imports, ~30 s a run.
$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --inexact --all-extras --compile-bytecode --python $(VENV)/bin/python
	$(VENV)/bin/python -m compileall -q rox_helpers
	@touch $@

install: $(VENV)/.installed

sample: install
	$(ROX) sample $(SAMPLE)

demo: sample
	@$(ROX) run $(SAMPLE) | tee $(VENV)/.last-run.log
	@echo ""
	@echo "Report: $$(ls -td $(SAMPLE)/runs/*/ | head -1)report.html (deck.pptx, appendix.xlsx and report.pdf beside it)"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The notebooks run under nbval (--nbval-lax) against the sample engagement, generated first;
# --dist loadfile keeps all cells of a notebook on one worker (one kernel).
test: install lint sample
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile --nbval-lax tests notebooks

lab: install
	$(VENV)/bin/jupyter lab --allow-root --notebook-dir=notebooks

lock: $(UV)
	$(UV) lock --upgrade --python 3.11

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
