"""The rationale store: demonstrations on Chroma, by id, by filter, by similarity and MMR.

Example:
    >>> from amplify_agents.stores import RationaleStore  # doctest: +SKIP
    >>> store = RationaleStore.local("snarks-amplify", "./chroma_demo")  # doctest: +SKIP
    >>> store.add(demos)  # doctest: +SKIP
    >>> store.search("Is this sarcastic?", k=4, where={"task": "snarks"})  # doctest: +SKIP
"""

from amplify_agents.stores.chroma import RationaleStore, StoreConnectionError, validate_store_name
from amplify_agents.stores.embeddings import LazyEmbeddings, default_embeddings
from amplify_agents.stores.jsonl import read_jsonl, write_jsonl
from amplify_agents.stores.schema import SCHEMA_VERSION, InvalidDemonstrationError, StoreVersionError

__all__ = [
    "RationaleStore",
    "SCHEMA_VERSION",
    "default_embeddings",
    "LazyEmbeddings",
    "StoreConnectionError",
    "StoreVersionError",
    "InvalidDemonstrationError",
    "validate_store_name",
    "read_jsonl",
    "write_jsonl",
]
