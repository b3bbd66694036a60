"""A store of demonstrations on Chroma, through LangChain's :class:`~langchain_chroma.Chroma`.

One Chroma collection per store name. The document of each record is the demonstration's
input (what is embedded); everything else is scalar metadata (see :mod:`.schema`), so Chroma
``where`` filters such as ``{"task": "snarks"}`` or ``{"$and": [...]}`` select demonstrations.

The same collection can be used from a local directory (embedded Chroma) or through a Chroma
server; the underlying LangChain vector store is exposed as :attr:`RationaleStore.vectorstore`
so LangChain's own example selectors can run on the same data and embeddings.

Reliability: a server store waits at most :attr:`ServerSettings.timeout_s` per request and
retries a bounded number of times before raising
:class:`~amplify_agents.errors.StoreConnectionError` (see :mod:`.connection`); a store
opened with ``read_only=True`` reads a private copy and never writes to the folder (see
:mod:`.snapshot`); a record that is not a readable demonstration is skipped with an
:class:`~amplify_agents.stores.schema.UnreadableRecordWarning` instead of failing the whole
read, and :meth:`RationaleStore.unreadable` lists such records; a store opened with other
embeddings than it was built with is refused at open.
"""

from __future__ import annotations

import builtins
import functools
import ipaddress
import os
import re
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import chromadb
import numpy as np
from chromadb.errors import NotFoundError
from langchain_chroma import Chroma
from langchain_chroma.vectorstores import maximal_marginal_relevance
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import StoreConnectionError, StoreError
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits
from amplify_agents.stores.adopt import CollectionMapping, demonstrations_from_records
from amplify_agents.stores.aio import AsyncServerCollection
from amplify_agents.stores.connection import ServerSettings, call_with_retries, connect
from amplify_agents.stores.embeddings import LazyEmbeddings, embedding_model_name
from amplify_agents.stores.jsonl import read_jsonl, write_jsonl
from amplify_agents.stores.retriever import DemonstrationRetriever, SearchType
from amplify_agents.stores.schema import (
    EMBEDDING_MODEL_KEY,
    SCHEMA_KEY,
    UnreadableRecordWarning,
    check_schema_version,
    collection_metadata,
    from_record,
    to_record,
    validate_batch,
)
from amplify_agents.stores.snapshot import copy_for_reading, remove_copy

__all__ = ["RationaleStore", "ServerSettings", "StoreConnectionError", "validate_store_name"]

Where = dict[str, Any]
T = TypeVar("T")

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")
_RESERVED_NAMES = {"langchain"}  # LangChain/Chroma's shared default collection
# Stores created here compare unit-norm vectors by cosine distance.
_COLLECTION_CONFIGURATION: dict[str, Any] = {"hnsw": {"space": "cosine"}}


def validate_store_name(name: str) -> str:
    """Return ``name`` if it can name a store, else raise :class:`StoreError` saying why.

    Chroma's rules, kept to the strictest across its versions: 3 to 63 characters from
    ``[a-zA-Z0-9._-]``, starting and ending with a letter or digit, no ``..``, not an IPv4
    address. ``"langchain"`` is refused: it is the collection every LangChain ``Chroma``
    without a name shares, so demonstrations would mix with unrelated documents.
    """
    if not isinstance(name, str):
        raise StoreError(f"A store name must be a str, got {type(name).__name__}.")
    if name.lower() in _RESERVED_NAMES:
        raise StoreError(
            f"The store name {name!r} is refused: it is Chroma's and LangChain's shared default "
            "collection, where unrelated documents mix. Choose a name of your own, e.g. 'snarks-amplify'."
        )
    problem = None
    if not _NAME_RE.match(name):
        problem = (
            "use 3 to 63 characters from letters, digits, '.', '_' and '-', starting and ending with a letter or digit"
        )
    elif ".." in name:
        problem = "it must not contain '..'"
    else:
        try:
            ipaddress.IPv4Address(name)
            problem = "it must not be an IPv4 address"
        except ValueError:
            pass
    if problem:
        raise StoreError(f"Invalid store name {name!r}: {problem} (Chroma's collection-name rules).")
    return name


def _similarity_from_distance(space: str) -> Callable[[float], float]:
    """Map Chroma's distance in ``space`` to a similarity where higher means nearer.

    For the cosine space this is exactly the cosine similarity; for "l2" (squared distance)
    and "ip" it equals the cosine similarity when the embeddings are unit-norm, as the default
    embeddings are.
    """
    if space == "l2":
        return lambda distance: 1.0 - distance / 2.0
    return lambda distance: 1.0 - distance  # "cosine" and "ip"


