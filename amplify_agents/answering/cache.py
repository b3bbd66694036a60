"""An on-disk cache of model responses, so an interrupted build or evaluation resumes without paying twice.

One SQLite file (stdlib, safe across threads and processes: SQLite locks the file) maps a
key to a JSON value. The key is a hash of everything that decides the answer: the backend's
identity (endpoint, model), the request kind and its payload (prompt, labels, settings).
An API key is never part of a key or a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from amplify_agents.answering.backends import AnswerBackend, Prompt, Reply, ReplySettings
from amplify_agents.models.scoring import LabelScores

__all__ = ["CachedBackend", "ResponseCache", "cache_key"]


def cache_key(identity: Mapping[str, Any], kind: str, payload: Mapping[str, Any]) -> str:
    """The hash of (backend identity, request kind, payload), order of keys aside."""
    blob = json.dumps({"id": dict(identity), "kind": kind, "payload": dict(payload)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A persistent key → JSON map in one SQLite file.

    Args:
        path: the SQLite file (its folder is created). Use one file per project or store;
            several processes may share it.

    Example:
        >>> cache = ResponseCache(".cache/responses.sqlite")  # doctest: +SKIP
        >>> cache.put("k", {"logprob": -1.5}); cache.get("k")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # check_same_thread=False: one connection, serialised by our lock (the backends call
        # from a thread pool); SQLite's own file lock guards against other processes.
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        """The stored value, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``, replacing any older value."""
        text = json.dumps(value)
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, text))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


class CachedBackend(AnswerBackend):
    """Any backend behind a :class:`ResponseCache`: each prompt's reply is looked up first, and
    the misses go to the backend together (a local model still shares their demonstrations).

    The key holds the backend's identity (kind, model, endpoint), the prompt, the labels and
    the call's settings, so a changed prompt layout, label space or model is a miss.
    """

    def __init__(self, inner: AnswerBackend, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache
        self.form = inner.form
        self.kind = inner.kind
        self.model_name = inner.model_name

    @property
    def identity(self) -> dict[str, Any]:
        return self.inner.identity

    @property
    def can_score(self) -> bool:
        return self.inner.can_score

    @property
    def notes(self) -> list[str]:
        return list(getattr(self.inner, "notes", []))

    def answer(
        self, prompts: Sequence[Prompt], label_lists: Sequence[Sequence[str]], how: ReplySettings = ReplySettings()
    ) -> list[Reply]:
        settings = asdict(how)
        keys = [
            cache_key(self.identity, "answer", {"prompt": _plain(p), "labels": list(labs), **settings})
            for p, labs in zip(prompts, label_lists, strict=True)
        ]
        found: dict[int, Any] = {i: self.cache.get(k) for i, k in enumerate(keys)}
        todo = [i for i, v in found.items() if v is None]
        if todo:
            fresh = self.inner.answer([prompts[i] for i in todo], [label_lists[i] for i in todo], how)
            for i, reply in zip(todo, fresh, strict=True):
                found[i] = _reply_to_json(reply)
                self.cache.put(keys[i], found[i])
        return [_reply_from_json(found[i]) for i in range(len(prompts))]

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        settings = {"max_new": max_new_tokens, "stop": list(stop)}
        keys = [cache_key(self.identity, "generate", {"prompt": _plain(p), **settings}) for p in prompts]
        found: dict[int, Any] = {i: self.cache.get(k) for i, k in enumerate(keys)}
        todo = [i for i, v in found.items() if v is None]
        if todo:
            texts = self.inner.generate([prompts[i] for i in todo], max_new_tokens=max_new_tokens, stop=stop)
            for i, text in zip(todo, texts, strict=True):
                found[i] = text
                self.cache.put(keys[i], text)
        return [str(found[i]) for i in range(len(prompts))]

    def close(self) -> None:
        self.inner.close()


def _plain(prompt: Prompt) -> Any:
    if isinstance(prompt, str):
        return prompt
    return [[m.type, m.content] for m in prompt]


def _reply_to_json(reply: Reply) -> dict[str, Any]:
    s = reply.scores
    scores = None
    if s is not None:
        scores = {"labels": s.labels, "logprobs": s.logprobs, "mean": s.mean_logprobs, "n": s.n_tokens}
    return {"scores": scores, "text": reply.text, "outside": list(reply.outside_top_k)}


def _reply_from_json(data: Mapping[str, Any]) -> Reply:
    s = data.get("scores")
    scores = None
    if s is not None:
        scores = LabelScores(tuple(s["labels"]), tuple(s["logprobs"]), tuple(s["mean"]), tuple(s["n"]))
    return Reply(scores, data.get("text"), tuple(data.get("outside") or ()))
