"""The store's retriever view: demonstrations as LangChain Documents, sync and async, on a real Chroma."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from langchain_core.retrievers import BaseRetriever

from amplify_agents.stores import RationaleStore, default_embeddings, document_to_demonstration

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import topic_demos  # noqa: E402

QUERY = "Who won the soccer match yesterday?"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RationaleStore:
    s = RationaleStore.local("retriever-test", tmp_path_factory.mktemp("chroma"), embeddings=default_embeddings())
    s.add(topic_demos())
    return s


def test_documents_hold_the_demonstrations(store: RationaleStore) -> None:
    retriever = store.as_retriever(k=3, where={"task": "task-a"})
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(QUERY)
    hits = store.search(QUERY, k=3, where={"task": "task-a"})
    assert [doc.page_content for doc in docs] == [demo.input for demo, _ in hits]
    top = docs[0]
    assert top.metadata["answer"] == "sports" and top.metadata["demo_id"] == top.id == hits[0][0].demo_id
    assert top.metadata["rationale"] == hits[0][0].rationale
    assert top.metadata["similarity"] == pytest.approx(hits[0][1])
    assert [document_to_demonstration(doc) for doc in docs] == [demo for demo, _ in hits]  # exact round trip


def test_mmr_and_async_match_the_store(store: RationaleStore) -> None:
    mmr = store.as_retriever(k=2, search_type="mmr", fetch_k=6, lambda_mult=0.3)
    assert [document_to_demonstration(d) for d in mmr.invoke(QUERY)] == store.mmr(
        QUERY, k=2, fetch_k=6, lambda_mult=0.3
    )
    similarity = store.as_retriever(k=4)
    # A local store awaits the sync search in LangChain's executor: the same documents.
    assert asyncio.run(similarity.ainvoke(QUERY)) == similarity.invoke(QUERY)
    assert asyncio.run(mmr.ainvoke(QUERY)) == mmr.invoke(QUERY)
    with pytest.raises(ValueError, match="at least 1"):
        store.as_retriever(k=0)
