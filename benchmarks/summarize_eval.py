"""Summarise the results files of ``run_eval.py`` across tasks: one markdown overview and one plot.

Reads ``<root>/<task>/results.json`` for every task folder under ``--root`` and prints

* the cross-task overview: balanced accuracy (mean ± std over seeds) per method and task,
  with the accuracy difference against IO and its paired McNemar p-value;
* per task, the harness's own table (accuracy, 95% interval, balanced accuracy, AUROC,
  top answer share), as written to ``results.md``;

and writes ``<root>/overview.png`` (balanced accuracy per method, one panel per task,
error bars = std over seeds, the dashed line = chance).

    python benchmarks/summarize_eval.py --root benchmarks/results > benchmarks/results/overview.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from amplify_agents.eval import EvalConfig, EvalResults

ROOT = Path(__file__).resolve().parent / "results"


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}"


def load(root: Path) -> dict[str, EvalResults]:
    """Every task's results, with every method and seed the file has runs of (a file written by
    several commands keeps the runs of each, and the config of the last)."""
    found = {}
    for path in sorted(root.glob("*/results.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        config = EvalConfig.from_dict(data["config"])
        methods = dict.fromkeys(run["method"] for run in data["runs"].values())
        seeds = tuple(sorted({int(run["seed"]) for run in data["runs"].values()}))
        found[path.parent.name] = EvalResults.from_json(path, replace(config, methods=tuple(methods), seeds=seeds))
    return found


def overview(results: dict[str, EvalResults], reference: str = "io") -> str:
    """The cross-task table, each method against ``reference`` (exact McNemar, pooled over seeds)."""
    tasks = list(results)
    summaries = {t: {row["method"]: row for row in r.summary()} for t, r in results.items()}
    methods = list(dict.fromkeys(m for r in results.values() for m in r.methods))
    head = ["method", *tasks, f"tasks above {reference} (p < 0.05) / below"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for method in methods:
        cells, above, below = [method], 0, 0
        for task in tasks:
            row = summaries[task].get(method)
            if row is None:
                cells.append("")
                continue
            cell = f"{_pct(row['balanced_accuracy_mean'])} ± {_pct(row['balanced_accuracy_std'])}"
            if row["n_seeds"] < len(results[task].config.seeds):
                cell += f" [{row['n_seeds']} seed{'s' if row['n_seeds'] > 1 else ''}]"
            if method != reference and reference in summaries[task]:
                test = results[task].compare(method, reference)
                diff, p = test.diff, test.p_value
                cell += f" ({100 * diff:+.1f}, p={p:.2g})"
                above += p < 0.05 and diff > 0
                below += p < 0.05 and diff < 0
            cells.append(cell)
        cells.append(f"{above} / {below}")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({len(r.config.seeds) for r in results.values()})
    n_items = sorted({r.config.test_size for r in results.values()})
    note = (
        f"\nBalanced accuracy in % (chance = 50 on these two-label tasks), mean ± std over "
        f"{'/'.join(map(str, seeds))} seeds ([n seeds] where a method has fewer); in brackets the "
        f"accuracy difference to {reference} in points and the exact McNemar p-value on the same test items "
        f"pooled over seeds ({'/'.join(map(str, n_items))} test items per seed). The last column "
        f"counts the tasks where the method is significantly above / below {reference}."
    )
    return "\n".join(lines) + "\n" + note


def cost(root: Path) -> str:
    """Seconds per demonstration built and per test item answered, per method and task (mean over
    the seeds that built or scored themselves: a run that reused another's demonstrations or
    scores is left out of that column)."""
    rows: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for path in sorted(root.glob("*/results.json")):
        for run in json.loads(path.read_text(encoding="utf-8"))["runs"].values():
            built, answered = rows.setdefault(run["method"], {}).setdefault(path.parent.name, ([], []))
            seconds, n_demos = run["seconds"], run["demo"].get("n_demos", 0)
            if n_demos and seconds["demos"] > 0.01:
                built.append(seconds["demos"] / n_demos)
            if not seconds.get("reused_scores") and run["n_items"]:
                answered.append(seconds["score"] / run["n_items"])
    tasks = sorted({t for by_task in rows.values() for t in by_task})
    head = ["method", *(f"{t}: s/demo built, s/item answered" for t in tasks)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]

    def mean(xs: list[float]) -> str:
        return f"{sum(xs) / len(xs):.2f}" if xs else "–"

    for method, by_task in rows.items():
        cells = [method]
        for task in tasks:
            built, answered = by_task.get(task, ([], []))
            cells.append(f"{mean(built)}, {mean(answered)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, EvalResults], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 5.5), sharey=True, squeeze=False)
    # One method order for every panel (the y axis is shared); a method a task lacks is a gap.
    names = list(dict.fromkeys(m for r in results.values() for m in r.methods))
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = {r["method"]: r for r in results[task].summary()}
        nan = float("nan")
        means = [100 * rows[n]["balanced_accuracy_mean"] if n in rows else nan for n in names]
        stds = [100 * rows[n]["balanced_accuracy_std"] if n in rows else 0.0 for n in names]
        baseline = ("zero-shot", "io", "io-semantic")
        colors = ["#888888" if n in baseline else "#4C72B0" for n in names]
        colors = ["#DD8452" if "+cal" in n else c for n, c in zip(names, colors, strict=True)]
        ax.barh(range(len(names)), means, xerr=stds, color=colors, capsize=2)
        ax.axvline(50, linestyle="--", color="black", linewidth=1)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(30, 80)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("balanced accuracy %")
    fig.suptitle("Gemma 3 270M, 8-shot, 3 seeds x 100 test items (orange: calibrated)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--against", default="io", help="the method every other is compared with (default: io)")
    parser.add_argument("--cost", action="store_true", help="print only the seconds per demonstration and per item")
    args = parser.parse_args()
    if args.cost:
        print(cost(args.root))
        return
    results = load(args.root)
    if not results:
        raise SystemExit(f"No results.json under {args.root}/*/: run benchmarks/run_eval.py first.")
    print("## Overview\n")
    print(overview(results, args.against))
    for task, res in results.items():
        print(f"\n## {task}\n")
        print(res.table())
    if not args.no_plot:
        print(f"\n![overview]({plot(results, args.root / 'overview.png').name})")


if __name__ == "__main__":
    main()
