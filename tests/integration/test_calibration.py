"""Calibrated label scoring and label surface forms on the real offline Gemma."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from amplify_agents.framing import Frame
from amplify_agents.models import LabelScorer
from amplify_agents.models.calibration import apply_prior, contextual_prior, pmi_prior
from amplify_agents.models.scoring import surface_variants
from amplify_agents.prompts import build_text_prompt
from amplify_agents.tasks import load_task


@pytest.fixture(scope="module")
def skewed(gemma, bigbench_dir: Path):
    """A prompt whose demonstrations all answer "yes": a strong prior toward "yes"."""
    task = load_task(bigbench_dir / "implicatures")
    frame = Frame.from_task(task)
    yes = [e for e in task if e.label == "yes"][:6]
    demos = [{"input": e.input, "answer": e.label} for e in yes]
    queries = [e for e in task if e.label == "no"][:6] + [e for e in task if e.label == "yes"][10:16]
    scorer = LabelScorer(gemma, label_prefix=frame.label_prefix)
    build = lambda text: build_text_prompt(text, demos, frame)  # noqa: E731
    raw = scorer.score([build(q.input) for q in queries], task.labels)
    return task, scorer, build, raw


def test_contextual_calibration_follows_the_formula_and_rebalances(skewed) -> None:
    task, scorer, build, raw = skewed
    prior = contextual_prior(scorer, build, task.labels)
    p_cf = {lab: math.exp(lp) for lab, lp in prior.as_dict().items()}
    assert p_cf["yes"] > p_cf["no"]  # the prompt is skewed toward "yes"
    calibrated = [apply_prior(s, prior) for s in raw]
    for before, after in zip(raw, calibrated):
        weights = {lab: before.probs[lab] / p_cf[lab] for lab in task.labels}
        total = sum(weights.values())
        for lab in task.labels:  # q(y|x) = p(y|x) / p_cf(y), renormalised
            assert after.probs[lab] == pytest.approx(weights[lab] / total, rel=1e-6)
    yes_before = sum(s.probs["yes"] for s in raw) / len(raw)
    yes_after = sum(s.probs["yes"] for s in calibrated) / len(calibrated)
    assert yes_after < yes_before  # mass moves away from the favoured label
    assert abs(yes_after - 0.5) < abs(yes_before - 0.5)


def test_pmi_subtracts_the_premise_logprob(skewed) -> None:
    task, scorer, _, raw = skewed
    prior = pmi_prior(scorer, "A:", task.labels)
    [premise] = scorer.score(["A:"], task.labels)
    for before in raw:
        after = apply_prior(before, prior)
        for i, _ in enumerate(task.labels):
            assert after.logprobs[i] == pytest.approx(before.logprobs[i] - premise.logprobs[i], abs=1e-6)


def test_prior_must_cover_the_labels(skewed) -> None:
    _, scorer, _, raw = skewed
    with pytest.raises(ValueError, match="no value for labels"):
        apply_prior(raw[0], pmi_prior(scorer, "A:", ["maybe", "never"]))


def test_surface_forms_combine_variants_by_log_sum_exp(gemma) -> None:
    scorer = LabelScorer(gemma)
    prompt = "Question: Is the sky green? Answer yes or no.\nAnswer:"
    [merged] = scorer.score([prompt], ["yes", "no"], surface_forms=True)
    variants = {lab: scorer._distinct_variants(surface_variants(lab, " ")) for lab in ("yes", "no")}
    for i, lab in enumerate(("yes", "no")):
        singles = scorer.score([prompt], list(variants[lab]), label_prefix="")[0].logprobs
        expected = math.log(sum(math.exp(v) for v in singles))
        assert merged.logprobs[i] == pytest.approx(expected, abs=1e-5)
        [plain] = scorer.score([prompt], [lab])
        assert merged.logprobs[i] > plain.logprobs[0]  # more spellings, more mass
    assert {" No", " no", "No"} <= set(variants["no"])
