"""Self-AMPLIFY explainers on the real offline Gemma 3 270M (gradient, perturbation, self-reported).

Kept lean for two busy CPU cores: the shortest BIG-bench snarks items, few steps and
samples, the model loaded once per session (the ``gemma`` fixture).
"""

from __future__ import annotations

import math

import pytest
import torch

from amplify_agents.errors import ExplanationError, LabelError
from amplify_agents.explainers._causal import RowScorer, TargetLogProb, encode_item, make_rows
from amplify_agents.explainers.captum_layer import (
    DeepLiftExplainer,
    GradientShapExplainer,
    GradXActivationExplainer,
    IntegratedGradientsExplainer,
)
from amplify_agents.explainers.perturbation import (
    FeatureAblationExplainer,
    KernelShapExplainer,
    LimeExplainer,
    ShapleySamplingExplainer,
)
from amplify_agents.explainers.self_reported import SelfExplanationExplainer, SelfTopKExplainer, parse_keywords
from amplify_agents.explainers.words import split_words
from amplify_agents.framing import Frame
from amplify_agents.models import LabelScorer
from amplify_agents.tasks import load_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def snarks(bigbench_dir):
    """(task, frame, the two shortest items)."""
    task = load_task(bigbench_dir / "snarks")
    shortest = sorted(task.examples, key=lambda e: len(e.input))[:2]
    return task, Frame.from_task(task), shortest


def explain_capturing(explainer, text: str, target: str):
    """Explain one input and also return the raw token attribution (with its offsets)."""
    raws = []
    attribute = explainer._attribute

    def spy(texts, targets):
        out = attribute(texts, targets)
        raws.extend(out)
        return out

    explainer._attribute = spy
    expl = explainer.explain_one(text, target)
    [raw] = raws
    assert raw.tokens and all(math.isfinite(s) for s in raw.scores)
    for a, b in raw.offsets:
        assert 0 <= a < b <= len(text)  # relative to the input text, inside it
    return expl, raw


# ------------------------------------------------------------------ forward
def test_target_forward_matches_label_scorer(gemma, snarks) -> None:
    task, frame, (ex, _) = snarks
    item = encode_item(gemma, frame, ex.input, ex.label, max_length=10_000)
    [ref] = LabelScorer(gemma, label_prefix=frame.label_prefix).score([frame.render(ex.input)[0]], task.labels)
    expected = ref.logprobs[task.labels.index(ex.label)]
    batch = make_rows([item.ids], [len(item.prompt_ids)], 0, gemma.device)
    with torch.no_grad():
        got = TargetLogProb(gemma)(batch.input_ids, *batch.forward_args()).item()
    assert got == pytest.approx(expected, abs=1e-4)
    body = [item.prompt_ids[p] for p in item.positions] + item.tail
    # Uncached and with the (short) head run as a cached prefix: the same score.
    for min_prefix in (10_000, 1):
        scorer = RowScorer(gemma, min_prefix_tokens=min_prefix)
        assert scorer.score(item.head, [body], item.label_ids).item() == pytest.approx(expected, abs=1e-4)


def test_explainers_forward_is_the_scorers_quantity_for_every_label(gemma, snarks, bigbench_dir) -> None:
    # What the causal explainers differentiate (TargetLogProb, from ids and from input
    # embeddings with gradients on) is LabelScorer's log-prob, for every label of a batch:
    # snarks' "(a)"/"(b)" are several tokens, causal_judgment's "Yes"/"No" one each.
    cj = load_task(bigbench_dir / "causal_judgment")
    cases = [snarks, (cj, Frame.from_task(cj), sorted(cj.examples, key=lambda e: len(e.input))[:2])]
    forward = TargetLogProb(gemma)
    for task, frame, items in cases:
        prompts = [frame.render(e.input)[0] for e in items]
        ref = LabelScorer(gemma, label_prefix=frame.label_prefix).score(prompts, task.labels)
        encoded = [encode_item(gemma, frame, e.input, lab, max_length=10_000) for e in items for lab in task.labels]
        batch = make_rows([it.ids for it in encoded], [len(it.prompt_ids) for it in encoded], 0, gemma.device)
        expected = [lp for scores in ref for lp in scores.logprobs]
        assert [len(it.label_ids) for it in encoded] == [n for scores in ref for n in scores.n_tokens]
        with torch.no_grad():
            from_ids = forward(batch.input_ids, *batch.forward_args())
        assert from_ids.tolist() == pytest.approx(expected, abs=1e-4)
        embeds = gemma.model.get_input_embeddings()(batch.input_ids).detach().requires_grad_()
        from_embeds = forward.forward_embeds(embeds, *batch.forward_args())
        assert from_embeds.tolist() == pytest.approx(expected, abs=1e-4)
        from_embeds.sum().backward()  # differentiable: the gradient explainers' path
        assert embeds.grad is not None and torch.isfinite(embeds.grad).all() and embeds.grad.abs().sum() > 0
        gemma.model.zero_grad(set_to_none=True)


