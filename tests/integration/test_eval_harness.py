"""The evaluation harness end to end on the real Gemma, MiniLM and Chroma, kept tiny.

A synthetic two-label task with short inputs (written by the test) keeps every forward
pass cheap; the point is the harness's contract, not the model's accuracy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from amplify_agents.eval import EvalConfig, run_eval, select_on_validation
from amplify_agents.eval import methods as methods_module

pytestmark = pytest.mark.slow

FOOD = [
    "I ate a bowl of rice.",
    "The soup was hot and salty.",
    "She baked fresh bread.",
    "We had pizza for dinner.",
    "He peeled an orange.",
    "The cake tasted sweet.",
    "They grilled some fish.",
    "I drank warm milk with honey.",
    "The salad had tomatoes.",
    "Mom cooked pasta.",
    "He fried two eggs.",
    "We shared a sandwich.",
]
OTHER = [
    "The train left at noon.",
    "She painted the fence blue.",
    "The dog ran across the park.",
    "He fixed the old car.",
    "It rained all night.",
    "They played chess.",
    "The river was very wide.",
    "I read a long book.",
    "The phone battery died.",
    "We watched the stars.",
    "She sang in the choir.",
    "The door was locked.",
]

METHODS = (
    "zero-shot",
    "io",
    "random-keywords",
    "self:gradient_x_activation:error",
    "amplify:grad_x_input:h-mcs",
)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    examples = [{"input": s, "target_scores": {"yes": 1, "no": 0}} for s in FOOD]
    examples += [{"input": s, "target_scores": {"yes": 0, "no": 1}} for s in OTHER]
    path = tmp_path_factory.mktemp("task") / "food" / "task.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"task_prefix": "Is the sentence about food?\n", "examples": examples}))
    return path


def _config(task_file: Path, out_dir: Path, **changes) -> EvalConfig:
    settings = dict(
        task=task_file,
        n_shot=2,
        k=3,
        seeds=(0, 1),
        methods=METHODS,
        test_size=6,
        pool_size=12,
        proxy_epochs=1,
        out_dir=out_dir,
        plot=False,
    )
    settings.update(changes)
    return EvalConfig(**settings)


@pytest.fixture(scope="module")
def first(gemma, task_file: Path, tmp_path_factory: pytest.TempPathFactory):
    config = _config(task_file, tmp_path_factory.mktemp("eval-a"))
    return config, run_eval(config, progress=False, model=gemma)


def test_every_method_produces_a_result(first) -> None:
    config, results = first
    assert len(results.runs) == len(METHODS) * 2 and len(results.computed) == len(results.runs)
    for run in results.runs:
        assert run["n_items"] == 6 and 0.0 <= run["accuracy"] <= 1.0
        assert abs(sum(run["pred_dist"].values()) - 1.0) < 1e-9 and run["auroc"] is not None
        n_demos = run["demo"]["n_demos"]
        if run["method"] in ("zero-shot", "io", "random-keywords"):
            assert n_demos == (0 if run["method"] == "zero-shot" else 2), run["method"]
        else:  # a strategy may find fewer eligible examples than asked: reported, not hidden
            assert 1 <= n_demos <= 2 and run["demo"]["short"] == (n_demos < 2), run["method"]
    # Every method of a seed saw the same test items.
    for seed in config.seeds:
        item_sets = {tuple(it["id"] for it in r["items"]) for r in results.runs if r["seed"] == seed}
        assert len(item_sets) == 1
    # io and the random-keyword control share their examples; only the rationale differs.
    io, rk = (next(r for r in results.runs if r["method"] == m and r["seed"] == 0) for m in ("io", "random-keywords"))
    assert [d["example_id"] for d in io["demo"]["demos"]] == [d["example_id"] for d in rk["demo"]["demos"]]
    assert all(d["rationale"] for d in rk["demo"]["demos"]) and not any(d["rationale"] for d in io["demo"]["demos"])
    out = Path(config.out_dir)
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.csv", "results.md"}
    assert "| io |" in results.table()


def test_paired_test_of_io_against_itself_is_one(first) -> None:
    _, results = first
    assert results.compare("io", "io").p_value == 1.0
    assert next(r for r in results.summary() if r["method"] == "io")["p_vs_reference"] == 1.0


def test_same_seed_gives_identical_accuracies(first, gemma, task_file: Path, tmp_path: Path) -> None:
    config, results = first
    again = run_eval(_config(task_file, tmp_path, seeds=(0,)), progress=False, model=gemma)
    assert len(again.computed) == len(METHODS)
    for method in METHODS:
        assert again.accuracy(method, 0) == results.accuracy(method, 0), method
        before = next(r for r in results.runs if r["method"] == method and r["seed"] == 0)
        after = next(r for r in again.runs if r["method"] == method)
        assert [it["pred"] for it in after["items"]] == [it["pred"] for it in before["items"]]


def test_resume_skips_finished_runs(first, gemma, monkeypatch: pytest.MonkeyPatch) -> None:
    config, results = first
    stamps = {r["key"]: r["finished_at"] for r in results.runs}
    calls: list[str] = []
    real = methods_module.prepare_demos

    def counting(spec, ctx):  # noqa: ANN001, ANN202 - a spy on the harness's demo preparation
        calls.append(spec.name)
        return real(spec, ctx)

    monkeypatch.setattr(methods_module, "prepare_demos", counting)
    resumed = run_eval(config, progress=False, model=gemma)
    assert calls == [] and resumed.computed == [] and sorted(resumed.skipped) == sorted(stamps)
    assert {r["key"]: r["finished_at"] for r in resumed.runs} == stamps
    assert [r["accuracy"] for r in resumed.runs] == [r["accuracy"] for r in results.runs]

    # Drop one finished run from the file: exactly that one is computed again.
    data = json.loads(config.results_path.read_text())
    gone = next(key for key, run in data["runs"].items() if run["method"] == "io" and run["seed"] == 1)
    del data["runs"][gone]
    config.results_path.write_text(json.dumps(data))
    partial = run_eval(config, progress=False, model=gemma)
    assert calls == ["io"] and partial.computed == [gone]
    assert partial.accuracy("io", 1) == results.accuracy("io", 1)


def test_retrieval_baselines_and_auto_cot(gemma, task_file: Path, tmp_path: Path) -> None:
    config = _config(
        task_file,
        tmp_path,
        seeds=(0,),
        methods=("io", "io-semantic", "auto-cot", "random-keywords"),
        demo_setting="retrieved",
        autocot_max_new_tokens=12,
        plot=True,
    )
    results = run_eval(config, progress=False, model=gemma)
    by_method = {r["method"]: r for r in results.runs}
    assert by_method["io-semantic"]["demo_setting"] == "per-query"
    assert by_method["random-keywords"]["demo_setting"] == "per-query"
    assert by_method["random-keywords"]["demo"]["store_size"] == 12  # the whole pool was built
    assert by_method["io"]["demo_setting"] == "fixed"
    cot = by_method["auto-cot"]["demo"]
    assert cot["n_demos"] == 2 and all(d["rationale"].startswith("Let's think step by step.") for d in cot["demos"])
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_calibrated_and_placed_variants_share_demos_and_follow_the_formula(
    gemma, task_file: Path, tmp_path: Path
) -> None:
    methods = ("io", "io+cal", "io+pmi", "random-keywords", "random-keywords+xyr", "random-keywords+gen")
    config = _config(task_file, tmp_path, seeds=(0,), methods=methods, rationale_max_new_tokens=16)
    results = run_eval(config, progress=False, model=gemma)
    runs = {r["method"]: r for r in results.runs}
    io, cal, pmi = runs["io"], runs["io+cal"], runs["io+pmi"]
    # A calibrated twin reuses its base run's scores and demonstrations: only the prior is new.
    assert cal["seconds"]["reused_scores"] and pmi["seconds"]["reused_scores"]
    assert cal["demo"]["demos"] == io["demo"]["demos"]
    for twin in (cal, pmi):
        [prior] = twin["calibration"]["priors"]
        for raw, fixed in zip(io["items"], twin["items"], strict=True):
            # p_cal(yes) / p_cal(no) = p(yes) / p(no) * p_prior(no) / p_prior(yes)
            expected = math.log(raw["probs"]["yes"] / raw["probs"]["no"]) + prior["no"] - prior["yes"]
            got = math.log(fixed["probs"]["yes"] / fixed["probs"]["no"])
            assert got == pytest.approx(expected, abs=2e-3)
    # Placements use the same demonstrations laid out differently.
    rk, xyr, gen = runs["random-keywords"], runs["random-keywords+xyr"], runs["random-keywords+gen"]
    assert rk["demo"]["demos"] == xyr["demo"]["demos"] == gen["demo"]["demos"]
    assert (rk["placement"], xyr["placement"], gen["placement"]) == ("xry", "xyr", "gen")
    assert "query_rationale" not in rk["items"][0]
    written = [it["query_rationale"] for it in gen["items"]]
    assert len(written) == 6 and all("\n" not in text for text in written) and any(written)
    assert 0 <= gen["reasoning"]["answer_equals_named_label"] <= gen["reasoning"]["rationales_naming_a_label"] <= 6
    # An unknown modifier fails before any work.
    with pytest.raises(ValueError, match="Unknown modifier"):
        run_eval(_config(task_file, tmp_path / "bad", methods=("io+calibrated",)), progress=False, model=gemma)


def test_select_on_validation_chooses_on_validation_and_reports_test_once(
    gemma, task_file: Path, tmp_path: Path
) -> None:
    config = _config(task_file, tmp_path, seeds=(0,), methods=("zero-shot", "io+cal"), validation_size=4, pool_size=10)
    chosen = select_on_validation(config, progress=False, model=gemma)
    val_rows = {r["method"]: r for r in chosen.validation.summary()}
    # The reference is evaluated on validation too, but only candidates can be chosen.
    assert set(val_rows) == {"io", "zero-shot", "io+cal"} and chosen.chosen in ("zero-shot", "io+cal")
    best = max(("zero-shot", "io+cal"), key=lambda m: val_rows[m]["balanced_accuracy_mean"])
    assert chosen.chosen == best
    assert {r["method"] for r in chosen.test.runs} == {"io", chosen.chosen}
    val_ids = {it["id"] for r in chosen.validation.runs for it in r["items"]}
    test_ids = {it["id"] for r in chosen.test.runs for it in r["items"]}
    demo_ids = {d["example_id"] for r in chosen.test.runs + chosen.validation.runs for d in r["demo"].get("demos", [])}
    assert len(val_ids) == 4 and len(test_ids) == 6
    assert not val_ids & test_ids and not demo_ids & (val_ids | test_ids)
    # The test split is the one a plain evaluation with the same test size uses.
    plain = run_eval(
        _config(task_file, tmp_path / "plain", seeds=(0,), methods=("zero-shot",)), progress=False, model=gemma
    )
    assert {it["id"] for it in plain.runs[0]["items"]} == test_ids
    saved = json.loads(chosen.path.read_text())
    assert saved["chosen"] == chosen.chosen and {r["method"] for r in saved["test"]} == {"io", chosen.chosen}
    with pytest.raises(ValueError, match="validation_size"):
        select_on_validation(_config(task_file, tmp_path / "none"), progress=False, model=gemma)
