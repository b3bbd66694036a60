"""Demonstration: stable ids, exact dict round trips, LangChain example dicts."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from amplify_agents.demonstrations import DemoKeys, Demonstration


def make_demo(**overrides: object) -> Demonstration:
    fields: dict[str, object] = {
        "input": "Q: Which statement is sarcastic? (a) Great, another Monday. (b) I like Mondays.",
        "label": "(a)",
        "rationale": 'The key words are: "Great", "another", "Monday".',
        "task": "snarks",
        "keywords": ["Great", "another", "Monday"],
        "explainer": "grad_x_input",
        "explainer_settings": {"baseline": "pad", "steps": 20, "span": "question"},
        "model_id": "gemma-3-270m",
        "strategy": "error",
        "k": 3,
        "template_id": "key-words-v1",
        "scores": {"prediction": "(b)", "gold_prob": 0.31, "mcs": -0.4, "faithfulness": None},
        "example_id": "snarks-17",
        "extra": {"seed": 0, "notes": ["built by a test"]},
    }
    fields.update(overrides)
    return Demonstration(**fields)  # type: ignore[arg-type]


def test_same_fields_give_the_same_id() -> None:
    assert make_demo().demo_id == make_demo().demo_id
    assert len(make_demo().demo_id) == 32
    int(make_demo().demo_id, 16)  # hex


def test_id_is_stable_across_processes() -> None:
    code = (
        "from amplify_agents.demonstrations import Demonstration as D;"
        "print(D(input='x y', label='Yes', rationale='', task='t', explainer='deeplift', k=2).demo_id)"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = Demonstration(input="x y", label="Yes", rationale="", task="t", explainer="deeplift", k=2)
    assert other.stdout.strip() == here.demo_id


@pytest.mark.parametrize(
    "change",
    [
        {"k": 5},
        {"k": None},
        {"explainer": "deeplift"},
        {"explainer_settings": {"baseline": "zero", "steps": 20, "span": "question"}},
        {"model_id": "other-model"},
        {"strategy": "h-mcs"},
        {"template_id": "other-template"},
        {"task": "causal_judgment"},
        {"label": "(b)"},
        {"input": "Another input."},
    ],
    ids=lambda change: next(iter(change)),
)
def test_identifying_fields_change_the_id(change: dict[str, object]) -> None:
    assert make_demo(**change).demo_id != make_demo().demo_id


def test_provenance_that_is_not_identity_keeps_the_id() -> None:
    # Rebuilding a demonstration (new rationale text, scores, time) must replace the stored one.
    rebuilt = make_demo(rationale="other text", scores={"mcs": 0.1}, created_at="2020-01-01T00:00:00+00:00")
    assert rebuilt.demo_id == make_demo().demo_id


def test_settings_key_order_is_irrelevant() -> None:
    a = make_demo(explainer_settings={"steps": 20, "baseline": "pad", "nested": {"x": 1, "y": 2}})
    b = make_demo(explainer_settings={"nested": {"y": 2, "x": 1}, "baseline": "pad", "steps": 20})
    assert a.demo_id == b.demo_id


def test_dict_round_trip_is_exact() -> None:
    demo = make_demo()
    data = demo.to_dict()
    assert data["demo_id"] == demo.demo_id
    again = Demonstration.from_dict(json.loads(json.dumps(data)))
    assert again == demo
    assert again.to_dict() == data
    assert again.demo_id == demo.demo_id


def test_round_trip_of_a_minimal_io_demo() -> None:
    demo = Demonstration(input="2 + 2?", label="4", rationale="", task="math")
    assert demo.k is None and demo.keywords == [] and demo.scores == {} and demo.created_at
    assert Demonstration.from_dict(json.loads(json.dumps(demo.to_dict()))) == demo


def test_created_at_is_iso_utc() -> None:
    from datetime import datetime, timedelta

    stamp = datetime.fromisoformat(make_demo().created_at)
    assert stamp.utcoffset() == timedelta(0)


def test_non_json_values_are_normalised_or_refused() -> None:
    demo = make_demo(explainer_settings={"window": (1, 2)})
    assert demo.explainer_settings == {"window": [1, 2]}  # what a JSON round trip gives back
    with pytest.raises(TypeError, match="JSON-serializable"):
        make_demo(extra={"handle": object()})


def test_containers_are_copied() -> None:
    settings = {"steps": 20}
    demo = make_demo(explainer_settings=settings)
    settings["steps"] = 50
    assert demo.explainer_settings == {"steps": 20}


def test_frozen_and_hashable() -> None:
    demo = make_demo()
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.k = 4  # type: ignore[misc]
    assert len({demo, make_demo(created_at=demo.created_at)}) == 1


def test_invalid_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        make_demo(k=-1)
    with pytest.raises(TypeError, match="label must be a str"):
        make_demo(label=1)
    with pytest.raises(TypeError, match="keywords"):
        make_demo(keywords="one two")


def test_from_dict_refuses_unknown_keys_and_edited_records() -> None:
    data = make_demo().to_dict()
    with pytest.raises(ValueError, match="Unknown Demonstration field"):
        Demonstration.from_dict({**data, "colour": "red"})
    with pytest.raises(ValueError, match="does not match"):
        Demonstration.from_dict({**data, "k": 7})
    edited = {key: value for key, value in data.items() if key != "demo_id"}
    assert Demonstration.from_dict({**edited, "k": 7}).k == 7


def test_to_example_keys() -> None:
    demo = make_demo()
    assert demo.to_example() == {"input": demo.input, "rationale": demo.rationale, "answer": "(a)"}
    assert demo.to_example(DemoKeys(input="question", rationale="why", answer="label")) == {
        "question": demo.input,
        "why": demo.rationale,
        "label": "(a)",
    }