# ----------------------------------------------------------------- gradient
GRADIENT = [
    (GradXActivationExplainer, {}),
    (IntegratedGradientsExplainer, {"n_steps": 6}),
    (GradientShapExplainer, {"n_samples": 6}),
    (DeepLiftExplainer, {}),
]


@pytest.mark.parametrize(("cls", "kwargs"), GRADIENT, ids=[c.name for c, _ in GRADIENT])
def test_gradient_explainer_scores_only_input_tokens(gemma, snarks, cls, kwargs) -> None:
    task, frame, (ex, _) = snarks
    explainer = cls(gemma, task.labels, frame, k=3, **kwargs)
    expl, raw = explain_capturing(explainer, ex.input, ex.label)
    item = encode_item(gemma, frame, ex.input, ex.label, max_length=10_000)
    assert expl.explainer == cls.name
    assert len(raw.tokens) == len(item.positions) == expl.info["n_input_tokens"]
    assert raw.offsets == item.offsets
    # Template tokens ("Q", ":", "A", BOS) exist in the prompt and are never reported.
    assert len(item.positions) < len(item.prompt_ids)
    assert not {"<bos>", "Q", "A"} & set(raw.tokens)
    assert all(w in ex.input for w in expl.top_words) and expl.top_words
    if cls is GradXActivationExplainer:
        # No baseline: template tokens do get gradient x activation, and are not reported.
        assert expl.info["outside_span_max_abs"] > 0
    else:
        # Baseline = input outside the span: template attributions are exactly zero.
        assert expl.info["outside_span_max_abs"] == 0.0


def test_baselines_equal_input_outside_the_span(gemma, snarks) -> None:
    task, frame, (ex, _) = snarks
    item = encode_item(gemma, frame, ex.input, ex.label, max_length=10_000)
    pad = DeepLiftExplainer(gemma, task.labels, frame).pad_id
    base = item.baseline_ids(pad)
    assert len(base) == len(item.ids)
    for pos, (token, baseline) in enumerate(zip(item.ids, base, strict=True)):
        assert baseline == (pad if pos in item.positions else token)


def test_batched_integrated_gradients_match_captum_llm_reference(gemma, snarks) -> None:
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    _, _, (ex, _) = snarks
    # A single-token target (" Yes"): Captum's wrapper repeats per answer token.
    explainer = IntegratedGradientsExplainer(gemma, ["Yes", "No"], Frame(), n_steps=4)
    [(item, mine)] = explainer.attribute_positions([ex.input], ["Yes"])
    assert len(item.label_ids) == 1
    ref = LLMGradientAttribution(
        LayerIntegratedGradients(gemma.model, gemma.model.get_input_embeddings()), gemma.tokenizer
    )
    inp = TextTokenInput(item.prompt, gemma.tokenizer, baselines=explainer.pad_id)
    assert inp.inp_tensor[0].tolist() == item.prompt_ids
    # Captum's baseline "indicator": 0 = replace by the baseline token (input span only).
    indicator = torch.ones(1, len(item.prompt_ids), dtype=torch.long)
    indicator[0, item.positions] = 0
    res = ref.attribute(inp, target=torch.tensor(item.label_ids), baselines=indicator, n_steps=4)
    expected = res.token_attr[0].float()
    n = len(item.prompt_ids)
    assert torch.allclose(mine[:n], expected, atol=1e-3 * max(1.0, expected.abs().max().item()))
    assert mine[n:].abs().max().item() == 0.0  # the label token cannot explain itself


def test_batched_explain_equals_one_by_one(gemma, snarks) -> None:
    task, frame, items = snarks
    texts, targets = [e.input for e in items], [e.label for e in items]
    explainer = DeepLiftExplainer(gemma, task.labels, frame)
    together = explainer.explain(texts, targets)
    alone = [explainer.explain_one(t, y) for t, y in zip(texts, targets, strict=True)]
    for a, b in zip(together, alone, strict=True):
        assert a.tokens == b.tokens
        assert a.token_scores == pytest.approx(b.token_scores, abs=1e-4)
    shap = KernelShapExplainer(gemma, task.labels, frame, n_samples=16)
    together = shap.explain(texts, targets)
    last = shap.explain_one(texts[1], targets[1])
    assert together[1].word_scores == pytest.approx(last.word_scores, abs=1e-4)


