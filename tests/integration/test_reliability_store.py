"""The Chroma store under faults: hung and vanished servers, reads that must not write, one
bad record among good ones, imports that fail validation, and embeddings that do not fit.

Real parts throughout: ``chroma run`` servers (paused with SIGSTOP, killed with SIGKILL), real
Chroma directories, the real CLI. Vectors come from a small hashing embedder (a real
``Embeddings`` that needs no model), so nothing here loads a model.
"""

# ruff: noqa: E402  (the environment is set before the imports that read it)
from __future__ import annotations

import os

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import hashlib
import json
import math
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import httpx
import pytest
from langchain_core.embeddings import Embeddings
from typer.testing import CliRunner

from amplify_agents.cli import app
from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import StoreConnectionError, StoreError
from amplify_agents.stores import RationaleStore, ServerSettings, UnreadableRecordWarning
from amplify_agents.stores.embeddings import DEFAULT_EMBEDDING_MODEL, LazyEmbeddings
from amplify_agents.stores.schema import collection_metadata, to_record

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_store_server import HOST, chroma_run

runner = CliRunner()


class HashEmbeddings(Embeddings):
    """Bag-of-words hashing into ``dimension`` buckets, unit-normalised: deterministic, instant."""

    def __init__(self, dimension: int = 16) -> None:
        self.dimension = dimension
        self.model_name = f"hash-{dimension}"

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimension
        for word in text.lower().split():
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def demos(n: int = 3) -> list[Demonstration]:
    topics = ["football goal final", "bread oven dough", "stock market rates", "galaxy telescope stars"]
    return [Demonstration(input=f"{topics[i % 4]} {i}", label=f"l{i % 2}", rationale="r", task="t") for i in range(n)]


