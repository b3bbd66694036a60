"""How a store reaches a Chroma server: one frozen :class:`ServerSettings`, bounded waits.

chromadb's HTTP client is built with ``httpx.Client(timeout=None)`` and no setting changes
that, so a paused server (``SIGSTOP``, a hung host) blocks every call for as long as the
kernel keeps the connection open. Here the server is first asked for its heartbeat with the
settings' time-out, then the client's own ``httpx`` session gets the same time-out, and each
store operation is retried a bounded number of times on transport errors (refused, reset,
timed out) before :class:`~amplify_agents.errors.StoreConnectionError` names the server,
how long was waited and what to check. The one server error known to pass (a query racing
the first write to a new collection) is retried the same way. Every store operation is an
idempotent read, upsert, delete or metadata replacement, so a retried call cannot apply twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import chromadb
import httpx
from chromadb.errors import InternalError

from amplify_agents.errors import StoreConnectionError, StoreError

__all__ = ["ServerSettings", "acall_with_retries", "aconnect", "call_with_retries", "connect"]

T = TypeVar("T")
logger = logging.getLogger(__name__)

_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # pause before the 2nd, 3rd, ... attempt; the last repeats

# Errors a Chroma server answers that the same request, repeated, gets past. A query that
# races the first write to a new collection can find the vector index's files not yet on
# disk (chromadb 1.5.9, `chroma run`; a repeat 15 ms later succeeded): a selector would fail
# while a builder fills the store it reads (tests/integration/test_store_many_processes.py).
_TRANSIENT_SERVER_ERRORS = ("Error creating hnsw segment reader: Nothing found on disk",)


@dataclass(frozen=True)
class ServerSettings:
    """Where a Chroma server is and how long to wait for it.

    Args:
        host, port: the server (``chroma run --host HOST --port PORT``).
        ssl: connect with HTTPS.
        headers: extra HTTP headers sent with every request.
        timeout_s: the longest wait for one request (connect, send and each read).
        retries: how many times a failed request is tried again (refused, reset or timed out);
            the longest an operation can wait is about ``timeout_s * (retries + 1)`` plus
            :attr:`backoff_s`.
        token_env: NAME of an environment variable holding an auth token, read when
            connecting (the token itself never sits in settings or logs).
        token_header: the header the token goes in (Chroma's token auth reads
            ``X-Chroma-Token`` or ``Authorization``; with ``Authorization`` it is sent as
            ``Bearer TOKEN``).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    ssl: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    retries: int = 2
    token_env: str | None = None
    token_header: str = "X-Chroma-Token"

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"ServerSettings.port must be an int from 1 to 65535, got {self.port!r}.")
        if not self.timeout_s > 0:
            raise ValueError(f"ServerSettings.timeout_s must be positive, got {self.timeout_s!r}.")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"ServerSettings.retries must be an int >= 0, got {self.retries!r}.")

    @property
    def address(self) -> str:
        """``host:port``, as messages name the server."""
        return f"{self.host}:{self.port}"

    @property
    def backoff_s(self) -> float:
        """The pauses between attempts, in all."""
        return sum(_pause(attempt) for attempt in range(self.retries))

    def request_headers(self) -> dict[str, str]:
        """The headers to send: :attr:`headers` plus the token of :attr:`token_env`, if any.

        Raises:
            StoreError: ``token_env`` names a variable that is unset or empty.
        """
        headers = dict(self.headers)
        if self.token_env:
            token = os.environ.get(self.token_env, "").strip()
            if not token:
                raise StoreError(
                    f"The environment variable {self.token_env} (the auth token of the Chroma server at "
                    f"{self.address}) is unset or empty. Set it, e.g. `export {self.token_env}=...`."
                )
            bearer = self.token_header.lower() == "authorization"
            headers[self.token_header] = f"Bearer {token}" if bearer else token
        return headers


def _pause(attempt: int) -> float:
    return _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]


def _failure_message(settings: ServerSettings, what: str, exc: BaseException, attempts: int, waited: float) -> str:
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        problem = f"did not answer {what} within {settings.timeout_s:g} s"
        fix = (
            "Check that the server is running and not paused or overloaded, or wait longer with "
            "ServerSettings(timeout_s=..., retries=...). A write that timed out may still be applied "
            "when the server resumes; repeating it is safe (writes are idempotent upserts and deletes)."
        )
    else:
        problem = f"could not be reached for {what} ({type(exc).__name__}: {exc})"
        fix = (
            f"Start it with `chroma run --path DIR --host {settings.host} --port {settings.port}`, "
            "or check the host, the port and any auth header. The failed call changed nothing."
        )
    return f"The Chroma server at {settings.address} {problem}; tried {attempts} time(s) over {waited:.1f} s. {fix}"


def _transient(exc: BaseException) -> bool:
    """Whether the server's error is one a repeat of the same request gets past."""
    return isinstance(exc, InternalError) and any(m in str(exc) for m in _TRANSIENT_SERVER_ERRORS)