class RationaleStore:
    """Demonstrations in a Chroma collection: upsert by id, filter, search, MMR, JSONL.

    Args:
        name: the store's (and collection's) name; see :func:`validate_store_name`.
        persist_directory: a directory for an embedded, persistent Chroma.
        client: a Chroma client to use instead (e.g. ``chromadb.HttpClient(...)``). Give at most
            one of ``persist_directory`` and ``client``; with neither the store lives in memory
            (note that Chroma shares one in-memory database among all in-memory clients of a
            process).
        embeddings: any LangChain embeddings; by default the offline MiniLM of
            :func:`~amplify_agents.stores.embeddings.default_embeddings`, loaded on first use.
        read_only: with ``persist_directory``, read a private copy of an existing store and
            never write to the directory (Chroma writes to every directory it opens); writes
            raise :class:`StoreError`. Call :meth:`close` to delete the copy (also done when
            the store is garbage-collected).
        server: how to reach and wait for the server of ``client`` (set by :meth:`server`);
            requests that fail to reach it are retried ``server.retries`` times.

    Raises:
        StoreVersionError: the collection was written by a newer amplify-agents; nothing
            was changed.
        StoreConnectionError: the server did not answer in time or refused the connection.
        StoreError: an invalid name; the collection exists and holds records that were
            not written by amplify-agents; it was built with other embeddings; or, with
            ``read_only``, the directory or the store in it does not exist.

    Example:
        >>> store = RationaleStore.local("snarks-amplify", "./chroma_demo")  # doctest: +SKIP
        >>> store.add(demos)  # doctest: +SKIP
        >>> store.mmr("Is this sarcastic?", k=4, where={"task": "snarks"})  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        *,
        persist_directory: str | os.PathLike[str] | None = None,
        client: chromadb.ClientAPI | None = None,
        embeddings: Embeddings | None = None,
        read_only: bool = False,
        server: ServerSettings | None = None,
    ) -> None:
        self._name = validate_store_name(name)
        self.directory: Path | None = Path(persist_directory) if persist_directory is not None else None
        """The folder of an embedded persistent store (None in memory or on a server)."""
        if persist_directory is not None and client is not None:
            raise ValueError("Give either persist_directory or client, not both.")
        if read_only and self.directory is None:
            raise ValueError("read_only=True needs persist_directory (a server store is read where it is).")
        self._read_only = read_only
        self._server = server if server is not None else _server_of(client)
        # Async reads go through chromadb's AsyncHttpClient when this store made the connection
        # itself (a caller's own client may carry headers the settings do not know).
        self._async = AsyncServerCollection(server, self._name) if server is not None else None
        readable = self.directory.expanduser() if read_only and self.directory else None
        self._copy: Path | None = copy_for_reading(readable) if readable is not None else None
        try:
            if client is None:
                opened = self._copy if self._copy is not None else persist_directory
                client = _persistent_client(opened) if opened is not None else None
            self._client: chromadb.ClientAPI = client if client is not None else chromadb.EphemeralClient()
            self._closer = weakref.finalize(self, _close, self._client, self._copy)
            self._open(embeddings)
        except BaseException:
            if self._copy is not None:
                remove_copy(self._copy)
            raise

    def _open(self, embeddings: Embeddings | None) -> None:
        self._embeddings: Embeddings = embeddings if embeddings is not None else LazyEmbeddings()
        self._dimension: int | None = None  # the collection's vector size, once known
        # Check before LangChain's Chroma runs get_or_create: a refused store stays untouched.
        existing = self._call("open the store", self._existing_collection)
        if existing is None and self._read_only:
            raise StoreError(self._missing_message())
        if existing is not None:
            self._check_existing_collection(existing)
        self._vectorstore = self._call(
            "open the store",
            lambda: Chroma(
                collection_name=self._name,
                embedding_function=self._embeddings,
                client=self._client,
                collection_metadata=collection_metadata(embedding_model_name(self._embeddings)),
                collection_configuration=_COLLECTION_CONFIGURATION,  # type: ignore[arg-type]
            ),
        )
        self._collection = self._call("open the store", lambda: self._client.get_collection(self._name))
        self._to_similarity = _similarity_from_distance(self._distance_space())
        self._max_batch: int | None = None
        self._unreadable: dict[str, str] = {}

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def local(
        cls,
        name: str,
        directory: str | os.PathLike[str],
        embeddings: Embeddings | None = None,
        *,
        read_only: bool = False,
    ) -> RationaleStore:
        """A store in an embedded, persistent Chroma under ``directory``.

        Without ``read_only`` the directory and the store are created if missing. With
        ``read_only=True`` the store must exist; it is read from a private copy, so the
        directory is never written to (it may be write-protected).
        """
        return cls(name, persist_directory=directory, embeddings=embeddings, read_only=read_only)

    @classmethod
    def in_memory(cls, name: str | None = None, embeddings: Embeddings | None = None) -> RationaleStore:
        """A store in an in-memory (ephemeral) Chroma: nothing is written to disk.

        Chroma shares one in-memory database among the clients of a process, so without a
        ``name`` the store gets a fresh one (``amplify-mem-<random>``) and its collection is
        deleted when the store is closed or garbage-collected. A named in-memory store lives
        until the process ends and is shared by every in-memory store of that name.
        """
        owned = name is None
        store = cls(name or f"amplify-mem-{uuid.uuid4().hex[:12]}", embeddings=embeddings)
        if owned:
            store._closer.detach()
            store._closer = weakref.finalize(store, _close, store._client, None, store._name)
        return store

    @classmethod
    def server(
        cls,
        name: str,
        host: str = "127.0.0.1",
        port: int = 8000,
        headers: dict[str, str] | None = None,
        embeddings: Embeddings | None = None,
        *,
        ssl: bool = False,
        connection: ServerSettings | None = None,
    ) -> RationaleStore:
        """A store on a Chroma server (``chroma run --path DIR --host HOST --port PORT``).

        Args:
            headers: extra HTTP headers, e.g. an auth token ``{"X-Chroma-Token": "..."}``.
            ssl: connect with HTTPS.
            connection: every connection setting at once (time-out, retries, token variable);
                give it instead of ``host``, ``port``, ``headers`` and ``ssl``.

        Raises:
            StoreConnectionError: the server cannot be reached, does not answer within the
                time-out, or refused the client.
        """
        if connection is None:
            connection = ServerSettings(host=host, port=port, ssl=ssl, headers=dict(headers or {}))
        elif (host, port, headers, ssl) != ("127.0.0.1", 8000, None, False):
            raise ValueError("Give either connection=ServerSettings(...) or host/port/headers/ssl, not both.")
        return cls(name, client=connect(connection), embeddings=embeddings, server=connection)

    def _existing_collection(self) -> Any:
        try:
            return self._client.get_collection(self._name)
        except NotFoundError:
            return None  # a new store: LangChain's Chroma creates it with our metadata

    def _missing_message(self) -> str:
        names = sorted(c if isinstance(c, str) else c.name for c in self._client.list_collections())
        listing = ", ".join(names) if names else "none"
        return f"no store named {self._name!r} in {self.directory} (stores there: {listing})."

    def _check_existing_collection(self, existing: Any) -> None:
        metadata = dict(existing.metadata or {})
        where = f"The Chroma collection {self._name!r}"
        if SCHEMA_KEY in metadata:
            check_schema_version(metadata[SCHEMA_KEY], where)
            # (Versions older than SCHEMA_VERSION would be migrated here; 1 is the first.)
            self._check_embeddings(existing, metadata)
            return
        records = self._call("open the store", existing.count)
        if records:
            raise StoreError(
                f"{where} already holds {records} record(s) not written by amplify-agents (its metadata "
                f"has no {SCHEMA_KEY!r}; e.g. made by LangChain's Chroma). To use them, open a store under "
                f"another name on the same Chroma and import them, leaving this collection as it is: "
                f"store.import_collection({self._name!r}, answer_key='<metadata key of the answer>'); "
                "or choose another store name."
            )
        # An empty collection made elsewhere: adopt it. modify() replaces the whole metadata and
        # refuses "hnsw:" keys (the distance space cannot change), so those are left out.
        kept = {key: value for key, value in metadata.items() if not key.startswith("hnsw:")}
        self._call("open the store", lambda: existing.modify(metadata={**kept, **collection_metadata()}))

    def _check_embeddings(self, existing: Any, metadata: dict[str, Any]) -> None:
        """Refuse embeddings other than those the store was built with (name, then dimension)."""
        recorded = metadata.get(EMBEDDING_MODEL_KEY)
        current = embedding_model_name(self._embeddings)
        if isinstance(recorded, str) and recorded != current:
            raise StoreError(
                f"The store {self._name!r} was built with the embeddings {recorded!r}, but is opened with "
                f"{current!r}: its similarities would be meaningless. {self._embedding_fix(recorded)}"
            )
        dimension = getattr(getattr(existing, "_model", None), "dimension", None)
        self._dimension = dimension if isinstance(dimension, int) and dimension > 0 else None
        lazy = isinstance(self._embeddings, LazyEmbeddings) and self._embeddings._inner is None
        if recorded is None and self._dimension is not None and not lazy:
            # A store from before the name was recorded: one short probe compares the sizes now
            # (lazy embeddings are compared on their first use instead, to open without a model).
            self._check_dimension(len(self._embeddings.embed_query("dimension check")))

    def _check_dimension(self, size: int) -> None:
        if self._dimension is not None and size != self._dimension:
            recorded = (self._collection_metadata() or {}).get(EMBEDDING_MODEL_KEY, "not recorded")
            raise StoreError(
                f"The store {self._name!r} holds vectors of dimension {self._dimension} (embeddings "
                f"{recorded!r}), but the embeddings given ({embedding_model_name(self._embeddings)!r}) make "
                f"vectors of dimension {size}. {self._embedding_fix(recorded)}"
            )

    def _embedding_fix(self, recorded: Any) -> str:
        return (
            f"Open it with embeddings= the model it was built with ({recorded!r}), or move it to the new "
            "embeddings: export_jsonl() it, then import_jsonl() into a new store opened with them (every "
            "input is embedded again); nothing was changed."
        )

    def _collection_metadata(self) -> dict[str, Any] | None:
        collection = getattr(self, "_collection", None)
        return dict(collection.metadata or {}) if collection is not None else None

    def _distance_space(self) -> str:
        # The raw JSON: reading .configuration warns (DeprecationWarning) on collections langchain-chroma made.
        configuration: dict[str, Any] = dict(self._collection.configuration_json or {})
        for index in ("hnsw", "spann"):
            settings = configuration.get(index)
            if isinstance(settings, dict) and settings.get("space"):
                return str(settings["space"])
        return str((self._collection.metadata or {}).get("hnsw:space", "l2"))

    def close(self) -> None:
        """Release the client's files; for a ``read_only`` store, delete its private copy.

        The store cannot be used afterwards. Closing twice does nothing.
        """
        self._closer()

    def __enter__(self) -> RationaleStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- properties ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The store's name, which is also its Chroma collection's name."""
        return self._name

    @property
    def read_only(self) -> bool:
        """Whether the store was opened for reading only (writes raise :class:`StoreError`)."""
        return self._read_only

    @property
    def vectorstore(self) -> Chroma:
        """The underlying LangChain ``Chroma``, for LangChain's own selectors and retrievers.

        Records added through it (e.g. a selector's ``add_example``) are not demonstrations;
        reading them through this store skips them with an :class:`UnreadableRecordWarning`.
        """
        return self._vectorstore

    @property
    def embeddings(self) -> Embeddings:
        """The embeddings used for documents and queries."""
        return self._embeddings

    @property
    def client(self) -> chromadb.ClientAPI:
        """The Chroma client."""
        return self._client

    def __repr__(self) -> str:
        mode = ", read_only=True" if self._read_only else ""
        return f"RationaleStore({self._name!r}, client={type(self._client).__name__}{mode})"

    def __len__(self) -> int:
        return self.count()

    # -- writing ---------------------------------------------------------------------------

    def add(self, demos: Iterable[Demonstration]) -> builtins.list[str]:
        """Upsert demonstrations by :attr:`~Demonstration.demo_id`; return their ids in order.

        Idempotent: adding the same demonstration again replaces it, the count is unchanged.
        The whole batch is validated before anything is written; it is embedded with one
        ``embed_documents`` call per chunk and written with one upsert (split only past
        Chroma's maximum batch size).

        Raises:
            InvalidDemonstrationError: an item is not a Demonstration, or has an empty input
                or label; nothing was written.
            StoreError: the store is read-only, or the embeddings do not fit it.
        """
        self._check_writable("add demonstrations")
        batch = list(demos)
        validate_batch(batch)
        records = [to_record(demo) for demo in batch]
        # Chroma rejects duplicate ids within one upsert; the last one wins, as with two calls.
        unique = {record_id: (document, metadata) for record_id, document, metadata in records}
        ids = list(unique)
        step = self._batch_size()
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            documents = [unique[i][0] for i in chunk]
            vectors = self._embed_documents(documents)
            metadatas = [unique[i][1] for i in chunk]
            self._call(
                "add demonstrations",
                self._collection.upsert,
                ids=chunk,
                embeddings=vectors,
                documents=documents,
                metadatas=metadatas,
            )
        if ids:
            self._record_embedding_name()
        return [record_id for record_id, _, _ in records]

    def upsert(self, demos: Iterable[Demonstration]) -> builtins.list[str]:
        """Alias of :meth:`add`."""
        return self.add(demos)

    def delete(self, ids: Iterable[str]) -> None:
        """Delete demonstrations by id; ids that are not stored are ignored."""
        self._check_writable("delete demonstrations")
        unique = list(dict.fromkeys(ids))
        if unique:  # Chroma refuses an empty id list
            self._call("delete demonstrations", lambda: self._collection.delete(ids=unique))
        for record_id in unique:
            self._unreadable.pop(record_id, None)

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Add every demonstration of a JSONL file (see :meth:`export_jsonl`); return how many.

        Raises:
            StoreError: the file is missing or a line is invalid (nothing is written then).
        """
        demos = read_jsonl(path)
        self.add(demos)
        return len(demos)

    def import_collection(
        self,
        source: str | Chroma | Any,
        *,
        answer_key: str = "answer",
        rationale_key: str | None = "rationale",
        input_key: str | None = None,
        task: str = "default",
        limits: TextLimits = DEFAULT_LIMITS,
    ) -> int:
        """Add the records of a plain LangChain/Chroma collection as demonstrations; return how many.

        For a collection made by ``langchain_chroma.Chroma`` (``from_texts``/``add_texts``, or
        LangChain's example selectors), which this library will not open as a store: each
        record's document (or its ``input_key`` metadata) becomes the input, its ``answer_key``
        metadata the label and its ``rationale_key`` metadata, when present, the rationale
        (else it is a plain demonstration, ``explainer="none"``); its other scalar metadata
        is kept under ``extra["fields"]``, so the selector returns those keys too.

        The source is only read (re-embedded with this store's embeddings, so it may have
        used others). Ids derive from the content: importing again replaces, never duplicates.

        Args:
            source: the collection's name on this store's Chroma client, a LangChain
                ``Chroma`` or a ``chromadb`` collection.

        Raises:
            StoreError: the source does not exist, or a record has no input or answer (nothing
                is written then).
        """
        self._check_writable("import a collection")
        collection = self._source_collection(source)
        name = str(collection.name)
        if name == self._name:
            raise StoreError(f"Cannot import the store {name!r} into itself: open a store under another name.")
        rows: builtins.list[tuple[str, str | None, Any]] = []
        step = self._batch_size()
        total = self._call("read the collection", collection.count)
        for offset in range(0, total, step):
            result = self._call(
                "read the collection",
                lambda offset=offset: collection.get(limit=step, offset=offset, include=["documents", "metadatas"]),
            )
            rows.extend(_rows(result))
        mapping = CollectionMapping(answer_key=answer_key, rationale_key=rationale_key, input_key=input_key, task=task)
        demos = demonstrations_from_records(rows, mapping, source=name, limits=limits)
        self.add(demos)
        return len(demos)

    def _source_collection(self, source: str | Chroma | Any) -> Any:
        if isinstance(source, Chroma):
            return source._collection  # langchain-chroma's handle on the chromadb collection
        if not isinstance(source, str):
            return source  # a chromadb Collection
        try:
            return self._call("read the collection", lambda: self._client.get_collection(source))
        except NotFoundError as exc:
            raise StoreError(f"No Chroma collection named {source!r} to import on this store's client.") from exc

    # -- reading ---------------------------------------------------------------------------

    def get(self, demo_id: str) -> Demonstration | None:
        """The demonstration with this id, or ``None``."""
        found = self.get_many([demo_id])
        return found[0] if found else None

    def get_many(self, ids: Iterable[str]) -> builtins.list[Demonstration]:
        """The stored demonstrations among ``ids``, in the order asked (missing ids skipped)."""
        wanted = list(ids)
        unique = list(dict.fromkeys(wanted))  # Chroma refuses duplicate ids in one get
        if not unique:
            return []
        found: dict[str, Demonstration] = {}
        step = self._batch_size()
        for start in range(0, len(unique), step):
            chunk = unique[start : start + step]
            result = self._call("get demonstrations", self._collection.get, ids=chunk)
            for demo in self._demonstrations(result):
                found[demo.demo_id] = demo
        # Chroma returns records in storage order, not in the order asked.
        return [found[i] for i in wanted if i in found]

    def has(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored (cheap: no documents or metadata are read)."""
        unique = list(dict.fromkeys(ids))
        present: set[str] = set()
        step = self._batch_size()
        for start in range(0, len(unique), step):
            chunk = unique[start : start + step]
            result = self._call("look ids up", self._collection.get, ids=chunk, include=[])
            present.update(result["ids"])
        return present

    def list(self, where: Where | None = None, limit: int | None = None) -> builtins.list[Demonstration]:
        """Stored demonstrations matching a Chroma ``where`` filter, in storage order.

        Records that are not readable demonstrations (added by other code, or of a newer
        layout) are skipped with one :class:`UnreadableRecordWarning`; see :meth:`unreadable`.

        Args:
            where: a metadata filter, e.g. ``{"task": "snarks"}``,
                ``{"$and": [{"task": "snarks"}, {"strategy": "error"}]}`` or ``{"k": {"$gte": 4}}``.
            limit: at most this many records are read.
        """
        result = self._call(
            "list demonstrations",
            lambda: self._collection.get(where=where or None, limit=limit, include=["documents", "metadatas"]),
        )
        return self._demonstrations(result)

    def count(self, where: Where | None = None) -> int:
        """How many records are stored (matching ``where`` when given), unreadable ones included."""
        if not where:
            return self._call("count demonstrations", self._collection.count)
        return len(self._call("count demonstrations", lambda: self._collection.get(where=where, include=[]))["ids"])

    def unreadable(self) -> dict[str, str]:
        """Every record that cannot be read as a demonstration, by id, with the reason.

        Reads the whole store (in Chroma-sized batches). Such records are skipped by the
        other reads; :meth:`delete` removes them.
        """
        found: dict[str, str] = {}
        step = self._batch_size()
        total = self.count()
        for offset in range(0, total, step):
            result = self._call(
                "list demonstrations",
                self._collection.get,
                limit=step,
                offset=offset,
                include=["documents", "metadatas"],
            )
            for record_id, document, metadata in _rows(result):
                try:
                    from_record(record_id, document, metadata)
                except StoreError as exc:
                    found[record_id] = str(exc)
        self._unreadable = dict(found)
        return found

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every readable demonstration to a JSONL file sorted by id; return how many.

        Two exports of the same store are byte-identical, so exports diff cleanly. Unreadable
        records are left out with an :class:`UnreadableRecordWarning` (see :meth:`unreadable`).
        """
        return write_jsonl(self.list(), Path(path))

    # -- similarity --------------------------------------------------------------------------

    def search(self, query: str, k: int = 4, where: Where | None = None) -> builtins.list[tuple[Demonstration, float]]:
        """The ``k`` demonstrations whose inputs are nearest to ``query``, nearest first.

        Returns:
            ``(demonstration, similarity)`` pairs; the similarity is the cosine similarity of
            the embeddings (higher is nearer).
        """
        _check_k(k)
        return self.search_by_vector(self._embed_query(query), k=k, where=where)

    def search_by_vector(
        self, embedding: Sequence[float], k: int = 4, where: Where | None = None
    ) -> builtins.list[tuple[Demonstration, float]]:
        """Like :meth:`search`, from an embedding computed by the caller."""
        _check_k(k)
        vector = [float(x) for x in embedding]
        self._check_dimension(len(vector))
        # Despite its name, this LangChain method returns Chroma's distances, not relevance scores.
        pairs = self._call(
            "search demonstrations",
            lambda: self._vectorstore.similarity_search_by_vector_with_relevance_scores(
                vector, k=k, filter=where or None
            ),
        )
        by_id = {str(doc.id): distance for doc, distance in pairs}
        demos = self._demonstrations_of([doc for doc, _ in pairs])
        return [(demo, self._to_similarity(by_id[demo.demo_id])) for demo in demos]

    def mmr(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        where: Where | None = None,
    ) -> builtins.list[Demonstration]:
        """Maximal-marginal-relevance selection of ``k`` demonstrations, among those matching ``where``.

        The ``fetch_k`` nearest matching demonstrations are fetched (the filter applies to the
        candidates, unlike LangChain's ``MaxMarginalRelevanceExampleSelector``, which drops it),
        then ``k`` are picked trading similarity against diversity: ``lambda_mult=1`` is pure
        similarity, ``0`` maximum diversity. As in langchain-chroma, the picked demonstrations
        are returned in order of similarity to the query, not in the order they were picked.
        """
        _check_mmr(k, lambda_mult)
        vector = self._embed_query(query)
        docs = self._call(
            "search demonstrations",
            lambda: self._vectorstore.max_marginal_relevance_search_by_vector(
                vector, k=k, fetch_k=max(fetch_k, k), lambda_mult=lambda_mult, filter=where or None
            ),
        )
        return self._demonstrations_of(docs)

    async def asearch(
        self, query: str, k: int = 4, where: Where | None = None
    ) -> builtins.list[tuple[Demonstration, float]]:
        """:meth:`search`, awaited: through Chroma's async HTTP client on a server store
        (:meth:`server`), else the sync search in LangChain's executor."""
        _check_k(k)
        if self._async is None:
            return await run_in_executor(None, self.search, query, k, where)
        vector = await self._aembed_query(query)
        result = await self._async.query(vector, k, where, ["documents", "metadatas", "distances"])
        distances = dict(zip(result["ids"][0], result["distances"][0], strict=True))
        demos = self._demonstrations(_first_query(result))
        return [(demo, self._to_similarity(distances[demo.demo_id])) for demo in demos]

    async def ammr(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        where: Where | None = None,
    ) -> builtins.list[Demonstration]:
        """:meth:`mmr`, awaited (the async client on a server store, else LangChain's executor)."""
        _check_mmr(k, lambda_mult)
        if self._async is None:
            return await run_in_executor(None, self.mmr, query, k, fetch_k, lambda_mult, where)
        vector = await self._aembed_query(query)
        include = ["documents", "metadatas", "distances", "embeddings"]
        result = await self._async.query(vector, max(fetch_k, k), where, include)
        if not result["ids"][0]:
            return []
        # The same picking as langchain-chroma's sync MMR, so both return the same demonstrations.
        picked = maximal_marginal_relevance(
            np.array(vector, dtype=np.float32), result["embeddings"][0], k=k, lambda_mult=lambda_mult
        )
        rows = _first_query(result)
        keep = {"ids", "documents", "metadatas"}
        chosen = {key: [v for i, v in enumerate(rows[key]) if i in picked] for key in keep}
        return self._demonstrations(chosen)

    def as_retriever(
        self,
        *,
        k: int = 4,
        where: Where | None = None,
        search_type: SearchType = "similarity",
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> DemonstrationRetriever:
        """This store as a LangChain retriever of demonstrations (one ``Document`` each).

        ``kwargs`` go to the retriever (e.g. ``tags=[...]``, ``metadata={...}`` for traces).
        See :class:`~amplify_agents.stores.retriever.DemonstrationRetriever`.
        """
        return DemonstrationRetriever(
            store=self, k=k, where=where, search_type=search_type, fetch_k=fetch_k, lambda_mult=lambda_mult, **kwargs
        )

    # -- helpers -----------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)``; on a server, with its bounded retries and StoreConnectionError."""
        if self._server is None:
            return call(*args, **kwargs)
        return call_with_retries(self._server, f"{what} ({self._name!r})", functools.partial(call, *args, **kwargs))

    def _check_writable(self, what: str) -> None:
        if self._read_only:
            raise StoreError(
                f"Cannot {what}: the store {self._name!r} in {self.directory} was opened read-only. "
                "Open it with RationaleStore.local(name, directory) to change it."
            )

    def _embed_documents(self, texts: builtins.list[str]) -> builtins.list[builtins.list[float]]:
        vectors = self._embeddings.embed_documents(texts)
        if vectors:
            self._check_dimension(len(vectors[0]))
            self._dimension = self._dimension or len(vectors[0])
        return vectors

    def _embed_query(self, text: str) -> builtins.list[float]:
        vector = self._embeddings.embed_query(text)
        self._check_dimension(len(vector))
        return vector

    async def _aembed_query(self, text: str) -> builtins.list[float]:
        vector = await self._embeddings.aembed_query(text)
        self._check_dimension(len(vector))
        return vector

    def _record_embedding_name(self) -> None:
        # Stores from before the name was recorded (or adopted empty collections) get it at
        # their first write, so later opens can compare it.
        metadata = dict(self._collection.metadata or {})
        if EMBEDDING_MODEL_KEY in metadata:
            return
        kept = {key: value for key, value in metadata.items() if not key.startswith("hnsw:")}
        kept[EMBEDDING_MODEL_KEY] = embedding_model_name(self._embeddings)
        self._call("record the embeddings", lambda: self._collection.modify(metadata=kept))

    def _demonstrations(self, result: Any) -> builtins.list[Demonstration]:
        """The readable demonstrations of a Chroma ``get`` result; the others skipped, with a warning."""
        demos: builtins.list[Demonstration] = []
        skipped: dict[str, str] = {}
        for record_id, document, metadata in _rows(result):
            try:
                demos.append(from_record(record_id, document, metadata))
            except StoreError as exc:  # StoreVersionError included: one record must not block all
                skipped[record_id] = str(exc)
        if skipped:
            self._unreadable.update(skipped)
            shown = ", ".join(repr(i) for i in list(skipped)[:5]) + (" ..." if len(skipped) > 5 else "")
            warnings.warn(
                UnreadableRecordWarning(
                    f"Store {self._name!r}: skipped {len(skipped)} record(s) that are not readable "
                    f"demonstrations ({shown}); the other {len(demos)} were read. First reason: "
                    f"{next(iter(skipped.values()))} List them with RationaleStore.unreadable() or "
                    "`amplify inspect`; remove them with RationaleStore.delete(ids)."
                ),
                stacklevel=3,
            )
        return demos

    def _demonstrations_of(self, docs: Sequence[Document]) -> builtins.list[Demonstration]:
        return self._demonstrations(
            {
                "ids": [str(doc.id) for doc in docs],
                "documents": [doc.page_content for doc in docs],
                "metadatas": [doc.metadata for doc in docs],
            }
        )

    def _batch_size(self) -> int:
        if self._max_batch is None:
            # One round trip on a server, hence cached; Chroma refuses larger upserts and gets.
            self._max_batch = max(1, int(self._call("open the store", self._client.get_max_batch_size)))
        return self._max_batch


def _rows(result: Any) -> builtins.list[tuple[str, str | None, Any]]:
    documents = result.get("documents") or [None] * len(result["ids"])
    metadatas = result.get("metadatas") or [None] * len(result["ids"])
    return list(zip(result["ids"], documents, metadatas, strict=True))


def _first_query(result: Any) -> dict[str, Any]:
    """A Chroma ``query`` result (one list per query embedding) as a ``get``-shaped result."""
    return {key: result[key][0] for key in ("ids", "documents", "metadatas") if result.get(key) is not None}


def _check_mmr(k: int, lambda_mult: float) -> None:
    _check_k(k)
    if not 0.0 <= lambda_mult <= 1.0:
        raise ValueError(f"lambda_mult must be between 0 and 1, got {lambda_mult}.")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")


def _server_of(client: chromadb.ClientAPI | None) -> ServerSettings | None:
    """For a caller's own HTTP client: its host and port, no retries (its waits are its own)."""
    if client is None:
        return None
    settings = client.get_settings()
    if "fastapi" not in str(settings.chroma_api_impl).lower() or not settings.chroma_server_host:
        return None
    port = int(settings.chroma_server_http_port or 8000)
    return ServerSettings(host=str(settings.chroma_server_host), port=port, retries=0)


def _close(client: chromadb.ClientAPI, copy: Path | None, drop: str | None = None) -> None:
    # Called once, by close() or when the store is collected; ``drop``: an owned in-memory collection.
    if drop is not None:
        try:
            client.delete_collection(drop)
        except Exception:  # already gone, or Chroma shut down at exit: nothing left to free
            pass
    close = getattr(client, "close", None)
    if callable(close) and copy is not None:
        try:
            close()
        except Exception:  # a copy's client holds nothing worth reporting
            pass
    if copy is not None:
        remove_copy(copy)


def _persistent_client(directory: str | os.PathLike[str]) -> chromadb.ClientAPI:
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path))
    except Exception as exc:  # OSError, or Chroma refusing an unreadable database
        raise StoreError(f"Cannot open a Chroma database in {path}: {exc}") from exc
