"""How a method's test items are answered: rationale placement, test-time reasoning, calibration.

A method name may carry modifiers after ``+`` (see :mod:`amplify_agents.eval.methods`);
this module turns them into scores:

================ ==============================================================================
placement        prompt and answer
================ ==============================================================================
``xry``          (default) demos as (x, r, y), rationale before the answer as in both papers; the
                 test item is scored **directly** after the answer prefix (no query rationale)
``xyr``          (``+xyr``) demos as (x, y, r), the rationale after the answer; the test item
                 is scored directly, so the prompt's last demo and the query share one layout
``gen``          (``+gen``) demos as (x, r, y) and the model **writes its own rationale** for
                 the query (greedy, one line) before the answer prefix; the labels are scored
                 after that rationale. This is the papers' test-time setting; it costs one
                 generation per test item
================ ==============================================================================

Calibration (``+cal``: contextual calibration, Zhao et al. 2021; ``+pmi``: domain-conditional
PMI, Holtzman et al. 2021) subtracts a label prior from the scores of the same prompts. For
fixed demonstrations the prior is one per method and seed; for per-query demonstrations one per
test item. An uncalibrated run and its ``+cal`` twin share the scored prompts (the scores are
computed once per seed and reused), so a calibrated variant costs only its prior.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from amplify_agents.framing import Frame
from amplify_agents.models import GenerationSettings, LabelScorer, LabelScores, LoadedModel, generate, parse_answer
from amplify_agents.models.calibration import (
    CONTENT_FREE_INPUTS,
    LabelPrior,
    apply_prior,
    contextual_prior,
    pmi_premise,
    pmi_prior,
)
from amplify_agents.prompts import build_text_prompt

__all__ = ["Answers", "PromptMaker", "answer_items", "calibrate", "label_named", "prompt_maker", "rationale_prompt"]

Demo = dict[str, Any]
PromptMaker = Callable[[Sequence[str]], list[str]]
"""Queries -> the prompts whose next tokens are the answer (after any generated rationale)."""


def rationale_prompt(query: str, demos: Sequence[Demo], frame: Frame) -> str:
    """The (x, r, y) prompt cut where the query's own rationale starts (after the input and a newline)."""
    full = build_text_prompt(query, demos, frame, rationale_first=True)
    # build_text_prompt always ends with the frame's output prefix: the rationale goes before it.
    return full[: len(full) - len(frame.output_prefix)] + "\n"


@dataclass
class Answers:
    """The raw (uncalibrated) scores of a method's test items, plus what test-time reasoning wrote."""

    scores: list[LabelScores]
    rationales: list[str] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def prompt_maker(
    demos: Sequence[Demo],
    frame: Frame,
    placement: str,
    *,
    slm: LoadedModel | None = None,
    max_new_tokens: int = 48,
    written: list[str] | None = None,
) -> PromptMaker:
    """A function from queries to their answer prompts under ``placement``.

    With ``placement="gen"`` the model writes each query's rationale (greedy, cut at the
    end of its line) and the rationale is appended before the answer prefix; the written
    rationales are appended to ``written`` when given.
    """
    if placement == "gen":
        if slm is None:
            raise ValueError("placement 'gen' generates the query's rationale: pass the model (slm=).")
        settings = GenerationSettings(max_new_tokens=max_new_tokens, stop=("\n",))

        def make_gen(queries: Sequence[str]) -> list[str]:
            heads = [rationale_prompt(q, demos, frame) for q in queries]
            texts = [" ".join(t.split()) for t in generate(slm, heads, settings, batch_size=16)]
            if written is not None:
                written.extend(texts)
            return [h + t + frame.output_prefix for h, t in zip(heads, texts, strict=True)]

        return make_gen
    if placement not in ("xry", "xyr"):
        raise ValueError(f"Unknown placement {placement!r}: use 'xry', 'xyr' or 'gen'.")
    first = placement == "xry"
    return lambda queries: [build_text_prompt(q, demos, frame, rationale_first=first) for q in queries]


def answer_items(
    queries: Sequence[str],
    labels: Sequence[str] | Sequence[Sequence[str]],
    scorer: LabelScorer,
    make: PromptMaker,
    *,
    written: list[str] | None = None,
) -> Answers:
    """Score every query's labels after its answer prompt, in one scorer call (shared demo prefix)."""
    began = time.perf_counter()
    prompts = make(queries)
    built = time.perf_counter() - began
    scores = scorer.score(prompts, labels)
    return Answers(
        scores=scores,
        rationales=list(written) if written is not None else None,
        seconds={"prompts": round(built, 3), "score": round(time.perf_counter() - began - built, 3)},
    )


def calibrate(
    scores: Sequence[LabelScores],
    method: str,
    scorer: LabelScorer,
    make: PromptMaker,
    frame: Frame,
) -> tuple[list[LabelScores], dict[str, Any]]:
    """``scores`` with the prior of ``method`` (``"contextual"`` or ``"pmi"``) subtracted.

    The prior is computed on the label space of each score (one prior per distinct label
    list), from the same prompt maker, so it carries the demonstrations' own label bias.
    """
    if method not in ("contextual", "pmi"):
        raise ValueError(f"Unknown calibration {method!r}: use 'contextual' or 'pmi'.")
    cf_prompts: dict[str, str] = {}
    priors: dict[tuple[str, ...], LabelPrior] = {}
    for s in scores:
        if s.labels in priors:
            continue
        if method == "contextual":
            if not cf_prompts:
                # One maker call for all content-free inputs and every label list (one batched
                # generation under "gen"): the prompts do not depend on the labels.
                cf_prompts = dict(zip(CONTENT_FREE_INPUTS, make(list(CONTENT_FREE_INPUTS)), strict=True))
            priors[s.labels] = contextual_prior(scorer, cf_prompts.__getitem__, s.labels)
        else:
            priors[s.labels] = pmi_prior(scorer, pmi_premise(frame.output_prefix), s.labels)
    info = {"method": method, "priors": [{k: round(v, 4) for k, v in p.as_dict().items()} for p in priors.values()]}
    return [apply_prior(s, priors[s.labels]) for s in scores], info


def label_named(rationales: Sequence[str], labels: Sequence[Sequence[str]]) -> list[str | None]:
    """The label each generated rationale names ("... to predict (b) ..."), or None.

    A label spelled exactly (case aside) wins when it is the only one; otherwise the
    answer parser decides (it returns None rather than guess).
    """
    named: list[str | None] = []
    for text, labs in zip(rationales, labels, strict=True):
        exact = {lab for lab in labs if re.search(rf"(?<!\w){re.escape(lab)}(?!\w)", text, re.IGNORECASE)}
        named.append(exact.pop() if len(exact) == 1 else parse_answer(text, labs))
    return named
