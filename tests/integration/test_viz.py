"""Pictures: HTML and PNG heat-maps of explanations, accuracy per round and per method."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from amplify_agents.explainers.base import Explanation
from amplify_agents.explainers.random import RandomExplainer
from amplify_agents.improve import ImproveHistory, RoundRecord
from amplify_agents.viz import explanation_html, explanation_png, plot_methods, plot_rounds

TEXT = 'Tom Brady threw a <b>touchdown</b> & the "crowd" cheered.\nThen he scored $5 again'


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    return RandomExplainer(k=3, seed=1).explain_one(TEXT, "plausible")


def _signed(exp: Explanation) -> Explanation:
    """The same explanation with alternating signs, so both colours are drawn."""
    scores = [s if i % 2 else -s for i, s in enumerate(exp.word_scores)]
    return Explanation(**{**exp.__dict__, "word_scores": scores})


def test_html_has_every_word_with_its_score(explanation: Explanation) -> None:
    exp = _signed(explanation)
    page = explanation_html(exp)
    assert page.startswith("<!DOCTYPE html>")
    spans = re.findall(
        r'<span class="w[^"]*" style="([^"]*)" title="score: ([^"]+)" data-score="[^"]*">([^<]*)</span>', page
    )
    assert len(spans) == len(exp.words)
    for (style, title, body), word, score in zip(spans, exp.words, exp.word_scores, strict=True):
        assert html_lib.unescape(body) == word  # every word, in order, escaped
        assert title == f"{score:+.4f}"  # its score on hover
        assert "rgba(" in style
    # Raw markup of the input never reaches the page, and the input text survives unescaping.
    text_part = re.search(r'<p class="text">(.*?)</p>', page, re.S).group(1)
    assert "<b>" not in text_part and "&lt;" in text_part and "&amp;" in text_part
    assert html_lib.unescape(re.sub(r"<[^>]+>", "", text_part.replace("<br>", "\n"))) == TEXT
    # Positive scores are red, negative blue.
    reds = [style for (style, _, _), sc in zip(spans, exp.word_scores, strict=True) if sc > 0]
    blues = [style for (style, _, _), sc in zip(spans, exp.word_scores, strict=True) if sc < 0]
    assert all("214, 39, 40" in s for s in reds) and all("31, 119, 180" in s for s in blues)
    # Top keywords are marked; an embeddable fragment is also available.
    assert page.count('class="w top"') >= len(exp.top_words)
    assert explanation_html(exp, full_document=False).startswith("<div")


def test_png_opens_with_expected_size_and_is_not_blank(tmp_path: Path, explanation: Explanation) -> None:
    path = explanation_png(_signed(explanation), tmp_path / "sub" / "exp.png", width=8.0, dpi=100)
    img = imread(path)
    height, width = img.shape[:2]
    assert width == 800  # width * dpi, as documented
    assert 150 <= height <= 600  # a header, one or two lines of words, the colour bar
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not blank
    reddish = (rgb[..., 0] - rgb[..., 2] > 0.3).sum()
    bluish = (rgb[..., 2] - rgb[..., 0] > 0.3).sum()
    assert reddish > 100 and bluish > 100  # both colours of the heat-map are drawn
    longer = explanation_png(RandomExplainer(k=3).explain_one(" ".join([TEXT] * 6), "plausible"), tmp_path / "long.png")
    assert imread(longer).shape[0] > height  # more lines, taller image, same width
    assert imread(longer).shape[1] == 800


def test_plot_rounds_and_methods(tmp_path: Path) -> None:
    history = ImproveHistory(task="t", store="s", best_round=1, stop_reason="completed")
    for r, acc in enumerate([0.5, 0.75, 0.625]):
        history.rounds.append(
            RoundRecord(r, acc, acc - 0.1, 8, int(8 * (1 - acc)), {"a": 0.5, "b": 0.5}, 2 * r, added=["x"] * (r < 2))
        )
    img = imread(plot_rounds(history, tmp_path / "rounds.png"))
    assert img.shape[0] > 100 and img.shape[1] > 100 and img[..., :3].std() > 0.05

    from amplify_agents.eval import EvalConfig, EvalResults

    cfg = EvalConfig(task="t.json", methods=("zero-shot", "io"), seeds=(0,), reference="io")

    def run(method: str, preds: list[str]) -> dict:
        gold = ["a", "b", "a", "b"]
        items = [
            {"id": str(i), "gold": g, "pred": p, "probs": {}} for i, (g, p) in enumerate(zip(gold, preds, strict=True))
        ]
        acc = sum(g == p for g, p in zip(gold, preds, strict=True)) / 4
        return {
            "key": method,
            "method": method,
            "seed": 0,
            "accuracy": acc,
            "balanced_accuracy": acc,
            "auroc": None,
            "items": items,
            "demo": {"n_demos": 0},
            "seconds": {"total": 1.0},
            "pred_dist": {},
        }

    results = EvalResults(cfg, [run("zero-shot", ["a"] * 4), run("io", ["a", "b", "a", "a"])], labels=("a", "b"))
    img = imread(plot_methods(results, tmp_path / "methods.png"))
    assert img.shape[1] > 100 and img[..., :3].std() > 0.05
    assert np.isfinite(img).all()
