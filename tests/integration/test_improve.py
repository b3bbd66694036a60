"""The improve loop on real parts: the offline Gemma, sports_understanding, a Chroma store."""

from __future__ import annotations

from pathlib import Path

import pytest

from amplify_agents.eval import stats
from amplify_agents.explainers.random import RandomExplainer
from amplify_agents.framing import Frame
from amplify_agents.hygiene import normalize_text
from amplify_agents.improve import DataLeakageError, ImproveConfig, history_path_for, improve_store, load_histories
from amplify_agents.predictors import SLMPredictor, predict_pool
from amplify_agents.stores import RationaleStore, default_embeddings
from amplify_agents.tasks import Example, load_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sports(bigbench_dir: Path):
    task = load_task(bigbench_dir / "sports_understanding")
    splits = task.split(seed=0, test=20, validation=8, pool=0)
    return task, splits


def _store(tmp_path: Path, name: str) -> RationaleStore:
    return RationaleStore.local(name, tmp_path / "chroma", embeddings=default_embeddings())


def test_improve_adds_only_validation_errors_and_never_test_items(tmp_path, gemma, sports) -> None:
    task, splits = sports
    store = _store(tmp_path, "improve-test")
    history = improve_store(
        task,
        store,
        gemma,
        RandomExplainer(k=3),
        splits.validation,
        splits.test,
        ImproveConfig(rounds=3, n_per_round=2, k=2, patience=3),
    )
    val = {ex.id: ex for ex in splits.validation}
    assert history.rounds[0].n_errors > 0  # the tiny base model gets some wrong: the loop has work
    assert [r.round for r in history.rounds] == list(range(len(history.rounds)))
    assert 2 <= len(history.rounds) <= 4  # 3 additions at most, one evaluation more
    for rec in history.rounds:
        # Per-round accuracy is recorded, and matches the per-item predictions kept with it.
        gold = [it["gold"] for it in rec.items]
        pred = [it["pred"] for it in rec.items]
        assert rec.n_items == len(val) and {it["id"] for it in rec.items} == set(val)
        assert rec.accuracy == pytest.approx(stats.accuracy(gold, pred))
        assert rec.balanced_accuracy == pytest.approx(stats.balanced_accuracy(gold, pred))
        assert len(rec.added) <= 2
        # Every demonstration added after this round was an error of this round's evaluation.
        for demo in store.get_many(rec.added):
            assert demo.example_id in rec.wrong_ids()
            ex = val[demo.example_id]
            assert (demo.input, demo.label) == (ex.input, ex.label)  # the verified gold label
            assert demo.strategy == "error" and demo.extra["round"] == rec.round
            assert demo.rationale and demo.keywords
    assert history.added_ids and store.count() == len(history.added_ids)
    assert len(set(history.added_ids)) == len(history.added_ids)  # never the same item twice

    # The test split is untouched: no test id and no test input is in the store.
    stored = store.list()
    test_ids = {ex.id for ex in splits.test}
    test_texts = {normalize_text(ex.input) for ex in splits.test}
    assert not {d.example_id for d in stored} & test_ids
    assert not {normalize_text(d.input) for d in stored} & test_texts

    # The history is saved beside the store and prints as a table.
    path = history_path_for(store)
    assert path is not None and path.exists() and path.parent == tmp_path / "chroma"
    [saved] = load_histories(store)
    assert saved.accuracies == history.accuracies and saved.added_ids == history.added_ids
    assert "round" in history.table() and "best round" in history.table()


def test_overlap_with_the_test_split_is_guarded(tmp_path, gemma, sports) -> None:
    task, splits = sports
    frame = Frame.from_task(task)
    # Test items the model gets wrong zero-shot: with an empty store, round 0 is zero-shot,
    # so these are errors the loop would add if they were not test items.
    candidates = splits.test.examples[:10]
    wrong = [p.example for p in predict_pool(SLMPredictor(gemma, task.labels, frame), candidates) if not p.correct]
    assert len(wrong) >= 2
    same_id = wrong[0]
    same_text = Example(id="val-copy", input=f"  {wrong[1].input.upper()} ", label=wrong[1].label)
    validation = [same_id, same_text, *splits.validation.examples[:2]]
    store = _store(tmp_path, "guard-test")

    with pytest.raises(DataLeakageError, match="also in the test split"):
        improve_store(
            task, store, gemma, RandomExplainer(k=3), validation, splits.test, ImproveConfig(on_overlap="raise")
        )
    assert store.count() == 0

    history = improve_store(
        task,
        store,
        gemma,
        RandomExplainer(k=3),
        validation,
        splits.test,
        ImproveConfig(rounds=1, n_per_round=4, k=2),
        history_path=None,
    )
    assert set(history.guarded_items) == {same_id.id, "val-copy"}
    first = history.rounds[0]
    assert same_id.id in first.wrong_ids() and first.guarded >= 1  # an error, refused
    stored = store.list()
    assert same_id.id not in {d.example_id for d in stored} and "val-copy" not in {d.example_id for d in stored}
    test_texts = {normalize_text(ex.input) for ex in splits.test}
    assert not {normalize_text(d.input) for d in stored} & test_texts
    assert set(first.added_examples) <= {ex.id for ex in splits.validation.examples[:2]}


def test_patience_stops_early_and_keep_best_takes_back_what_did_not_help(tmp_path, gemma, sports) -> None:
    task, splits = sports
    store = _store(tmp_path, "patience-test")
    # min_delta=1: no round can improve by more than 100%, so patience 1 stops after round 1.
    history = improve_store(
        task,
        store,
        gemma,
        RandomExplainer(k=3),
        splits.validation.examples[:4],
        splits.test,
        ImproveConfig(rounds=3, n_per_round=2, k=2, patience=1, min_delta=1.0, keep_best=True, demo_setting="fixed"),
        history_path=None,
    )
    if history.rounds[0].n_errors == 0:
        pytest.skip("the model answered every item correctly: nothing to add")
    assert len(history.rounds) == 2 and "patience" in history.stop_reason and history.stopped_early
    assert history.best_round == 0 and history.rounds[0].added
    assert history.removed == history.rounds[0].added and store.count() == 0  # taken back