def folder_state(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: size, mtime and content hash, by relative path."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finish_within(seconds: float, call: Callable[[], Any]) -> tuple[float, BaseException | None, Any]:
    """Run ``call`` in a thread; fail the test if it is still running after ``seconds``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the test
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call was still blocked after {seconds:.0f} s"
    return time.monotonic() - started, outcome.get("error"), outcome.get("value")


chroma_server = chroma_run  # this module's servers are its own: tests pause and kill them


# -- hung and vanished servers ------------------------------------------------------------------


def test_a_paused_server_times_out_then_works_again(tmp_path: Path) -> None:
    with chroma_server(tmp_path) as (process, port):
        settings = ServerSettings(host=HOST, port=port, timeout_s=1.0, retries=1)
        store = RationaleStore.server("paused-store", connection=settings, embeddings=HashEmbeddings())
        store.add(demos(2))
        process.send_signal(signal.SIGSTOP)
        try:
            bound = settings.timeout_s * (settings.retries + 1) + settings.backoff_s
            elapsed, error, _ = finish_within(20, store.count)
            assert isinstance(error, StoreConnectionError), error
            assert f"{HOST}:{port}" in str(error) and "did not answer" in str(error) and "timeout_s" in str(error)
            assert bound - 0.5 <= elapsed <= bound + 3.0, (elapsed, bound)
            # Opening a store on the paused server is bounded too (chromadb's own client is not).
            elapsed, error, _ = finish_within(20, lambda: RationaleStore.server("other-store", connection=settings))
            assert isinstance(error, StoreConnectionError) and elapsed <= bound + 3.0, (error, elapsed)
        finally:
            process.send_signal(signal.SIGCONT)
        _, error, value = finish_within(20, store.count)
        assert error is None and value == 2  # the same store object works once the server is back


def test_every_operation_on_a_killed_server_raises_store_connection_error(tmp_path: Path) -> None:
    with chroma_server(tmp_path) as (process, port):
        settings = ServerSettings(host=HOST, port=port, timeout_s=2.0, retries=1)
        store = RationaleStore.server("killed-store", connection=settings, embeddings=HashEmbeddings())
        ids = store.add(demos(2))
        store.export_jsonl(tmp_path / "saved.jsonl")
        process.kill()
        process.wait(timeout=15)
    operations: dict[str, Callable[[], Any]] = {
        "count": store.count,
        "count(where)": lambda: store.count({"task": "t"}),
        "list": store.list,
        "get": lambda: store.get(ids[0]),
        "get_many": lambda: store.get_many(ids),
        "has": lambda: store.has(ids),
        "search": lambda: store.search("football", k=1),
        "search_by_vector": lambda: store.search_by_vector(HashEmbeddings().embed_query("x"), k=1),
        "mmr": lambda: store.mmr("football", k=1),
        "add": lambda: store.add(demos(1)),
        "delete": lambda: store.delete(ids[:1]),
        "export_jsonl": lambda: store.export_jsonl(tmp_path / "after.jsonl"),
        "import_jsonl": lambda: store.import_jsonl(tmp_path / "saved.jsonl"),
        "unreadable": store.unreadable,
        "open": lambda: RationaleStore.server("killed-store", connection=settings),
    }
    for name, operation in operations.items():
        elapsed, error, _ = finish_within(20, operation)
        assert isinstance(error, StoreConnectionError), (name, repr(error))
        assert not isinstance(error, httpx.HTTPError) and isinstance(error, ConnectionError), name
        assert f"{HOST}:{port}" in str(error) and "chroma run --path DIR" in str(error), name
        assert elapsed < 10, (name, elapsed)  # refused at once: only the retries' pauses
    assert not (tmp_path / "after.jsonl").exists()  # nothing half-written


def test_a_token_variable_that_is_unset_is_named() -> None:
    settings = ServerSettings(port=8123, token_env="AMPLIFY_TEST_NO_SUCH_TOKEN")
    with pytest.raises(StoreError, match=r"AMPLIFY_TEST_NO_SUCH_TOKEN .*127.0.0.1:8123\) is unset or empty"):
        RationaleStore.server("abc-store", connection=settings)
    os.environ["AMPLIFY_TEST_TOKEN"] = "s3cret"
    try:
        bearer = ServerSettings(token_env="AMPLIFY_TEST_TOKEN", token_header="Authorization")
        assert bearer.request_headers() == {"Authorization": "Bearer s3cret"}
        assert "s3cret" not in repr(bearer)
    finally:
        del os.environ["AMPLIFY_TEST_TOKEN"]


# -- reads that must not write ------------------------------------------------------------------


def test_reading_a_folder_that_is_not_a_store_leaves_it_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-store"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = folder_state(folder)
    with pytest.raises(StoreError, match="is not a Chroma store .*no chroma.sqlite3.*nothing was created"):
        RationaleStore.local("abc-store", folder, read_only=True)
    for command in (
        ["export", str(folder), "-n", "abc-store", "-o", str(tmp_path / "out.jsonl")],
        ["select", str(folder), "-n", "abc-store", "-Q", "hi"],
        ["inspect", str(folder), "-n", "abc-store"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "not a Chroma store" in " ".join(result.output.split()), result.output
    assert folder_state(folder) == before and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    with pytest.raises(StoreError, match="No store directory"):
        RationaleStore.local("abc-store", tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()


def _build(folder: Path, embeddings: Embeddings, n: int = 3) -> list[str]:
    store = RationaleStore.local("kept-store", folder, embeddings=embeddings)
    ids = store.add(demos(n))
    store.close()
    return ids


def test_reading_a_store_never_writes_to_it_and_refuses_writes(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    ids = _build(folder, HashEmbeddings())
    before = folder_state(folder)
    with RationaleStore.local("kept-store", folder, embeddings=HashEmbeddings(), read_only=True) as store:
        assert store.read_only and store.count() == 3
        assert sorted(d.demo_id for d in store.list()) == sorted(ids)
        assert store.search("football goal", k=1)[0][0].input.startswith("football")
        assert store.export_jsonl(tmp_path / "out.jsonl") == 3
        with pytest.raises(StoreError, match="opened read-only"):
            store.add(demos(1))
        with pytest.raises(StoreError, match="opened read-only"):
            store.delete(ids)
        copy = store._copy
        assert copy is not None and copy.is_dir()
    assert not copy.exists()  # the private copy is gone once closed
    assert folder_state(folder) == before
    with pytest.raises(StoreError, match="no store named 'other-store'.*stores there: kept-store"):
        RationaleStore.local("other-store", folder, read_only=True)
    assert folder_state(folder) == before


def test_a_write_protected_store_can_still_be_read(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    ids = _build(folder, HashEmbeddings())
    before = folder_state(folder)
    paths = [folder, *folder.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        # As root the mode bits do not stop writes; the byte-for-byte comparison below is what
        # proves nothing was written either way.
        protected = not os.access(folder, os.W_OK)
        store = RationaleStore.local("kept-store", folder, embeddings=HashEmbeddings(), read_only=True)
        assert sorted(d.demo_id for d in store.list()) == sorted(ids)
        assert store.export_jsonl(tmp_path / "out.jsonl") == 3
        store.close()
        result = runner.invoke(app, ["export", str(folder), "-n", "kept-store", "-o", str(tmp_path / "cli.jsonl")])
        # The CLI opens with the default embeddings: a hash-built store is refused by name, untouched.
        assert result.exit_code == 2 and "built with the embeddings" in " ".join(result.output.split())
        assert folder_state(folder) == before, f"written to (mode bits protected it: {protected})"
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


# -- one bad record must not block the others -----------------------------------------------------


def _seed_default_store(folder: Path, good: list[Demonstration]) -> None:
    """A store as the CLI builds it (default embeddings' name), written with raw Chroma plus two
    records this library did not write: one without metadata, one of a newer schema."""
    client = chromadb.PersistentClient(path=str(folder))
    collection = client.create_collection(
        "mixed-store",
        metadata=collection_metadata(DEFAULT_EMBEDDING_MODEL),
        configuration={"hnsw": {"space": "cosine"}},  # type: ignore[typeddict-item]
    )
    hashing = HashEmbeddings(384)
    rows = [to_record(demo) for demo in good]
    collection.add(
        ids=[r[0] for r in rows],
        documents=[r[1] for r in rows],
        metadatas=[r[2] for r in rows],
        embeddings=hashing.embed_documents([r[1] for r in rows]),  # type: ignore[arg-type]
    )
    collection.add(ids=["foreign-1"], documents=["added by other code"], embeddings=[hashing.embed_query("x")])  # type: ignore[arg-type]
    newer = {**rows[0][2], "schema_version": 99}
    collection.add(ids=["future-1"], documents=["newer"], metadatas=[newer], embeddings=[hashing.embed_query("y")])  # type: ignore[arg-type]


def test_unreadable_records_are_skipped_listed_and_export_keeps_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    good = demos(3)
    _seed_default_store(folder, good)
    store = RationaleStore.local("mixed-store", folder, read_only=True)  # default embeddings, never loaded
    with pytest.warns(UnreadableRecordWarning, match="skipped 2 record.*'foreign-1'.*'future-1'.*unreadable"):
        listed = store.list()
    assert sorted(d.demo_id for d in listed) == sorted(d.demo_id for d in good)
    unreadable = store.unreadable()
    assert set(unreadable) == {"foreign-1", "future-1"}
    assert "not a demonstration written by amplify-agents" in unreadable["foreign-1"]
    assert "newer amplify-agents" in unreadable["future-1"]
    with pytest.warns(UnreadableRecordWarning):
        assert store.export_jsonl(tmp_path / "backup.jsonl") == 3
    lines = (tmp_path / "backup.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["demo_id"] for line in lines) == sorted(d.demo_id for d in good)
    with pytest.warns(UnreadableRecordWarning):
        assert len(store.search_by_vector(HashEmbeddings(384).embed_query("football"), k=5)) == 3
    assert isinstance(store.embeddings, LazyEmbeddings) and store.embeddings._inner is None
    store.close()

    # The CLI: inspect names the skipped records, export saves the rest and says what it left out.
    inspected = runner.invoke(app, ["inspect", str(folder), "-n", "mixed-store"])
    text = " ".join(inspected.output.split())
    assert inspected.exit_code == 0, inspected.output
    assert "3 demonstration(s)" in text and "2 unreadable record(s)" in text
    assert "foreign-1:" in text and "future-1:" in text
    out = tmp_path / "cli.jsonl"
    exported = runner.invoke(app, ["export", str(folder), "-n", "mixed-store", "-o", str(out)])
    assert exported.exit_code == 0 and "skipped 2 record(s)" in " ".join(exported.output.split()), exported.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


def test_an_import_that_fails_validation_creates_nothing(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    good, blank = demos(1)[0], Demonstration(input="   ", label="x", rationale="", task="t")
    source.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in (good, blank)), encoding="utf-8")
    target = tmp_path / "new-store"
    result = runner.invoke(app, ["import", str(target), "-n", "new-store", "--in", str(source)])
    assert result.exit_code == 2 and "item 1: empty input" in " ".join(result.output.split()), result.output
    assert not target.exists()  # no directory, no database, no empty collection


# -- embeddings that do not fit the store -------------------------------------------------------


def test_other_embeddings_are_refused_at_open_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    _build(folder, HashEmbeddings(8))
    before = folder_state(folder)
    with pytest.raises(
        StoreError, match=r"built with the embeddings 'HashEmbeddings:hash-8'.*'HashEmbeddings:hash-16'"
    ):
        RationaleStore.local("kept-store", folder, embeddings=HashEmbeddings(16))
    with pytest.raises(StoreError, match="embeddings= the model it was built with.*export_jsonl.*import_jsonl"):
        RationaleStore.local("kept-store", folder, embeddings=HashEmbeddings(16), read_only=True)
    assert folder_state(folder) == before
    assert RationaleStore.local("kept-store", folder, embeddings=HashEmbeddings(8)).count() == 3


def test_a_store_from_before_the_record_opens_and_its_dimension_is_checked(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    client = chromadb.PersistentClient(path=str(folder))
    collection = client.create_collection("old-store", metadata=collection_metadata())  # no embedding name
    rows = [to_record(demo) for demo in demos(2)]
    collection.add(
        ids=[r[0] for r in rows],
        documents=[r[1] for r in rows],
        metadatas=[r[2] for r in rows],
        embeddings=HashEmbeddings(8).embed_documents([r[1] for r in rows]),  # type: ignore[arg-type]
    )
    lazy = LazyEmbeddings(lambda: HashEmbeddings(16))
    old = RationaleStore.local("old-store", folder, embeddings=lazy)  # opens without building the model
    assert old.count() == 2 and len(old.list()) == 2 and lazy._inner is None
    with pytest.raises(StoreError, match="dimension 8 .*dimension 16"):
        old.search("football", k=1)  # the lazy model's first use compares the sizes
    with pytest.raises(StoreError, match="dimension 8 .*dimension 16.*export_jsonl"):
        RationaleStore.local("old-store", folder, embeddings=HashEmbeddings(16))
    reopened = RationaleStore.local("old-store", folder, embeddings=HashEmbeddings(8))
    assert reopened.search("football goal", k=1)[0][0].input.startswith("football")
