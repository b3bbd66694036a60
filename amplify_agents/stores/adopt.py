"""Reading a plain LangChain Chroma collection as demonstrations (for ``RationaleStore.import_collection``).

A collection made by ``langchain_chroma.Chroma.from_texts``/``add_texts`` (or by LangChain's
``SemanticSimilarityExampleSelector``) holds texts and free-form metadata, none of the fields
this library reads. An import maps them: the document (or one metadata key) is the input,
one metadata key the answer, another, optionally, the rationale; the other scalar metadata is
kept under ``extra["fields"]`` so the selector returns the user's own keys. The source is
only read; the demonstrations' ids derive from their content, so importing twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import StoreError
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits

__all__ = ["CollectionMapping", "demonstrations_from_records"]

_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class CollectionMapping:
    """Which metadata keys of a foreign collection hold the answer, rationale and input.

    Attributes:
        answer_key: the metadata key of the gold answer (required in every record).
        rationale_key: the metadata key of a rationale; records without one become plain
            input-output demonstrations (``explainer="none"``).
        input_key: a metadata key holding the input; None uses the record's document.
        task: the task name the demonstrations get.
    """

    answer_key: str = "answer"
    rationale_key: str | None = "rationale"
    input_key: str | None = None
    task: str = "default"


def demonstrations_from_records(
    rows: Iterable[tuple[str, str | None, Mapping[str, Any] | None]],
    mapping: CollectionMapping,
    *,
    source: str,
    limits: TextLimits = DEFAULT_LIMITS,
) -> list[Demonstration]:
    """Demonstrations for ``(id, document, metadata)`` rows of the collection ``source``.

    Raises:
        StoreError: a record has no input or no answer under ``mapping.answer_key`` (the
            message names the record and the keys it has).
        InputTooLongError: a text over ``limits``.
    """
    demos: list[Demonstration] = []
    for record_id, document, raw in rows:
        metadata = dict(raw or {})
        where = f"Record {record_id!r} of {source!r}"
        text = metadata.get(mapping.input_key) if mapping.input_key else document
        answer = metadata.get(mapping.answer_key)
        if not str(text or "").strip():
            raise StoreError(f"{where} has no input text: name the metadata key that holds it with input_key=.")
        if answer is None or not str(answer).strip():
            raise StoreError(
                f"{where} has no answer under {mapping.answer_key!r} (its metadata keys: {sorted(metadata)}): "
                "pass answer_key= naming the key that holds the answer."
            )
        rationale = str(metadata.get(mapping.rationale_key) or "") if mapping.rationale_key else ""
        fields = {key: value for key, value in metadata.items() if isinstance(value, _SCALARS)}
        for key, value in fields.items():
            if isinstance(value, str):
                limits.check("input", value, where=f"{where} ({key!r})")
        limits.check("input", str(text), where=where)
        limits.check("label", str(answer), where=f"{where} ({mapping.answer_key!r})")
        limits.check("rationale", rationale, where=f"{where} ({mapping.rationale_key!r})")
        demos.append(
            Demonstration(
                input=str(text),
                label=str(answer),
                rationale=rationale,
                task=mapping.task,
                explainer="provided" if rationale else "none",
                example_id=str(record_id),
                extra={"fields": fields, "source": source} if fields else {"source": source},
            )
        )
    return demos
