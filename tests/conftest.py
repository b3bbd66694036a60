"""Shared fixtures: each real model is loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub, and Chroma must not phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("AMPLIFY_AGENTS_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))

BIGBENCH_DIR = Path(
    os.environ.get("AMPLIFY_BIGBENCH_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench")
)
BIGBENCH_TASKS = ("snarks", "causal_judgment", "implicatures", "sports_understanding")


@pytest.fixture(scope="session")
def bigbench_dir() -> Path:
    if not BIGBENCH_DIR.is_dir():
        pytest.fail(f"BIG-bench data not found at {BIGBENCH_DIR}: set AMPLIFY_BIGBENCH_DIR.")
    return BIGBENCH_DIR


@pytest.fixture(scope="session")
def gemma():
    from amplify_agents.models import load_causal_lm

    return load_causal_lm("gemma-3-270m")


@pytest.fixture(scope="session")
def minilm():
    from amplify_agents.models import load_encoder

    return load_encoder("all-MiniLM-L6-v2")
