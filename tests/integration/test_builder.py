"""The builder on real parts: Gemma predictions, real explainers, a real Chroma store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from amplify_agents.builder import BuildConfig, DemonstrationBuilder, remove_words
from amplify_agents.errors import AmplifyError
from amplify_agents.explainers.gradient import GradXInputExplainer
from amplify_agents.explainers.random import RandomExplainer
from amplify_agents.explainers.words import split_words
from amplify_agents.framing import Frame
from amplify_agents.models.proxy import ProxyClassifier
from amplify_agents.predictors import SLMPredictor, predict_pool
from amplify_agents.rationales import AMPLIFY
from amplify_agents.stores import RationaleStore, default_embeddings
from amplify_agents.tasks import load_task


@pytest.fixture(scope="module")
def sports(bigbench_dir: Path):
    task = load_task(bigbench_dir / "sports_understanding")
    return task, task.split(seed=0, test=0, pool=24).pool


@pytest.fixture(scope="module")
def slm_predictor(gemma, sports):
    task, _ = sports
    return SLMPredictor(gemma, task.labels, Frame.from_task(task))


@pytest.fixture(scope="module")
def proxy(sports):
    task, pool = sports
    return ProxyClassifier.from_task(task, epochs=0, seed=0)


def _store(tmp_path: Path, name: str = "build-test") -> RationaleStore:
    return RationaleStore.local(name, tmp_path / "chroma", embeddings=default_embeddings())


def test_remove_words() -> None:
    assert remove_words("The cat, the dog and THE bird.", ["the", "dog"]) == "cat, and bird."


@pytest.mark.parametrize("strategy", ["error", "success", "h-mcs", "l-mcs", "random", "f-exp"])
def test_each_strategy_builds_correct_demonstrations(tmp_path, sports, slm_predictor, proxy, strategy) -> None:
    task, pool = sports
    store = _store(tmp_path)
    explainer = GradXInputExplainer(proxy, k=3)
    builder = DemonstrationBuilder(
        task, slm_predictor, explainer, store, BuildConfig(strategy=strategy, n=4, seed=1), progress=False
    )
    report = builder.run(pool.examples)
    demos = store.get_many(report.demo_ids)
    labels = [d.label for d in demos]
    assert abs(labels.count(task.labels[0]) - labels.count(task.labels[1])) <= 1  # label-balanced
    assert report.filled == sum(bool(d.scores.get("balance_fill")) for d in demos)  # counts stored fills only
    assert store.count() == len(demos) == len(report.added) > 0
    predictions = {p.example.id: p for p in predict_pool(slm_predictor, pool.examples)}
    gold = {e.id: e for e in pool}
    for d in demos:
        ex = gold[d.example_id]
        assert (d.input, d.label, d.task, d.strategy) == (ex.input, ex.label, task.name, strategy)
        assert d.explainer == "grad_x_input" and d.k == 3 and d.template_id == "amplify"
        input_words = {w.text.lower() for w in split_words(ex.input)}
        assert d.keywords and {w.lower() for w in d.keywords} <= input_words
        in_text = sorted(d.keywords, key=lambda w: ex.input.lower().find(w.lower()))
        assert d.rationale == AMPLIFY.render(d.label, in_text)
        pred = predictions[d.example_id]
        assert d.scores["prediction"] == pred.predicted
        assert d.scores["mcs"] == pytest.approx(pred.mcs, abs=1e-5)
        assert "faithfulness" in d.scores
        filled = d.scores.get("balance_fill", False)
        if strategy in ("error", "h-mcs", "l-mcs"):
            # Errors, unless added to balance labels: then a correct item of the missing label.
            assert (
                (d.scores["prediction"] == d.label)
                if filled
                else (d.scores["prediction"] != d.label and d.scores["mcs"] > 0)
            )
        if strategy == "success":
            assert (d.scores["prediction"] != d.label) if filled else (d.scores["prediction"] == d.label)
    if strategy in ("h-mcs", "l-mcs") and len(demos) > 1:
        errors = sorted((p.mcs for p in predictions.values() if not p.correct), reverse=strategy == "h-mcs")
        by_label: dict[str, list[float]] = {}
        for d in (d for d in demos if not d.scores.get("balance_fill")):
            by_label.setdefault(d.label, []).append(d.scores["mcs"])
        # Within each label, the chosen ones are the extreme MCS of that label's errors.
        for label, values in by_label.items():
            label_errs = sorted(
                (p.mcs for p in predictions.values() if not p.correct and p.example.label == label),
                reverse=strategy == "h-mcs",
            )
            assert sorted(values, reverse=strategy == "h-mcs") == pytest.approx(label_errs[: len(values)], abs=1e-5)
        assert errors  # the model does make errors on this pool


def test_rebuild_adds_nothing_and_new_k_adds_beside(tmp_path, sports, proxy) -> None:
    task, pool = sports
    store = _store(tmp_path)
    cfg = BuildConfig(strategy="random", n=4, seed=0)
    first = DemonstrationBuilder(task, proxy, RandomExplainer(k=3), store, cfg, progress=False).run(pool.examples)
    again = DemonstrationBuilder(task, proxy, RandomExplainer(k=3), store, cfg, progress=False).run(pool.examples)
    assert again.added == [] and sorted(again.skipped_existing) == sorted(first.added)
    assert store.count() == 4
    other_k = DemonstrationBuilder(task, proxy, RandomExplainer(k=2), store, cfg, progress=False).run(pool.examples)
    assert len(other_k.added) == 4 and not set(other_k.added) & set(first.added)
    assert store.count() == 8
    assert all(store.get(i).k == 3 for i in first.added)  # the old ones are untouched


def test_short_strategy_fails_or_proceeds(tmp_path, sports, proxy) -> None:
    task, pool = sports
    store = _store(tmp_path)
    cfg = BuildConfig(strategy="error", n=len(pool), on_short="fail")
    with pytest.raises(AmplifyError, match=r"found \d+ eligible examples of 24"):
        DemonstrationBuilder(task, proxy, RandomExplainer(k=2), store, cfg, progress=False).run(pool.examples)
    assert store.count() == 0
    proceed = BuildConfig(strategy="error", n=len(pool))
    report = DemonstrationBuilder(task, proxy, RandomExplainer(k=2), store, proceed, progress=False).run(pool.examples)
    assert report.short and len(report.demo_ids) == report.eligible + report.filled < len(pool)
    assert f"have {len(report.demo_ids)}" in report.table()


def test_empty_corpus_is_refused(tmp_path, sports, proxy) -> None:
    task, _ = sports
    store = _store(tmp_path)
    with pytest.raises(AmplifyError, match="empty"):
        DemonstrationBuilder(task, proxy, RandomExplainer(), store, progress=False).run([])


_SCRIPT = textwrap.dedent(
    """
    import sys
    from amplify_agents.builder import BuildConfig, DemonstrationBuilder
    from amplify_agents.models.proxy import ProxyClassifier
    from amplify_agents.explainers.random import RandomExplainer
    from amplify_agents.stores import RationaleStore
    from amplify_agents.tasks import load_task

    task_dir, store_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    task = load_task(task_dir)
    pool = task.split(seed=0, test=0, pool=24).pool
    proxy = ProxyClassifier.from_task(task, epochs=0, seed=0)
    store = RationaleStore.local("resume", store_dir)
    def stored(ids):
        print("STORED", *ids, flush=True)
    cfg = BuildConfig(strategy="random", n=n, seed=5, batch_size=1)
    report = DemonstrationBuilder(task, proxy, RandomExplainer(k=3), store, cfg, progress=False,
                                  on_batch_stored=stored).run(pool.examples)
    print("DONE", len(report.added), len(report.skipped_existing), flush=True)
    """
)


def _run_script(args: list[str], kill_after: int | None = None) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ},
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        if kill_after is not None and sum(x.startswith("STORED") for x in lines) >= kill_after:
            proc.send_signal(signal.SIGKILL)  # kill -9 mid-build
            break
    proc.wait(timeout=300)
    return lines


def test_build_killed_midway_resumes_to_exactly_the_expected_ids(tmp_path, bigbench_dir) -> None:
    task_dir = str(bigbench_dir / "sports_understanding")
    reference = _run_script([task_dir, str(tmp_path / "reference"), "6"])
    expected = {i for line in reference if line.startswith("STORED") for i in line.split()[1:]}
    assert len(expected) == 6 and reference[-1] == "DONE 6 0"

    killed = _run_script([task_dir, str(tmp_path / "resumed"), "6"], kill_after=2)
    assert not any(line.startswith("DONE") for line in killed)
    before = {i for line in killed if line.startswith("STORED") for i in line.split()[1:]}
    assert 2 <= len(before) < 6

    resumed = _run_script([task_dir, str(tmp_path / "resumed"), "6"])
    done = resumed[-1].split()
    assert done[0] == "DONE" and int(done[1]) + int(done[2]) == 6 and int(done[2]) >= len(before)
    store = RationaleStore.local("resume", tmp_path / "resumed")
    ids = {d.demo_id for d in store.list()}
    assert ids == expected and store.count() == 6  # none lost, none duplicated


@pytest.mark.parametrize("family", ["self_gradient", "self_perturbation", "self_topk", "self_exp"])
def test_self_amplify_families_build_through_the_same_builder(tmp_path, sports, slm_predictor, gemma, family) -> None:
    from amplify_agents.explainers.captum_layer import GradXActivationExplainer
    from amplify_agents.explainers.perturbation import FeatureAblationExplainer
    from amplify_agents.explainers.self_reported import SelfExplanationExplainer, SelfTopKExplainer
    from amplify_agents.rationales import P_STEP, SELF_TOPK

    task, pool = sports
    frame = Frame.from_task(task)
    explainer = {
        "self_gradient": lambda: GradXActivationExplainer(gemma, task.labels, frame, k=3),
        "self_perturbation": lambda: FeatureAblationExplainer(gemma, task.labels, frame, k=3),
        "self_topk": lambda: SelfTopKExplainer(gemma, task.labels, frame, k=3),
        "self_exp": lambda: SelfExplanationExplainer(gemma, task.labels, frame),
    }[family]()
    store = _store(tmp_path)
    cfg = BuildConfig(strategy="success", n=2, seed=0)
    report = DemonstrationBuilder(task, slm_predictor, explainer, store, cfg, progress=False).run(pool.examples)
    demos = store.get_many(report.demo_ids)
    assert demos, report.table()
    for d in demos:
        assert d.explainer == explainer.name and d.model_id == "gemma-3-270m" and d.strategy == "success"
        if family == "self_exp":
            assert d.template_id == P_STEP.id and d.rationale.endswith(f"therefore the answer is {d.label}.")
            assert len(d.rationale) > len(P_STEP.render(d.label, explanation="", p=3))
        else:
            words = {w.text.lower() for w in split_words(d.input)}
            assert d.keywords and {w.lower() for w in d.keywords} <= words  # keywords come from the input
            template = SELF_TOPK if family == "self_topk" else AMPLIFY
            assert d.template_id == template.id and d.label in d.rationale
