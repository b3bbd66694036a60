"""One lock per loaded model: whoever runs a model's forward pass holds it.

A chain's ``batch`` runs in threads, the answering path's callers may too, and an
in-process server shares the model: they must never run the same torch module at once
(the scorer's prefix cache and generation are not re-entrant).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from amplify_agents.models.loading import LoadedModel

__all__ = ["model_lock"]

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(loaded: LoadedModel | Any) -> threading.Lock:
    """The process-wide lock of a model (one per ``torch`` module): hold it while running it."""
    model = loaded.model if isinstance(loaded, LoadedModel) else loaded
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock
