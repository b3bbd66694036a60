"""Pictures: explanation heat-maps (HTML and PNG), accuracy per improve round, per method.

* :func:`explanation_html`: the input text with every word's background coloured by its
  score (red supports the target label, blue opposes it), the score on hover
  (``title=``), the top-k keywords underlined; everything HTML-escaped.
* :func:`explanation_png`: the same as an image of coloured word boxes (matplotlib, Agg).
* :func:`plot_rounds`: validation accuracy and balanced accuracy per round of
  :func:`~amplify_agents.improve.improve`.
* :func:`plot_methods`: the evaluation's per-method bar plot
  (:meth:`amplify_agents.eval.EvalResults.plot`, reused, not redrawn).

matplotlib is imported on first use (``pip install 'amplify-agents[plots]'``).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from amplify_agents.explainers.base import Explanation
from amplify_agents.explainers.words import split_words

if TYPE_CHECKING:
    from amplify_agents.eval import EvalResults
    from amplify_agents.improve import ImproveHistory

__all__ = ["explanation_html", "explanation_png", "plot_methods", "plot_rounds", "pyplot", "save_figure", "score_color"]

_POS = (214, 39, 40)  # red: supports the target label
_NEG = (31, 119, 180)  # blue: opposes it


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only), with a clear error when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev and [plots] dependency
        raise ImportError("Pictures need matplotlib: pip install 'amplify-agents[plots]'.") from exc
    matplotlib.use("Agg")  # files only, never a window (servers, CI)
    import matplotlib.pyplot as plt

    return plt


def _scale(scores: Sequence[float]) -> float:
    finite = [abs(s) for s in scores if s == s and abs(s) != float("inf")]
    top = max(finite, default=0.0)
    return top if top > 0 else 1.0


def score_color(score: float, scale: float) -> tuple[int, int, int, float]:
    """RGBA of a word: red for positive, blue for negative, opacity ``|score| / scale`` (0..1)."""
    if score != score:  # NaN: no colour
        return (*_POS, 0.0)
    alpha = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    return (*(_POS if score >= 0 else _NEG), alpha)


def _segments(explanation: Explanation) -> list[tuple[str, int | None]]:
    """The text as (piece, word index or None for the gaps between words), in order.

    The words are re-found in the text with the explainers' own splitter, so spacing and
    line breaks survive; if they do not match (an explanation built by hand), the words
    are joined by spaces.
    """
    text, words = explanation.text, explanation.words
    found = split_words(text)
    if [w.text for w in found] != list(words):
        out: list[tuple[str, int | None]] = []
        for i, word in enumerate(words):
            if i:
                out.append((" ", None))
            out.append((word, i))
        return out
    out, last = [], 0
    for i, found_word in enumerate(found):
        if found_word.start > last:
            out.append((text[last : found_word.start], None))
        out.append((found_word.text, i))
        last = found_word.end
    if last < len(text):
        out.append((text[last:], None))
    return out


def explanation_html(explanation: Explanation, *, full_document: bool = True, title: str | None = None) -> str:
    """An HTML heat-map of ``explanation``: each word coloured by its score, the score on hover.

    Args:
        explanation: what to draw (its ``words`` and ``word_scores``).
        full_document: a complete page (``<!DOCTYPE html>`` ...); False gives a ``<div>`` to embed.
        title: a heading (default: the target label and the explainer).

    Every word is a ``<span class="w" title="score: +0.1234">`` whose background opacity is
    ``|score| / max |score|``; the top-k keywords are underlined. Text is HTML-escaped.
    """
    scores = list(explanation.word_scores)
    scale = _scale(scores)
    top = {w.lower() for w in explanation.top_words}
    parts = []
    for piece, index in _segments(explanation):
        if index is None:
            parts.append(html.escape(piece).replace("\n", "<br>"))
            continue
        score = scores[index] if index < len(scores) else float("nan")
        r, g, b, a = score_color(score, scale)
        key = " top" if piece.lower() in top else ""
        parts.append(
            f'<span class="w{key}" style="background-color: rgba({r}, {g}, {b}, {a:.3f})" '
            f'title="score: {score:+.4f}" data-score="{score:.6g}">{html.escape(piece)}</span>'
        )
    heading = title if title is not None else f"Explanation of “{explanation.target}” ({explanation.explainer})"
    keywords = ", ".join(html.escape(w) for w in explanation.top_words) or "none"
    body = (
        '<div class="amplify-explanation">'
        f"<h3>{html.escape(heading)}</h3>"
        f'<p class="text">{"".join(parts)}</p>'
        f'<p class="legend">Red supports <b>{html.escape(explanation.target)}</b>, blue opposes it; '
        f"opacity is |score| / {scale:.4g}. Hover a word for its score. Top keywords: {keywords}.</p>"
        "</div>"
    )
    if not full_document:
        return body
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
        ".text{font-size:1.2em;line-height:2}"
        ".w{padding:0.1em 0.15em;border-radius:0.2em}"
        ".w.top{text-decoration:underline;font-weight:600}"
        ".legend{color:#555;font-size:0.9em}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(heading)}</title><style>{style}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def explanation_png(
    explanation: Explanation,
    path: str | os.PathLike[str],
    *,
    width: float = 8.0,
    dpi: int = 100,
    fontsize: float = 12.0,
) -> Path:
    """Draw ``explanation`` as coloured word boxes in a PNG at ``path``.

    The image is ``width * dpi`` pixels wide; its height grows with the number of lines
    the words wrap onto. A colour bar maps colours to scores.
    """
    plt = pyplot()
    page = _Page.of(width, dpi, fontsize)
    top = {w.lower() for w in explanation.top_words}
    placed = _place_words(plt, page, list(explanation.words), list(explanation.word_scores), top)
    n_lines = placed[-1][1] + 1 if placed else 1
    height_px = page.header_px + n_lines * page.line_px + page.footer_px
    fig = plt.figure(figsize=(width, height_px / dpi), dpi=dpi)
    fig.text(
        page.margin / page.width_px,
        1 - 0.25 * dpi / height_px,
        f"{explanation.explainer} → {explanation.target}",
        fontsize=fontsize * 0.9,
        va="center",
        color="#333",
        parse_math=False,
    )
    cmap, norm = _colormap(_scale(explanation.word_scores))
    for x0, line, w_px, word, score in placed:
        left = (page.margin + x0) / page.width_px
        bottom = 1 - (page.header_px + (line + 1) * page.line_px) / height_px
        box_h = 0.8 * page.line_px / height_px
        face = cmap(norm(score)) if score == score else (1, 1, 1, 1)
        box = plt.Rectangle((left, bottom), w_px / page.width_px, box_h, transform=fig.transFigure)
        box.set(facecolor=face, edgecolor="#999", linewidth=0.5)
        fig.patches.append(box)
        weight = "bold" if word.lower() in top else "normal"
        # parse_math=False: "$" is text
        fig.text(
            left + 0.05 * dpi / page.width_px,
            bottom + box_h / 2,
            word,
            fontsize=fontsize,
            va="center",
            weight=weight,
            parse_math=False,
        )
    bar_ax = fig.add_axes((page.margin / page.width_px, 0.25 * dpi / height_px, 0.5, 0.15 * dpi / height_px))
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=bar_ax, orientation="horizontal")
    bar_ax.tick_params(labelsize=8)
    # No bbox="tight": the size stays as documented.
    return save_figure(fig, path, dpi=dpi, tight=False, facecolor="white")


class _Page(NamedTuple):
    """The PNG's geometry in pixels: margins, the gap between words, line, header and footer heights."""

    width: float
    dpi: int
    fontsize: float
    width_px: float
    margin: float
    gap: float
    line_px: float
    header_px: float
    footer_px: float

    @classmethod
    def of(cls, width: float, dpi: int, fontsize: float) -> _Page:
        line_px = fontsize * 2.0 * dpi / 72
        return cls(width, dpi, fontsize, width * dpi, 0.25 * dpi, 0.08 * dpi, line_px, 0.45 * dpi, 0.75 * dpi)


