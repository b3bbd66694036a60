"""AmplifyExampleSelector the LangChain way: from_examples on the user's own keys, their own
FewShotPromptTemplate and token budget, an existing LangChain Chroma collection, and traces.

Real parts throughout: Chroma (in memory and on disk), the offline MiniLM, Gemma's tokenizer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

import chromadb
import pytest
from langchain_chroma import Chroma
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.example_selectors import SemanticSimilarityExampleSelector
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from amplify_agents.demonstrations import DemoKeys
from amplify_agents.errors import LabelError, StoreError
from amplify_agents.selectors import AmplifyExampleSelector, TokenBudget
from amplify_agents.stores import RationaleStore, default_embeddings

EXAMPLES = [
    {
        "question": "Did the striker score a goal in the football final?",
        "answer": "yes",
        "rationale": "A striker scoring in a final is a football event.",
    },
    {"question": "Did the goalkeeper save a penalty in the cup match?", "answer": "yes"},
    {"question": "Should the bread bake in a hot oven for thirty minutes?", "answer": "no"},
    {"question": "Did the central bank raise interest rates again this year?", "answer": "no"},
]
QUERY = {"question": "Who scored the winning goal in the football match?"}

# Long enough that four demonstrations cannot fit in 120 Gemma tokens.
LONG = [
    {
        "question": f"In the {place} derby, did the {who} really {what} before the final whistle of the long match?",
        "answer": answer,
    }
    for place, who, what, answer in [
        ("northern", "veteran striker", "score a spectacular late goal from outside the box", "yes"),
        ("southern", "young goalkeeper", "save two penalties and a header in the shoot-out", "no"),
        ("eastern", "team captain", "head the ball into the top corner of the net", "yes"),
        ("western", "substitute winger", "cross the ball for the equaliser in stoppage time", "no"),
    ]
]
PREFIX = "Answer each football question with yes or no."
EXAMPLE_PROMPT = PromptTemplate.from_template("Question: {question}\nAnswer: {answer}")
SUFFIX = "Question: {question}\nAnswer:"


@pytest.fixture(scope="module")
def embeddings():
    return default_embeddings()


def _in_memory_stores() -> set[str]:
    return {c if isinstance(c, str) else c.name for c in chromadb.EphemeralClient().list_collections()}


@pytest.fixture
def no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files go to an empty folder, the working directory is another: both must stay empty."""
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def _users_template(selector: AmplifyExampleSelector) -> FewShotPromptTemplate:
    """The user's own few-shot template (their example prompt, prefix and suffix) over ``selector``."""
    return FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=EXAMPLE_PROMPT,
        prefix=PREFIX,
        suffix=SUFFIX,
        input_variables=["question"],
    )


def test_from_examples_on_the_users_keys_leaves_nothing_behind(no_files: Path, embeddings) -> None:
    before = _in_memory_stores()
    selector = AmplifyExampleSelector.from_examples(
        EXAMPLES, embeddings, k=2, input_keys=["question"], retrieval=_plain()
    )
    picked = selector.select_examples(QUERY)
    assert len(picked) == 2
    assert {"question", "answer", "rationale", "demo_id"} == set(picked[0])
    assert {e["question"] for e in picked} == {EXAMPLES[0]["question"], EXAMPLES[1]["question"]}
    # A rationale where one was given; a plain demonstration, marked so, where not.
    demos = {d.input: d for d in selector.store.list()}
    assert demos[EXAMPLES[0]["question"]].explainer == "provided"
    assert demos[EXAMPLES[1]["question"]].explainer == "none" and demos[EXAMPLES[1]["question"]].rationale == ""
    # The user's own example prompt formats what the selector returns.
    prompt = FewShotPromptTemplate(
        example_selector=selector, example_prompt=EXAMPLE_PROMPT, suffix=SUFFIX, input_variables=["question"]
    )
    assert f"Question: {EXAMPLES[0]['question']}\nAnswer: yes" in prompt.format(**QUERY)
    assert list((no_files / "tmp").iterdir()) == [] and list((no_files / "cwd").iterdir()) == []
    store_name = selector.store.name
    assert store_name in _in_memory_stores() - before
    selector.store.close()
    assert store_name not in _in_memory_stores()

    # A failed call (an example without an answer) leaves no store and no folder either.
    with pytest.raises(LabelError, match="gold answer"):
        AmplifyExampleSelector.from_examples([*EXAMPLES, {"question": "Unlabelled?", "answer": ""}], embeddings)
    assert _in_memory_stores() == before
    assert list((no_files / "tmp").iterdir()) == [] and list((no_files / "cwd").iterdir()) == []


