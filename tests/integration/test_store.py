"""RationaleStore on an embedded, persistent Chroma with the real offline MiniLM embeddings."""

# ruff: noqa: E402  (the environment is set before the imports that read it)
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import chromadb
import pytest
from langchain_core.embeddings import Embeddings

from amplify_agents.errors import StoreError
from amplify_agents.stores import RationaleStore, default_embeddings, validate_store_name

# The shared checks live beside this file; rewrite their asserts for readable failures.
# The checks shared with the other backend live beside this file; whether or not tests/ is a
# package, import them under one name, with pytest's assert rewriting for readable failures.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("store_fixtures")
import store_fixtures as checks


@pytest.fixture(scope="session")
def embeddings() -> Embeddings:
    """The offline MiniLM, loaded once per process (default_embeddings caches it)."""
    return default_embeddings()


@pytest.fixture
def local_backend(tmp_path: Path, embeddings: Embeddings) -> checks.Backend:
    directory = tmp_path / "chroma"
    return checks.Backend(
        open=lambda name: RationaleStore.local(name, directory, embeddings=embeddings),
        raw_client=lambda: chromadb.PersistentClient(path=str(directory)),
        embeddings=embeddings,
    )


@pytest.mark.parametrize("check", checks.CORE_CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_local_store(
    check: Callable[[checks.Backend, Path], None], local_backend: checks.Backend, tmp_path: Path
) -> None:
    check(local_backend, tmp_path)


def test_reopen_in_another_process_without_loading_a_model(tmp_path: Path, embeddings: Embeddings) -> None:
    directory = tmp_path / "chroma"
    demos = checks.topic_demos()
    RationaleStore.local("persisted", directory, embeddings=embeddings).add(demos)
    # No embeddings given: the store must open, list and export without loading the encoder.
    code = (
        "import json, sys\n"
        "from amplify_agents.stores import RationaleStore\n"
        "store = RationaleStore.local('persisted', sys.argv[1])\n"
        "print(json.dumps([d.to_dict() for d in store.list()]))\n"
        "print(repr(store.embeddings))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"},
    )
    assert done.returncode == 0, done.stderr
    listed, lazy = done.stdout.strip().splitlines()[-2:]
    assert sorted(json.loads(listed), key=lambda d: d["demo_id"]) == sorted(
        (d.to_dict() for d in demos), key=lambda d: d["demo_id"]
    )
    assert "not loaded" in lazy


def test_default_embeddings_are_cached_and_normalised(embeddings: Embeddings) -> None:
    assert default_embeddings() is embeddings
    vector = embeddings.embed_query("a short sentence")
    assert len(vector) == 384
    assert sum(x * x for x in vector) == pytest.approx(1.0, abs=1e-4)


def test_store_without_embeddings_loads_the_default_on_first_use(tmp_path: Path) -> None:
    store = RationaleStore.local("lazy-store", tmp_path / "chroma")
    assert "not loaded" in repr(store.embeddings)
    store.add(checks.topic_demos()[:2])
    assert store.search("bread in the oven", k=1)[0][0].label == "cooking"


@pytest.mark.parametrize("name", ["langchain", "LangChain"])
def test_the_shared_langchain_collection_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="shared default collection"):
        RationaleStore.local(name, tmp_path / "chroma")
    assert not any(c.name == name for c in chromadb.PersistentClient(path=str(tmp_path / "chroma")).list_collections())


@pytest.mark.parametrize(
    "name, why",
    [
        ("ab", "3 to 63 characters"),
        ("x" * 64, "3 to 63 characters"),
        ("has space", "letters, digits"),
        ("-starts-with-dash", "starting and ending"),
        ("ends.with.dot.", "starting and ending"),
        ("two..dots", "'..'"),
        ("192.168.0.1", "IPv4"),
        ("accentué", "letters, digits"),
    ],
)
def test_invalid_names_say_what_is_allowed(name: str, why: str) -> None:
    with pytest.raises(StoreError, match="Invalid store name") as info:
        validate_store_name(name)
    assert why in str(info.value)


@pytest.mark.parametrize("name", ["abc", "snarks-amplify_v1.2", "x" * 63, "A1.b"])
def test_valid_names(name: str) -> None:
    assert validate_store_name(name) == name


def test_persist_directory_and_client_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        RationaleStore("abc", persist_directory=tmp_path, client=chromadb.EphemeralClient())


def test_an_unusable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="Cannot open a Chroma database"):
        RationaleStore.local("abc", blocker / "chroma")