def _place_words(
    plt: Any, page: _Page, words: Sequence[str], scores: Sequence[float], top: set[str]
) -> list[tuple[float, int, float, str, float]]:
    """(x, line, width, word, score) of each word, wrapped onto lines of the page's width.

    The words are laid out on a throw-away figure first: its renderer measures each word's width.
    """
    probe = plt.figure(figsize=(page.width, 1.0), dpi=page.dpi)
    renderer = probe.canvas.get_renderer()
    usable = page.width_px - 2 * page.margin
    placed: list[tuple[float, int, float, str, float]] = []
    x, line = 0.0, 0
    for i, word in enumerate(words):
        weight = "bold" if word.lower() in top else "normal"
        t = probe.text(0, 0, word, fontsize=page.fontsize, weight=weight, parse_math=False)
        w_px = t.get_window_extent(renderer=renderer).width + 0.1 * page.dpi
        t.remove()
        if x > 0 and x + w_px > usable:
            x, line = 0.0, line + 1
        placed.append((x, line, w_px, word, scores[i] if i < len(scores) else float("nan")))
        x += w_px + page.gap
    plt.close(probe)
    return placed


def _colormap(scale: float) -> tuple[Any, Any]:
    """Blue (opposes) - white - red (supports), normalised to ``[-scale, scale]``."""
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    neg = (_NEG[0] / 255, _NEG[1] / 255, _NEG[2] / 255)
    pos = (_POS[0] / 255, _POS[1] / 255, _POS[2] / 255)
    cmap = LinearSegmentedColormap.from_list("amplify", [neg, (1.0, 1.0, 1.0), pos])
    return cmap, Normalize(vmin=-scale, vmax=scale)


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120, tight: bool = True, **savefig: Any) -> Path:
    """Write ``fig`` to ``path`` (its folder created), close it, return the path.

    ``tight`` runs ``fig.tight_layout()`` first; ``savefig`` goes to ``fig.savefig``. The
    evaluation's plot (:meth:`amplify_agents.eval.EvalResults.plot`) saves through this too.
    """
    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, **savefig)
    pyplot().close(fig)
    return path


