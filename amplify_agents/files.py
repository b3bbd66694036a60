"""Files the library writes and reads back: atomic writes and JSON Lines that round-trip.

Atomic writes: results, histories, exports and review queues are never half-written.

Every file the library rewrites goes through :func:`atomic_write`: the text is written to a
temporary file next to the destination, flushed, then renamed over it, so an interrupted
run leaves either the old file or the new one. Unlike a bare ``tempfile.mkstemp`` (mode
``0600``), the file gets the usual permissions (``0666`` minus the umask), as ``open()``
would have given it.

JSON Lines: :func:`json_line` escapes the characters other readers treat as line breaks
(U+0085, U+2028, U+2029; ``json.dumps`` with ``ensure_ascii=False`` keeps them raw) and
:func:`read_lines` splits on ``"\\n"`` only (``str.splitlines`` also splits on those), so
every text written comes back unchanged and a file can always be read line by line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from amplify_agents.errors import FileEncodingError

__all__ = ["atomic_write", "json_line", "loads_line", "read_lines", "read_text"]

# Characters that json.dumps(ensure_ascii=False) leaves raw but that str.splitlines(), many
# editors and JavaScript readers take for a line break. Inside a JSON document they can only
# occur in strings, where the \u escape means the same character.
_RAW_TO_ESCAPED = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
# A lone surrogate (from JSON such as "\ud800", which json.loads accepts) cannot be encoded
# as UTF-8: written raw it would make the whole file unwritable, escaped it round-trips.
_RAW_TO_ESCAPED.update({code: f"\\u{code:04x}" for code in range(0xD800, 0xE000)})


def _read_umask() -> int:
    # os.umask can only be read by setting it: done once, at import, rather than on every
    # write, where it would briefly change the mask for the other threads of a server.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[TextIO], None]) -> Path:
    """Call ``write(fh)`` on a temporary text file, then rename it to ``path``; return ``path``.

    The parent folder is created if missing. If ``write`` raises, the destination is left
    as it was and the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(staging, 0o666 & ~_UMASK)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target


def json_line(value: Any, *, sort_keys: bool = False) -> str:
    """``value`` as one JSON Lines line, newline included, safe for any line splitter."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, allow_nan=True)
    return text.translate(_RAW_TO_ESCAPED) + "\n"


def read_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for each line of a UTF-8 file, split on ``"\\n"`` only.

    A trailing ``"\\r"`` is removed (files saved on Windows). Raises
    :class:`~amplify_agents.errors.FileEncodingError` naming the file, line and byte when a
    line is not UTF-8, and ``OSError`` when the file cannot be read.
    """
    source = Path(path)
    with source.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(source, raw, exc.start, first_line=number) from None
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark, as Excel writes
            yield number, line.rstrip("\n").removesuffix("\r")


def read_text(path: str | os.PathLike[str]) -> str:
    """A whole UTF-8 file as text, exactly (``"\\r\\n"`` kept, as a CSV field may hold it); a
    byte-order mark is dropped; bytes that are not UTF-8 raise
    :class:`~amplify_agents.errors.FileEncodingError` naming the line, column and byte."""
    source = Path(path)
    data = source.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(source, data, exc.start) from None


def _not_utf8(source: Path, data: bytes, start: int, *, first_line: int = 1) -> FileEncodingError:
    line = first_line + data.count(b"\n", 0, start)
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return FileEncodingError(
        f"{source}:{line}: not UTF-8 (byte 0x{data[start]:02x} at column {column}); re-save the file as UTF-8."
    )


def loads_line(line: str) -> Any:
    """Parse one JSON line; a document nested too deeply raises ``ValueError``, not ``RecursionError``."""
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
