"""Map free text such as "The answer is (B)." onto a label space, or report it unparseable."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["parse_answer", "normalize_label"]

_ANSWER_MARKERS = re.compile(
    r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*|therefore,?\s*(?:the\s+answer\s+is\s*)?", re.IGNORECASE
)
_STRIP = " \t\n\"'`*.,;:!?()[]{}"


def normalize_label(text: str) -> str:
    """Case-fold and strip brackets, quotes and punctuation around a label: "(B)." → "b"."""
    return text.strip().strip(_STRIP).casefold()


def _find(text: str, forms: dict[str, str]) -> list[tuple[int, str]]:
    """Positions of every label form occurring as a whole word in ``text``."""
    hits = []
    for form, label in forms.items():
        if not form:
            continue
        for m in re.finditer(rf"(?<![\w]){re.escape(form)}(?![\w])", text, re.IGNORECASE):
            hits.append((m.start(), label))
    return sorted(hits)


def parse_answer(text: str, labels: Sequence[str]) -> str | None:
    """Return the label ``text`` answers with, or None when it is unparseable.

    Rules, in order: the whole text is a label (case, brackets and punctuation
    ignored); the text after an answer marker ("the answer is", "answer:",
    "therefore") starts with a label; exactly one distinct label occurs in the text.
    Two different labels with no marker to choose between them is unparseable:
    the parser never guesses.
    """
    forms = {normalize_label(lab): lab for lab in labels}
    if len(forms) != len(labels):
        raise ValueError(f"Labels {list(labels)} collide once case and brackets are ignored.")
    whole = normalize_label(text)
    if whole in forms:
        return forms[whole]
    markers = list(_ANSWER_MARKERS.finditer(text))
    for marker in reversed(markers):  # the last stated answer wins
        rest = text[marker.end() :]
        hits = _find(rest[:40], forms)
        if hits:
            return hits[0][1]
    found = {label for _, label in _find(text, forms)}
    if len(found) == 1:
        return found.pop()
    return None
