"""RationaleStore through a real Chroma server (``chroma run``), with the same checks as embedded."""

# ruff: noqa: E402  (the environment is set before the imports that read it)
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import chromadb
import pytest
from langchain_core.embeddings import Embeddings

from amplify_agents.errors import StoreError
from amplify_agents.stores import RationaleStore, StoreConnectionError, default_embeddings

# The checks shared with the other backend live beside this file; whether or not tests/ is a
# package, import them under one name, with pytest's assert rewriting for readable failures.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("store_fixtures")
import store_fixtures as checks

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0


def _chroma_executable() -> str | None:
    beside_python = Path(sys.executable).with_name("chroma")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("chroma")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _heartbeat(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/heartbeat", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def chroma_run(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A ``chroma run`` server on a free port of 127.0.0.1 for the block; yields it and its port.

    A test may pause (SIGSTOP) or kill it: the server is resumed before it is terminated.
    """
    executable = _chroma_executable()
    if executable is None:
        pytest.skip("the `chroma` executable (installed with chromadb) is not on PATH or beside python")
    port = _free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, "run", "--path", str(workdir / "data"), "--host", HOST, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _heartbeat(port):
            if process.poll() is not None:
                pytest.fail(f"chroma run exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer within {STARTUP_TIMEOUT_S:.0f} s on port {port}.")
            time.sleep(0.2)
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A ``chroma run`` server for this module; yields the port."""
    with chroma_run(tmp_path_factory.mktemp("chroma-server")) as (_, port):
        yield port


@pytest.fixture(scope="session")
def embeddings() -> Embeddings:
    """The offline MiniLM, loaded once per process (default_embeddings caches it)."""
    return default_embeddings()


@pytest.fixture
def server_backend(chroma_server: int, embeddings: Embeddings) -> checks.Backend:
    return checks.Backend(
        # A new HTTP client per open: a reopened store really goes back to the server.
        open=lambda name: RationaleStore.server(
            name, host=HOST, port=chroma_server, headers={"X-Test": "amplify"}, embeddings=embeddings
        ),
        raw_client=lambda: chromadb.HttpClient(host=HOST, port=chroma_server),
        embeddings=embeddings,
    )


@pytest.mark.parametrize("check", checks.CORE_CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_server_store(
    check: Callable[[checks.Backend, Path], None], server_backend: checks.Backend, tmp_path: Path
) -> None:
    check(server_backend, tmp_path)


def test_the_server_and_the_embedded_store_share_a_format(
    server_backend: checks.Backend, tmp_path: Path, embeddings: Embeddings
) -> None:
    on_server = server_backend.open(checks.unique_name("moved"))
    on_server.add(checks.topic_demos())
    on_server.export_jsonl(tmp_path / "moved.jsonl")
    local = RationaleStore.local("moved", tmp_path / "local", embeddings=embeddings)
    local.import_jsonl(tmp_path / "moved.jsonl")
    assert sorted(d.demo_id for d in local.list()) == sorted(d.demo_id for d in on_server.list())


def test_an_unreachable_server_names_host_and_port() -> None:
    port = _free_port()  # bound then released: nothing listens there
    with pytest.raises(StoreConnectionError) as info:
        RationaleStore.server("abc-store", host=HOST, port=port)
    message = str(info.value)
    assert f"{HOST}:{port}" in message
    assert f"chroma run --path DIR --host {HOST} --port {port}" in message
    assert isinstance(info.value, StoreError)