# ------------------------------------------------------------- perturbation
PERTURBATION = [
    (KernelShapExplainer, {"n_samples": 20}),
    (LimeExplainer, {"n_samples": 20}),
    (FeatureAblationExplainer, {}),
    (ShapleySamplingExplainer, {"n_samples": 1}),
]


@pytest.mark.parametrize(("cls", "kwargs"), PERTURBATION, ids=[c.name for c, _ in PERTURBATION])
def test_perturbation_explainer_uses_words_as_features(gemma, snarks, cls, kwargs) -> None:
    task, frame, (ex, _) = snarks
    explainer = cls(gemma, task.labels, frame, k=3, **kwargs)
    expl, raw = explain_capturing(explainer, ex.input, ex.label)
    words = split_words(ex.input)
    assert expl.explainer == cls.name
    assert expl.info["n_features"] == len(words) == len(expl.word_scores)
    # Each token piece lies in one word and carries its score: word score = its tokens' score.
    pieces: dict[int, set[float]] = {}
    for (a, b), s in zip(raw.offsets, raw.scores, strict=True):
        [w] = [i for i, w in enumerate(words) if w.start <= a and b <= w.end]
        pieces.setdefault(w, set()).add(s)
    assert sorted(pieces) == list(range(len(words)))
    for w, values in pieces.items():
        assert len(values) == 1 and expl.word_scores[w] == pytest.approx(values.pop())
    assert expl.top_words and all(w in ex.input for w in expl.top_words)
    if cls is FeatureAblationExplainer:
        assert expl.info["forward_rows"] == len(words) + 1


# ------------------------------------------------------------ self-reported
def test_parse_keywords_keeps_input_words_only() -> None:
    text = "Which statement is sarcastic? (a) Yeah war is tragic."
    kept, dropped = parse_keywords("1. War\n2. peace, yeah\n- 'tragic'.\n3) war", text)
    assert kept == ["war", "Yeah", "tragic"]
    assert dropped == ["peace"]


def test_self_topk_keeps_input_words_and_reports_dropped(gemma, snarks) -> None:
    task, frame, (ex, _) = snarks
    explainer = SelfTopKExplainer(gemma, task.labels, frame, k=3, max_new_tokens=20)
    assert "most important keywords" in explainer.build_prompt(ex.input, ex.label)
    expl = explainer.explain_one(ex.input, ex.label)
    lowered = {w.text.lower() for w in split_words(ex.input)}
    assert len(expl.top_words) <= 3
    assert all(w.lower() in lowered for w in expl.top_words)
    dropped = expl.info["dropped"]
    assert dropped["count"] == len(dropped["words"])
    assert all(w.lower() not in lowered for w in dropped["words"])
    assert expl.info["n_named"] >= len(expl.top_words)
    assert expl.settings["do_sample"] is False and expl.settings["num_beams"] == 1


def test_self_explanation_returns_text(gemma, snarks) -> None:
    task, frame, (ex, _) = snarks
    explainer = SelfExplanationExplainer(gemma, task.labels, frame, p=2, max_new_tokens=24)
    expl = explainer.explain_one(ex.input, ex.label)
    assert expl.generated_text and expl.generated_text.startswith("Step 1:")
    assert "Step 3" not in expl.generated_text
    assert expl.top_words == [] and expl.ok


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "cls", [IntegratedGradientsExplainer, KernelShapExplainer, SelfTopKExplainer], ids=lambda c: c.name
)
def test_target_outside_label_space_is_a_label_error(gemma, snarks, cls) -> None:
    task, frame, (ex, _) = snarks
    with pytest.raises(LabelError, match="label space"):
        cls(gemma, task.labels, frame).explain_one(ex.input, "(c)")


@pytest.mark.parametrize(
    "cls", [GradXActivationExplainer, FeatureAblationExplainer, SelfExplanationExplainer], ids=lambda c: c.name
)
def test_input_longer_than_the_context_is_an_explanation_error(gemma, snarks, cls) -> None:
    task, frame, (ex, _) = snarks
    explainer = cls(gemma, task.labels, frame)
    limit = explainer.max_length
    assert limit == gemma.model.config.max_position_embeddings
    too_long = "war " * (limit + 10)  # one token per word: past the real context
    with pytest.raises(ExplanationError, match="context"):
        explainer.explain_one(too_long, ex.label)
