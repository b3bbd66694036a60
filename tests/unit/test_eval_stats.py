"""Evaluation statistics on hand-made cases (no model), plus method-name parsing and reports."""

from __future__ import annotations

import json
import math

import pytest

from amplify_agents.eval import EvalConfig, EvalResults, parse_method, stats
from amplify_agents.eval.harness import label_named
from amplify_agents.explainers.registry import EXPLAINERS, create_explainer, explainer_family
from amplify_agents.framing import Frame


def test_mcnemar_identical_predictions_give_p_one() -> None:
    correct = [True, False, True, True, False, False, True]
    result = stats.mcnemar(correct, correct)
    assert result.p_value == 1.0 and result.only_a == result.only_b == 0 and result.diff == 0.0


def test_mcnemar_clearly_better_method_gives_small_p() -> None:
    better = [True] * 40
    worse = [True] * 10 + [False] * 30
    result = stats.mcnemar(better, worse)
    assert (result.only_a, result.only_b, result.n) == (30, 0, 40)
    assert result.p_value == pytest.approx(2 * 0.5**30) and result.p_value < 1e-6
    assert result.diff == pytest.approx(0.75)
    # Symmetric in the p-value, opposite in the difference.
    reverse = stats.mcnemar(worse, better)
    assert reverse.p_value == result.p_value and reverse.diff == -result.diff


def test_mcnemar_pairs_mappings_by_key() -> None:
    a = {(0, "x"): True, (0, "y"): True, (1, "x"): False}
    b = {(1, "x"): True, (0, "y"): False, (0, "x"): True, (2, "z"): False}  # (2, "z") has no pair
    result = stats.mcnemar(a, b)
    assert (result.n, result.only_a, result.only_b) == (3, 1, 1) and result.p_value == 1.0
    with pytest.raises(TypeError):
        stats.mcnemar(a, [True])


def test_accuracy_and_balanced_accuracy() -> None:
    gold = ["yes"] * 8 + ["no"] * 2
    always_yes = ["yes"] * 10
    assert stats.accuracy(gold, always_yes) == pytest.approx(0.8)
    # One label for everything: balanced accuracy is chance (1 / labels present).
    assert stats.balanced_accuracy(gold, always_yes) == pytest.approx(0.5)
    mixed = ["yes"] * 6 + ["no"] * 2 + ["no", "yes"]
    assert stats.balanced_accuracy(gold, mixed) == pytest.approx((6 / 8 + 1 / 2) / 2)
    assert stats.balanced_accuracy(gold, [None] * 10) == 0.0
    assert math.isnan(stats.accuracy([], []))
    with pytest.raises(ValueError):
        stats.accuracy(["a"], [])


def test_auroc_hand_made_cases() -> None:
    positive = [True, True, False, False]
    assert stats.auroc(positive, [0.9, 0.8, 0.3, 0.1]) == 1.0
    assert stats.auroc(positive, [0.1, 0.2, 0.8, 0.9]) == 0.0
    # Constant scores (a model that never changes its mind): chance, via ties = 1/2.
    assert stats.auroc(positive, [0.7, 0.7, 0.7, 0.7]) == 0.5
    # 3 of the 4 (positive, negative) pairs are ordered correctly.
    assert stats.auroc(positive, [0.9, 0.2, 0.3, 0.1]) == pytest.approx(0.75)
    assert math.isnan(stats.auroc([True, True], [0.1, 0.2]))


def test_label_distribution_lists_every_label() -> None:
    dist = stats.label_distribution(["a", "a", "a", None], ["a", "b"])
    assert dist == {"a": 0.75, "b": 0.0, "<none>": 0.25}


