"""Async selection on a real ``chroma run`` server goes through chromadb's AsyncHttpClient."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromadb.api.models.AsyncCollection import AsyncCollection
from chromadb.api.models.Collection import Collection

from amplify_agents.selectors import AmplifyExampleSelector, RetrievalSettings
from amplify_agents.stores import RationaleStore, default_embeddings

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_store_server import HOST, checks, chroma_run  # noqa: E402  (it registers store_fixtures' asserts)

QUERY = {"input": "The football team scored a late goal."}


@pytest.fixture(scope="module")
def server_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RationaleStore]:
    with chroma_run(tmp_path_factory.mktemp("chroma-async")) as (_, port):
        store = RationaleStore.server(
            checks.unique_name("async"), host=HOST, port=port, embeddings=default_embeddings()
        )
        store.add(checks.topic_demos())
        yield store


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many queries each Chroma client made: the real methods, counted."""
    made = {"sync": 0, "async": 0}
    sync_query, async_query = Collection.query, AsyncCollection.query

    def counted_sync(self: Collection, *args: Any, **kwargs: Any) -> Any:
        made["sync"] += 1
        return sync_query(self, *args, **kwargs)

    async def counted_async(self: AsyncCollection, *args: Any, **kwargs: Any) -> Any:
        made["async"] += 1
        return await async_query(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "query", counted_sync)
    monkeypatch.setattr(AsyncCollection, "query", counted_async)
    return made


@pytest.mark.parametrize("mmr", [False, True], ids=["similarity", "mmr"])
def test_aselect_examples_uses_the_async_client(
    server_store: RationaleStore, queries: dict[str, int], mmr: bool
) -> None:
    selector = AmplifyExampleSelector(server_store, k=3, retrieval=RetrievalSettings(mmr=mmr, fetch_k=6))
    expected = selector.select_examples(QUERY)
    assert queries == {"sync": 1, "async": 0}

    async def both() -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(selector.aselect_examples(QUERY), selector.aselect_examples(QUERY)))

    first, second = asyncio.run(both())
    assert first == second == expected and len(expected) == 3
    assert queries == {"sync": 1, "async": 2}  # both awaited selections went through the async client
    # A second event loop gets a client of its own.
    assert asyncio.run(selector.aselect_examples(QUERY)) == expected
    assert queries["async"] == 3


def test_asearch_equals_search(server_store: RationaleStore) -> None:
    query = QUERY["input"]
    sync = server_store.search(query, k=4, where={"task": "task-a"})
    got = asyncio.run(server_store.asearch(query, k=4, where={"task": "task-a"}))
    assert [d for d, _ in got] == [d for d, _ in sync]
    assert [s for _, s in got] == pytest.approx([s for _, s in sync], abs=1e-5)
