"""OpenAI-compatible endpoints (OpenAI, vLLM, llama.cpp's server, Ollama) as answering backends.

* :class:`CompletionsBackend`: ``/v1/completions``, text prompts. ``scoring="top_logprobs"``
  (default): one request per prompt generates the answer's first few tokens with the top-K
  alternatives at each, and every label's log-probability is read off them (see
  :mod:`.toplogprobs`; a label outside the top-K is reported, its value an upper bound).
  ``scoring="echo"``: each label is scored exactly, multi-token labels included, by sending
  the prompt followed by the label with ``echo=True, logprobs=1, max_tokens=1`` and summing
  the label tokens' log-probabilities; one request per (prompt, label). Exact, and cheap on
  servers that compute prompt log-probabilities natively (vLLM), but llama-cpp-python sorts
  the whole vocabulary in Python for every echoed token (142 s for a 1,000-character prompt
  with Gemma's 262k vocabulary, measured), hence not the default. A server that returns no
  log-probabilities is answered by generation plus the answer parser, and a warning says so once.
* :class:`ChatBackend`: ``/v1/chat/completions`` with ``logprobs=True, top_logprobs=K``; the
  label distribution is read off the answer's tokens (see :mod:`.toplogprobs`), else the
  reply is parsed.

Both run requests on a bounded thread pool (``Endpoint.concurrency``) and retry transient
failures (connection errors, time-outs, 408/409/429, 5xx, a reply that is not an OpenAI
response) up to ``Endpoint.attempts`` times, waiting as the server's ``Retry-After`` says, else
an exponential back-off with jitter, never longer than ``Endpoint.max_wait_s``. What still fails
is raised as :class:`~amplify_agents.errors.EndpointError` naming the URL, the status or fault,
the attempts and the fix; a failed request cancels the call's requests not yet sent. Wrap
them in :class:`~amplify_agents.answering.cache.CachedBackend` (``open_endpoint(..., cache=)``
does) so an interrupted run resumes without paying twice.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from langchain_core.messages import BaseMessage

from amplify_agents.answering.backends import AnswerBackend, Prompt, PromptForm, Reply, ReplySettings
from amplify_agents.answering.cache import CachedBackend, ResponseCache
from amplify_agents.answering.toplogprobs import (
    TokenChoice,
    completion_token_choices,
    label_scores_from_tokens,
    needs_more_tokens,
)
from amplify_agents.errors import EndpointError
from amplify_agents.models.scoring import LabelScores

__all__ = ["TOP_LOGPROBS", "ChatBackend", "CompletionsBackend", "Endpoint", "open_endpoint"]

log = logging.getLogger(__name__)

Api = Literal["completions", "chat"]
_ROLES = {"human": "user", "ai": "assistant", "system": "system"}
TOP_LOGPROBS = 20
"""Top alternatives asked per token by default (OpenAI allows 20 for chat, 5 for completions;
llama.cpp's server and vLLM more)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a hosted model answers, and how to call it.

    Attributes:
        base_url: the OpenAI-compatible root, e.g. ``http://127.0.0.1:8080/v1``.
        model: the model name the server serves.
        api_key_env: the *name* of the environment variable holding the API key (the key
            itself is never stored, printed or written to results); None for servers
            without keys (a dummy key is sent).
        api: ``"completions"`` (text prompts, exact label scoring with log-probabilities) or
            ``"chat"`` (chat messages, labels from top log-probabilities).
        timeout: seconds per request.
        concurrency: requests in flight at once.
        attempts: tries per request on transient failures (connection, time-out, 408, 409, 429,
            5xx, a malformed reply).
        backoff_s: the first wait between attempts when the server gives no ``Retry-After``;
            it doubles at each attempt, with jitter (half to all of it).
        max_wait_s: the longest wait between attempts: a longer ``Retry-After`` is cut to it.
        top_logprobs: alternatives per token asked for (OpenAI allows 20 for chat, 5 for
            completions; llama.cpp's server and vLLM more).
        scoring: completions: ``"top_logprobs"`` (one request per prompt) or ``"echo"`` (exact,
            one request per label; see the module doc).
        label_tokens: completions with ``"top_logprobs"``: the most answer tokens to generate when
            one is not enough (labels sharing their first tokens, such as "(a)" and "(b)"). One is
            asked first: llama-cpp-python sorts its whole vocabulary in Python for every token.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    api: Api = "completions"
    timeout: float = 60.0
    concurrency: int = 4
    attempts: int = 3
    top_logprobs: int = TOP_LOGPROBS
    scoring: Literal["top_logprobs", "echo"] = "top_logprobs"
    label_tokens: int = 4
    backoff_s: float = 0.5
    max_wait_s: float = 20.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} is not an http(s) URL: pass e.g. http://127.0.0.1:8080/v1.")
        if self.api not in ("completions", "chat"):
            raise ValueError(f"api must be 'completions' or 'chat', got {self.api!r}.")
        if self.scoring not in ("top_logprobs", "echo"):
            raise ValueError(f"scoring must be 'top_logprobs' or 'echo', got {self.scoring!r}.")
        if self.concurrency < 1 or self.attempts < 1:
            raise ValueError("concurrency and attempts must be at least 1.")
        if not self.timeout > 0 or self.backoff_s < 0 or self.max_wait_s < 0:
            raise ValueError(
                f"timeout must be positive and backoff_s, max_wait_s not negative: got timeout={self.timeout}, "
                f"backoff_s={self.backoff_s}, max_wait_s={self.max_wait_s}."
            )

    def api_key(self) -> str:
        """The key from the named environment variable (a placeholder when none is named)."""
        if self.api_key_env is None:
            return "not-needed"
        key = os.environ.get(self.api_key_env)
        if not key:
            raise EndpointError(
                f"The API key variable {self.api_key_env} is not set: export {self.api_key_env}=<your key>, "
                "or name another variable."
            )
        return key


class LogprobsUnsupported(RuntimeError):
    """The server refused a request for log-probabilities (answer by generation instead)."""


class _Malformed(Exception):
    """A reply that is not the OpenAI response asked for (a body that is not JSON, missing fields)."""


_RETRY_STATUSES = frozenset({408, 409, 429})


def _transient(exc: BaseException) -> bool:
    """Whether asking again may help: the connection, a time-out, a rate limit, a server fault."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, ConnectionError, TimeoutError, _Malformed))


def _retry_after(exc: BaseException) -> float | None:
    """The seconds a server asked to wait (``Retry-After``: seconds or an HTTP date;
    ``retry-after-ms``), or None when it said nothing usable."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    seconds: float | None = None
    try:
        if headers.get("retry-after-ms"):
            seconds = float(headers["retry-after-ms"]) / 1000
        elif headers.get("retry-after"):
            seconds = float(headers["retry-after"])
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(headers["retry-after"])
            seconds = (when - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _guarded(fn: Callable[[], Any], what: str) -> Callable[[], Any]:
    """``fn`` with a reply that cannot be read turned into :class:`_Malformed`."""
    import openai

    def run() -> Any:
        try:
            return fn()
        except (openai.APIStatusError, openai.APIConnectionError, LogprobsUnsupported):
            raise
        except (openai.APIResponseValidationError, AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            # The client's json.loads of a body that is not JSON, or a reply without choices[0] etc.
            raise _Malformed(f"a reply that is not an OpenAI {what} response ({type(exc).__name__}: {exc})") from exc

    return run


class _EndpointBackend(AnswerBackend):
    """Shared plumbing: the client, the model check, retries, the thread pool and the cache."""

    def __init__(self, endpoint: Endpoint, *, check_model: bool = True) -> None:
        import openai

        self.endpoint = endpoint
        self.model_name = endpoint.model
        # Our retries (Retry-After honoured, capped; see _with_retries) replace the client's own.
        self.client = openai.OpenAI(
            base_url=endpoint.base_url, api_key=endpoint.api_key(), timeout=endpoint.timeout, max_retries=0
        )
        self._pool = ThreadPoolExecutor(max_workers=endpoint.concurrency, thread_name_prefix="amplify-endpoint")
        self.notes: list[str] = []
        if check_model:
            self._check_model()

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model_name, "endpoint": self.endpoint.base_url}

    def _check_model(self) -> None:
        import openai

        try:
            served = self._with_retries(_guarded(lambda: [m.id for m in self.client.models.list()], "models"))
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise EndpointError(
                f"Nothing answers at {self.endpoint.base_url} ({type(exc).__name__}): start the server or fix the URL."
            ) from None
        except openai.NotFoundError:
            return  # a server without /models: the first request will tell
        except openai.AuthenticationError:
            raise EndpointError(
                f"{self.endpoint.base_url} refused the API key from {self.endpoint.api_key_env or '(none)'}: "
                "check the key."
            ) from None
        except Exception as exc:
            failure = self._failure(exc, "models")
            if failure is None:
                raise
            raise failure from exc
        if served and self.model_name not in served:
            raise EndpointError(
                f"{self.endpoint.base_url} does not serve model {self.model_name!r}; it serves: {', '.join(served)}."
            )

    def _wait(self, exc: BaseException, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: the server's Retry-After, else back-off; capped."""
        asked = _retry_after(exc)
        if asked is None:
            asked = self.endpoint.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
        return min(asked, self.endpoint.max_wait_s)

    def _with_retries(self, once: Callable[[], Any]) -> Any:
        """``once()``, tried up to ``Endpoint.attempts`` times while it fails transiently."""
        for attempt in range(1, self.endpoint.attempts + 1):
            try:
                return once()
            except Exception as exc:
                if attempt == self.endpoint.attempts or not _transient(exc):
                    raise
                wait = self._wait(exc, attempt)
                log.info(
                    "%s: %s; attempt %d again in %.2f s", self.endpoint.base_url, _one_line(str(exc)), attempt + 1, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _failure(self, exc: BaseException, kind: str) -> EndpointError | None:
        """The library's error for a request that failed for good (None: not an endpoint fault)."""
        import openai

        url, n = self.endpoint.base_url, self.endpoint.attempts
        if isinstance(exc, openai.APIConnectionError):  # time-outs included
            return EndpointError(
                f"{url} did not answer after {n} attempt(s) ({type(exc).__name__}): check that the server is "
                "running, or raise Endpoint.timeout."
            )
        if isinstance(exc, _Malformed):
            return EndpointError(
                f"{url} answered the {kind} request with {exc} after {n} attempt(s): check that it is an "
                "OpenAI-compatible server and that base_url ends in /v1."
            )
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            said = _one_line(str(body.get("message") or exc.message))  # the server's words, not the client's
            if exc.status_code == 429:
                return EndpointError(
                    f"{url} kept answering HTTP 429 (rate limited) after {n} attempt(s): {said}. Lower "
                    "Endpoint.concurrency, raise Endpoint.attempts or max_wait_s, or retry later."
                )
            if _transient(exc):
                return EndpointError(
                    f"{url} failed with HTTP {exc.status_code} after {n} attempt(s): {said}. Check the server's log."
                )
            return EndpointError(f"{url} refused the {kind} request with HTTP {exc.status_code}: {said}.")
        return None

    def _call(self, kind: str, payload: dict[str, Any], parse: Callable[[Any], Any]) -> Any:
        """One request with retries; ``parse`` turns the response into plain data (a reply it cannot
        read counts as malformed: retried, then reported)."""
        import openai

        create = self.client.completions.create if kind == "completions" else self.client.chat.completions.create

        def request() -> Any:
            try:
                response = create(model=self.model_name, **payload)
            except openai.APIStatusError as exc:
                # A server that refuses log-probabilities (llama.cpp without logits_all answers 500):
                # not transient, so not retried; the caller answers by generation instead.
                if "logprobs" in payload and "logprob" in str(exc).lower():
                    raise LogprobsUnsupported(str(exc)) from exc
                raise
            return parse(response)

        try:
            return self._with_retries(_guarded(request, kind))
        except LogprobsUnsupported:
            raise
        except Exception as exc:
            failure = self._failure(exc, kind)
            if failure is None:
                raise
            raise failure from exc

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        futures = [self._pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:  # one request failed for good: the rest of this call is not sent
                f.cancel()
            raise

    def _note_once(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            log.warning(message)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()


class CompletionsBackend(_EndpointBackend):
    """An OpenAI-compatible ``/v1/completions`` endpoint: text prompts, exact label scoring.

    Args:
        endpoint: URL, model, key variable and call settings.
        check_model: ask ``/v1/models`` at once whether the model is served.
    """

    form: PromptForm = "text"
    kind = "openai-completions"

    def __init__(self, endpoint: Endpoint, *, check_model: bool = True) -> None:
        super().__init__(endpoint, check_model=check_model)
        self.logprobs_available: bool | None = None

    @property
    def can_score(self) -> bool:
        return self.logprobs_available is not False

    def _label_logprob(self, request: tuple[str, str]) -> dict[str, Any] | None:
        prompt, label_text = request
        full = prompt + label_text
        payload = {"prompt": full, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0.0}
        return self._call("completions", payload, lambda r: _echo_logprob(r, len(prompt), len(full)))

    def _top_path(self, request: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
        """The answer's first token with its top-K alternatives; more tokens (up to ``label_tokens``)
        only when some label is still being spelled after it (labels sharing a first token)."""
        prompt, labels = request
        path: dict[str, Any] = {"tokens": []}
        for n in sorted({1, self.endpoint.label_tokens}):
            payload = {"prompt": prompt, "max_tokens": n, "logprobs": self.endpoint.top_logprobs, "temperature": 0.0}
            path = dict(self._call("completions", payload, _completion_path))
            tokens = [TokenChoice(t, lp, dict(top)) for t, lp, top in path["tokens"]]
            if not tokens or not needs_more_tokens(tokens, labels):
                break
        return path

    def _scored(
        self, texts: Sequence[str], label_lists: Sequence[Sequence[str]], label_prefix: str
    ) -> list[Reply] | None:
        """Label scores for every prompt, or None when the server gives no log-probabilities."""
        if self.endpoint.scoring == "echo":
            requests = [(t, label_prefix + lab) for t, labs in zip(texts, label_lists, strict=True) for lab in labs]
            values = self._map(self._label_logprob, requests)
            if any(v is None for v in values):
                return None
            replies, at = [], 0
            for labs in label_lists:
                chunk = values[at : at + len(labs)]
                at += len(labs)
                replies.append(Reply(_scores(labs, [v["logprob"] for v in chunk], [v["n"] for v in chunk])))
            return replies
        paths = self._map(self._top_path, [(t, tuple(labs)) for t, labs in zip(texts, label_lists, strict=True)])
        if any(not p["tokens"] for p in paths):
            return None
        replies = []
        for path, labs in zip(paths, label_lists, strict=True):
            tokens = [TokenChoice(t, lp, dict(top)) for t, lp, top in path["tokens"]]
            scores, outside = label_scores_from_tokens(tokens, labs, "")
            if outside:
                self._note_once(_outside_note(self.endpoint))
            replies.append(Reply(scores, path["text"], outside))
        return replies

    def answer(
        self, prompts: Sequence[Prompt], label_lists: Sequence[Sequence[str]], how: ReplySettings = ReplySettings()
    ) -> list[Reply]:
        texts = [_text(p) for p in prompts]
        if self.logprobs_available is not False:
            try:
                replies = self._scored(texts, label_lists, how.label_prefix)
            except LogprobsUnsupported:
                replies = None
            if replies is not None:
                self.logprobs_available = True
                return replies
            self.logprobs_available = False
            self._note_once(
                f"{self.endpoint.base_url} returned no log-probabilities for {self.model_name!r}: answering by "
                "generation and the answer parser (no label probabilities, no calibration)."
            )
        generated = self.generate(texts, max_new_tokens=how.max_new_tokens, stop=how.stop)
        return [Reply(None, text) for text in generated]

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        stops = [s for s in stop if s][:4]  # OpenAI accepts at most four stop strings

        def one(prompt: Prompt) -> str:
            payload: dict[str, Any] = {"prompt": _text(prompt), "max_tokens": max_new_tokens, "temperature": 0.0}
            if stops:
                payload["stop"] = stops
            return str(self._call("completions", payload, lambda r: r.choices[0].text or ""))

        return self._map(one, prompts)


class ChatBackend(_EndpointBackend):
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint: chat prompts.

    Labels are scored from ``top_logprobs`` at the answer's tokens when the server returns
    them (labels outside the returned top-k are reported in :attr:`Reply.outside_top_k`);
    otherwise the reply is parsed onto the label space.
    """

    form: PromptForm = "chat"
    kind = "openai-chat"

    def _chat(self, prompt: Prompt, max_new_tokens: int, stop: Sequence[str], logprobs: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"messages": _messages(prompt), "max_tokens": max_new_tokens, "temperature": 0.0}
        if logprobs:
            payload.update(logprobs=True, top_logprobs=self.endpoint.top_logprobs)
        stops = [s for s in stop if s][:4]
        if stops:
            payload["stop"] = stops
        return dict(self._call("chat", payload, _chat_reply))

    def answer(
        self, prompts: Sequence[Prompt], label_lists: Sequence[Sequence[str]], how: ReplySettings = ReplySettings()
    ) -> list[Reply]:
        try:
            replies = self._map(lambda p: self._chat(p, how.max_new_tokens, how.stop, True), prompts)
        except LogprobsUnsupported:
            replies = self._map(lambda p: self._chat(p, how.max_new_tokens, how.stop, False), prompts)
        out = []
        for reply, labs in zip(replies, label_lists, strict=True):
            tokens = [TokenChoice(t, lp, dict(top)) for t, lp, top in reply.get("tokens") or []]
            if not tokens:
                self._note_once(
                    f"{self.endpoint.base_url} returned no log-probabilities for {self.model_name!r}: answering by "
                    "the answer parser (no label probabilities)."
                )
                out.append(Reply(None, reply["text"]))
                continue
            scores, outside = label_scores_from_tokens(tokens, labs, how.answer_prefix)
            if outside:
                self._note_once(_outside_note(self.endpoint))
            out.append(Reply(scores, reply["text"], outside))
        return out

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        return [r["text"] for r in self._map(lambda p: self._chat(p, max_new_tokens, stop, False), prompts)]


def open_endpoint(endpoint: Endpoint, *, cache: ResponseCache | None = None, check_model: bool = True) -> AnswerBackend:
    """The backend of ``endpoint.api``, connected and checked (the server answers, serves the model),
    behind ``cache`` when one is given."""
    cls = CompletionsBackend if endpoint.api == "completions" else ChatBackend
    backend = cls(endpoint, check_model=check_model)
    return CachedBackend(backend, cache) if cache is not None else backend


# ------------------------------------------------------------------------------ parsing
def _text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    raise TypeError("A completions endpoint takes text prompts: use api='chat' for chat messages.")


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": _ROLES.get(m.type, m.type), "content": _content(m)} for m in prompt]


def _content(message: BaseMessage) -> str:
    return message.text if hasattr(message, "text") else str(message.content)


def _scores(labels: Sequence[str], logprobs: Sequence[float], counts: Sequence[int]) -> LabelScores:
    return LabelScores(
        labels=tuple(labels),
        logprobs=tuple(logprobs),
        mean_logprobs=tuple(lp / max(n, 1) for lp, n in zip(logprobs, counts, strict=True)),
        n_tokens=tuple(counts),
    )


def _echo_logprob(response: Any, prompt_chars: int, full_chars: int) -> dict[str, Any] | None:
    """The summed log-probability of the tokens between ``prompt_chars`` and ``full_chars`` of an echo.

    A token belongs to the label when it ends after the prompt and starts before the end of
    prompt + label (the one generated token after the echo is excluded).
    """
    lp = response.choices[0].logprobs
    if lp is None or not getattr(lp, "token_logprobs", None) or getattr(lp, "text_offset", None) is None:
        return None
    total, n = 0.0, 0
    for token, value, offset in zip(lp.tokens, lp.token_logprobs, lp.text_offset, strict=False):
        if offset >= full_chars:
            break
        if offset + len(token) > prompt_chars:
            if value is None:
                return None
            total += float(value)
            n += 1
    return {"logprob": total, "n": n} if n else None


def _outside_note(endpoint: Endpoint) -> str:
    return (
        f"Some labels were outside the top-{endpoint.top_logprobs} log-probabilities {endpoint.base_url} "
        "returned: their probabilities are upper bounds (Reply.outside_top_k; eval counts them)."
    )


def _completion_path(response: Any) -> dict[str, Any]:
    """The generated tokens with their log-probabilities and top alternatives (empty: none returned)."""
    choice = response.choices[0]
    lp = getattr(choice, "logprobs", None)
    dump = getattr(lp, "model_dump", None)  # the openai client's Logprobs; a plain dict otherwise
    read = completion_token_choices(dump() if callable(dump) else lp)
    return {"text": choice.text or "", "tokens": [[c.token, c.logprob, dict(c.top)] for c in read]}


def _chat_reply(response: Any) -> dict[str, Any]:
    choice = response.choices[0]
    text = choice.message.content or ""
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    tokens = [[c.token, float(c.logprob), {t.token: float(t.logprob) for t in (c.top_logprobs or [])}] for c in content]
    return {"text": text, "tokens": tokens}
