"""JSON Lines files of demonstrations: one :meth:`Demonstration.to_dict` object per line.

Written sorted by ``demo_id`` with sorted keys, so two exports of the same store are
byte-identical and two versions of a store diff line by line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import StoreError
from amplify_agents.files import atomic_write

__all__ = ["write_jsonl", "read_jsonl"]


def write_jsonl(demos: Iterable[Demonstration], path: str | os.PathLike[str]) -> int:
    """Write ``demos`` to ``path`` sorted by id; return how many lines were written.

    The file is written next to its destination and renamed into place, so a crash never
    leaves a half-written export behind.
    """
    ordered = sorted(demos, key=lambda demo: demo.demo_id)

    def write(fh: TextIO) -> None:
        for demo in ordered:
            fh.write(json.dumps(demo.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")

    atomic_write(path, write)
    return len(ordered)


def read_jsonl(path: str | os.PathLike[str]) -> list[Demonstration]:
    """Read every demonstration in ``path``; blank lines are skipped.

    Raises:
        StoreError: the file is missing, or a line is not a valid demonstration (the message
            gives its line number); nothing is returned in that case.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"Cannot read demonstrations from {source}: {exc}.") from exc
    demos: list[Demonstration] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            demos.append(Demonstration.from_dict(data))
        except (TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            raise StoreError(f"{source}:{number}: not a valid demonstration: {exc}") from exc
    return demos
