# falconet — the commands a newcomer runs on a fresh machine:
#   make demo   create .venv, install falconet, run it on the bundled scenario
#   make test   create .venv with the test extras, run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench clean help prereqs prereqs-test helm-tools helm-check image

help:
	@echo "make demo   - install into .venv and run falconet on the bundled intrusion scenario"
	@echo "make test   - install into .venv with test extras and run the test suite"
	@echo "make lint   - ruff over the code"
	@echo "make bench  - rules engine throughput benchmark (prints figures)"
	@echo "make helm-check - lint, render and validate the Helm chart (helm/falconet) offline"
	@echo "make image  - build the container image with buildah (see docs/deploy.md)"

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "falconet needs Python >= 3.11 (found: $$($(PYTHON) --version 2>&1)); set PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "cannot create a virtualenv: install the venv module (Debian: apt-get install python3-venv)"; exit 1; }

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e '.[test]'
	@touch $@

prereqs:
	@bash scripts/prereqs.sh

prereqs-test:
	@bash scripts/prereqs.sh --tests

demo: prereqs $(VENV)/.installed
	$(VENV)/bin/falconet demo

# helm, kubeconform and the Kubernetes schemas for the chart's tests: built once, cached in
# ~/.cache/falconet/tools (FALCONET_TOOLS_DIR); FALCONET_SKIP_HELM=1 skips them
helm-tools:
	@bash scripts/helm_tools.sh

helm-check: helm-tools $(VENV)/.installed-test
	$(PY) -m pytest -q tests/helm

# the container image (Dockerfile) with buildah, smoke-tested; without PYTHON_IMAGE the base
# is made here from Debian packages (no registry needed): scripts/build_image.sh
image:
	@bash scripts/build_image.sh

test: prereqs-test helm-tools $(VENV)/.installed-test
	$(PY) -m pytest -q

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check falconet rules sensors streams enrichers sinks tests bench

bench: $(VENV)/.installed
	$(PY) bench/rules_throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
