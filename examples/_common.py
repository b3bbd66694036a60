"""Shared helpers of the examples: a small demonstration store from a BIG-bench task, fast.

The examples need a store in seconds, so no explainer runs here: each demonstration gets a
rationale you give (a dict input -> rationale), or a stand-in built from the AMPLIFY template
with the input's longest words as "key words". Real rationales come from post hoc
explanations: see ``amplify_agents.builder`` for the full pipeline.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

# Set before the libraries that read them are imported: no hub calls, no Chroma telemetry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from amplify_agents import Demonstration, Example, RationaleStore, Task, get_template, load_task  # noqa: E402

__all__ = [
    "add_common_args",
    "build_demo_store",
    "keyword_rationale",
    "load_bigbench_task",
    "pick_queries",
    "store_directory",
]

_DEFAULT_BIGBENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench"


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments every example takes."""
    parser.add_argument("--quick", action="store_true", help="a tiny run (few demos and queries), for tests")
    parser.add_argument("--model", default="gemma-3-270m", help="local causal LM (offline name, directory or .gguf)")
    parser.add_argument("--task", default="sports_understanding", help="BIG-bench task folder name")
    parser.add_argument(
        "--bigbench-dir",
        type=Path,
        default=Path(os.environ.get("AMPLIFY_BIGBENCH_DIR", _DEFAULT_BIGBENCH)),
        help="folder holding <task>/task.json (default: $AMPLIFY_BIGBENCH_DIR or the shared data folder)",
    )
    parser.add_argument("--store-dir", type=Path, default=None, help="Chroma directory (default: a temp dir)")
    parser.add_argument("--k", type=int, default=None, help="demonstrations per prompt")
    return parser


def load_bigbench_task(args: argparse.Namespace) -> Task:
    """The task named by ``--task`` under ``--bigbench-dir``."""
    path = Path(args.bigbench_dir) / args.task
    if not path.exists():
        raise SystemExit(f"No BIG-bench task at {path}: pass --bigbench-dir or set AMPLIFY_BIGBENCH_DIR.")
    return load_task(path)


def store_directory(args: argparse.Namespace) -> Path:
    """``--store-dir``, or a fresh temp dir."""
    return Path(args.store_dir) if args.store_dir else Path(tempfile.mkdtemp(prefix="amplify-example-"))


def keyword_rationale(example: Example, *, k: int = 2) -> str:
    """A stand-in AMPLIFY rationale: the input's ``k`` longest words, in text order.

    Not a post hoc explanation, only the same shape ("The key words: ... are important
    clues to predict <label> as the correct answer.").
    """
    words = [w.strip(".,;:!?\"'()") for w in example.input.split()]
    longest = set(sorted((w for w in words if w), key=len, reverse=True)[:k])
    keywords = list(dict.fromkeys(w for w in words if w in longest))
    return get_template("amplify").render(example.label, keywords)


def build_demo_store(
    task: Task,
    directory: Path,
    *,
    n: int = 8,
    store_name: str | None = None,
    rationales: Mapping[str, str] | Callable[[Example], str] | None = None,
    exclude: Collection[str] = (),
    seed: int = 0,
) -> RationaleStore:
    """A store of ``n`` demonstrations of ``task`` (labels balanced) in an embedded Chroma.

    Args:
        task: the task the demonstrations come from.
        directory: the Chroma directory.
        n: how many demonstrations.
        store_name: the store's name (default ``<task>-demos``).
        rationales: input -> rationale, or a function of the example (default
            :func:`keyword_rationale`). With a dict, only its inputs become demonstrations.
        exclude: inputs to leave out (the queries the example will ask).
        seed: which examples are drawn.
    """
    pool = [e for e in task.examples if e.input not in set(exclude)]
    if isinstance(rationales, Mapping):
        pool = [e for e in pool if e.input in rationales]
    random.Random(seed).shuffle(pool)
    by_label: dict[str, list[Example]] = {label: [e for e in pool if e.label == label] for label in task.labels}
    chosen: list[Example] = []
    while len(chosen) < n and any(by_label.values()):
        for label in task.labels:  # round-robin over labels keeps the store balanced
            if by_label[label] and len(chosen) < n:
                chosen.append(by_label[label].pop(0))

    def rationale_of(example: Example) -> str:
        if isinstance(rationales, Mapping):
            return rationales[example.input]
        return (rationales or keyword_rationale)(example)

    store = RationaleStore.local(store_name or f"{task.name}-demos".replace("_", "-"), directory)
    store.add(
        Demonstration(
            input=e.input,
            label=e.label,
            rationale=rationale_of(e),
            task=task.name,
            explainer="provided",
            strategy="manual",
            example_id=e.id,
        )
        for e in chosen
    )
    return store


def pick_queries(task: Task, n: int, *, exclude: Collection[str] = (), seed: int = 1) -> list[Example]:
    """``n`` examples of ``task`` to ask, labels alternating, none of them in ``exclude``."""
    pool = [e for e in task.examples if e.input not in set(exclude)]
    random.Random(seed).shuffle(pool)
    picked: list[Example] = []
    for i in range(n):
        label = task.labels[i % len(task.labels)]
        match = next((e for e in pool if e.label == label and e not in picked), None)
        if match is not None:
            picked.append(match)
    return picked
