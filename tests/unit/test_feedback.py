"""Feedback routing, usefulness counters and store hygiene, on a real Chroma store.

The store lives in ``tmp_path`` with the offline MiniLM embeddings (loaded once per
process); rationales come from the random explainer, so no language model runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import LabelError
from amplify_agents.explainers.random import RandomExplainer
from amplify_agents.feedback import FEEDBACK_STRATEGY, FeedbackLog, usefulness_of, with_usage
from amplify_agents.hygiene import HygienePolicy, cap, dedup, enforce, normalize_text
from amplify_agents.stores import RationaleStore, default_embeddings
from amplify_agents.tasks import Task

pytestmark = pytest.mark.slow  # loads the MiniLM embeddings

LABELS = ("plausible", "implausible")
TASK = Task(name="sports", labels=LABELS, examples=())


def _store(tmp_path: Path, name: str = "feedback-test") -> RationaleStore:
    return RationaleStore.local(name, tmp_path / "chroma", embeddings=default_embeddings())


def _demo(text: str, label: str = "plausible", **kw: object) -> Demonstration:
    return Demonstration(input=text, label=label, rationale=f"r: {text}", task="sports", **kw)  # type: ignore[arg-type]


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[RationaleStore, FeedbackLog, list[str]]:
    store = _store(tmp_path)
    used = store.add([_demo("Lionel Messi scored a free kick"), _demo("LeBron James hit a home run", "implausible")])
    log = FeedbackLog(store, tmp_path / "review.jsonl", task=TASK, explainer=RandomExplainer(k=2))
    return store, log, used


def test_unverified_feedback_goes_to_review_not_to_the_store(setup) -> None:
    store, log, used = setup
    out = log.record("Tom Brady threw a touchdown pass", "implausible", gold="plausible", demo_ids=used)
    out2 = log.record("Serena Williams served an ace", "plausible", verified=True)  # verified, but no gold
    assert out.queued and not out.stored and out2.queued and not out2.stored
    assert store.count() == 2  # nothing entered the store
    assert not store.list(where={"strategy": FEEDBACK_STRATEGY})
    queue = log.review_queue()
    assert [q.query for q in queue] == ["Tom Brady threw a touchdown pass", "Serena Williams served an ace"]
    assert queue[0].reason == "unverified gold label" and "no gold label" in queue[1].reason
    lines = [json.loads(x) for x in log.review_path.read_text().splitlines()]
    assert [x["status"] for x in lines] == ["pending", "pending"]
    # Unverified claims do not move the usefulness counters.
    assert all(usefulness_of(d).used == 0 for d in store.get_many(used))

    # A reviewer approves the first (gold given now for the second) and rejects nothing else.
    approved = log.approve(0)
    assert approved.stored and approved.demo_id is not None and store.count() == 3
    assert approved.correct is False  # the answer was wrong: the demos shown count one wrong use
    assert all(usefulness_of(d).wrong == 1 for d in store.get_many(used))
    with pytest.raises(ValueError, match="no gold label"):
        log.approve(0)  # the Serena item has no gold label yet
    assert log.approve(0, gold="plausible").stored
    assert log.review_queue() == [] and store.count() == 4
    with pytest.raises(IndexError):
        log.approve(0)


def test_verified_feedback_enters_the_store_with_an_explained_rationale(setup) -> None:
    store, log, used = setup
    query = "Patrick Mahomes threw a touchdown"
    out = log.record(query, "The answer is implausible.", gold="plausible", verified=True, user_id="u1", demo_ids=used)
    assert out.stored and not out.queued and out.correct is False
    demo = store.get(out.demo_id)
    assert demo is not None
    assert (demo.input, demo.label, demo.strategy, demo.explainer) == (
        query,
        "plausible",
        "feedback",
        "random",
    )
    assert demo.keywords and all(w in query.split() for w in demo.keywords)
    assert demo.rationale and "plausible" in demo.rationale
    assert demo.extra["user_id"] == "u1" and demo.extra["feedback_id"] == out.item.feedback_id
    assert log.review_queue() == []
    assert [it.status for it in log.items()] == ["stored"]
    with pytest.raises(LabelError):
        log.record(query, "plausible", gold="maybe", verified=True)


def test_usefulness_counters_update_without_changing_ids(setup) -> None:
    store, log, used = setup
    before = {d.demo_id: d for d in store.get_many(used)}
    log.record("Mookie Betts hit a double", "plausible", gold="plausible", verified=True, demo_ids=used)
    log.record(
        "Mookie Betts scored a penalty kick",
        "plausible",
        gold="implausible",
        verified=True,
        demo_ids=used[:1],
    )
    after = {d.demo_id: d for d in store.get_many(used)}
    assert set(after) == set(before) == set(used)  # same ids: counters live outside the identity
    first, second = (usefulness_of(after[i]) for i in used)
    assert (first.correct, first.wrong, second.correct, second.wrong) == (1, 1, 1, 0)
    assert first.last_used is not None
    assert after[used[0]].rationale == before[used[0]].rationale  # nothing else changed
    # Demo ids never depend on extra or scores.
    d = before[used[0]]
    assert with_usage(d, correct=True).demo_id == replace(d, scores={"mcs": 0.3}).demo_id == d.demo_id
    assert store.count() == 4  # two feedback demos added, no duplicates of the used ones


def test_hygiene_dedups_and_caps_by_usefulness_and_age(tmp_path: Path) -> None:
    store = _store(tmp_path, "hygiene-test")
    assert normalize_text("  The CAT, sat!\n") == normalize_text("the cat sat") == "the cat sat"
    a = _demo("The cat sat", created_at="2024-01-01T00:00:00+00:00")
    b = _demo(
        "the  cat, SAT!",
        created_at="2024-01-02T00:00:00+00:00",
        extra={"usefulness": {"correct": 3, "wrong": 0}},
    )
    c = _demo("The cat sat", explainer="grad", created_at="2024-01-03T00:00:00+00:00")  # exact copy of a's input
    conflict = _demo("The cat sat", "implausible", created_at="2024-01-04T00:00:00+00:00")
    store.add([a, b, c, conflict])
    dry = dedup(store, dry_run=True)
    assert set(dry.removed) == {a.demo_id, c.demo_id} and store.count() == 4  # dry run removes nothing
    assert dry.removed[c.demo_id].startswith("near duplicate") or dry.removed[c.demo_id].startswith("exact")
    report = dedup(store)
    assert store.has([a.demo_id, b.demo_id, c.demo_id, conflict.demo_id]) == {b.demo_id, conflict.demo_id}
    assert report.conflicts  # same text, two gold labels: reported, both kept

    store.delete([b.demo_id, conflict.demo_id])
    demos = [
        _demo(
            f"plausible example number {i}",
            created_at=f"2024-02-0{i + 1}T00:00:00+00:00",
            extra={"usefulness": {"correct": i % 2, "wrong": 2 * (i % 2 == 0)}},
        )
        for i in range(4)
    ] + [
        _demo(f"implausible example number {i}", "implausible", created_at=f"2024-03-0{i + 1}T00:00:00+00:00")
        for i in range(2)
    ]
    store.add(demos)
    useful = cap(store, max_per_label=2, evict="usefulness", dry_run=True)
    # Even-numbered ones were shown for wrong answers only: they go first.
    assert set(useful.removed) == {demos[0].demo_id, demos[2].demo_id}
    by_age = cap(store, max_per_label=3, evict="age")
    assert set(by_age.removed) == {demos[0].demo_id} and store.count() == 5
    total = enforce(store, HygienePolicy(max_total=3, evict="age"))
    # The largest label gives first, oldest first: the result stays balanced.
    assert store.count() == 3 and len(total.removed) == 2
    left = store.list()
    assert sorted(d.label for d in left).count("implausible") >= 1
