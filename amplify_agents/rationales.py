"""Rationale templates: plain strings with named fields, rendered from an explanation.

Fields a template may use:

* ``{keywords}``: the keywords joined in English ("a, b and c");
* ``{w1}``, ``{w2}``, ...: single keywords by rank;
* ``{label}``: the answer the rationale supports; ``{k}``: how many keywords;
* ``{explanation}`` and ``{p}``: a generated p-step explanation (self_exp).

Users register their own with :func:`register_template` or pass a
:class:`RationaleTemplate` directly; nothing here is specific to a task.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "RationaleTemplate",
    "AMPLIFY",
    "SELF_TOPK",
    "P_STEP",
    "TEMPLATES",
    "join_english",
    "register_template",
    "get_template",
]

Placement = Literal["before", "after"]


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
    """A rationale template and where the rationale goes in a demonstration.

    Attributes:
        id: a stable name, stored with each demonstration (part of its id).
        text: the template, a ``str.format`` string using the fields listed in the module doc.
        placement: "before" the answer, (x, r, y) as in both papers, or "after" it, (x, y, r).
    """

    id: str
    text: str
    placement: Placement = "before"

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