def test_mean_std_and_intervals() -> None:
    mean, std = stats.mean_std([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert stats.mean_std([0.4]) == (0.4, 0.0)
    assert stats.mean_std([0.4, float("nan")]) == (0.4, 0.0)  # an undefined AUROC is left out
    low, high = stats.t_interval([0.5, 0.6, 0.7])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, df=2)
    assert (low, high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert all(math.isnan(v) for v in stats.t_interval([0.5]))

    seeds = [[True] * 7 + [False] * 3, [True] * 5 + [False] * 5, [True] * 6 + [False] * 4]
    low, high = stats.bootstrap_ci(seeds)
    assert low < 0.6 < high and 0.2 < low and high < 0.95
    assert stats.bootstrap_ci(seeds) == (low, high)  # a fixed generator: reproducible
    assert stats.bootstrap_ci([[True] * 5]) == (1.0, 1.0)


def test_parse_method_names() -> None:
    assert parse_method("io").kind == "io"
    rk = parse_method("random-keywords")
    assert (rk.kind, rk.explainer, rk.strategy) == ("random-keywords", "random", "random")
    spec = parse_method("amplify:grad_x_input:h-mcs")
    assert (spec.kind, spec.explainer, spec.strategy) == ("amplify", "grad_x_input", "h-mcs")
    assert parse_method("self:deeplift:error").per_query("retrieved")
    assert not parse_method("self:deeplift:error").per_query("fixed")
    assert parse_method("io-semantic").per_query("fixed")
    for bad in ("iox", "self:nope:error", "self:deeplift:best", "amplify:deeplift:h-mcs", "self:deeplift"):
        with pytest.raises(ValueError, match="Valid|amplify: methods explain a proxy"):
            parse_method(bad)


def test_registry_names_and_errors() -> None:
    assert {"grad_x_input", "deeplift", "kernel_shap", "self_topk", "random"} <= set(EXPLAINERS)
    assert explainer_family("grad") == "proxy" and explainer_family("lime") == "slm"
    with pytest.raises(ValueError, match="Valid names: .*grad_x_input"):
        create_explainer("gradx", slm=None, labels=("a", "b"), frame=Frame())
    with pytest.raises(ValueError, match="opens the SLM"):
        create_explainer("deeplift", slm=None, labels=("a", "b"), frame=Frame())
    with pytest.raises(ValueError, match="does not take"):
        create_explainer("random", slm=None, labels=("a", "b"), frame=Frame(), n_steps=3)
    explainer = create_explainer("random", slm=None, labels=("a", "b"), frame=Frame(), k=2, seed=7)
    assert explainer.name == "random" and explainer.k == 2 and explainer.settings["seed"] == 7


def _run(method: str, seed: int, golds: list[str], preds: list[str]) -> dict:
    items = [
        {
            "id": f"e{i}",
            "gold": g,
            "pred": p,
            "probs": {"a": 0.6 if p == "a" else 0.4, "b": 0.4 if p == "a" else 0.6},
        }
        for i, (g, p) in enumerate(zip(golds, preds, strict=True))
    ]
    return {
        "key": f"{method}|{seed}",
        "method": method,
        "seed": seed,
        "n_items": len(items),
        "accuracy": stats.accuracy(golds, preds),
        "balanced_accuracy": stats.balanced_accuracy(golds, preds),
        "auroc": 0.5,
        "pred_dist": stats.label_distribution(preds, ["a", "b"]),
        "demo": {"n_demos": 2},
        "items": items,
        "seconds": {"total": 1.0},
    }


def test_results_summary_table_and_files(tmp_path) -> None:
    golds = ["a", "b"] * 10
    config = EvalConfig(task="t.json", methods=("io", "good"), seeds=(0, 1), out_dir=str(tmp_path))
    runs = [
        _run("io", 0, golds, ["a"] * 20),
        _run("io", 1, golds, ["a"] * 20),
        _run("good", 0, golds, golds),
        _run("good", 1, golds, golds),
    ]
    results = EvalResults(config, runs, labels=("a", "b"))
    summary = {row["method"]: row for row in results.summary()}
    assert summary["io"]["p_vs_reference"] == 1.0 and summary["io"]["top_label_share"] == 1.0
    assert summary["good"]["accuracy_mean"] == 1.0 and summary["good"]["only_method"] == 20
    assert summary["good"]["p_vs_reference"] < 1e-4
    table = results.table()
    assert "| io |" in table and "a 100.0%" in table and "McNemar" in table
    results.to_json(tmp_path / "r.json")
    again = EvalResults.from_json(tmp_path / "r.json")
    assert [r["key"] for r in again.runs] == [r["key"] for r in runs]
    assert json.loads((tmp_path / "r.json").read_text())["summary"][1]["method"] == "good"
    lines = results.to_csv(tmp_path / "r.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 + 2 and lines[-1].startswith("summary,good")
    assert results.plot(tmp_path / "r.png").stat().st_size > 1000


def test_method_modifiers_parse_to_a_canonical_name() -> None:
    spec = parse_method("self:deeplift:error+cal+gen")
    assert (spec.name, spec.placement, spec.calibration) == ("self:deeplift:error+gen+cal", "gen", "contextual")
    assert (spec.base, spec.uncalibrated) == ("self:deeplift:error", "self:deeplift:error+gen")
    io = parse_method("io+pmi")
    assert (io.name, io.placement, io.calibration, io.base) == ("io+pmi", "xry", "pmi", "io")
    assert parse_method("random-keywords+xyr").placement == "xyr"
    for bad, message in (
        ("io+xyr", "has none"),
        ("io+gen", "has none"),
        ("io+fast", "Unknown modifier 'fast'"),
        ("io+cal+pmi", "two calibrations"),
        ("auto-cot+xyr+gen", "two placements"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_method(bad)


def test_placements_lay_out_rationale_and_answer_in_order() -> None:
    from amplify_agents.answering import AnswerBackend, Answerer, AnswerSettings
    from amplify_agents.prompts import PromptStyle

    class TextOnly(AnswerBackend):  # layout only: never asked to answer
        def answer(self, prompts, label_lists, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("not called")

        def generate(self, prompts, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("not called")

    frame = Frame(instruction="Sort.\n", input_prefix="\nQ: ", output_prefix="\nA:", label_prefix=" ")
    demos = [{"input": "x1", "rationale": "R1.", "answer": "yes"}]

    def layout(placement: str) -> Answerer:
        return Answerer(TextOnly(), AnswerSettings(PromptStyle(frame), placement=placement))  # type: ignore[arg-type]

    assert layout("xry").prompt("q", demos) == "Sort.\n\nQ: x1\nR1.\nA: yes\n\nQ: q\nA:"
    assert layout("xyr").prompt("q", demos) == "Sort.\n\nQ: x1\nA: yes\nR1.\n\nQ: q\nA:"
    # Test-time reasoning: the prompt stops where the query's own rationale begins.
    assert layout("gen").prompt("q", demos, ending="rationale") == "Sort.\n\nQ: x1\nR1.\nA: yes\n\nQ: q\n"
    with pytest.raises(ValueError, match="Unknown placement"):
        layout("ryx")


def test_label_named_prefers_an_exact_label() -> None:
    named = label_named(
        ["clues to predict (b) as a correct answer", "nothing here", "so the answer is no"],
        [("(a)", "(b)")] * 2 + [("yes", "no")],
    )
    assert named == ["(b)", None, "no"]
