"""Calibrated label scoring: divide out the label prior a prompt imposes.

Small models put most of their mass on one label whatever the input (see the
measured facts). Two standard corrections, both "subtract a per-label reference
log-probability" from the label scores:

* **contextual calibration** (Zhao et al., 2021, "Calibrate Before Use"): the reference
  is the label distribution the *same prompt* gives content-free inputs ("N/A", "",
  "[MASK]"), averaged; calibrated p(y|x) ∝ p(y|x) / p_cf(y);
* **domain-conditional PMI** (Holtzman et al., 2021): the reference is the
  log-probability of each label after the bare answer prefix (the "domain premise",
  e.g. "A:"); score(y) = log p(y|x) − log p(y|premise).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from amplify_agents.models.scoring import LabelScorer, LabelScores

__all__ = [
    "CONTENT_FREE_INPUTS",
    "CalibrationMethod",
    "LabelPrior",
    "apply_prior",
    "contextual_prior",
    "pmi_premise",
    "pmi_prior",
    "prior_from_scores",
]

CalibrationMethod = Literal["contextual", "pmi"]
CONTENT_FREE_INPUTS: tuple[str, ...] = ("N/A", "", "[MASK]")


def pmi_premise(output_prefix: str) -> str:
    """The domain premise of PMI calibration: the frame's answer prefix ("A:"), stripped
    unless it is only whitespace."""
    return output_prefix.strip() or output_prefix


@dataclass(frozen=True)
class LabelPrior:
    """A reference log-probability per label, subtracted from label scores."""

    labels: tuple[str, ...]
    logprobs: tuple[float, ...]
    method: str

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.labels, self.logprobs))


def contextual_prior(
    scorer: LabelScorer,
    build_prompt: Callable[[str], str],
    labels: Sequence[str],
    content_free: Sequence[str] = CONTENT_FREE_INPUTS,
) -> LabelPrior:
    """The mean label distribution of ``build_prompt(x)`` over content-free inputs ``x``.

    ``build_prompt`` must lay the prompt out exactly as for real queries (same
    instruction and demonstrations), so the prior is the prompt's own.
    """
    scores = scorer.score([build_prompt(x) for x in content_free], list(labels))
    return prior_from_scores(scores, "contextual")


def pmi_prior(scorer: LabelScorer, premise: str, labels: Sequence[str]) -> LabelPrior:
    """Label log-probabilities after the bare domain premise (e.g. the answer prefix "A:")."""
    return prior_from_scores(scorer.score([premise], list(labels)), "pmi")


def prior_from_scores(reference: Sequence[LabelScores], method: str) -> LabelPrior:
    """The prior from the already computed scores of its prompts.

    ``"contextual"``: the log of the label probabilities averaged over the content-free
    prompts' scores; ``"pmi"``: the summed label log-probabilities of the one premise.
    Use it to score the prior's prompts in the same call as the real ones (they share the
    cached demonstration prefix).
    """
    if not reference:
        raise ValueError("No reference scores: score the prior's prompts first.")
    labels = reference[0].labels
    if method == "pmi":
        return LabelPrior(tuple(labels), tuple(reference[0].logprobs), "pmi")
    if method != "contextual":
        raise ValueError(f"Unknown calibration {method!r}: use 'contextual' or 'pmi'.")
    mean = [sum(s.probs[lab] for s in reference) / len(reference) for lab in labels]
    return LabelPrior(tuple(labels), tuple(math.log(max(p, 1e-12)) for p in mean), "contextual")


def apply_prior(scores: LabelScores, prior: LabelPrior) -> LabelScores:
    """``scores`` with the prior subtracted from each label's log-probability.

    The summed log-probabilities are corrected; the length-normalised ones are
    corrected by the same amount per token.
    """
    ref = prior.as_dict()
    missing = [lab for lab in scores.labels if lab not in ref]
    if missing:
        raise ValueError(f"The prior has no value for labels {missing}: build it on the same label space.")
    logprobs = tuple(lp - ref[lab] for lp, lab in zip(scores.logprobs, scores.labels))
    mean = tuple(lp / n for lp, n in zip(logprobs, scores.n_tokens))
    return replace(scores, logprobs=logprobs, mean_logprobs=mean)
