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
# llama.cpp is compiled for a portable CPU, not the build machine's (-march=native): a native
# build on a CPU with AMX and AVX-512 segfaulted in llama_decode on the first request
# (llama-cpp-python 0.3.36, 2026-12-02). --no-cache-dir: pip would reuse a native wheel it cached.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF $(if $(filter x86_64,$(shell uname -m)),-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
$(TEST_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q --no-cache-dir -c constraints.txt -e '.[offline,dev,llama-server,ray]'
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
