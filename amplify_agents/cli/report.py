"""Rich tables of what the commands did: one renderer per report, shared by the commands that print it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from amplify_agents.builder import BuildReport
    from amplify_agents.demonstrations import Demonstration
    from amplify_agents.improve import ImproveHistory

__all__ = ["build_report_table", "counter_table", "demo_table", "eval_table", "history_table", "pct", "short"]


def short(text: str, n: int = 90) -> str:
    """``text`` on one line, cut to ``n`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def pct(value: Any) -> str:
    """A share as a percentage with one decimal; a dash for None or NaN."""
    return "–" if value is None or value != value else f"{100 * float(value):.1f}"


def demo_table(demos: Sequence[Demonstration], title: str) -> Table:
    """Demonstrations, one row each: short id (a unique prefix `inspect --explain` takes), label, text."""
    table = Table(title=title, show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("label", no_wrap=True)
    table.add_column("input, rationale (explainer / strategy)")
    for i, d in enumerate(demos, start=1):
        body = Text(short(d.input, 200))
        body.append("\n" + short(d.rationale, 200), style="dim")
        body.append(f" ({d.explainer} / {d.strategy})", style="italic dim")
        table.add_row(str(i), Text(d.demo_id[:12]), Text(d.label), body)
    return table


def counter_table(title: str, counts: Counter[str], total: int) -> Table:
    """Counts and shares of ``total``, most common first; the column is the title's last word."""
    table = Table(title=title)
    table.add_column(title.split(" ")[-1])
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for key, n in counts.most_common():
        table.add_row(Text(str(key)), str(n), f"{100 * n / max(1, total):.0f}%")
    return table


def build_report_table(report: BuildReport) -> Table:
    """A build's stages (count and seconds each) and its discards, for ``build`` and ``demo``."""
    table = Table(title=f"build: {report.task} ({report.strategy})")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_column("seconds", justify="right")
    for name, count, secs in report.rows():
        table.add_row(name, str(count), f"{secs:.1f}")
    for reason, count in sorted(report.discarded.items()):
        table.add_row(Text(f"discarded: {reason}"), str(count), "")
    return table


def history_table(history: ImproveHistory) -> Table:
    """An improve run: accuracy, errors and additions per round, and why it stopped."""
    table = Table(title=f"improve: {history.task} → {history.store}")
    for col in ("round", "accuracy", "bal. acc", "errors", "store", "added", "guarded"):
        table.add_column(col, justify="right")
    for r in history.rounds:
        table.add_row(
            str(r.round),
            f"{100 * r.accuracy:.1f}%",
            f"{100 * r.balanced_accuracy:.1f}%",
            str(r.n_errors),
            str(r.store_size),
            str(len(r.added)),
            str(r.guarded),
        )
    table.caption = f"best round {history.best_round}; stopped: {history.stop_reason}"
    return table


def eval_table(results: Any, task_name: str, split: str) -> Table:
    """An eval's summary: one row per method (accuracy, spread, AUROC, paired test against the reference)."""
    cfg = results.config
    rows = results.summary()
    has_ref = bool(rows) and "p_vs_reference" in rows[0]
    table = Table(title=f"eval ({split}): {task_name} · {cfg.model} · {cfg.n_shot}-shot · seeds {list(cfg.seeds)}")
    for col in ("method", "acc %", "± std", "bal. acc %", "AUROC", "top answer", "n"):
        table.add_column(col, justify="left" if col in ("method", "top answer") else "right")
    if has_ref:
        table.add_column(f"Δ vs {cfg.reference}", justify="right")
        table.add_column("p", justify="right")
    for r in rows:
        cells: list[str | Text] = [
            Text(r["method"] + (" (short)" if r["short"] else "")),
            pct(r["accuracy_mean"]),
            pct(r["accuracy_std"]),
            pct(r["balanced_accuracy_mean"]),
            "–" if r["auroc_mean"] != r["auroc_mean"] else f"{r['auroc_mean']:.2f}",
            Text(f"{r['top_label']} {pct(r['top_label_share'])}%"),
            str(r["n_items"]),
        ]
        if has_ref:
            cells += [f"{100 * r['diff_vs_reference']:+.1f}", f"{r['p_vs_reference']:.2g}"]
        table.add_row(*cells)
    return table
