"""JSON Lines exports of demonstrations round-trip any text, and imports are bounded and precise.

Real files in ``tmp_path``; no store, no model. Hypothesis draws texts rich in the characters
other readers take for line breaks (U+2028, U+2029, U+0085, form feeds, ``\\r``) and a BOM.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import FileEncodingError, InputTooLongError, StoreError
from amplify_agents.limits import TextLimits
from amplify_agents.stores import read_jsonl, write_jsonl

# Line-break look-alikes first, so nearly every drawn text holds some.
_TRICKY = st.sampled_from(["\u2028", "\u2029", "\x85", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x1e", "\ufeff"])
TEXT = st.text(alphabet=st.one_of(_TRICKY, st.characters(codec="utf-8")), max_size=40)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)

DEMOS = st.builds(
    Demonstration,
    input=TEXT,
    label=TEXT,
    rationale=TEXT,
    task=TEXT,
    keywords=st.lists(TEXT, max_size=4),
    explainer=TEXT,
    explainer_settings=st.dictionaries(TEXT, JSON_VALUE, max_size=3),
    model_id=TEXT,
    strategy=TEXT,
    k=st.none() | st.integers(0, 50),
    template_id=TEXT,
    scores=st.dictionaries(TEXT, st.none() | st.floats(allow_nan=False) | TEXT, max_size=3),
    example_id=TEXT,
    created_at=TEXT,
    extra=st.dictionaries(TEXT, JSON_VALUE, max_size=3),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(demos=st.lists(DEMOS, min_size=1, max_size=5))
def test_any_demonstration_survives_an_export_and_an_import(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    written = write_jsonl(demos, path)
    back = read_jsonl(path)
    assert written == len(demos)
    assert sorted(back, key=lambda d: d.demo_id) == sorted(demos, key=lambda d: d.demo_id)
    # Every line is one record for any reader: no raw line-break look-alike is left in the file.
    raw = path.read_text(encoding="utf-8")
    assert not {"\u2028", "\u2029", "\x85"} & set(raw)
    assert len(raw.splitlines()) == len(demos)


def _record(text: str) -> str:
    return json.dumps(Demonstration(input=text, label="yes", rationale="r", task="t").to_dict())


def test_a_line_that_is_not_utf8_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "demos.jsonl"
    path.write_bytes((_record("one") + "\n" + _record("two") + "\n").encode() + b'{"input": "caf\xe9"}\n')
    with pytest.raises(FileEncodingError, match=r"demos\.jsonl:3: not UTF-8 \(byte 0xe9"):
        read_jsonl(path)


def test_an_over_long_text_is_refused_with_its_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "demos.jsonl"
    path.write_text(_record("short") + "\n" + _record("x" * 101) + "\n", encoding="utf-8")
    with pytest.raises(
        InputTooLongError, match=r"demos\.jsonl:2, input: the input is 101 characters, over the limit of 100"
    ):
        read_jsonl(path, limits=TextLimits(max_input_chars=100))
    assert len(read_jsonl(path, limits=TextLimits(max_input_chars=101))) == 2
    # The default limits apply to every import, and the record's other fields too.
    long_label = Demonstration(input="a", label="y" * 501, rationale="", task="t").to_dict()
    path.write_text(json.dumps(long_label) + "\n", encoding="utf-8")
    with pytest.raises(InputTooLongError, match=r":1, label: the label is 501 characters"):
        read_jsonl(path)
    with pytest.raises(InputTooLongError, match=r"record 9, rationale"):
        Demonstration.from_dict({"input": "a", "label": "b", "rationale": "r" * 4001, "task": "t"}, where="record 9")


def test_a_document_nested_too_deeply_is_a_store_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "demos.jsonl"
    path.write_text(_record("fine") + "\n" + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(StoreError, match=r"demos\.jsonl:2: not a valid demonstration: JSON nested too deeply"):
        read_jsonl(path)
