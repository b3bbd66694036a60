"""Results of an evaluation: per-run records, the per-method summary, table, JSON, CSV, plot.

A *run* is one (method, seed): its metrics and every test item's gold label, prediction
and label probabilities, so paired tests and new metrics can be computed later from the
JSON alone. The summary and its statistics are described in :mod:`amplify_agents.eval.stats`.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amplify_agents.eval import stats
from amplify_agents.eval.config import EvalConfig
from amplify_agents.files import atomic_write

__all__ = ["EvalResults", "RESULTS_FORMAT", "read_results_file", "write_results_file"]

RESULTS_FORMAT = "amplify-agents-eval/1"


def read_results_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The finished runs of a results file, by run key (empty when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path} is not an evaluation results file (format {data.get('format')!r}).")
    return dict(data.get("runs", {}))


def write_results_file(
    path: str | os.PathLike[str], runs: Mapping[str, Mapping[str, Any]], config: EvalConfig | None = None
) -> Path:
    """Write ``runs`` atomically (temporary file + rename): an interrupted write never corrupts it."""
    payload = {"format": RESULTS_FORMAT, "config": config.to_dict() if config else None, "runs": dict(runs)}
    return atomic_write(path, lambda fh: json.dump(payload, fh, indent=1, allow_nan=True))


def _fmt(value: float, pct: bool = True) -> str:
    if value != value:  # NaN
        return "–"
    return f"{100 * value:.1f}" if pct else f"{value:.2f}"


def _pvalue(p: float) -> str:
    if p != p:
        return "–"
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


@dataclass
class EvalResults:
    """The runs of one :class:`EvalConfig`, with what was computed now and what was resumed.

    Attributes:
        config: the configuration.
        runs: one record per (method, seed), in config order (methods, then seeds).
        computed: run keys computed by this call of :func:`run_eval`.
        skipped: run keys found finished in the results file and not recomputed.
        labels: the task's label space.
    """

    config: EvalConfig
    runs: list[dict[str, Any]]
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    labels: tuple[str, ...] = ()

    # ---------------------------------------------------------------- access
    @property
    def methods(self) -> list[str]:
        seen = dict.fromkeys(r["method"] for r in self.runs)
        return [m for m in self.config.methods if m in seen]

    def runs_for(self, method: str) -> list[dict[str, Any]]:
        """The runs of ``method``, in seed order."""
        return [r for r in self.runs if r["method"] == method]

    def accuracy(self, method: str, seed: int) -> float:
        """Accuracy of one (method, seed)."""
        for r in self.runs:
            if r["method"] == method and r["seed"] == seed:
                return float(r["accuracy"])
        raise KeyError(f"No run of {method!r} with seed {seed}.")

    @staticmethod
    def _correct(runs: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], bool]:
        return {(r["seed"], it["id"]): it["pred"] == it["gold"] for r in runs for it in r["items"]}

    def compare(self, method: str, reference: str | None = None) -> stats.McNemarResult:
        """Exact McNemar test of ``method`` against ``reference`` (default: the config's), over seeds."""
        ref = reference or self.config.reference
        return stats.mcnemar(self._correct(self.runs_for(method)), self._correct(self.runs_for(ref)))

    # --------------------------------------------------------------- summary
    def summary(self) -> list[dict[str, Any]]:
        """One row per method: mean ± std over seeds, intervals, chance-corrected figures, paired test."""
        has_ref = any(r["method"] == self.config.reference for r in self.runs)
        rows = []
        for method in self.methods:
            runs = self.runs_for(method)
            acc = [r["accuracy"] for r in runs]
            mean, std = stats.mean_std(acc)
            bal_mean, bal_std = stats.mean_std([r["balanced_accuracy"] for r in runs])
            au_mean, au_std = stats.mean_std([r["auroc"] for r in runs if r.get("auroc") is not None])
            t_low, t_high = stats.t_interval(acc)
            b_low, b_high = stats.bootstrap_ci([[it["pred"] == it["gold"] for it in r["items"]] for r in runs])
            preds = Counter(it["pred"] if it["pred"] is not None else "<none>" for r in runs for it in r["items"])
            n_items = sum(preds.values())
            top_label, top_count = preds.most_common(1)[0] if preds else ("", 0)
            row: dict[str, Any] = {
                "method": method,
                "n_seeds": len(runs),
                "n_items": n_items,
                "accuracy_mean": mean,
                "accuracy_std": std,
                "ci95_bootstrap": [b_low, b_high],
                "ci95_t": [t_low, t_high],
                "balanced_accuracy_mean": bal_mean,
                "balanced_accuracy_std": bal_std,
                "auroc_mean": au_mean,
                "auroc_std": au_std,
                "pred_dist": {lab: n / n_items for lab, n in sorted(preds.items())} if n_items else {},
                "top_label": top_label,
                "top_label_share": top_count / n_items if n_items else float("nan"),
                "n_demos_mean": stats.mean_std([r["demo"].get("n_demos", 0) for r in runs])[0],
                "short": any(r["demo"].get("short", False) for r in runs),
                "seconds_mean": stats.mean_std([r["seconds"]["total"] for r in runs])[0],
            }
            if has_ref:
                test = self.compare(method)
                row.update(
                    reference=self.config.reference,
                    diff_vs_reference=test.diff,
                    only_method=test.only_a,
                    only_reference=test.only_b,
                    p_vs_reference=test.p_value,
                )
            rows.append(row)
        return rows

    def table(self) -> str:
        """A markdown table of :meth:`summary` (accuracies in %)."""
        ref = self.config.reference
        rows = self.summary()
        has_ref = bool(rows) and "p_vs_reference" in rows[0]
        head = ["method", "acc (mean ± std)", "95% CI", "bal. acc", "AUROC", "top answer", "n"]
        if has_ref:
            head[5:5] = [f"Δ vs {ref}", "p (McNemar)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        for r in rows:
            low, high = r["ci95_bootstrap"]
            cells = [
                r["method"] + (" (short)" if r["short"] else ""),
                f"{_fmt(r['accuracy_mean'])} ± {_fmt(r['accuracy_std'])}",
                f"[{_fmt(low)}, {_fmt(high)}]",
                f"{_fmt(r['balanced_accuracy_mean'])} ± {_fmt(r['balanced_accuracy_std'])}",
                _fmt(r["auroc_mean"], pct=False),
                f"{r['top_label']} {_fmt(r['top_label_share'])}%",
                f"{r['n_seeds']}×{r['n_items'] // max(1, r['n_seeds'])}",
            ]
            if has_ref:
                cells[5:5] = [f"{100 * r['diff_vs_reference']:+.1f}", _pvalue(r["p_vs_reference"])]
            lines.append("| " + " | ".join(cells) + " |")
        cfg = self.config
        notes = (
            f"\nTask {Path(cfg.task).name}, model {cfg.model}, {cfg.n_shot}-shot, k={cfg.k}, "
            f"{cfg.demo_setting} demos, seeds {list(cfg.seeds)}. Accuracy in %, mean ± std over seeds; "
            "95% CI: two-stage bootstrap over seeds × test items; bal. acc: mean recall over gold labels; "
            "AUROC: ranking of items by p(first label) (2-label tasks); top answer: the most frequent "
            "prediction and its share"
            + (
                f"; Δ and p: paired exact McNemar test against {ref} on the same items, pooled over seeds."
                if has_ref
                else "."
            )
            + " (short): fewer demonstrations than n_shot were eligible."
        )
        return "\n".join(lines) + "\n" + notes

    # ----------------------------------------------------------------- files
    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the runs (and the summary) in the results-file format (resumable by :func:`run_eval`)."""
        runs = {r["key"]: r for r in self.runs}
        path = write_results_file(path, runs, self.config)
        data = json.loads(path.read_text(encoding="utf-8"))
        data["summary"] = self.summary()
        path.write_text(json.dumps(data, indent=1, allow_nan=True), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike[str], config: EvalConfig | None = None) -> EvalResults:
        """Read results written by :meth:`to_json` or :func:`run_eval` (``config``: the file's by default)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        cfg = config or EvalConfig.from_dict(data["config"])
        runs = [r for r in data.get("runs", {}).values() if r["method"] in cfg.methods and r["seed"] in cfg.seeds]
        order = {(m, s): i for i, (m, s) in enumerate((m, s) for m in cfg.methods for s in cfg.seeds)}
        runs.sort(key=lambda r: order.get((r["method"], r["seed"]), len(order)))
        labels = tuple(runs[0].get("labels", ())) if runs else ()
        return cls(cfg, runs, labels=labels)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per (method, seed) (``kind=run``), then one per method (``kind=summary``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = [
            "kind",
            "method",
            "seed",
            "n_items",
            "accuracy",
            "accuracy_std",
            "ci95_low",
            "ci95_high",
            "balanced_accuracy",
            "auroc",
            "top_label",
            "top_label_share",
            "pred_dist",
            "n_demos",
            "demo_labels",
            f"diff_vs_{self.config.reference}",
            f"p_vs_{self.config.reference}",
            "seconds",
        ]
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for r in self.runs:
                dist = r["pred_dist"]
                top = max(dist, key=dist.__getitem__) if dist else ""
                writer.writerow(
                    [
                        "run",
                        r["method"],
                        r["seed"],
                        r["n_items"],
                        r["accuracy"],
                        "",
                        "",
                        "",
                        r["balanced_accuracy"],
                        r.get("auroc"),
                        top,
                        dist.get(top, ""),
                        json.dumps(dist),
                        r["demo"].get("n_demos", 0),
                        json.dumps(r["demo"].get("demo_labels", {})),
                        "",
                        "",
                        r["seconds"]["total"],
                    ]
                )
            for s in self.summary():
                writer.writerow(
                    [
                        "summary",
                        s["method"],
                        "",
                        s["n_items"],
                        s["accuracy_mean"],
                        s["accuracy_std"],
                        s["ci95_bootstrap"][0],
                        s["ci95_bootstrap"][1],
                        s["balanced_accuracy_mean"],
                        s["auroc_mean"],
                        s["top_label"],
                        s["top_label_share"],
                        json.dumps(s["pred_dist"]),
                        s["n_demos_mean"],
                        "",
                        s.get("diff_vs_reference", ""),
                        s.get("p_vs_reference", ""),
                        s["seconds_mean"],
                    ]
                )
        return path

    def to_markdown(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`table` to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.table() + "\n", encoding="utf-8")
        return path

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """A PNG bar plot per method: accuracy (bootstrap 95% CI) and balanced accuracy (± std)."""
        import numpy as np

        from amplify_agents.viz import pyplot, save_figure

        plt = pyplot()

        rows = self.summary()
        names = [r["method"] for r in rows]
        acc = np.array([r["accuracy_mean"] for r in rows])
        low = np.array([r["ci95_bootstrap"][0] for r in rows])
        high = np.array([r["ci95_bootstrap"][1] for r in rows])
        bal = np.array([r["balanced_accuracy_mean"] for r in rows])
        bal_std = np.nan_to_num(np.array([r["balanced_accuracy_std"] for r in rows]))
        x = np.arange(len(rows))
        fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(rows) + 4), 4.5))
        yerr = np.nan_to_num(np.vstack([acc - low, high - acc]).clip(min=0))
        ax.bar(x - 0.2, 100 * acc, 0.4, yerr=100 * yerr, capsize=3, label="accuracy (95% CI)")
        ax.bar(x + 0.2, 100 * bal, 0.4, yerr=100 * bal_std, capsize=3, label="balanced accuracy (± std)")
        if self.labels:
            ax.axhline(100 / len(self.labels), color="grey", linestyle="--", linewidth=1, label="chance (1/labels)")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("%")
        ax.set_ylim(0, 100)
        cfg = self.config
        ax.set_title(f"{Path(cfg.task).name} · {cfg.model} · {cfg.n_shot}-shot · {len(cfg.seeds)} seeds")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never over a bar
        return save_figure(fig, path)
