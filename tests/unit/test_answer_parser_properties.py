"""Properties of the answer parser (:func:`parse_answer`), the one function that maps a model's text
onto a label space: it never raises on any text, answers a label of the space or None (the
unparseable marker), gives each label back for the label itself, reads a stated answer whatever
its case, never reads a label out of a longer one, and never guesses between two labels.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from amplify_agents.errors import LabelError
from amplify_agents.models.parsing import _ANSWER_MARKERS, normalize_label, parse_answer

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label_text = st.text(min_size=1, max_size=12).filter(str.strip)  # a blank label is no label
label_spaces = st.lists(label_text, min_size=1, max_size=5, unique_by=normalize_label)
word_labels = st.lists(
    st.from_regex(r"[A-Za-zßäöüé0-9]{1,6}( [A-Za-zßäöüé0-9]{1,6})?", fullmatch=True),
    min_size=2,
    max_size=4,
    unique_by=normalize_label,
)


def _markerless(labels: list[str]) -> bool:
    return not any(_ANSWER_MARKERS.search(label) for label in labels)


@SETTINGS
@given(text=st.text(max_size=300), labels=label_spaces)
@example(text="", labels=["."])  # a label of punctuation only once answered the empty text
@example(text="...", labels=["?"])
def test_never_raises_and_answers_a_label_or_none(text: str, labels: list[str]) -> None:
    answer = parse_answer(text, labels)
    assert answer is None or answer in labels
    if not text.strip():
        assert answer is None  # nothing said: unparseable, whatever the labels


@SETTINGS
@given(labels=label_spaces)
@example(labels=["?", "yes"])
@example(labels=[" (a) ", "(b)"])
def test_each_label_answers_itself(labels: list[str]) -> None:
    for label in labels:
        assert parse_answer(label, labels) == label
        assert parse_answer(parse_answer(label, labels) or "", labels) == label  # idempotent


@SETTINGS
@given(labels=word_labels, index=st.integers(0, 3), case=st.sampled_from([str.upper, str.lower, str.title]))
@example(labels=["Straße", "Weg"], index=0, case=str.lower)  # "straße" vs the folded "strasse"
@example(labels=["no", "no way"], index=1, case=str.lower)  # the longer label, not the one inside it
def test_a_stated_answer_is_read_in_any_case(labels: list[str], index: int, case: object) -> None:
    label = labels[index % len(labels)]
    assert _markerless(labels)
    stated = f"Let me think. The answer is {case(label)}."  # type: ignore[operator]
    assert parse_answer(stated, labels) == label


@SETTINGS
@given(labels=word_labels, index=st.integers(0, 3))
@example(labels=["no", "no way"], index=1)
def test_one_mentioned_label_is_the_answer(labels: list[str], index: int) -> None:
    label = labels[index % len(labels)]
    text = f"I would say {label} here"
    others = [o for o in labels if o != label and normalize_label(o) in normalize_label(text).split(" ")]
    if not others:  # no other label spelled by the surrounding words
        assert parse_answer(text, labels) == label


@SETTINGS
@given(labels=word_labels)
def test_two_labels_without_a_marker_are_unparseable(labels: list[str]) -> None:
    first, second = labels[0], labels[1]
    if normalize_label(first) in normalize_label(second) or normalize_label(second) in normalize_label(first):
        return  # one inside the other: the longer one is the answer (tested above)
    assert parse_answer(f"either {first} or {second}", labels) is None


@SETTINGS
@given(text=st.text(alphabet="!?., \n\t", max_size=50), labels=word_labels)
@example(text="...", labels=["?", "yes"])  # punctuation once answered the punctuation-only label
def test_text_without_any_label_is_unparseable(text: str, labels: list[str]) -> None:
    assert parse_answer(text, labels) is None


def test_long_text_is_read_in_linear_time() -> None:
    labels = ["no", "no way", "yes"]
    text = "no way " * 20_000 + "The answer is yes."  # 140 kB, 40,000 label hits
    assert parse_answer(text, labels) == "yes"


def test_colliding_labels_raise_the_library_error() -> None:
    with pytest.raises(LabelError, match="collide"):
        parse_answer("a", ["(a)", "A"])
