"""One rationale writer: the builder, the feedback log and the selector write the same demonstration.

A self-reported explanation (the model names its keywords, or writes a p-step text) used to
enter the store differently depending on the door: the selector rendered every explanation
with AMPLIFY's keyword template (an empty keyword list for ``self_exp``), while the builder
chose the template by explainer family. On the real Gemma, each door now gives the same
rationale text, keywords and template for the same (input, gold label).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amplify_agents import (
    AmplifyExampleSelector,
    BuildConfig,
    DemonstrationBuilder,
    FeedbackLog,
    Frame,
    RationaleStore,
    SelfExplanationExplainer,
    SelfTopKExplainer,
    SLMPredictor,
    load_task,
)
from amplify_agents.stores import default_embeddings

EXPLAINERS = {
    "self_topk": lambda gemma, task, frame: SelfTopKExplainer(gemma, task.labels, frame, k=3, max_new_tokens=20),
    "self_exp": lambda gemma, task, frame: SelfExplanationExplainer(gemma, task.labels, frame, p=2, max_new_tokens=24),
}


@pytest.fixture(scope="module")
def snarks(bigbench_dir: Path):
    """The task and its shortest item (Gemma names keywords and writes a text for it)."""
    task = load_task(bigbench_dir / "snarks")
    return task, min(task.examples, key=lambda e: len(e.input))


def _written(demos) -> list[tuple[str, list[str], str, str]]:
    return [(d.rationale, d.keywords, d.template_id, d.explainer) for d in demos]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_every_door_writes_the_same_rationale(tmp_path: Path, gemma, snarks, name: str) -> None:
    task, example = snarks
    frame = Frame.from_task(task)
    explainer = EXPLAINERS[name](gemma, task, frame)
    embeddings = default_embeddings()

    built_store = RationaleStore.local("built", tmp_path / "built", embeddings=embeddings)
    report = DemonstrationBuilder(
        task,
        SLMPredictor(gemma, task.labels, frame),
        explainer,
        built_store,
        BuildConfig(strategy="random", n=1, df_filter=False),
        progress=False,
    ).run([example])
    assert len(report.demo_ids) == 1, report.table()
    [built] = built_store.list()

    selector_store = RationaleStore.local("selector", tmp_path / "selector", embeddings=embeddings)
    selector = AmplifyExampleSelector(selector_store, k=1, task=task.name, explainer=explainer)
    selector.add_example({"input": example.input, "answer": example.label})
    [via_selector] = selector_store.list()

    feedback_store = RationaleStore.local("feedback", tmp_path / "feedback", embeddings=embeddings)
    log = FeedbackLog(feedback_store, tmp_path / "review.jsonl", task=task, explainer=explainer)
    outcome = log.record(example.input, example.label, gold=example.label, verified=True)
    assert outcome.stored
    [via_feedback] = feedback_store.list()

    assert built.rationale, "the explainer gave an empty rationale: the comparison would prove nothing"
    assert _written([built]) == _written([via_selector]) == _written([via_feedback])
    expected_template = {"self_topk": "self_topk", "self_exp": "p_step"}[name]
    assert built.template_id == expected_template
    if name == "self_exp":
        assert built.keywords == [] and "-step rationale:" in built.rationale
    else:
        assert built.keywords and all(w in built.rationale for w in built.keywords)
    # The same explainer settings everywhere, so a demonstration's id depends only on what it is.
    assert built.explainer_settings == via_selector.explainer_settings == via_feedback.explainer_settings
