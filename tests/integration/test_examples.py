"""Each example script runs end to end (``--quick``) in a subprocess and prints what it shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MARKERS: dict[str, list[str]] = {
    "01_drop_in_selector.py": [
        "=== prompt ===",
        "\nWhy: ",
        "answer: ",
        "chain answer: ",
        "demonstrations used: ['",
    ],
    "02_local_vs_hosted.py": [
        "started an OpenAI-compatible server",
        "   local: answer=",
        "route=local model=",
        "  hosted: answer=",
        "route=hosted model=gemma-hosted",
        "fallback: answer=",
        "route=local (fallback)",
        "the hosted server is stopped",
    ],
    "03_chatbot.py": [
        "--- turn 1 ---",
        "--- turn 2 ---",
        "demos for this turn: ['",
        "thread 'alice' starts with 0 messages",
        "--- history of thread 'alice' ---",
        "human: ",
        "ai: ",
        "thread 'bob' had 0 messages, now 2",
    ],
    "04_rag.py": [
        "plain RAG",
        "RAG + AMPLIFY",
        "context: ['",
        "demos:   ['",
        "=== RAG + AMPLIFY prompt ===",
        "Context:\n[1] ",
    ],
    "05_agent_middleware.py": [
        "=== request the model received (demonstrations in the system prompt) ===",
        "Solved examples, each answer followed by its reasoning:",
        "agent answer: '",
        "agent state: ['human', 'ai'] (no demonstrations in it)",
        "=== request the model received (few-shot messages) ===",
        "[ai] ",
        "review queue: 1 pending",
    ],
    "06_from_examples.py": [
        "=== your prompt, your keys ===",
        "tokens with max_tokens=80: ",
        "retrieved: '",
        "aselect_examples: ['",
        "imported from LangChain's collection: 5",
    ],
}
EXTRA_ARGS = {"04_rag.py": ["--show-prompt"]}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", sorted(MARKERS))
def test_example_runs(script: str, bigbench_dir: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "AMPLIFY_BIGBENCH_DIR": str(bigbench_dir),
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / script),
            "--quick",
            "--store-dir",
            str(tmp_path / "chroma"),
            *EXTRA_ARGS.get(script, []),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for marker in MARKERS[script]:
        assert marker in done.stdout, f"{script}: {marker!r} missing from:\n{done.stdout[-3000:]}"