def call_with_retries(settings: ServerSettings, what: str, call: Callable[[], T]) -> T:
    """``call()``, tried again up to ``settings.retries`` times on transport errors (and on
    the server's transient errors, which are raised as they are if every attempt gets one).

    Raises:
        StoreConnectionError: every attempt failed to reach the server or timed out.
    """
    started = time.monotonic()
    for attempt in range(settings.retries + 1):
        try:
            return call()
        except httpx.TransportError as exc:  # ConnectError, ReadTimeout, RemoteProtocolError, ...
            if attempt == settings.retries:
                waited = time.monotonic() - started
                raise StoreConnectionError(_failure_message(settings, what, exc, attempt + 1, waited)) from exc
            logger.info("Chroma server %s: %s failed (%s), retrying", settings.address, what, type(exc).__name__)
            time.sleep(_pause(attempt))
        except InternalError as exc:
            if attempt == settings.retries or not _transient(exc):
                raise
            logger.info("Chroma server %s: %s failed (%s), retrying", settings.address, what, exc)
            time.sleep(_pause(attempt))
    raise AssertionError("unreachable")  # the loop returns or raises


async def acall_with_retries(settings: ServerSettings, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """The async :func:`call_with_retries`: each attempt waits at most ``settings.timeout_s``.

    chromadb's async client also builds its ``httpx.AsyncClient`` with ``timeout=None``
    (one per event loop, created on demand), so the wait is bounded here around each call.

    Raises:
        StoreConnectionError: every attempt failed to reach the server or timed out.
    """
    started = time.monotonic()
    for attempt in range(settings.retries + 1):
        try:
            return await asyncio.wait_for(call(), timeout=settings.timeout_s)
        except (httpx.TransportError, TimeoutError) as exc:
            if attempt == settings.retries:
                waited = time.monotonic() - started
                raise StoreConnectionError(_failure_message(settings, what, exc, attempt + 1, waited)) from exc
            logger.info("Chroma server %s: %s failed (%s), retrying", settings.address, what, type(exc).__name__)
            await asyncio.sleep(_pause(attempt))
        except InternalError as exc:
            if attempt == settings.retries or not _transient(exc):
                raise
            logger.info("Chroma server %s: %s failed (%s), retrying", settings.address, what, exc)
            await asyncio.sleep(_pause(attempt))
    raise AssertionError("unreachable")  # the loop returns or raises


async def aconnect(settings: ServerSettings) -> chromadb.api.AsyncClientAPI:
    """A Chroma async HTTP client (``chromadb.AsyncHttpClient``) for the current event loop.

    Raises:
        StoreConnectionError: the server does not answer in time, or refuses the client.
        StoreError: the auth token variable is unset.
    """
    headers = settings.request_headers()

    async def create() -> chromadb.api.AsyncClientAPI:
        return await chromadb.AsyncHttpClient(host=settings.host, port=settings.port, ssl=settings.ssl, headers=headers)

    try:
        return await acall_with_retries(settings, "an async connection", create)
    except StoreConnectionError:
        raise
    except Exception as exc:  # chromadb raises ValueError wrapping httpx errors, or auth errors
        raise StoreConnectionError(
            f"Could not connect an async client to the Chroma server at {settings.address} ({exc}). Check the "
            "host, the port and any auth header."
        ) from exc


def connect(settings: ServerSettings) -> chromadb.ClientAPI:
    """A Chroma HTTP client whose every request waits at most ``settings.timeout_s``.

    Raises:
        StoreConnectionError: the server does not answer, or refuses the client.
        StoreError: the auth token variable is unset.
    """
    headers = settings.request_headers()
    # chromadb's client makes requests while it is built, before its time-out can be set:
    # a heartbeat with our time-out first means a paused server fails here, not there.
    scheme = "https" if settings.ssl else "http"
    url = f"{scheme}://{settings.address}/api/v2/heartbeat"
    response = call_with_retries(
        settings, "a heartbeat", lambda: httpx.get(url, headers=headers, timeout=settings.timeout_s)
    )
    if response.status_code in (401, 403):
        raise StoreConnectionError(
            f"The Chroma server at {settings.address} refused the client (HTTP {response.status_code}). "
            "Check its auth token (ServerSettings(token_env=...)) or headers."
        )
    try:
        client = chromadb.HttpClient(host=settings.host, port=settings.port, ssl=settings.ssl, headers=headers)
    except Exception as exc:  # chromadb raises ValueError wrapping httpx errors, or auth errors
        raise StoreConnectionError(
            f"Could not connect to a Chroma server at {settings.address} ({exc}). Start one with "
            f"`chroma run --path DIR --host {settings.host} --port {settings.port}`, or check the host, "
            "the port and any auth header."
        ) from exc
    _bound_waits(client, settings)
    return client


def _bound_waits(client: Any, settings: ServerSettings) -> None:
    # chromadb.api.fastapi.FastAPI keeps its httpx.Client in _session (chromadb 1.x); each
    # HttpClient has a System of its own, so this changes no other client.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(settings.timeout_s)
    else:
        logger.warning(
            "Could not set a time-out on the Chroma client for %s (chromadb changed its client); "
            "calls to a paused server may block.",
            settings.address,
        )
