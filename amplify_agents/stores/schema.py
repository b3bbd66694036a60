"""How a :class:`~amplify_agents.demonstrations.Demonstration` is laid out in a Chroma record.

The document is the demonstration's input (what gets embedded). Chroma metadata takes only
scalars, so lists and dicts are stored as JSON strings, and ``k=None`` as ``-1`` so that
``{"k": 8}``-style filters keep working on plain ints. Every record and the collection itself
carry :data:`SCHEMA_VERSION`; a reader refuses data from a newer layout instead of misreading it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from amplify_agents.demonstrations import JSON_FIELDS, TEXT_FIELDS, Demonstration
from amplify_agents.errors import StoreError

__all__ = [
    "SCHEMA_VERSION",
    "SCHEMA_KEY",
    "EMBEDDING_MODEL_KEY",
    "InvalidDemonstrationError",
    "UnreadableRecordWarning",
    "StoreVersionError",
    "check_schema_version",
    "collection_metadata",
    "to_record",
    "from_record",
    "validate_batch",
]

SCHEMA_VERSION = 1
"""Layout version of records and collections written by this library."""

SCHEMA_KEY = "schema_version"
EMBEDDING_MODEL_KEY = "embedding_model"
"""Collection metadata naming the embeddings a store was built with (its dimension is Chroma's own)."""

_NO_K = -1  # Chroma drops None-valued metadata keys; -1 keeps k filterable as an int


class StoreVersionError(StoreError):
    """The store was written by a newer amplify-agents (a newer schema version)."""


class InvalidDemonstrationError(StoreError, ValueError):
    """A batch given to the store holds something that is not a valid demonstration."""


class UnreadableRecordWarning(UserWarning):
    """Records of a store could not be read as demonstrations and were skipped.

    See :meth:`~amplify_agents.stores.RationaleStore.unreadable` for their ids and why.
    """


def collection_metadata(embedding_model: str | None = None) -> dict[str, Any]:
    """Metadata for a new collection: marks it as a rationale store, records the layout and,
    when given, the name of the embeddings it is built with."""
    metadata: dict[str, Any] = {SCHEMA_KEY: SCHEMA_VERSION, "amplify_agents": "rationale-store"}
    if embedding_model:
        metadata[EMBEDDING_MODEL_KEY] = embedding_model
    return metadata


def check_schema_version(version: Any, where: str) -> None:
    """Raise :class:`StoreVersionError` when ``version`` is newer than :data:`SCHEMA_VERSION`.

    Args:
        version: the version read from a collection's or record's metadata.
        where: what it was read from, for the message (e.g. ``"collection 'snarks'"``).
    """
    if isinstance(version, bool) or not isinstance(version, int):
        raise StoreError(f"{where} has an invalid {SCHEMA_KEY} {version!r} (expected an int).")
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{where} was written by a newer amplify-agents (schema version {version}; this "
            f"version reads up to {SCHEMA_VERSION}). Upgrade amplify-agents "
            "(`pip install -U amplify-agents`) to open it; nothing was changed."
        )


def validate_batch(demos: list[Any]) -> None:
    """Check a whole batch before anything is written; list every problem with its position."""
    problems: list[str] = []
    for position, demo in enumerate(demos):
        if not isinstance(demo, Demonstration):
            problems.append(f"item {position}: expected a Demonstration, got {type(demo).__name__}")
            continue
        if not demo.input.strip():
            problems.append(f"item {position}: empty input text (it is what the store embeds)")
        if not demo.label.strip():
            problems.append(f"item {position}: empty label")
    if problems:
        shown = "; ".join(problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise InvalidDemonstrationError(
            f"Rejected a batch of {len(demos)} demonstration(s), nothing was written: {shown}{more}."
        )


def to_record(demo: Demonstration) -> tuple[str, str, dict[str, Any]]:
    """``(id, document, metadata)`` for one demonstration."""
    metadata: dict[str, Any] = {name: getattr(demo, name) for name in TEXT_FIELDS}
    for name in JSON_FIELDS:
        metadata[name] = json.dumps(getattr(demo, name), ensure_ascii=False, sort_keys=True)
    metadata["k"] = _NO_K if demo.k is None else demo.k
    metadata[SCHEMA_KEY] = SCHEMA_VERSION
    # "input" is also kept in the metadata: LangChain's example selectors return the metadata
    # as the example, so selectors run on this store's vectorstore see the whole demonstration.
    return demo.demo_id, demo.input, metadata


def from_record(record_id: str, document: str | None, metadata: Mapping[str, Any] | None) -> Demonstration:
    """Rebuild a demonstration from a Chroma record.

    Raises:
        StoreVersionError: the record was written by a newer layout.
        StoreError: the record was not written by this library (e.g. added through a LangChain
            selector's ``add_example`` on the same collection).
    """
    metadata = dict(metadata or {})
    if SCHEMA_KEY not in metadata:
        raise StoreError(
            f"Record {record_id!r} is not a demonstration written by amplify-agents (no "
            f"{SCHEMA_KEY!r} in its metadata). Was it added to the collection by other code, e.g. a "
            "LangChain example selector's add_example()? Use RationaleStore.add() instead."
        )
    check_schema_version(metadata[SCHEMA_KEY], f"Record {record_id!r}")
    try:
        values: dict[str, Any] = {name: metadata[name] for name in TEXT_FIELDS if name in metadata}
        if "input" not in values and document is not None:
            values["input"] = document
        for name in JSON_FIELDS:
            if name in metadata:
                values[name] = json.loads(metadata[name])
        k = metadata.get("k", _NO_K)
        values["k"] = None if k == _NO_K else int(k)
        return Demonstration(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"Record {record_id!r} has malformed metadata: {exc}.") from exc
