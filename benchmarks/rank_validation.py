"""Rank configurations by their mean validation rank across tasks (issue 16's choice rule).

A *configuration* is a run folder's tag (the harness settings it was run with, e.g. ``4shot``
or ``8shot``) plus a method name; each tag folder holds one sub-folder per task with the
harness's ``results.json``. Only runs evaluated on **validation** are read, so the test split
plays no part in the choice. Within each task the configurations are ranked by balanced
accuracy (mean over seeds; rank 1 is best, ties share the mean rank, as
:func:`scipy.stats.rankdata` gives them), and the configuration with the lowest mean rank
over the tasks wins. A configuration missing on any task is listed but not ranked.

Example:
    python benchmarks/rank_validation.py --root benchmarks/results-qwen0.5b-validation
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

from scipy.stats import rankdata


def validation_scores(root: Path) -> dict[tuple[str, str], list[float]]:
    """``(configuration, task) -> balanced accuracy of each seed`` for every validation run under ``root``."""
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted(root.glob("*/*/results.json")):
        tag = path.parent.parent.name
        for run in json.loads(path.read_text())["runs"].values():
            if run.get("evaluated_on") != "validation":
                continue
            scores[(f"{tag}/{run['method']}", run["task"])].append(float(run["balanced_accuracy"]))
    return scores


def rank_table(scores: dict[tuple[str, str], list[float]]) -> str:
    """A markdown table: each configuration's validation balanced accuracy per task and its mean rank."""
    tasks = sorted({task for _, task in scores})
    configs = sorted({config for config, _ in scores})
    complete = [c for c in configs if all((c, t) in scores for t in tasks)]
    ranks: dict[str, list[float]] = defaultdict(list)
    for task in tasks:
        # Higher accuracy is better: rank the negated scores so rank 1 is the best.
        task_ranks = rankdata([-mean(scores[(c, task)]) for c in complete])
        for config, r in zip(complete, task_ranks, strict=True):
            ranks[config].append(float(r))
    order = sorted(configs, key=lambda c: (mean(ranks[c]) if c in ranks else float("inf"), c))
    lines = [
        "| configuration | " + " | ".join(tasks) + " | mean rank |",
        "|---" * (len(tasks) + 2) + "|",
    ]
    for config in order:
        cells = [
            f"{100 * mean(scores[(config, t)]):.1f} (n={len(scores[(config, t)])})" if (config, t) in scores else ""
            for t in tasks
        ]
        rank = f"{mean(ranks[config]):.2f}" if config in ranks else "not on every task"
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {rank} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="folder of <tag>/<task>/results.json")
    args = parser.parse_args(argv)
    scores = validation_scores(args.root)
    if not scores:
        parser.error(f"no validation runs under {args.root}: run run_eval.py with --evaluate-on validation")
    print(rank_table(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