def test_from_examples_infers_or_is_told_the_keys(embeddings) -> None:
    rows = [{"q": e["question"], "a": e["answer"], "why": e.get("rationale", "")} for e in EXAMPLES]
    with pytest.raises(ValueError, match="answer_key="):
        AmplifyExampleSelector.from_examples(rows, embeddings)  # q, a, why: which is the answer?
    selector = AmplifyExampleSelector.from_examples(
        rows, embeddings, k=1, input_keys=["q"], rationale_key="why", retrieval=_plain()
    )
    (top,) = selector.select_examples({"q": QUERY["question"]})
    assert top["q"] == EXAMPLES[0]["question"] and top["a"] == "yes" and top["why"] == EXAMPLES[0]["rationale"]
    # Several input keys: embedded and queried joined, as LangChain does; each comes back as given.
    two = [{"context": "football", "question": e["question"], "answer": e["answer"]} for e in EXAMPLES]
    both = AmplifyExampleSelector.from_examples(
        two, embeddings, k=1, input_keys=["context", "question"], retrieval=_plain()
    )
    (top,) = both.select_examples({"context": "football", "question": QUERY["question"]})
    assert (top["context"], top["question"], top["answer"]) == ("football", EXAMPLES[0]["question"], "yes")
    # The old keyword usage still works.
    old = AmplifyExampleSelector.from_examples(
        [{"input": e["question"], "answer": e["answer"], "rationale": "r"} for e in EXAMPLES],
        store_name="from-examples-old",
        embeddings=embeddings,
        k=2,
    )
    assert len(old.select_examples({"input": QUERY["question"]})) == 2


def _plain():
    from amplify_agents.selectors import RetrievalSettings

    return RetrievalSettings(balance_labels=False, dedup_threshold=None)


def _count(gemma):
    return lambda text: len(gemma.tokenizer(text)["input_ids"])


def test_budget_measures_the_users_own_few_shot_prompt(gemma, embeddings) -> None:
    count = _count(gemma)
    selector = AmplifyExampleSelector.from_examples(LONG, embeddings, k=4, input_keys=["question"], retrieval=_plain())
    prompt = _users_template(selector)
    unbudgeted = prompt.format(**QUERY)
    assert count(unbudgeted) > 120 and unbudgeted.count("Question:") == 5

    selector.budget = TokenBudget.from_tokenizer(120, gemma.tokenizer, prompt=prompt)
    budgeted = prompt.format(**QUERY)
    assert count(budgeted) <= 120
    assert 1 < budgeted.count("Question:") < 5  # demonstrations were dropped, not all of them

    # The example prompt alone, with the prefix and suffix the user's template will have.
    budget = TokenBudget.from_tokenizer(120, gemma.tokenizer, prompt=EXAMPLE_PROMPT, prefix=PREFIX, suffix=SUFFIX)
    other = AmplifyExampleSelector.from_examples(
        LONG, embeddings, k=4, input_keys=["question"], retrieval=_plain(), budget=budget
    )
    theirs = _users_template(other)
    assert theirs.format(**QUERY) == budgeted


def test_a_langchain_collection_is_refused_with_the_fix_then_imported(tmp_path: Path, embeddings) -> None:
    # The collection LangChain's own selector builds: the question as document, the example as metadata.
    SemanticSimilarityExampleSelector.from_examples(
        EXAMPLES,
        embeddings,
        Chroma,
        k=2,
        input_keys=["question"],
        collection_name="faq",
        persist_directory=str(tmp_path),
    )
    with pytest.raises(StoreError, match=r"not written by amplify-agents.*import_collection\('faq'"):
        RationaleStore.local("faq", tmp_path, embeddings)
    store = RationaleStore.local("faq-amplify", tmp_path, embeddings)
    assert store.import_collection("faq", answer_key="answer") == len(EXAMPLES)
    assert store.import_collection("faq", answer_key="answer") == len(EXAMPLES)  # idempotent ids
    assert store.count() == len(EXAMPLES)
    assert chromadb.PersistentClient(path=str(tmp_path)).get_collection("faq").count() == len(EXAMPLES)  # untouched
    selector = AmplifyExampleSelector(
        store, k=1, input_key="question", keys=DemoKeys(input="question"), retrieval=_plain()
    )
    (top,) = selector.select_examples(QUERY)
    assert top["question"] == EXAMPLES[0]["question"] and top["rationale"] == EXAMPLES[0]["rationale"]
    plain = [d for d in store.list() if d.input == EXAMPLES[1]["question"]]
    assert plain[0].explainer == "none"
    with pytest.raises(StoreError, match="no answer under 'verdict'"):
        RationaleStore.local("faq-other", tmp_path, embeddings).import_collection("faq", answer_key="verdict")


class _Retrievals(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[tuple[str, UUID | None]] = []
        self.documents: list[Any] = []

    def on_retriever_start(self, serialized: Any, query: str, *, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self.starts.append((query, parent_run_id))

    def on_retriever_end(self, documents: Any, **kw: Any) -> None:
        self.documents.append(documents)


def test_a_selection_is_traced_as_a_retrieval(embeddings) -> None:
    selector = AmplifyExampleSelector.from_examples(EXAMPLES, embeddings, k=2, input_keys=["question"])
    prompt = FewShotPromptTemplate(
        example_selector=selector, example_prompt=EXAMPLE_PROMPT, suffix=SUFFIX, input_variables=["question"]
    )
    handler = _Retrievals()
    prompt.invoke(QUERY, config={"callbacks": [handler]})
    assert len(handler.starts) == 1
    query, parent = handler.starts[0]
    assert query == QUERY["question"] and parent is not None  # nested in the prompt's run
    docs = handler.documents[0]
    assert docs[0].page_content == EXAMPLES[0]["question"]
    assert {"answer", "rationale", "demo_id", "similarity"} <= set(docs[0].metadata)