def plot_rounds(history: ImproveHistory, path: str | os.PathLike[str]) -> Path:
    """A PNG line plot of validation accuracy and balanced accuracy per improve round.

    Bars on a second axis show the demonstrations added after each round; a dashed line
    marks chance (1 / number of labels seen).
    """
    plt = pyplot()
    rounds = [r.round for r in history.rounds]
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax2 = ax.twinx()
    ax2.bar(rounds, [len(r.added) for r in history.rounds], width=0.4, color="#ccc", label="added")
    ax2.set_ylabel("demonstrations added")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(rounds, [100 * r.accuracy for r in history.rounds], "o-", label="accuracy")
    ax.plot(rounds, [100 * r.balanced_accuracy for r in history.rounds], "s--", label="balanced accuracy")
    labels = {lab for r in history.rounds for lab in r.pred_dist if lab != "<none>"}
    if labels:
        ax.axhline(100 / len(labels), color="grey", linestyle=":", linewidth=1, label="chance")
    if history.rounds:
        ax.axvline(history.best_round, color="green", alpha=0.3, linewidth=6, label="best round")
    ax.set_xlabel("round (0 = store as given)")
    ax.set_ylabel("validation %")
    ax.set_ylim(0, 100)
    ax.set_xticks(rounds)
    ax.set_title(f"improve · {history.task} · {history.store}")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def plot_methods(results: EvalResults, path: str | os.PathLike[str]) -> Path:
    """The evaluation's per-method accuracy plot: :meth:`EvalResults.plot`, reused."""
    return results.plot(path)
