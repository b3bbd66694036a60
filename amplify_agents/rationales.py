"""Rationale templates: plain strings with named fields, rendered from an explanation.

Fields a template may use:

* ``{keywords}``: the keywords joined in English ("a, b and c");
* ``{w1}``, ``{w2}``, ...: single keywords by rank;
* ``{label}``: the answer the rationale supports; ``{k}``: how many keywords;
* ``{explanation}`` and ``{p}``: a generated p-step explanation (self_exp).

Users register their own with :func:`register_template` or pass a
:class:`RationaleTemplate` directly; nothing here is specific to a task.

This module is also the one place where an explanation becomes a demonstration's
rationale: :func:`template_for` picks the template by explainer family,
:func:`demonstration_skeleton` fixes a demonstration's identity (its id is known before
anything is explained) and :func:`write_rationale` fills it from an explanation. The
builder, the feedback log, the selector's ``add_examples`` and ``improve`` all go
through these, so the same explanation gives the same rationale text and keywords
wherever it enters.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from amplify_agents.demonstrations import Demonstration

if TYPE_CHECKING:
    from amplify_agents.explainers.base import Explainer, Explanation

__all__ = [
    "RationaleTemplate",
    "AMPLIFY",
    "SELF_TOPK",
    "P_STEP",
    "TEMPLATES",
    "join_english",
    "register_template",
    "get_template",
    "template_for",
    "demonstration_skeleton",
    "write_rationale",
    "write_demonstration",
]


def join_english(words: Sequence[str]) -> str:
    """Join words as English lists: "a", "a and b", "a, b and c"."""
    words = [w for w in words if w]
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class RationaleTemplate:
    """A rationale template.

    Where the rationale goes in a prompt (before or after the answer) is the prompt's layout,
    not the template's: :attr:`~amplify_agents.prompts.PromptStyle.rationale_first`, default
    ``DEFAULTS.placement`` (:mod:`amplify_agents.defaults`).

    Attributes:
        id: a stable name, stored with each demonstration (part of its id).
        text: the template, a ``str.format`` string using the fields listed in the module doc.
    """

    id: str
    text: str

    @property
    def fields(self) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self.text) if name}

    @property
    def needs_explanation(self) -> bool:
        return "explanation" in self.fields

    def render(
        self,
        label: str,
        keywords: Sequence[str] = (),
        *,
        explanation: str | None = None,
        p: int | None = None,
    ) -> str:
        """Fill the template. Raises ValueError naming a field it cannot fill."""
        values: dict[str, object] = {
            "label": label,
            "keywords": join_english(keywords),
            "k": len(keywords),
        }
        values.update({f"w{i}": w for i, w in enumerate(keywords, start=1)})
        if explanation is not None:
            values["explanation"] = explanation.strip().rstrip(".")
            values["p"] = p if p is not None else ""
        missing = sorted(self.fields - values.keys())
        if missing:
            raise ValueError(
                f"Template {self.id!r} needs {missing}, which this explanation does not provide "
                f"(it has {len(keywords)} keywords{' and a text' if explanation else ''})."
            )
        return self.text.format(**values)


AMPLIFY = RationaleTemplate(
    "amplify",
    "The key words: {keywords} are important clues to predict {label} as the correct answer.",
)
"""The rationale of AMPLIFY (Krishna et al., 2023)."""

SELF_TOPK = RationaleTemplate(
    "self_topk",
    "The {k} keywords {keywords} are important to predict that the answer is {label}.",
)
"""The keyword rationale of Self-AMPLIFY (Bhan et al., 2024)."""

P_STEP = RationaleTemplate(
    "p_step",
    "{p}-step rationale: {explanation}, therefore the answer is {label}.",
)
"""The p-step (Ph-CoT) rationale of Self-AMPLIFY."""

TEMPLATES: dict[str, RationaleTemplate] = {t.id: t for t in (AMPLIFY, SELF_TOPK, P_STEP)}


def register_template(template: RationaleTemplate, *, replace: bool = False) -> RationaleTemplate:
    """Make a template available by id; refuses to replace an existing one unless asked."""
    if template.id in TEMPLATES and TEMPLATES[template.id] != template and not replace:
        raise ValueError(f"A different template {template.id!r} exists: pick another id or pass replace=True.")
    TEMPLATES[template.id] = template
    return template


def get_template(template: str | RationaleTemplate) -> RationaleTemplate:
    """Look a template up by id (or return it unchanged)."""
    if isinstance(template, RationaleTemplate):
        return template
    try:
        return TEMPLATES[template]
    except KeyError:
        raise ValueError(f"Unknown rationale template {template!r}: known ones are {sorted(TEMPLATES)}.") from None


def template_for(
    explainer: Explainer | str | None, template: str | RationaleTemplate | None = None
) -> RationaleTemplate:
    """The rationale template for ``explainer``: ``template`` when given, else the explainer
    family's own (P-step for written explanations, Self-AMPLIFY's wording for self-named
    keywords, AMPLIFY's for attributions and when there is no explainer)."""
    if template is not None:
        return get_template(template)
    name = explainer if isinstance(explainer, str) or explainer is None else explainer.name
    if name == "self_exp":
        return P_STEP
    if name == "self_topk":
        return SELF_TOPK
    return AMPLIFY


