"""A server store's collection through Chroma's async HTTP client (``chromadb.AsyncHttpClient``).

chromadb's async client belongs to the event loop it was made in (its ``httpx.AsyncClient``
cannot cross loops), so one client and collection handle are kept per running loop, and
dropped with the loop. Every call waits at most the server settings' time-out and is retried
as the sync calls are (see :func:`~amplify_agents.stores.connection.acall_with_retries`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

from amplify_agents.stores.connection import ServerSettings, acall_with_retries, aconnect

__all__ = ["AsyncServerCollection"]


class AsyncServerCollection:
    """The collection ``name`` on the server of ``settings``, for ``await``-ing queries."""

    def __init__(self, settings: ServerSettings, name: str) -> None:
        self._settings = settings
        self._name = name
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    @property
    def loops(self) -> int:
        """On how many live event loops an async collection handle is open."""
        return len(self._by_loop)

    async def collection(self) -> Any:
        """The ``AsyncCollection`` for the running loop (connected on first use)."""
        loop = asyncio.get_running_loop()
        handle = self._by_loop.get(loop)
        if handle is None:
            client = await aconnect(self._settings)
            handle = await acall_with_retries(
                self._settings, f"open the store ({self._name!r})", lambda: client.get_collection(self._name)
            )
            self._by_loop[loop] = handle
        return handle

    async def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None, include: list[str]) -> Any:
        """Chroma's ``query`` for one embedding: the ``k`` nearest records matching ``where``."""
        handle = await self.collection()
        return await acall_with_retries(
            self._settings,
            f"search demonstrations ({self._name!r})",
            lambda: handle.query(query_embeddings=[list(vector)], n_results=k, where=where or None, include=include),
        )
