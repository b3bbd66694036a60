"""JSON Lines files of demonstrations: one :meth:`Demonstration.to_dict` object per line.

Written sorted by ``demo_id`` with sorted keys, so two exports of the same store are
byte-identical and two versions of a store diff line by line. Lines are written by
:func:`~amplify_agents.files.json_line` and read by :func:`~amplify_agents.files.read_lines`:
U+2028, U+0085 and the like are escaped and only ``"\\n"`` ends a line, so every export
can be imported again, text for text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import InputTooLongError, StoreError
from amplify_agents.files import atomic_write, json_line, loads_line, read_lines
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits

__all__ = ["write_jsonl", "read_jsonl"]


def write_jsonl(demos: Iterable[Demonstration], path: str | os.PathLike[str]) -> int:
    """Write ``demos`` to ``path`` sorted by id; return how many lines were written.

    The file is written next to its destination and renamed into place, so a crash never
    leaves a half-written export behind.
    """
    ordered = sorted(demos, key=lambda demo: demo.demo_id)

    def write(fh: TextIO) -> None:
        for demo in ordered:
            fh.write(json_line(demo.to_dict(), sort_keys=True))

    atomic_write(path, write)
    return len(ordered)


def read_jsonl(path: str | os.PathLike[str], *, limits: TextLimits = DEFAULT_LIMITS) -> list[Demonstration]:
    """Read every demonstration in ``path``; blank lines are skipped.

    Each record's input, label and rationale must fit ``limits``.

    Raises:
        StoreError: the file is missing, or a line is not a valid demonstration (the message
            gives its line number); nothing is returned in that case.
        FileEncodingError: a line is not UTF-8 (file, line and byte named).
        InputTooLongError: a text over ``limits`` (file, line and field named).
    """
    source = Path(path)
    demos: list[Demonstration] = []
    try:
        for number, line in read_lines(source):
            if line.strip():
                demos.append(_demonstration(line, where=f"{source}:{number}", limits=limits))
    except OSError as exc:
        raise StoreError(f"Cannot read demonstrations from {source}: {exc}.") from exc
    return demos


def _demonstration(line: str, *, where: str, limits: TextLimits) -> Demonstration:
    try:
        data = loads_line(line)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return Demonstration.from_dict(data, limits=limits, where=where)
    except InputTooLongError:
        raise
    except (TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise StoreError(f"{where}: not a valid demonstration: {exc}") from exc
