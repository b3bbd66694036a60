"""Atomic file writes: results, histories, exports and review queues are never half-written.

Every file the library rewrites goes through :func:`atomic_write`: the text is written to a
temporary file next to the destination, flushed, then renamed over it, so an interrupted
run leaves either the old file or the new one. Unlike a bare ``tempfile.mkstemp`` (mode
``0600``), the file gets the usual permissions (``0666`` minus the umask), as ``open()``
would have given it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_write"]


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
