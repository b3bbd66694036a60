"""Store behaviours checked on every Chroma backend (embedded directory and server).

Each ``check_*`` function takes a :class:`Backend` (how to open a store and a raw Chroma
client on it) and a scratch directory. ``test_store.py`` runs them on an embedded Chroma,
``test_store_server.py`` on a real ``chroma run`` server: one body of checks, two backends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import chromadb
import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.example_selectors import SemanticSimilarityExampleSelector

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import StoreError
from amplify_agents.stores import SCHEMA_VERSION, InvalidDemonstrationError, RationaleStore, StoreVersionError


@dataclass
class Backend:
    """How a test reaches one kind of Chroma deployment."""

    open: Callable[[str], RationaleStore]
    """Open (or create) the store with this name, through a new store object."""
    raw_client: Callable[[], chromadb.ClientAPI]
    """A plain Chroma client on the same data, to inspect or tamper with collections."""
    embeddings: Embeddings


def unique_name(prefix: str) -> str:
    """A fresh store name, so checks sharing one server never see each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


TOPICS: dict[str, str] = {
    "sports": "The striker scored a late goal and the football team won the championship final.",
    "cooking": "Knead the dough, let it rise, then bake the bread in a hot oven for thirty minutes.",
    "finance": "Stock prices fell sharply after the central bank raised interest rates again.",
    "astronomy": "The telescope observed a distant galaxy and the light of exploding stars.",
    "gardening": "Water the tomato plants every morning and pull the weeds from the vegetable bed.",
    "music": "The orchestra played a symphony; the violins and the cellos carried the melody.",
}


def topic_demos() -> list[Demonstration]:
    """Demonstrations on clearly distinct topics, spread over two tasks and strategies."""
    demos = []
    for position, (topic, text) in enumerate(TOPICS.items()):
        demos.append(
            Demonstration(
                input=text,
                label=topic,
                rationale=f'The key words are: "{text.split()[1]}", "{text.split()[2]}".',
                task="task-a" if position % 2 == 0 else "task-b",
                keywords=text.split()[1:3],
                explainer="grad_x_input" if position < 3 else "self_topk",
                explainer_settings={"steps": 1, "baseline": "pad"} if position < 3 else {},
                model_id="gemma-3-270m",
                strategy="error" if position % 3 == 0 else "success",
                k=2 if position != 5 else None,
                template_id="key-words-v1",
                scores={"prediction": "wrong", "gold_prob": 0.25 + position / 10, "mcs": None},
                example_id=f"ex-{position}",
                extra={"topic": topic, "position": position},
            )
        )
    return demos


def _snapshot(client: chromadb.ClientAPI, name: str) -> dict[str, object]:
    collection = client.get_collection(name)
    records = collection.get(include=["documents", "metadatas"])
    return {
        "metadata": dict(collection.metadata or {}),
        "count": collection.count(),
        "ids": records["ids"],
        "documents": records["documents"],
        "metadatas": records["metadatas"],
    }


# -- the checks ------------------------------------------------------------------------------


def check_add_get_count_list_delete(backend: Backend, tmp_path: Path) -> None:
    store = backend.open(unique_name("crud"))
    demos = topic_demos()
    assert store.count() == 0 and store.list() == []
    ids = store.add(demos)
    assert ids == [demo.demo_id for demo in demos]
    assert store.count() == len(demos) == len(store)

    # get: exact round trip, including k=None, JSON fields and created_at.
    for demo in demos:
        assert store.get(demo.demo_id) == demo
    assert store.get("0" * 32) is None
    assert store.get_many([ids[3], "missing", ids[0]]) == [demos[3], demos[0]]
    assert store.has([ids[1], ids[2], "missing"]) == {ids[1], ids[2]}
    assert store.has([]) == set()

    # list and count with Chroma where filters.
    in_a = store.list({"task": "task-a"})
    assert {demo.demo_id for demo in in_a} == {d.demo_id for d in demos if d.task == "task-a"}
    both = {"$and": [{"task": "task-a"}, {"strategy": "error"}]}
    expected_both = {d.demo_id for d in demos if d.task == "task-a" and d.strategy == "error"}
    assert {demo.demo_id for demo in store.list(both)} == expected_both
    assert store.count(both) == len(expected_both)
    assert store.count({"k": 2}) == sum(d.k == 2 for d in demos)
    assert store.count({"explainer": "self_topk"}) == 3
    assert len(store.list(limit=2)) == 2
    assert store.count({}) == len(demos)  # an empty filter means no filter

    # delete: by id, unknown ids ignored, an empty list is a no-op.
    store.delete([ids[0], ids[1], "missing"])
    store.delete([])
    assert store.count() == len(demos) - 2
    assert store.get(ids[0]) is None
    assert store.has(ids) == set(ids[2:])


