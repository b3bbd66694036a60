"""Read a Chroma directory without writing to it: open a private copy.

Chroma rewrites ``chroma.sqlite3`` and the HNSW segment files whenever a client opens a
persistent directory, even for a plain ``count()``, and it has no read-only mode. So a store
opened for reading is a copy: the database through SQLite's backup API from a ``mode=ro``
connection (a consistent snapshot even while another process writes, and readable in a
write-protected folder), the segment folders file by file. The original is never opened for
writing, a folder that is not a store is left exactly as it was, and the copy is deleted
when the store is closed or collected.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path

from amplify_agents.errors import StoreError

__all__ = ["DATABASE_FILE", "copy_for_reading", "remove_copy"]

DATABASE_FILE = "chroma.sqlite3"


def copy_for_reading(directory: Path) -> Path:
    """Copy the Chroma store in ``directory`` to a new temporary folder; return that folder.

    Raises:
        StoreError: ``directory`` is missing, is not a Chroma store (no ``chroma.sqlite3``),
            or cannot be read; nothing was created or changed in it.
    """
    database = directory / DATABASE_FILE
    if not directory.is_dir():
        raise StoreError(f"No store directory {directory}: check the path (nothing was created).")
    if not database.is_file():
        raise StoreError(
            f"{directory} is not a Chroma store (it has no {DATABASE_FILE}); nothing was created there. "
            "Give the folder the store was built in (`amplify build ... --store-dir DIR`)."
        )
    copy = Path(tempfile.mkdtemp(prefix="amplify-store-read-"))
    try:
        _backup_database(database, copy / DATABASE_FILE)
        for child in directory.iterdir():
            if child.is_dir() and _is_segment_folder(child.name):
                _copy_files(child, copy / child.name)
    except (OSError, sqlite3.Error) as exc:
        remove_copy(copy)
        raise StoreError(
            f"Cannot read the Chroma store in {directory} ({type(exc).__name__}: {exc}). Check that "
            "the folder and its files are readable; nothing was changed."
        ) from exc
    return copy


def remove_copy(copy: Path) -> None:
    """Delete a folder made by :func:`copy_for_reading` (errors ignored: it is a temp folder)."""
    shutil.rmtree(copy, ignore_errors=True)


def _backup_database(source: Path, target: Path) -> None:
    # mode=ro: SQLite never writes the source (no journal, no lock upgrade); backup() copies
    # a consistent snapshot page by page.
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()


def _is_segment_folder(name: str) -> bool:
    # Chroma names each vector segment's folder by its UUID; other folders beside the store
    # (the library's .amplify/ caches, a user's files) are not needed to read it.
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _copy_files(source: Path, target: Path) -> None:
    # copyfile, not copy2: the copy must be writable even when the original is read-only,
    # since Chroma writes to what it opens.
    for folder, _, files in os.walk(source):
        here = target / Path(folder).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(folder) / name, here / name)