def demonstration_skeleton(
    explainer: Explainer,
    template: RationaleTemplate,
    *,
    input: str,
    label: str,
    task: str,
    strategy: str,
    model_id: str = "",
    example_id: str = "",
    scores: dict[str, Any] | None = None,
    word_weights: dict[str, float] | None = None,
) -> Demonstration:
    """The demonstration ``explainer`` will write for (input, label), without its rationale.

    Its id is final: every identifying field (explainer and its settings, including the
    ``word_weights`` the explanation will be called with, the template, k, ...) is set here.
    """
    return Demonstration(
        input=input,
        label=label,
        rationale="",
        task=task,
        explainer=explainer.name,
        explainer_settings=explainer.settings_for(word_weights),
        model_id=model_id,
        strategy=strategy,
        k=explainer.k,
        template_id=template.id,
        scores=dict(scores or {}),
        example_id=example_id,
    )


def write_rationale(
    skeleton: Demonstration,
    explanation: Explanation,
    template: RationaleTemplate,
    *,
    extra: dict[str, Any] | None = None,
) -> Demonstration:
    """Fill ``skeleton`` with the rationale ``template`` writes from ``explanation``.

    Keywords are rendered in the order they occur in the input (the papers' rationales
    read that way) and stored best first; a template with ``{explanation}`` gets the
    generated text (p-step). ``extra`` is merged over the explanation's timing and scalar
    info. Raises ValueError when the template needs a field the explanation lacks.
    """
    if template.needs_explanation:
        text = template.render(
            skeleton.label,
            explanation.top_words,
            explanation=explanation.generated_text or "",
            p=explanation.settings.get("p"),
        )
    else:
        text = template.render(skeleton.label, explanation.top_words_in_text_order)
    info = {k: v for k, v in explanation.info.items() if isinstance(v, (str, int, float, bool)) or v is None}
    merged = {**skeleton.extra, "seconds": round(explanation.seconds, 4), **info, **(extra or {})}
    return replace(skeleton, rationale=text, keywords=list(explanation.top_words), extra=merged)


def write_demonstration(
    explanation: Explanation,
    explainer: Explainer,
    *,
    task: str,
    template: str | RationaleTemplate | None = None,
    strategy: str = "manual",
    model_id: str = "",
    example_id: str = "",
    scores: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    word_weights: dict[str, float] | None = None,
) -> Demonstration:
    """One explained (input, gold label) as a finished demonstration: skeleton + rationale.

    ``explanation`` explains its ``target`` (the gold label) for its ``text``.
    """
    chosen = template_for(explainer, template)
    skeleton = demonstration_skeleton(
        explainer,
        chosen,
        input=explanation.text,
        label=explanation.target,
        task=task,
        strategy=strategy,
        model_id=model_id,
        example_id=example_id,
        scores=scores,
        word_weights=word_weights,
    )
    return write_rationale(skeleton, explanation, chosen, extra=extra)
