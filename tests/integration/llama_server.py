"""A real third-party OpenAI-compatible server for the tests: llama.cpp's, serving the offline Gemma GGUF.

:func:`llama_server_process` starts ``python -m llama_cpp.server`` (from ``llama-cpp-python[server]``,
the ``llama-server`` extra) as a subprocess bound to 127.0.0.1 on a free port, waits until
``/v1/models`` answers (bounded), and stops it on exit (terminate, then kill after a bounded
wait). The session fixture :func:`llama_server` shares one server among test modules: it is
registered once, in ``tests/integration/conftest.py``; a test module only names it as an argument
(importing it into a module would start one more server for that module).

The server answers one request at a time: give its endpoints ``concurrency=1``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["LlamaServer", "free_port", "gemma_gguf", "llama_server", "llama_server_process"]

HOST = "127.0.0.1"
MODEL_ALIAS = "gemma-3-270m"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LlamaServer:
    """A running llama.cpp server: ``base_url`` (``http://127.0.0.1:PORT/v1``), the served ``model``
    name, the ``process`` and the ``log`` file holding its output."""

    base_url: str
    model: str
    process: subprocess.Popen
    log: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def gemma_gguf() -> Path:
    """The offline Gemma 3 270M GGUF file (Q4_K_M), from the project's model cache."""
    from amplify_agents.models import default_cache_dir
    from amplify_agents.models.registry import resolve_offline

    return Path(resolve_offline(MODEL_ALIAS).locate(default_cache_dir()))


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2.0) as response:
            return response.status == 200 and "data" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


@contextmanager
def llama_server_process(
    model_path: str | os.PathLike[str] | None = None,
    *,
    alias: str = MODEL_ALIAS,
    n_ctx: int = 4096,
    extra_args: tuple[str, ...] = (),
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[LlamaServer]:
    """Run llama.cpp's OpenAI-compatible server on 127.0.0.1 for the duration of the block.

    Raises:
        RuntimeError: the server exited, or did not answer within ``start_timeout_s`` (the
            message holds the end of its log).
    """
    model = Path(model_path) if model_path is not None else gemma_gguf()
    if not model.is_file():
        raise FileNotFoundError(f"No GGUF model at {model}.")
    port = free_port()
    base_url = f"http://{HOST}:{port}/v1"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--model_alias",
        alias,
        *extra_args,
    ]
    log_dir = Path(tempfile.mkdtemp(prefix="llama-server-"))
    log_path = log_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(base_url, alias, process, log_path)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _answers(base_url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp's server exited with status {process.returncode} before answering:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama.cpp's server did not answer at {base_url} within {start_timeout_s:.0f} s:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(0.25)
        yield server
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """One llama.cpp server for the whole test session (skipped when llama-cpp-python is absent)."""
    if any(importlib.util.find_spec(name) is None for name in ("llama_cpp", "uvicorn", "sse_starlette")):
        pytest.skip("llama-cpp-python[server] is not installed (the project's 'llama-server' extra).")
    # Gemma's own chat format: the GGUF carries no chat template (llama.cpp would fall back to llama-2's).
    with llama_server_process(extra_args=("--chat_format", "gemma")) as server:
        yield server
