"""A store of demonstrations on Chroma, through LangChain's :class:`~langchain_chroma.Chroma`.

One Chroma collection per store name. The document of each record is the demonstration's
input (what is embedded); everything else is scalar metadata (see :mod:`.schema`), so Chroma
``where`` filters such as ``{"task": "snarks"}`` or ``{"$and": [...]}`` select demonstrations.

The same collection can be used from a local directory (embedded Chroma) or through a Chroma
server; the underlying LangChain vector store is exposed as :attr:`RationaleStore.vectorstore`
so LangChain's own example selectors can run on the same data and embeddings.
"""

from __future__ import annotations

import builtins
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import chromadb
from chromadb.errors import NotFoundError
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import StoreError
from amplify_agents.stores.embeddings import LazyEmbeddings
from amplify_agents.stores.jsonl import read_jsonl, write_jsonl
from amplify_agents.stores.schema import (
    SCHEMA_KEY,
    check_schema_version,
    collection_metadata,
    from_record,
    to_record,
    validate_batch,
)

__all__ = ["RationaleStore", "StoreConnectionError", "validate_store_name"]

Where = dict[str, Any]

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")
_RESERVED_NAMES = {"langchain"}  # LangChain/Chroma's shared default collection
# Stores created here compare unit-norm vectors by cosine distance.
_COLLECTION_CONFIGURATION: dict[str, Any] = {"hnsw": {"space": "cosine"}}


