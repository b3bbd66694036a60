"""The selector's LangChain-shaped pieces that need no model: key inference, prompt layouts,
budgets, a foreign collection's records and the retriever's Documents."""

from __future__ import annotations

import pytest
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from amplify_agents.demonstrations import DemoKeys, Demonstration
from amplify_agents.errors import StoreError
from amplify_agents.selectors import TokenBudget, infer_example_keys, prompt_layout
from amplify_agents.stores import demonstration_to_document, document_to_demonstration
from amplify_agents.stores.adopt import CollectionMapping, demonstrations_from_records

QA = [{"question": "2 + 2?", "answer": "4"}, {"question": "3 + 3?", "answer": "6", "rationale": "3 and 3 make 6."}]


def test_keys_are_inferred_like_langchain_or_named() -> None:
    assert infer_example_keys(QA, ["question"]) == (("question",), DemoKeys("question", "rationale", "answer"))
    assert infer_example_keys(QA) == (("question",), DemoKeys("question", "rationale", "answer"))
    rows = [{"q": "x", "verdict": "y", "why": "z"}]
    assert infer_example_keys(rows, ["q"], rationale_key="why") == (("q",), DemoKeys("q", "why", "verdict"))
    with pytest.raises(ValueError, match="answer_key="):
        infer_example_keys(rows)
    several = [{"context": "c", "question": "q", "output": "o", "task": "t"}]
    assert infer_example_keys(several) == (("context", "question"), DemoKeys("input", "rationale", "output"))
    with pytest.raises(ValueError, match=r"Example 2 has no \['answer'\]"):
        infer_example_keys([*QA, {"question": "no answer"}], ["question"], answer_key="answer")
    with pytest.raises(ValueError, match="at least one"):
        infer_example_keys([])


def test_layout_renders_what_the_users_template_renders() -> None:
    example_prompt = PromptTemplate.from_template("Q: {question}\nA: {answer}")
    template = FewShotPromptTemplate(
        examples=QA, example_prompt=example_prompt, prefix="Do sums.", suffix="Q: {question}\nA:"
    )
    expected = template.format(question="5 + 5?")
    assert prompt_layout(template)({"question": "5 + 5?"}, QA) == expected
    assert prompt_layout(example_prompt, prefix="Do sums.", suffix="Q: {question}\nA:")({"question": "5 + 5?"}, QA) == (
        expected
    )
    assert prompt_layout(template)({"question": "5 + 5?"}, QA[:1]) == FewShotPromptTemplate(
        examples=QA[:1], example_prompt=example_prompt, prefix="Do sums.", suffix="Q: {question}\nA:"
    ).format(question="5 + 5?")
    with pytest.raises(TypeError, match="chat prompt"):
        prompt_layout("not a prompt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        TokenBudget(0, len)


def test_foreign_records_become_demonstrations_or_say_what_is_missing() -> None:
    rows = [("a", "2 + 2?", {"answer": "4", "topic": "sums"}), ("b", "3 + 3?", {"answer": "6", "rationale": "3+3"})]
    plain, explained = demonstrations_from_records(rows, CollectionMapping(), source="qa")
    assert (plain.explainer, plain.rationale, plain.label) == ("none", "", "4")
    assert explained.explainer == "provided" and explained.rationale == "3+3"
    assert plain.to_example(DemoKeys(input="question"))["topic"] == "sums"
    again = demonstrations_from_records(rows, CollectionMapping(), source="qa")
    assert [d.demo_id for d in again] == [plain.demo_id, explained.demo_id]  # idempotent ids
    with pytest.raises(StoreError, match=r"Record 'a' of 'qa' has no answer under 'label'.*answer_key="):
        demonstrations_from_records(rows, CollectionMapping(answer_key="label"), source="qa")


def test_documents_round_trip_demonstrations() -> None:
    demo = Demonstration(input="2 + 2?", label="4", rationale="Two and two.", task="sums", scores={"mcs": 0.5})
    doc = demonstration_to_document(demo, 0.75)
    assert doc.page_content == "2 + 2?" and doc.id == demo.demo_id
    assert doc.metadata["answer"] == "4" and doc.metadata["similarity"] == 0.75
    assert document_to_demonstration(doc) == demo
