"""The AMPLIFY chain, chatbot and RAG chain on the real offline Gemma and a tiny real Chroma store."""

from __future__ import annotations

import asyncio
import math
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from amplify_agents.chains import (
    AmplifyResult,
    LabelScoringLLM,
    create_amplify_chain,
    create_amplify_chatbot,
    create_amplify_rag_chain,
    create_plain_rag_chain,
)
from amplify_agents.prompts import build_text_prompt
from amplify_agents.stores import default_embeddings

try:
    from .chain_fixtures import QUERIES, frame, selector, sports, store  # noqa: F401 - fixtures
except ImportError:
    from chain_fixtures import QUERIES, frame, selector, sports, store  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(300)


class Counter(BaseCallbackHandler):
    """Counts chain and LLM starts (and remembers the chain names)."""

    def __init__(self) -> None:
        self.chain_names: list[str] = []
        self.llm_starts = 0
        self.parents: list[UUID | None] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self.chain_names.append(str(kw.get("name")))

    def on_llm_start(self, serialized: Any, prompts: Any, *, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self.llm_starts += 1
        self.parents.append(parent_run_id)


@pytest.fixture(scope="module")
def labels(sports) -> list[str]:  # noqa: F811
    return list(sports.labels)


@pytest.fixture(scope="module")
def chain(gemma, selector, frame, labels):  # noqa: F811
    return create_amplify_chain(selector, labels=labels, frame=frame, local=gemma)


@pytest.fixture(scope="module")
def first(chain) -> AmplifyResult:
    return chain.invoke(next(iter(QUERIES)))


def test_answer_is_a_label_with_probabilities(first: AmplifyResult, labels, gemma) -> None:
    assert first.answer in labels
    assert first.label_probs is not None and set(first.label_probs) == set(labels)
    assert math.isclose(sum(first.label_probs.values()), 1.0, abs_tol=1e-6)
    assert first.answer == max(first.label_probs, key=first.label_probs.get)
    assert (first.route, first.fallback, first.model) == ("local", False, gemma.name)


def test_demonstrations_come_from_the_store_and_fill_the_prompt(first: AmplifyResult, store, frame) -> None:  # noqa: F811
    assert len(first.demonstrations) == 2
    stored = store.get_many(first.demo_ids)
    assert [d.input for d in stored] == [d["input"] for d in first.demonstrations]
    assert [d.rationale for d in stored] == [d["rationale"] for d in first.demonstrations]
    assert first.prompt == build_text_prompt(next(iter(QUERIES)), first.demonstrations, frame)
    for demo in stored:
        # (x, y, r), the library's default layout: the answer, then its rationale on the next line
        assert f"{demo.input}{frame.output_prefix} {demo.label}\n{demo.rationale}" in first.prompt


def test_batch_and_async_equal_invoke(chain, first: AmplifyResult) -> None:
    queries = list(QUERIES)
    second = chain.invoke(queries[1])
    results = {
        "batch": chain.batch(queries),
        "abatch": asyncio.run(chain.abatch(queries)),
        "ainvoke": [asyncio.run(chain.ainvoke(q)) for q in queries],
    }
    for how, got in results.items():
        for want, res in zip([first, second], got, strict=True):
            assert (res.answer, res.demonstrations, res.prompt) == (
                want.answer,
                want.demonstrations,
                want.prompt,
            ), how
            for label, p in want.label_probs.items():  # the prefix cache may change the last digits
                assert res.label_probs[label] == pytest.approx(p, abs=1e-4), how


def test_stream_yields_the_result(chain, first: AmplifyResult) -> None:
    chunks = list(chain.stream(next(iter(QUERIES))))
    assert len(chunks) == 1 and chunks[0].answer == first.answer


def test_callbacks_reach_the_inner_runnables(chain) -> None:
    counter = Counter()
    chain.invoke(next(iter(QUERIES)), config={"callbacks": [counter], "run_name": "outer"})
    assert counter.llm_starts == 1 and counter.parents[0] is not None
    names = set(counter.chain_names)
    assert {"outer", "amplify_select", "amplify_prompt", "local_llm", "amplify_parse"} <= names, names


def test_generation_mode(gemma, selector, frame, labels) -> None:  # noqa: F811
    chain = create_amplify_chain(
        selector, labels=labels, frame=frame, local=gemma, local_mode="generate", max_new_tokens=4
    )
    result = chain.invoke(next(iter(QUERIES)))
    assert result.raw_text.strip() and result.label_probs is None
    assert result.answer in labels  # greedy Gemma repeats the demos' answer format
    assert result.model == gemma.name and len(result.demonstrations) == 2


def test_scoring_llm_alone(gemma, labels) -> None:
    llm = LabelScoringLLM(loaded=gemma, labels=labels)
    assert llm.invoke("Statement: Messi scored a goal\nPlausible/implausible?") in labels


def test_chatbot_keeps_history_and_retrieves_per_turn(gemma, selector, frame, labels) -> None:  # noqa: F811
    bot = create_amplify_chatbot(gemma, selector, frame=frame, labels=labels, max_new_tokens=4)
    cfg = {"configurable": {"thread_id": "fan"}}
    one, two = list(QUERIES)
    a = bot.invoke({"input": one}, cfg)
    b = bot.invoke({"input": two}, cfg)
    messages = bot.get_state(cfg).values["messages"]
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[1].content == a["output"] and a["output"]
    # Demonstrations are retrieved for each turn's own message.
    assert [d["input"] for d in a["demonstrations"]] == [d["input"] for d in selector.select_examples({"input": one})]
    assert [d["input"] for d in b["demonstrations"]] == [d["input"] for d in selector.select_examples({"input": two})]
    assert a["demonstrations"] != b["demonstrations"]
    # The first turn is in the second prompt, right before the new message.
    assert f"{one}{frame.output_prefix} {a['output']}\n{frame.input_prefix}{two}{frame.output_prefix}" in b["prompt"]
    assert b["model"] == gemma.name


def test_rag_prompt_holds_context_and_demonstrations(gemma, selector, frame, labels) -> None:  # noqa: F811
    facts = [
        "Malcolm Brogdon is a basketball guard who plays in the NBA.",
        "Gareth Bale is a Welsh footballer who played for Real Madrid.",
        "A bank shot in basketball bounces off the backboard into the hoop.",
    ]
    docs = InMemoryVectorStore.from_texts(facts, embedding=default_embeddings())
    retriever = docs.as_retriever(search_kwargs={"k": 2})
    query = next(iter(QUERIES))
    rag = create_amplify_rag_chain(retriever, selector, labels=labels, frame=frame, local=gemma)
    result = rag.invoke(query)
    assert result.answer in labels and len(result.context) == 2
    assert all(isinstance(d, Document) for d in result.context)
    assert facts[0] in [d.page_content for d in result.context]
    for doc in result.context:
        assert doc.page_content in result.prompt
    for demo in result.demonstrations:
        assert demo["input"] in result.prompt and demo["rationale"] in result.prompt
    assert result.prompt.index("Context:") < result.prompt.index(query)
    plain = create_plain_rag_chain(retriever, labels=labels, frame=frame, local=gemma).invoke(query)
    assert plain.demonstrations == [] and plain.context == result.context
    assert all(demo["input"] not in plain.prompt for demo in result.demonstrations)


def test_calibrated_chain_divides_out_the_prompts_own_label_prior(gemma, selector, frame, labels, first) -> None:  # noqa: F811
    from amplify_agents.models import LabelScorer
    from amplify_agents.models.calibration import CONTENT_FREE_INPUTS, apply_prior, contextual_prior, pmi_prior

    query = next(iter(QUERIES))
    calibrated = create_amplify_chain(selector, labels=labels, frame=frame, local=gemma, calibration="contextual")
    result = calibrated.invoke(query)
    # Same demonstrations and prompt as the uncalibrated chain; only the scores change.
    assert result.prompt == first.prompt and result.demonstrations == first.demonstrations
    # The prior is the same prompt's distribution over content-free queries (Zhao et al.).
    scorer = LabelScorer(gemma, label_prefix=frame.label_prefix)
    demos = result.demonstrations
    prior = contextual_prior(scorer, lambda x: build_text_prompt(x, demos, frame), labels)
    assert len(CONTENT_FREE_INPUTS) == 3
    [raw] = scorer.score([result.prompt], labels)
    expected = apply_prior(raw, prior)
    for lab in labels:
        assert result.label_probs[lab] == pytest.approx(expected.probs[lab], abs=1e-4)
        assert first.label_probs[lab] == pytest.approx(raw.probs[lab], abs=1e-4)
    assert result.answer == expected.predicted

    pmi = create_amplify_chain(selector, labels=labels, frame=frame, local=gemma, calibration="pmi").invoke(query)
    expected_pmi = apply_prior(raw, pmi_prior(scorer, frame.output_prefix.strip(), labels))
    assert pmi.answer == expected_pmi.predicted
    for lab in labels:
        assert pmi.label_probs[lab] == pytest.approx(expected_pmi.probs[lab], abs=1e-4)
    with pytest.raises(ValueError, match="Unknown calibration"):
        create_amplify_chain(selector, labels=labels, frame=frame, local=gemma, calibration="zhao")
    with pytest.raises(ValueError, match="calibration_prompts"):
        LabelScoringLLM(loaded=gemma, labels=labels, calibration="contextual").invoke("Q: hi\nA:")


def test_surface_forms_are_on_for_chat_models_only(gemma, labels, monkeypatch: pytest.MonkeyPatch) -> None:
    from amplify_agents.models import LabelScorer

    prompt = "Statement: Messi scored a penalty kick\nPlausible/implausible?"
    base = LabelScoringLLM(loaded=gemma, labels=labels)
    assert not base.uses_surface_forms  # Gemma 270M is a base model: no chat template
    forced = LabelScoringLLM(loaded=gemma, labels=labels, surface_forms=True)
    info = forced.generate([prompt]).generations[0][0].generation_info
    [expected] = LabelScorer(gemma).score([prompt], labels, surface_forms=True)
    [plain] = LabelScorer(gemma).score([prompt], labels)
    for lab in labels:
        assert info["label_probs"][lab] == pytest.approx(expected.probs[lab], abs=1e-5)
    assert any(abs(expected.probs[lab] - plain.probs[lab]) > 1e-4 for lab in labels)
    # A tokenizer with a chat template (an instruction-tuned model) turns them on by default.
    monkeypatch.setattr(gemma.tokenizer, "chat_template", "{{ messages }}", raising=False)
    assert LabelScoringLLM(loaded=gemma, labels=labels).uses_surface_forms
