"""Demonstrations: the rationale-annotated few-shot examples that AMPLIFY builds and a store keeps.

A :class:`Demonstration` is one (input, rationale, label) triple plus how it was made: which
explainer and settings produced the rationale, with which model, under which selection
strategy. Its :attr:`~Demonstration.demo_id` is derived from those fields only, so rebuilding
the same demonstration in another process gives the same id and a store can upsert it
idempotently, while a different explainer or ``k`` gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from amplify_agents.limits import DEFAULT_LIMITS, TextLimits

__all__ = ["DemoKeys", "Demonstration", "JSON_FIELDS", "STRATEGIES", "TEXT_FIELDS", "utc_now"]

STRATEGIES: tuple[str, ...] = ("error", "success", "h-mcs", "l-mcs", "f-exp", "random", "manual")
"""Selection strategies of the papers (plus ``manual``); others are accepted but not checked."""

TEXT_FIELDS: tuple[str, ...] = (
    "input",
    "label",
    "rationale",
    "task",
    "explainer",
    "model_id",
    "strategy",
    "template_id",
    "example_id",
    "created_at",
)
"""The fields of a :class:`Demonstration` that hold a string."""

JSON_FIELDS: tuple[str, ...] = ("keywords", "explainer_settings", "scores", "extra")
"""The fields that hold a list or dict of JSON values."""

_ID_LENGTH = 32  # hex characters of the SHA-256: 128 bits, ample for a store of demos


@dataclass(frozen=True)
class DemoKeys:
    """Names of the keys an example dict uses (what the example selector returns)."""

    input: str = "input"
    rationale: str = "rationale"
    answer: str = "answer"


def utc_now() -> str:
    """The current time as an ISO-8601 string in UTC (``2025-01-31T12:00:00.123456+00:00``)."""
    return datetime.now(timezone.utc).isoformat()


def _json_default(value: Any) -> Any:
    # numpy / torch scalars and arrays show up in explainer settings and scores.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _jsonable(name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-native deep copy of ``value``: what a JSON round trip would give back."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"Demonstration.{name} must be a dict, got {type(value).__name__}.")
    try:
        # Going through JSON once here makes to_dict/from_dict (and the store) round trips exact:
        # tuples become lists, numpy scalars become floats, before anyone compares them.
        return json.loads(json.dumps(dict(value), default=_json_default, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"Demonstration.{name} must hold JSON-serializable values (str, int, float, bool, None, "
            f"lists and dicts of them): {exc}."
        ) from exc


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


@dataclass(frozen=True, eq=True)
class Demonstration:
    """One demonstration: an example's input, a rationale and the gold label, with provenance.

    Attributes:
        input: the example's input text; the store embeds it.
        label: the gold label.
        rationale: the rendered rationale text ("" for input-output demonstrations).
        task: the task's name.
        keywords: the top-k words of the explanation, most important first.
        explainer: what produced the rationale, e.g. ``"grad_x_input"``, ``"deeplift"``,
            ``"self_topk"`` or ``"none"``.
        explainer_settings: the explainer's settings (baseline, steps, ...), JSON values.
        model_id: the model that was explained ("" when none).
        strategy: how the example was selected: one of :data:`STRATEGIES` or a custom name.
        k: how many words the rationale keeps, ``None`` when that does not apply.
        template_id: the rationale template that rendered the keywords.
        scores: numbers measured while selecting (prediction, gold_prob, mcs, faithfulness, ...).
        example_id: the source example's id within its task.
        created_at: when it was built, ISO-8601 in UTC.
        extra: anything else, JSON values.

    The dataclass is frozen: fields cannot be reassigned (use :func:`dataclasses.replace`).
    Containers are copied on construction, so mutating the dicts passed in does not change it.
    """

    input: str
    label: str
    rationale: str
    task: str
    keywords: list[str] = field(default_factory=list)
    explainer: str = "none"
    explainer_settings: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    strategy: str = "manual"
    k: int | None = None
    template_id: str = ""
    scores: dict[str, float | str | None] = field(default_factory=dict)
    example_id: str = ""
    created_at: str = field(default_factory=utc_now)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Demonstration.{name} must be a str, got {type(value).__name__}.")
        keywords = self.keywords
        if isinstance(keywords, str) or not all(isinstance(w, str) for w in keywords or ()):
            raise TypeError("Demonstration.keywords must be a list of str.")
        if self.k is not None and (isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0):
            raise ValueError(f"Demonstration.k must be None or an int >= 0, got {self.k!r}.")
        # Frozen dataclass: normalise through object.__setattr__.
        object.__setattr__(self, "keywords", list(keywords or ()))
        object.__setattr__(self, "explainer_settings", _jsonable("explainer_settings", self.explainer_settings))
        object.__setattr__(self, "scores", _jsonable("scores", self.scores))
        object.__setattr__(self, "extra", _jsonable("extra", self.extra))

    # Lists and dicts make the generated hash fail; equal demonstrations have equal ids.
    def __hash__(self) -> int:
        return hash((self.demo_id, self.created_at))

    @property
    def demo_id(self) -> str:
        """A stable id: the first 32 hex characters of a SHA-256 over the identifying fields.

        The identifying fields are task, input, label, explainer, explainer_settings (key order
        does not matter), model_id, strategy, k and template_id. The rationale text, scores and
        timestamps are *not* part of it: rebuilding a demonstration replaces the stored one.
        """
        identity = {
            "task": self.task,
            "input": self.input,
            "label": self.label,
            "explainer": self.explainer,
            "explainer_settings": self.explainer_settings,
            "model_id": self.model_id,
            "strategy": self.strategy,
            "k": self.k,
            "template_id": self.template_id,
        }
        return hashlib.sha256(_canonical_json(identity).encode("utf-8")).hexdigest()[:_ID_LENGTH]

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serializable dict, plus ``demo_id`` (checked again by :meth:`from_dict`)."""
        data: dict[str, Any] = {"demo_id": self.demo_id}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = json.loads(json.dumps(value)) if isinstance(value, (list, dict)) else value
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, limits: TextLimits | None = DEFAULT_LIMITS, where: str = "Demonstration"
    ) -> Demonstration:
        """Rebuild a demonstration from :meth:`to_dict`'s output.

        ``limits`` bounds the input, label and rationale of a record read from outside
        (an import, a request); ``where`` names the record in the error (``"demos.jsonl:7"``).
        ``None`` skips the check.

        Raises:
            ValueError: an unknown key, a missing ``input``/``label``, or a ``demo_id`` that does
                not match the other fields (the record was edited, or written by an incompatible
                version; drop ``demo_id`` to accept the fields as they are).
            InputTooLongError: a text over ``limits`` (a ``ValueError`` too).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"demo_id"})
        if unknown:
            raise ValueError(f"Unknown Demonstration field(s) {unknown}; known fields: {sorted(known)}.")
        missing = [name for name in ("input", "label") if name not in data]
        if missing:
            raise ValueError(f"A Demonstration needs {missing}.")
        demo = cls(**{key: value for key, value in data.items() if key != "demo_id"})
        if limits is not None:
            limits.check("input", demo.input, where=f"{where}, input")
            limits.check("label", demo.label, where=f"{where}, label")
            limits.check("rationale", demo.rationale, where=f"{where}, rationale")
        expected = data.get("demo_id")
        if expected is not None and expected != demo.demo_id:
            raise ValueError(
                f"demo_id {expected!r} does not match the record's fields (they give {demo.demo_id!r}): "
                "the record was edited or written by an incompatible version. Remove 'demo_id' to "
                "accept the fields as they are."
            )
        return demo

    def to_example(self, keys: DemoKeys = DemoKeys(), *, with_id: bool = False) -> dict[str, Any]:
        """The demonstration as a LangChain prompt-template example: input, rationale, answer.

        ``keys`` names the dict's keys; ``with_id`` adds ``demo_id`` (what the selector returns,
        so a chain can report which demonstrations it used). A demonstration made from an
        example dict of the user's own keys (``extra["fields"]``, see
        ``AmplifyExampleSelector.from_examples``) gives those keys back too, as they were; the
        input is put under ``keys.input`` only where the fields do not already have that key.
        """
        fields = self.extra.get("fields")
        example: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {}
        example.setdefault(keys.input, self.input)
        example[keys.rationale] = self.rationale
        example[keys.answer] = self.label
        if with_id:
            example["demo_id"] = self.demo_id
        return example
