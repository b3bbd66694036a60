"""Map free text such as "The answer is (B)." onto a label space, or report it unparseable."""

from __future__ import annotations

import re
from collections.abc import Sequence

from amplify_agents.errors import LabelError

__all__ = ["parse_answer", "normalize_label"]

_ANSWER_MARKERS = re.compile(
    r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*|therefore,?\s*(?:the\s+answer\s+is\s*)?", re.IGNORECASE
)
_STRIP = " \t\n\"'`*.,;:!?()[]{}"
_AFTER_MARKER = 40  # characters after an answer marker where the stated label must start


def normalize_label(text: str) -> str:
    """Case-fold and strip brackets, quotes and punctuation around a label: "(B)." → "b"."""
    return text.strip().strip(_STRIP).casefold()


def _find(text: str, forms: dict[str, str]) -> list[tuple[int, str]]:
    """(position, label) of every label form occurring as a whole word in ``text`` (case-folded),
    leftmost first; a form found only inside a longer one ("no" in "no way") does not count."""
    spans = []
    for form, label in forms.items():
        for m in re.finditer(rf"(?<![\w]){re.escape(form)}(?![\w])", text):
            spans.append((m.start(), m.end(), label))
    spans.sort(key=lambda s: (s[0], s[0] - s[1]))  # leftmost, then longest
    kept, reach = [], -1
    for start, end, label in spans:  # a span ending within one listed before it lies inside that one
        if end > reach:
            kept.append((start, label))
        reach = max(reach, end)
    return kept


def parse_answer(text: str, labels: Sequence[str]) -> str | None:
    """Return the label ``text`` answers with, or None when it is unparseable.

    Rules, in order: the whole text is a label (exactly, or with case, brackets and
    punctuation ignored); the text after an answer marker ("the answer is", "answer:",
    "therefore") starts with a label; exactly one distinct label occurs in the text (a
    label inside a longer one, "no" in "no way", is the longer one). Two different labels
    with no marker to choose between them is unparseable: the parser never guesses.
    Matching is by Unicode case-folding ("STRASSE" answers "Straße").

    Raises:
        LabelError: two labels are the same once case and brackets are ignored.
    """
    forms = {normalize_label(lab): lab for lab in labels}
    if len(forms) != len(labels):
        raise LabelError(f"Labels {list(labels)} collide once case and brackets are ignored.")
    exact = {lab.strip(): lab for lab in labels if lab.strip()}  # a blank label is never an answer
    if text.strip() in exact:  # the label itself, even one that is all punctuation ("?")
        return exact[text.strip()]
    forms.pop("", None)  # a label with nothing but punctuation is matched exactly or not at all
    whole = normalize_label(text)
    if whole in forms:
        return forms[whole]
    folded = text.casefold()  # forms are case-folded: so is the text they are searched in
    for marker in reversed(list(_ANSWER_MARKERS.finditer(folded))):  # the last stated answer wins
        hits = _find(folded[marker.end() :][:_AFTER_MARKER], forms)
        if hits:
            return hits[0][1]
    found = {label for _, label in _find(folded, forms)}
    if len(found) == 1:
        return found.pop()
    return None