class StoreConnectionError(StoreError):
    """The Chroma server could not be reached."""


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

    Raises:
        StoreVersionError: the collection was written by a newer amplify-agents; nothing
            was changed.
        StoreError: an invalid name, or the collection exists and holds records that were
            not written by amplify-agents.

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
    ) -> None:
        self._name = validate_store_name(name)
        self.directory: Path | None = Path(persist_directory) if persist_directory is not None else None
        """The folder of an embedded persistent store (None in memory or on a server)."""
        if persist_directory is not None and client is not None:
            raise ValueError("Give either persist_directory or client, not both.")
        if client is None:
            client = _persistent_client(persist_directory) if persist_directory is not None else None
        self._client: chromadb.ClientAPI = client if client is not None else chromadb.EphemeralClient()
        self._embeddings: Embeddings = embeddings if embeddings is not None else LazyEmbeddings()
        # Check before LangChain's Chroma runs get_or_create: a refused store stays untouched.
        self._check_existing_collection()
        self._vectorstore = Chroma(
            collection_name=self._name,
            embedding_function=self._embeddings,
            client=self._client,
            collection_metadata=collection_metadata(),
            collection_configuration=_COLLECTION_CONFIGURATION,  # type: ignore[arg-type]
        )
        self._collection = self._client.get_collection(self._name)
        self._to_similarity = _similarity_from_distance(self._distance_space())
        self._max_batch: int | None = None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def local(
        cls,
        name: str,
        directory: str | os.PathLike[str],
        embeddings: Embeddings | None = None,
    ) -> RationaleStore:
        """A store in an embedded, persistent Chroma under ``directory`` (created if missing)."""
        return cls(name, persist_directory=directory, embeddings=embeddings)

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
    ) -> RationaleStore:
        """A store on a Chroma server (``chroma run --path DIR --host HOST --port PORT``).

        Args:
            headers: extra HTTP headers, e.g. an auth token ``{"X-Chroma-Token": "..."}``.
            ssl: connect with HTTPS.

        Raises:
            StoreConnectionError: the server cannot be reached or refused the client.
        """
        try:
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, headers=headers)
        except Exception as exc:  # chromadb raises ValueError wrapping httpx errors, or auth errors
            raise StoreConnectionError(
                f"Could not connect to a Chroma server at {host}:{port} ({exc}). Start one with "
                f"`chroma run --path DIR --host {host} --port {port}`, or check the host, the port "
                "and any auth header."
            ) from exc
        return cls(name, client=client, embeddings=embeddings)

    def _check_existing_collection(self) -> None:
        try:
            existing = self._client.get_collection(self._name)
        except NotFoundError:
            return  # a new store: LangChain's Chroma creates it with our metadata
        metadata = dict(existing.metadata or {})
        where = f"The Chroma collection {self._name!r}"
        if SCHEMA_KEY in metadata:
            check_schema_version(metadata[SCHEMA_KEY], where)
            # (Versions older than SCHEMA_VERSION would be migrated here; 1 is the first.)
            return
        records = existing.count()
        if records:
            raise StoreError(
                f"{where} already holds {records} record(s) not written by amplify-agents (its metadata "
                f"has no {SCHEMA_KEY!r}). Choose another store name."
            )
        # An empty collection made elsewhere: adopt it. modify() replaces the whole metadata and
        # refuses "hnsw:" keys (the distance space cannot change), so those are left out.
        kept = {key: value for key, value in metadata.items() if not key.startswith("hnsw:")}
        existing.modify(metadata={**kept, **collection_metadata()})

    def _distance_space(self) -> str:
        configuration: dict[str, Any] = dict(self._collection.configuration or {})
        for index in ("hnsw", "spann"):
            settings = configuration.get(index)
            if isinstance(settings, dict) and settings.get("space"):
                return str(settings["space"])
        return str((self._collection.metadata or {}).get("hnsw:space", "l2"))

    # -- properties ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The store's name, which is also its Chroma collection's name."""
        return self._name

    @property
    def vectorstore(self) -> Chroma:
        """The underlying LangChain ``Chroma``, for LangChain's own selectors and retrievers.

        Records added through it (e.g. a selector's ``add_example``) are not demonstrations;
        reading them through this store raises :class:`StoreError`.
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
        return f"RationaleStore({self._name!r}, client={type(self._client).__name__})"

    def __len__(self) -> int:
        return self.count()

    # -- writing ---------------------------------------------------------------------------

    def add(self, demos: Iterable[Demonstration]) -> builtins.list[str]:
        """Upsert demonstrations by :attr:`~Demonstration.demo_id`; return their ids in order.

        Idempotent: adding the same demonstration again replaces it, the count is unchanged.
        The whole batch is validated before anything is written; it is embedded with one
        ``embed_documents`` call and written with one upsert (split only past Chroma's
        maximum batch size).

        Raises:
            InvalidDemonstrationError: an item is not a Demonstration, or has an empty input
                or label; nothing was written.
        """
        batch = list(demos)
        validate_batch(batch)
        records = [to_record(demo) for demo in batch]
        # Chroma rejects duplicate ids within one upsert; the last one wins, as with two calls.
        unique = {record_id: (document, metadata) for record_id, document, metadata in records}
        ids = list(unique)
        step = self._batch_size()
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            self._vectorstore.add_texts(
                texts=[unique[i][0] for i in chunk],
                metadatas=[unique[i][1] for i in chunk],
                ids=chunk,
            )
        return [record_id for record_id, _, _ in records]

    def upsert(self, demos: Iterable[Demonstration]) -> builtins.list[str]:
        """Alias of :meth:`add`."""
        return self.add(demos)

    def delete(self, ids: Iterable[str]) -> None:
        """Delete demonstrations by id; ids that are not stored are ignored."""
        unique = list(dict.fromkeys(ids))
        if unique:  # Chroma refuses an empty id list
            self._vectorstore.delete(ids=unique)

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Add every demonstration of a JSONL file (see :meth:`export_jsonl`); return how many.

        Raises:
            StoreError: the file is missing or a line is invalid (nothing is written then).
        """
        demos = read_jsonl(path)
        self.add(demos)
        return len(demos)

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
            for doc in self._vectorstore.get_by_ids(unique[start : start + step]):
                found[str(doc.id)] = self._from_document(doc)
        # Chroma returns records in storage order, not in the order asked.
        return [found[i] for i in wanted if i in found]

    def has(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored (cheap: no documents or metadata are read)."""
        unique = list(dict.fromkeys(ids))
        present: set[str] = set()
        step = self._batch_size()
        for start in range(0, len(unique), step):
            result = self._vectorstore.get(ids=unique[start : start + step], include=[])
            present.update(result["ids"])
        return present

    def list(self, where: Where | None = None, limit: int | None = None) -> builtins.list[Demonstration]:
        """Stored demonstrations matching a Chroma ``where`` filter, in storage order.

        Args:
            where: a metadata filter, e.g. ``{"task": "snarks"}``,
                ``{"$and": [{"task": "snarks"}, {"strategy": "error"}]}`` or ``{"k": {"$gte": 4}}``.
            limit: at most this many.
        """
        result = self._vectorstore.get(where=where or None, limit=limit, include=["documents", "metadatas"])
        return [
            from_record(record_id, document, metadata)
            for record_id, document, metadata in zip(
                result["ids"], result["documents"], result["metadatas"], strict=True
            )
        ]

    def count(self, where: Where | None = None) -> int:
        """How many demonstrations are stored (matching ``where`` when given)."""
        if not where:
            return self._collection.count()
        return len(self._vectorstore.get(where=where, include=[])["ids"])

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every demonstration to a JSONL file sorted by id; return how many.

        Two exports of the same store are byte-identical, so exports diff cleanly.
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
        pairs = self._vectorstore.similarity_search_with_score(query, k=k, filter=where or None)
        return [(self._from_document(doc), self._to_similarity(distance)) for doc, distance in pairs]

    def search_by_vector(
        self, embedding: Sequence[float], k: int = 4, where: Where | None = None
    ) -> builtins.list[tuple[Demonstration, float]]:
        """Like :meth:`search`, from an embedding computed by the caller."""
        _check_k(k)
        # Despite its name, this LangChain method returns Chroma's distances, not relevance scores.
        pairs = self._vectorstore.similarity_search_by_vector_with_relevance_scores(
            [float(x) for x in embedding], k=k, filter=where or None
        )
        return [(self._from_document(doc), self._to_similarity(distance)) for doc, distance in pairs]

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
        _check_k(k)
        if not 0.0 <= lambda_mult <= 1.0:
            raise ValueError(f"lambda_mult must be between 0 and 1, got {lambda_mult}.")
        docs = self._vectorstore.max_marginal_relevance_search(
            query, k=k, fetch_k=max(fetch_k, k), lambda_mult=lambda_mult, filter=where or None
        )
        return [self._from_document(doc) for doc in docs]

    # -- helpers -----------------------------------------------------------------------------

    def _from_document(self, doc: Document) -> Demonstration:
        return from_record(str(doc.id), doc.page_content, doc.metadata)

    def _batch_size(self) -> int:
        if self._max_batch is None:
            # One round trip on a server, hence cached; Chroma refuses larger upserts and gets.
            self._max_batch = max(1, int(self._client.get_max_batch_size()))
        return self._max_batch


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")


def _persistent_client(directory: str | os.PathLike[str]) -> chromadb.ClientAPI:
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path))
    except Exception as exc:  # OSError, or Chroma refusing an unreadable database
        raise StoreError(f"Cannot open a Chroma database in {path}: {exc}") from exc