def check_add_is_idempotent(backend: Backend, tmp_path: Path) -> None:
    store = backend.open(unique_name("idem"))
    demos = topic_demos()
    store.add(demos)
    assert store.add(demos) == [demo.demo_id for demo in demos]
    assert store.count() == len(demos)

    # Same identity, new rationale: an upsert replaces the record.
    first = demos[0]
    rebuilt = Demonstration.from_dict(
        {**{k: v for k, v in first.to_dict().items() if k != "demo_id"}, "rationale": "A new rationale."}
    )
    assert rebuilt.demo_id == first.demo_id
    store.upsert([rebuilt])
    assert store.count() == len(demos)
    assert store.get(first.demo_id) == rebuilt

    # Duplicates inside one batch are fine too (Chroma alone would refuse them).
    assert store.add([demos[1], demos[1]]) == [demos[1].demo_id] * 2
    assert store.count() == len(demos)
    assert store.add([]) == []


def check_bad_batches_write_nothing(backend: Backend, tmp_path: Path) -> None:
    store = backend.open(unique_name("bad"))
    good = topic_demos()[0]
    blank_input = Demonstration(input="   ", label="x", rationale="", task="t")
    no_label = Demonstration(input="some text", label="", rationale="", task="t")
    with pytest.raises(InvalidDemonstrationError, match="item 1: expected a Demonstration, got dict"):
        store.add([good, good.to_dict()])  # type: ignore[list-item]
    with pytest.raises(StoreError, match="item 1: empty input.*item 2: empty label"):
        store.add([good, blank_input, no_label])
    assert store.count() == 0


def check_search_returns_nearest_first(backend: Backend, tmp_path: Path) -> None:
    store = backend.open(unique_name("search"))
    store.add(topic_demos())
    queries = {
        "sports": "Who won the soccer match yesterday?",
        "cooking": "How long should a loaf of bread stay in the oven?",
        "finance": "Why did the stock market drop when rates went up?",
        "astronomy": "What can astronomers see with a big telescope?",
        "music": "Which instruments play in a symphony orchestra?",
    }
    for topic, query in queries.items():
        hits = store.search(query, k=3)
        assert len(hits) == 3
        assert hits[0][0].label == topic, (query, [(d.label, s) for d, s in hits])
        similarities = [score for _, score in hits]
        assert similarities == sorted(similarities, reverse=True)
        assert -1.0 <= similarities[-1] <= similarities[0] <= 1.0

    # The similarity is the cosine similarity of the unit-norm embeddings.
    query = queries["sports"]
    top, score = store.search(query, k=1)[0]
    q = backend.embeddings.embed_query(query)
    d = backend.embeddings.embed_documents([top.input])[0]
    assert score == pytest.approx(sum(a * b for a, b in zip(q, d, strict=True)), abs=1e-4)

    # A filter restricts the candidates; search_by_vector agrees with search.
    filtered = store.search(queries["sports"], k=10, where={"task": "task-b"})
    assert filtered and all(demo.task == "task-b" for demo, _ in filtered)
    assert len(filtered) == 3  # fewer matches than k: Chroma returns what there is
    by_vector = store.search_by_vector(q, k=3)
    assert [d.demo_id for d, _ in by_vector] == [d.demo_id for d, _ in store.search(query, k=3)]
    with pytest.raises(ValueError, match="k must be"):
        store.search(query, k=0)


def check_mmr_honours_where(backend: Backend, tmp_path: Path) -> None:
    store = backend.open(unique_name("mmr"))
    demos = topic_demos()
    # Three records with the same sports input (different k): near-duplicates for MMR.
    sports = demos[0]
    copies = [
        Demonstration.from_dict({**{k: v for k, v in sports.to_dict().items() if k != "demo_id"}, "k": k})
        for k in (3, 4, 5)
    ]
    store.add(demos + copies)
    query = "The football team scored a goal."

    # Unfiltered, the nearest records are the sports ones in task-a...
    assert {demo.task for demo in store.mmr(query, k=3, fetch_k=20)} >= {"task-a"}
    # ...but with a filter no returned demonstration may violate it.
    for where in (
        {"task": "task-b"},
        {"$and": [{"task": "task-b"}, {"strategy": "success"}]},
        {"explainer": "self_topk"},
    ):
        picked = store.mmr(query, k=2, fetch_k=20, where=where)
        allowed = {demo.demo_id for demo in store.list(where)}
        assert picked, where
        assert {demo.demo_id for demo in picked} <= allowed, where
        assert len(picked) == min(2, len(allowed))
    assert store.mmr(query, k=2, where={"task": "no-such-task"}) == []

    # MMR trades similarity for diversity: plain search takes two identical inputs, MMR does not.
    nearest = store.search(query, k=2, where={"task": "task-a"})
    assert nearest[0][0].input == nearest[1][0].input == sports.input
    diverse = store.mmr(query, k=2, fetch_k=20, lambda_mult=0.5, where={"task": "task-a"})
    assert len({demo.input for demo in diverse}) == 2
    with pytest.raises(ValueError, match="lambda_mult"):
        store.mmr(query, lambda_mult=1.5)


