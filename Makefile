# Two entry points: `make demo` (set up, then run the demo) and `make test` (set up, then run the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-tests
export AMPLIFY_AGENTS_CACHE ?= $(CURDIR)/.cache
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The constraints file pins torch to the CPU build: an unpinned torch pulls GBs of CUDA.
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[offline,dev]'
	touch $(STAMP)

# The tests also need llama.cpp's OpenAI-compatible server (a compiled extra; the demo does not).
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[offline,dev,llama-server]'
	touch $(TEST_STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

lint: $(STAMP)
	$(BIN)/ruff check amplify_agents tests examples benchmarks
	$(BIN)/mypy amplify_agents

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scoring.py

clean:
	rm -rf $(VENV) .cache chroma_demo
