"""AmplifyExampleSelector on a real Chroma store with the real offline MiniLM embeddings."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import LabelError
from amplify_agents.framing import Frame
from amplify_agents.prompts import build_text_prompt, few_shot_chat_template, few_shot_text_template
from amplify_agents.selectors import AmplifyExampleSelector, RetrievalSettings, TokenBudget
from amplify_agents.stores import RationaleStore, default_embeddings

SPORTS = [
    "The striker scored a goal in the final minute of the football match.",
    "The goalkeeper saved a penalty and the football team won the cup.",
    "The football coach praised the defenders after the league match.",
    "The midfielder passed the ball and the football crowd cheered loudly.",
    "A late goal from the striker decided the football derby.",
    "The referee showed a red card during the football semi-final.",
]
COOKING = [
    "Bake the bread in a hot oven for thirty minutes.",
    "Simmer the tomato sauce slowly and add fresh basil.",
]


def _demo(
    text: str, label: str, *, task: str = "t", mcs: float | None = None, explainer: str = "grad_x_input"
) -> Demonstration:
    return Demonstration(
        input=text,
        label=label,
        rationale=f"The key words: {text.split()[1]} and {text.split()[2]} are important clues to predict {label}.",
        task=task,
        explainer=explainer,
        strategy="error",
        k=2,
        scores={"mcs": mcs},
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RationaleStore:
    s = RationaleStore.local("selector-test", tmp_path_factory.mktemp("chroma"), embeddings=default_embeddings())
    demos = [_demo(t, "yes" if i % 3 else "no", mcs=i / 10) for i, t in enumerate(SPORTS)]
    demos += [_demo(t, "no", task="other") for t in COOKING]
    demos.append(_demo(SPORTS[0] + " ", "no", mcs=0.0, explainer="deeplift"))  # near-duplicate input
    s.add(demos)
    return s


QUERY = {"input": "Did the football striker score a goal in the match?"}


def test_returns_prompt_ready_examples_nearest_first(store: RationaleStore) -> None:
    sel = AmplifyExampleSelector(store, k=3, retrieval=RetrievalSettings(balance_labels=False, dedup_threshold=None))
    examples = sel.select_examples(QUERY)
    assert len(examples) == 3
    assert set(examples[0]) >= {"input", "rationale", "answer", "demo_id"}
    assert all("football" in e["input"] for e in examples)
    # The same order as a plain similarity search.
    plain = [d.input for d, _ in store.search(QUERY["input"], k=3)]
    assert [e["input"] for e in examples] == plain


def test_metadata_filters(store: RationaleStore) -> None:
    sel = AmplifyExampleSelector(store, k=4, task="other", retrieval=RetrievalSettings(balance_labels=False))
    assert {e["input"] for e in sel.select_examples(QUERY)} == set(COOKING)
    sel = AmplifyExampleSelector(store, k=8, explainer="deeplift", retrieval=RetrievalSettings(balance_labels=False))
    assert [e["input"] for e in sel.select_examples(QUERY)] == [SPORTS[0] + " "]


def test_mmr_keeps_the_filter(store: RationaleStore) -> None:
    sel = AmplifyExampleSelector(
        store, k=2, task="other", retrieval=RetrievalSettings(mmr=True, fetch_k=10, balance_labels=False)
    )
    demos = sel.select_demonstrations(QUERY["input"])
    assert len(demos) == 2 and all(d.task == "other" for d in demos)


def test_label_balance(store: RationaleStore) -> None:
    balanced = AmplifyExampleSelector(store, k=4, task="t", retrieval=RetrievalSettings(dedup_threshold=None))
    counts = Counter(e["answer"] for e in balanced.select_examples(QUERY))
    assert counts == {"yes": 2, "no": 2}
    # Balanced picks stay in similarity order.
    order = [d.input for d, _ in store.search(QUERY["input"], k=20, where={"task": "t"})]
    picked = [e["input"] for e in balanced.select_examples(QUERY)]
    assert picked == sorted(picked, key=order.index)


def test_dedup_drops_near_identical_inputs(store: RationaleStore) -> None:
    keep_all = AmplifyExampleSelector(
        store, k=9, task="t", retrieval=RetrievalSettings(balance_labels=False, dedup_threshold=None)
    )
    dedup = AmplifyExampleSelector(store, k=9, task="t", retrieval=RetrievalSettings(balance_labels=False))
    all_inputs = [e["input"].strip() for e in keep_all.select_examples(QUERY)]
    deduped = [e["input"].strip() for e in dedup.select_examples(QUERY)]
    assert all_inputs.count(SPORTS[0]) == 2
    assert deduped.count(SPORTS[0]) == 1 and len(deduped) == len(all_inputs) - 1


def test_mcs_weight_prefers_high_mcs(store: RationaleStore) -> None:
    sel = AmplifyExampleSelector(
        store, k=2, task="t", retrieval=RetrievalSettings(balance_labels=False, mcs_weight=0.9, dedup_threshold=None)
    )
    top = sel.select_demonstrations(QUERY["input"])
    assert [d.scores["mcs"] for d in top] == [0.5, 0.4]


def test_token_budget_is_measured_with_the_real_tokenizer(store: RationaleStore, gemma) -> None:
    frame = Frame(instruction="Answer the question.\n")
    count = lambda text: len(gemma.tokenizer(text)["input_ids"])  # noqa: E731
    full = AmplifyExampleSelector(store, k=4, task="t", frame=frame)
    demos = full.select_examples(QUERY)
    full_tokens = count(build_text_prompt(QUERY["input"], demos, frame))
    budget = full_tokens - 5  # one demo must go
    sel = AmplifyExampleSelector(
        store, k=4, task="t", frame=frame, budget=TokenBudget.from_tokenizer(budget, gemma.tokenizer)
    )
    fitted = sel.select_examples(QUERY)
    assert len(fitted) == 3 and fitted == demos[:3]  # the lowest-ranked was dropped
    assert count(build_text_prompt(QUERY["input"], fitted, frame)) <= budget
    with pytest.raises(TypeError, match="count"):
        TokenBudget(100)  # type: ignore[call-arg]  # a budget without a way to count tokens


def test_async_equals_sync(store: RationaleStore) -> None:
    sel = AmplifyExampleSelector(store, k=3, task="t")
    assert asyncio.run(sel.aselect_examples(QUERY)) == sel.select_examples(QUERY)


def test_drop_in_langchain_templates(store: RationaleStore) -> None:
    sel = AmplifyExampleSelector(store, k=2, task="t")
    # A user's existing template, unchanged.
    template = FewShotPromptTemplate(
        example_selector=sel,
        example_prompt=PromptTemplate.from_template("Q: {input}\nWhy: {rationale}\nA: {answer}"),
        suffix="Q: {input}\nA:",
        input_variables=["input"],
    )
    text = template.format(**QUERY)
    examples = sel.select_examples(QUERY)
    for e in examples:
        assert f"Q: {e['input']}\nWhy: {e['rationale']}\nA: {e['answer']}" in text
    ours = few_shot_text_template(Frame(), example_selector=sel).format(**QUERY)
    assert ours == build_text_prompt(QUERY["input"], examples, Frame())
    chat = few_shot_chat_template(Frame(instruction="Be brief."), example_selector=sel).format_messages(**QUERY)
    assert [m.type for m in chat] == ["system", "human", "ai", "human", "ai", "human"]
    assert chat[2].content.startswith(f"The answer is {examples[0]['answer']}")  # (x, y, r), the default


def test_add_example_requires_a_label_and_a_rationale_source(tmp_path: Path) -> None:
    s = RationaleStore.local("selector-add", tmp_path, embeddings=default_embeddings())
    sel = AmplifyExampleSelector(s, task="t")
    with pytest.raises(LabelError, match="gold answer"):
        sel.add_example({"input": "no label here"})
    with pytest.raises(ValueError, match="explainer"):
        sel.add_example({"input": "labelled but no rationale", "answer": "yes"})
    assert s.count() == 0  # nothing written by refused calls
    demo_id = sel.add_example({"input": "Is the oven hot?", "answer": "yes", "rationale": "Ovens heat."})
    assert s.get(demo_id).rationale == "Ovens heat."
    assert sel.add_example({"input": "Is the oven hot?", "answer": "yes", "rationale": "Ovens heat."}) == demo_id
    assert s.count() == 1


def test_from_examples(tmp_path: Path) -> None:
    sel = AmplifyExampleSelector.from_examples(
        [{"input": t, "answer": "yes", "rationale": "r"} for t in SPORTS[:3]],
        store_name="from-examples",
        persist_directory=str(tmp_path),
        embeddings=default_embeddings(),
        k=2,
    )
    assert len(sel.select_examples(QUERY)) == 2 and sel.store.count() == 3