def check_jsonl_round_trip(backend: Backend, tmp_path: Path) -> None:
    source = backend.open(unique_name("export"))
    demos = topic_demos()
    source.add(demos)
    first = tmp_path / "first.jsonl"
    assert source.export_jsonl(first) == len(demos)

    lines = first.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["demo_id"] for line in lines] == sorted(d.demo_id for d in demos)

    target = backend.open(unique_name("import"))
    assert target.import_jsonl(first) == len(demos)
    assert {d.demo_id for d in target.list()} == {d.demo_id for d in demos}
    for demo in demos:
        assert target.get(demo.demo_id) == demo
        assert target.get(demo.demo_id).to_dict() == demo.to_dict()  # type: ignore[union-attr]
    second = tmp_path / "second.jsonl"
    target.export_jsonl(second)
    assert second.read_bytes() == first.read_bytes()  # two exports diff cleanly
    # The imported store is searchable: its records were embedded on import.
    assert target.search("bread oven baking", k=1)[0][0].label == "cooking"

    broken = tmp_path / "broken.jsonl"
    broken.write_text(lines[0] + "\n\n{not json\n", encoding="utf-8")
    empty = backend.open(unique_name("broken"))
    with pytest.raises(StoreError, match=r"broken.jsonl:3"):
        empty.import_jsonl(broken)
    assert empty.count() == 0  # the whole file is read before anything is written


def check_newer_schema_is_refused_untouched(backend: Backend, tmp_path: Path) -> None:
    name = unique_name("future")
    store = backend.open(name)
    store.add(topic_demos()[:2])
    client = backend.raw_client()
    collection = client.get_collection(name)
    collection.modify(metadata={**(collection.metadata or {}), "schema_version": SCHEMA_VERSION + 1})
    before = _snapshot(client, name)

    with pytest.raises(StoreVersionError, match="newer amplify-agents.*Upgrade"):
        backend.open(name)
    assert _snapshot(backend.raw_client(), name) == before

    # A newer collection that is still empty is refused as well, and stays empty.
    empty_name = unique_name("future-empty")
    client.create_collection(empty_name, metadata={"schema_version": SCHEMA_VERSION + 7})
    with pytest.raises(StoreVersionError, match=f"schema version {SCHEMA_VERSION + 7}"):
        backend.open(empty_name)
    assert _snapshot(client, empty_name)["metadata"] == {"schema_version": SCHEMA_VERSION + 7}
    assert _snapshot(client, empty_name)["count"] == 0


def check_foreign_collections(backend: Backend, tmp_path: Path) -> None:
    client = backend.raw_client()
    # Records that amplify-agents did not write: refused rather than misread.
    occupied = unique_name("foreign")
    foreign = client.create_collection(occupied)
    foreign.add(ids=["x"], embeddings=[[0.1] * 384], documents=["hello"])  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="not written by amplify-agents"):
        backend.open(occupied)
    # An empty collection made elsewhere is adopted and stamped with the schema version.
    empty = unique_name("adopted")
    client.create_collection(empty, metadata={"owner": "someone"})
    store = backend.open(empty)
    assert client.get_collection(empty).metadata == {
        "owner": "someone",
        "schema_version": SCHEMA_VERSION,
        "amplify_agents": "rationale-store",
    }
    store.add(topic_demos()[:1])
    assert backend.open(empty).count() == 1


def check_reopen_sees_the_same_demos(backend: Backend, tmp_path: Path) -> None:
    name = unique_name("reopen")
    demos = topic_demos()
    backend.open(name).add(demos)
    again = backend.open(name)  # a new store object
    assert again.count() == len(demos)
    assert sorted(again.list(), key=lambda d: d.demo_id) == sorted(demos, key=lambda d: d.demo_id)
    assert again.search("violins and cellos", k=1)[0][0].label == "music"
    metadata = backend.raw_client().get_collection(name).metadata or {}
    assert metadata["schema_version"] == SCHEMA_VERSION


def check_langchain_selector_runs_on_the_vectorstore(backend: Backend, tmp_path: Path) -> None:
    store = backend.open(unique_name("selector"))
    store.add(topic_demos())
    selector = SemanticSimilarityExampleSelector(vectorstore=store.vectorstore, k=2, input_keys=["input"])
    examples = selector.select_examples({"input": "a goal in the football final"})
    assert examples[0]["label"] == "sports"
    assert examples[0]["input"] == TOPICS["sports"]
    assert {"rationale", "task", "explainer"} <= set(examples[0])
    assert store.vectorstore.embeddings is store.embeddings


CORE_CHECKS: list[Callable[[Backend, Path], None]] = [
    check_add_get_count_list_delete,
    check_add_is_idempotent,
    check_bad_batches_write_nothing,
    check_search_returns_nearest_first,
    check_mmr_honours_where,
    check_jsonl_round_trip,
    check_newer_schema_is_refused_untouched,
    check_foreign_collections,
    check_reopen_sees_the_same_demos,
    check_langchain_selector_runs_on_the_vectorstore,
]
