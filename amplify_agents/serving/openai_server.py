"""A small OpenAI-compatible HTTP server for any local causal LM (a :class:`LoadedModel`).

It lets the "hosted" route of a chain (``langchain_openai.ChatOpenAI`` / ``OpenAI``) and the
official ``openai`` client run against the offline Gemma without compiling llama.cpp. Built
on the standard library (``http.server.ThreadingHTTPServer``); it binds to loopback only.

Endpoints (JSON in OpenAI's schema):

* ``GET /v1/models``
* ``POST /v1/completions``: ``prompt`` (a string or a list of strings), ``max_tokens``,
  ``temperature`` (0 is greedy), ``top_p``, ``seed``, ``stop``, ``logprobs`` (top-k per
  generated token), ``echo`` (without logprobs), ``stream``.
* ``POST /v1/chat/completions``: ``messages``, ``max_tokens`` / ``max_completion_tokens``,
  ``temperature``, ``top_p``, ``seed``, ``stop``, ``logprobs`` + ``top_logprobs``, ``stream``.
  A model without a chat template (a base model) gets the messages as a plain transcript
  (``System:`` / ``User:`` / ``Assistant:`` turns) and stops before the next ``User:`` turn.

Bad input is refused before it costs anything (see :class:`ServerLimits`): a missing, negative,
repeated or non-numeric ``Content-Length`` gets 411/400 and a body over ``max_body_bytes`` 413
without one byte of it being read; a socket idle past ``read_timeout_s`` is closed; connections
over ``max_connections`` get 503 at once; more prompts than ``max_prompts``, or a prompt over
``TextLimits.max_input_chars``, get 400. Every error is one line of JSON in OpenAI's error shape,
never a traceback.

For tests, faults can be injected: the first ``fail_first_n`` generation requests get an
error status (500 by default), and every generation request can be delayed by ``delay_s``
seconds (longer than a client's timeout, to force timeouts).

Example:
    >>> from amplify_agents.models import load_causal_lm  # doctest: +SKIP
    >>> from amplify_agents.serving import serve  # doctest: +SKIP
    >>> with serve(load_causal_lm("gemma-3-270m")) as server:  # doctest: +SKIP
    ...     llm = ChatOpenAI(base_url=server.url + "/v1", api_key="x", model=server.model_name)
    ...     llm.invoke("Hello")
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch
from transformers import StoppingCriteriaList

from amplify_agents.chains.llms import StopOnStrings, model_lock
from amplify_agents.files import loads_line
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits
from amplify_agents.models.loading import LoadedModel

__all__ = ["ServerHandle", "ServerLimits", "serve", "render_transcript", "TRANSCRIPT_STOPS"]

logger = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")  # digits only: no sign, no spaces inside, no hex
_DRAIN_BYTES = 1 << 20  # how much of a refused body is read and dropped so the client sees the answer
TRANSCRIPT_STOPS: tuple[str, ...] = ("\nUser:", "\nSystem:")
"""Where a reply ends when messages are rendered as a transcript (the next turn starts)."""
_ROLE_NAMES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}


def render_transcript(messages: Sequence[dict[str, Any]]) -> str:
    """Render OpenAI chat messages as a plain transcript ending with an open assistant turn.

    Used for models without a chat template (base models)::

        System: ...

        User: ...

        Assistant:
    """
    parts = []
    for message in messages:
        role = _ROLE_NAMES.get(str(message.get("role")), str(message.get("role", "user")).title())
        parts.append(f"{role}: {_content_text(message.get('content'))}")
    parts.append("Assistant:")
    return "\n\n".join(parts)


def _content_text(content: Any) -> str:
    # Content may be a string or a list of typed parts; only text parts make sense here.
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


@dataclass(frozen=True)
class ServerLimits:
    """What one request and one connection may cost the server.

    Attributes:
        max_body_bytes: the largest request body; a larger ``Content-Length`` gets 413 and the
            body is not read.
        max_prompts: the most prompts in one ``/v1/completions`` request (a list prompt).
        read_timeout_s: a socket that sends nothing for this long is closed (headers), or
            answered 408 (a body that stops arriving); also the most a whole body may take.
        max_connections: connections served at once (one thread each); more get 503 at once.
        text: per-prompt length limits (``max_input_chars``: one prompt, or one chat request's
            messages together).
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_prompts: int = 16
    read_timeout_s: float = 10.0
    max_connections: int = 32
    text: TextLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_prompts", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive integer, got {value!r}.")
        if not self.read_timeout_s > 0:
            raise ValueError(f"ServerLimits.read_timeout_s must be positive, got {self.read_timeout_s!r}.")


class _RequestError(Exception):
    """A client error, returned as an OpenAI error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


@dataclass
class _Completion:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)


class _Generator:
    """Greedy or sampled continuation with optional per-token log-probabilities."""

    def __init__(self, loaded: LoadedModel, lock: threading.Lock) -> None:
        self.loaded = loaded
        self.lock = lock
        eos = loaded.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if loaded.tokenizer.eos_token_id is not None:
            self.eos_ids.add(loaded.tokenizer.eos_token_id)

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.tokenizer(text)["input_ids"])

    @torch.inference_mode()
    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str],
        top_logprobs: int | None,
        seed: int | None,
    ) -> _Completion:
        tok = self.loaded.tokenizer
        model = self.loaded.model
        enc = tok(prompt, return_tensors="pt").to(self.loaded.device)
        n_prompt = int(enc["input_ids"].shape[1])
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "do_sample": temperature > 0,
            "pad_token_id": tok.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": top_logprobs is not None,
        }
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=top_p)
        if stop:
            # Halt once a stop string appears; the text is cut at it below.
            kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnStrings(tok, stop, prompt_length=n_prompt)])
        with self.lock:  # one model, one forward at a time (and a reproducible seed)
            if seed is not None:
                torch.manual_seed(seed)
            out = model.generate(**enc, **kwargs)  # type: ignore[operator]
        new_ids = out.sequences[0, n_prompt:].tolist()
        finish = "length"
        if new_ids and new_ids[-1] in self.eos_ids:
            new_ids = new_ids[:-1]
            finish = "stop"
        text = str(tok.decode(new_ids, skip_special_tokens=True))
        cut = min((i for i in (text.find(s) for s in stop) if i != -1), default=-1)
        if cut != -1:
            text = text[:cut]
            finish = "stop"
        result = _Completion(text, finish, n_prompt, 0)
        # Token pieces (decoded one by one) up to the cut, with their log-probabilities.
        pieces: list[str] = []
        used = 0
        for tid in new_ids:
            piece = str(tok.decode([tid], skip_special_tokens=True))
            if used >= len(text):
                break
            pieces.append(piece)
            used += len(piece)
        result.completion_tokens = len(pieces)
        result.tokens = pieces
        if top_logprobs is not None and pieces:
            for step, tid in enumerate(new_ids[: len(pieces)]):
                logp = torch.log_softmax(out.logits[step][0].float(), dim=-1)
                result.token_logprobs.append(float(logp[tid]))
                k = max(0, min(int(top_logprobs), 20))
                top = torch.topk(logp, k) if k else None
                result.top_logprobs.append(
                    {str(tok.decode([int(i)])): float(v) for v, i in zip(top.values, top.indices, strict=True)}
                    if top is not None
                    else {}
                )
        return result


@dataclass
class _Faults:
    fail_next_n: int = 0
    status: int = 500
    delay_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a delayed (fault-injected) request
    allow_reuse_address = True
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        # One thread per connection, but never more than the limit: the rest are told to come back.
        if not self.slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> bytes:
    """OpenAI's error object as one line of JSON."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 401:
        kind = "authentication_error"
    error = {"message": message, "type": kind, "param": param, "code": code}
    return json.dumps({"error": error}).encode("utf-8") + b"\n"


def _refuse_busy(request: socket.socket) -> None:
    """Answer 503 on a connection over the limit, without a thread and without reading it."""
    body = _error_body(503, "The server is at its connection limit: retry in a moment.", code="server_busy")
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    try:
        request.settimeout(1.0)
        request.sendall(head.encode("ascii") + body)
    except OSError:
        pass  # the client is gone already


class ServerHandle:
    """A running server: its :attr:`url`, fault controls and :meth:`stop` (also a context manager).

    Attributes:
        url: ``http://127.0.0.1:PORT`` (append ``/v1`` for an OpenAI ``base_url``).
        model_name: the model id the server answers to (``/v1/models``).
        stats: counts of ``requests`` (generation requests received), ``failed`` (injected
            failures served) and ``completed``.
    """

    def __init__(self, server: _Server, thread: threading.Thread, model_name: str, faults: _Faults) -> None:
        self._server = server
        self._thread = thread
        self._faults = faults
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.model_name = model_name
        self.stats: dict[str, int] = {"requests": 0, "failed": 0, "completed": 0}
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` of this server (``url + "/v1"``)."""
        return self.url + "/v1"

    def inject(
        self, *, fail_next_n: int | None = None, status: int | None = None, delay_s: float | None = None
    ) -> None:
        """Change the injected faults: fail the next ``fail_next_n`` generation requests with
        ``status``, and/or delay every generation request by ``delay_s`` seconds."""
        with self._lock:
            if fail_next_n is not None:
                self._faults.fail_next_n = fail_next_n
            if status is not None:
                self._faults.status = status
            if delay_s is not None:
                self._faults.delay_s = delay_s

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _take_fault(self) -> tuple[int | None, float]:
        with self._lock:
            self.stats["requests"] += 1
            status = None
            if self._faults.fail_next_n > 0:
                self._faults.fail_next_n -= 1
                self.stats["failed"] += 1
                status = self._faults.status
            return status, self._faults.delay_s

    @property
    def running(self) -> bool:
        """True until :meth:`stop` has been called."""
        return not self._stopping.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the port (delayed requests are woken and dropped)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r}, model={self.model_name!r}, running={self.running})"


def serve(
    loaded: LoadedModel,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    fail_first_n: int = 0,
    fail_status: int = 500,
    delay_s: float = 0.0,
    default_temperature: float = 1.0,
    max_tokens_limit: int = 1024,
    lock: threading.Lock | None = None,
    limits: ServerLimits = ServerLimits(),
) -> ServerHandle:
    """Serve ``loaded`` through an OpenAI-compatible HTTP API in a background thread.

    Args:
        loaded: the causal LM and tokenizer to serve.
        host: a loopback address; other hosts are refused (this server has no real auth).
        port: 0 picks a free port (see :attr:`ServerHandle.url`).
        model_name: the model id clients must name (default ``loaded.name``).
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>``.
        fail_first_n: the first N generation requests get ``fail_status`` (fault injection).
        fail_status: the HTTP status of injected failures (500 by default).
        delay_s: sleep this long before answering each generation request (fault injection).
        default_temperature: used when a request gives none (OpenAI's default is 1.0).
        max_tokens_limit: larger ``max_tokens`` are refused with 400.
        lock: a lock shared with other users of the same model in this process (the
            chains' local route uses :func:`amplify_agents.chains.model_lock`).
        limits: body size, prompts per request, socket read time-out, connections at once and
            prompt length (:class:`ServerLimits`).

    Returns:
        A :class:`ServerHandle`; stop it with ``.stop()`` or use it as a context manager.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """
    if host not in _LOOPBACK:
        raise ValueError(f"Refusing to bind {host!r}: this test server binds to loopback only (127.0.0.1).")
    if lock is None:
        lock = model_lock(loaded)
    name = model_name or loaded.name
    generator = _Generator(loaded, lock)
    faults = _Faults(fail_next_n=fail_first_n, status=fail_status, delay_s=delay_s)
    handle_ref: list[ServerHandle] = []

    class Handler(_Handler):
        pass

    Handler.generator = generator
    Handler.model_name = name
    Handler.api_key = api_key
    Handler.default_temperature = default_temperature
    Handler.max_tokens_limit = max_tokens_limit
    Handler.handle_ref = handle_ref
    Handler.limits = limits
    Handler.timeout = limits.read_timeout_s  # socketserver sets it on every accepted socket

    server = _Server((host, port), Handler)
    server.slots = threading.BoundedSemaphore(limits.max_connections)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    handle = ServerHandle(server, thread, name, faults)
    handle_ref.append(handle)
    thread.name = f"openai-server-{handle.port}"
    thread.start()
    logger.info("Serving %s at %s", name, handle.url)
    return handle


class _Handler(BaseHTTPRequestHandler):
    generator: _Generator
    model_name: str
    api_key: str | None
    default_temperature: float
    max_tokens_limit: int
    handle_ref: list[ServerHandle]
    limits: ServerLimits
    server_version = "amplify-agents-openai/0.1"
    _unread_body = False  # set when a request is refused before its body is read

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s - %s", self.address_string(), format % args)

    @property
    def handle_obj(self) -> ServerHandle:
        return self.handle_ref[0]

    # -- plumbing ------------------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired)

    def _send_error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        body = _error_body(status, message, param=param, code=code)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self._unread_body:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            return  # the client gave up
        if self._unread_body:
            self.close_connection = True
            self._drain()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, a header too long) as OpenAI's JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unreadable request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self._send_error(code, message or HTTPStatus(code).phrase)

    def _drain(self) -> None:
        """Read and drop a little of an unread body, so closing does not reset the connection
        before the client has read the error (bounded: 1 MB, about a second)."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline, left = time.monotonic() + 1.0, _DRAIN_BYTES
            while left > 0 and time.monotonic() < deadline:
                chunk = self.connection.recv(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _client_gone(self) -> bool:
        """True when the client closed its connection (no need to generate for it)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _authorized(self) -> bool:
        if not self.api_key:
            return True
        return self.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    def _body_size(self) -> int:
        """The declared body size, checked before a byte of the body is read."""
        if self.headers.get("Transfer-Encoding"):
            raise _RequestError(411, "Chunked bodies are not supported: send the body with a Content-Length header.")
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            raise _RequestError(411, "A Content-Length header is required.")
        if len(values) > 1:
            raise _RequestError(400, f"Conflicting Content-Length headers {sorted(values)}: send one.")
        (length,) = values
        if not _CONTENT_LENGTH.fullmatch(length):
            raise _RequestError(400, f"Content-Length {length[:40]!r} is not a non-negative integer.")
        size = int(length)
        if size > self.limits.max_body_bytes:
            raise _RequestError(
                413,
                f"The request body is {size} bytes, over this server's limit of {self.limits.max_body_bytes} "
                "(send fewer or shorter prompts, or raise ServerLimits.max_body_bytes).",
                code="request_too_large",
            )
        return size

    def _read_body(self, size: int) -> bytes:
        """Exactly ``size`` bytes, within ``read_timeout_s`` in all (a trickled body is cut off)."""
        deadline = time.monotonic() + self.limits.read_timeout_s
        parts, left = [], size
        try:
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.connection.settimeout(remaining)
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    raise _RequestError(400, f"The body ended after {size - left} of {size} bytes (Content-Length).")
                parts.append(chunk)
                left -= len(chunk)
        except TimeoutError:
            raise _RequestError(
                408, f"The body did not arrive within {self.limits.read_timeout_s:g} s.", code="timeout"
            ) from None
        finally:
            self.connection.settimeout(self.limits.read_timeout_s)
        self._unread_body = False
        return b"".join(parts)

    def _read_json(self) -> dict[str, Any]:
        raw = self._read_body(self._body_size())
        try:
            data = loads_line(raw.decode("utf-8") or "{}")
        except UnicodeDecodeError as exc:
            raise _RequestError(400, f"The request body is not UTF-8 (byte {exc.start}).") from None
        except ValueError as exc:  # json.JSONDecodeError, or nesting too deep
            raise _RequestError(400, f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise _RequestError(400, "The request body must be a JSON object.")
        return data

    # -- routes --------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._authorized():
            return self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            return self._send_json(200, {"object": "list", "data": [self._model_card()]})
        if path == f"/v1/models/{self.model_name}":
            return self._send_json(200, self._model_card())
        self._send_error(404, f"Unknown path {self.path!r}.", code="not_found")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._unread_body = True  # until _read_body has read it: an early error closes after a drain
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            return self._send_error(404, f"Unknown path {self.path!r}.", code="not_found")
        if not self._authorized():
            return self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
        try:
            body = self._read_json()
            status, delay = self.handle_obj._take_fault()
            if delay > 0:
                # Wake early when the server stops; drop the request if the client left.
                self.handle_obj._stopping.wait(delay)
                if not self.handle_obj.running or self._client_gone():
                    return
            if status is not None:
                return self._send_error(status, f"Injected failure (HTTP {status}).", code="injected_failure")
            if path == "/v1/completions":
                self._completions(body)
            else:
                self._chat(body)
        except _RequestError as exc:
            self._send_error(exc.status, exc.message, param=exc.param, code=exc.code)
        except Exception as exc:  # noqa: BLE001 - a server must answer, not die
            # The traceback goes to the server's log; the client gets one line, no internals.
            logger.exception("Generation failed")
            self._send_error(500, f"The server failed to generate ({type(exc).__name__}); see the server log.")

    def _check_length(self, text: str, where: str, param: str) -> None:
        problem = self.limits.text.problem("input", text)
        if problem is not None:
            raise _RequestError(400, f"{where}: {problem}.", param=param, code="input_too_long")

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": 0, "owned_by": "amplify-agents"}

    # -- parameters ----------------------------------------------------------------------------

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise _RequestError(
                404,
                f"The model {model!r} does not exist on this server; it serves {self.model_name!r}.",
                param="model",
                code="model_not_found",
            )

    def _settings(self, body: dict[str, Any], *, max_tokens_default: int) -> dict[str, Any]:
        try:
            return self._parse_settings(body, max_tokens_default)
        except (TypeError, ValueError) as exc:
            raise _RequestError(400, f"Invalid request parameter: {exc}.") from exc

    def _parse_settings(self, body: dict[str, Any], max_tokens_default: int) -> dict[str, Any]:
        if int(body.get("n") or 1) != 1:
            raise _RequestError(400, "Only n=1 is supported.", param="n")
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or max_tokens_default
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise _RequestError(400, "max_tokens must be a positive integer.", param="max_tokens")
        if max_tokens > self.max_tokens_limit:
            raise _RequestError(
                400,
                f"max_tokens={max_tokens} is over this server's limit {self.max_tokens_limit}.",
                param="max_tokens",
            )
        temperature = body.get("temperature")
        temperature = self.default_temperature if temperature is None else float(temperature)
        if not 0.0 <= temperature <= 2.0:
            raise _RequestError(400, "temperature must be between 0 and 2.", param="temperature")
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _RequestError(400, "stop must be a string or a list of strings.", param="stop")
        top_p = body.get("top_p")
        seed = body.get("seed")
        return {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": 1.0 if top_p is None else float(top_p),
            "stop": [s for s in stop if s],
            "seed": int(seed) if seed is not None else None,
        }

    # -- /v1/completions -----------------------------------------------------------------------

    def _completions(self, body: dict[str, Any]) -> None:
        self._check_model(body)
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise _RequestError(
                400,
                "prompt must be a string or a list of strings (token ids are not supported).",
                param="prompt",
            )
        if len(prompts) > self.limits.max_prompts:
            raise _RequestError(
                400,
                f"The request has {len(prompts)} prompts, over this server's limit of {self.limits.max_prompts}: "
                "split it into several requests.",
                param="prompt",
            )
        for i, text in enumerate(prompts):
            self._check_length(text, f"prompt[{i}]", "prompt")
        settings = self._settings(body, max_tokens_default=16)
        logprobs = body.get("logprobs")
        if logprobs is not None and (not isinstance(logprobs, int) or not 0 <= logprobs <= 20):
            raise _RequestError(400, "logprobs must be an integer between 0 and 20.", param="logprobs")
        echo = bool(body.get("echo"))
        if echo and logprobs is not None:
            raise _RequestError(400, "echo together with logprobs is not supported by this server.", param="echo")
        created = int(time.time())
        rid = f"cmpl-{uuid.uuid4().hex}"
        choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for index, text in enumerate(prompts):
            done = self.generator.complete(text, top_logprobs=logprobs, **settings)
            lp = None
            if logprobs is not None:
                offsets, pos = [], len(text) if echo else 0
                for piece in done.tokens:
                    offsets.append(pos)
                    pos += len(piece)
                lp = {
                    "tokens": done.tokens,
                    "token_logprobs": done.token_logprobs,
                    "top_logprobs": done.top_logprobs,
                    "text_offset": offsets,
                }
            choices.append(
                {
                    "text": (text if echo else "") + done.text,
                    "index": index,
                    "logprobs": lp,
                    "finish_reason": done.finish_reason,
                }
            )
            usage["prompt_tokens"] += done.prompt_tokens
            usage["completion_tokens"] += done.completion_tokens
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self.handle_obj._count("completed")
        if body.get("stream"):
            return self._stream_completion(rid, created, choices, usage, body)
        self._send_json(
            200,
            {
                "id": rid,
                "object": "text_completion",
                "created": created,
                "model": self.model_name,
                "choices": choices,
                "usage": usage,
            },
        )

    def _stream_completion(
        self,
        rid: str,
        created: int,
        choices: list[dict[str, Any]],
        usage: dict[str, int],
        body: dict[str, Any],
    ) -> None:
        def chunk(choice_list: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            head = {"id": rid, "object": "text_completion", "created": created, "model": self.model_name}
            return {**head, "choices": choice_list, **extra}

        def events() -> Iterator[dict[str, Any]]:
            for choice in choices:
                # The text first, then an empty chunk carrying the finish reason, as OpenAI streams.
                text = {"text": choice["text"], "logprobs": choice["logprobs"], "finish_reason": None}
                end = {"text": "", "logprobs": None, "finish_reason": choice["finish_reason"]}
                yield chunk([{"index": choice["index"], **text}])
                yield chunk([{"index": choice["index"], **end}])
            if (body.get("stream_options") or {}).get("include_usage"):
                yield chunk([], usage=usage)

        self._send_events(events())

    # -- /v1/chat/completions ------------------------------------------------------------------

    def _render_messages(self, messages: list[dict[str, Any]]) -> tuple[str, list[str]]:
        tok = self.generator.loaded.tokenizer
        if getattr(tok, "chat_template", None):
            turns = [{"role": m.get("role", "user"), "content": _content_text(m.get("content"))} for m in messages]
            return str(tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)), []
        return render_transcript(messages), list(TRANSCRIPT_STOPS)

    def _chat(self, body: dict[str, Any]) -> None:
        self._check_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _RequestError(400, "messages must be a non-empty list of message objects.", param="messages")
        settings = self._settings(body, max_tokens_default=self.max_tokens_limit // 4)
        want_logprobs = bool(body.get("logprobs"))
        top = body.get("top_logprobs")
        if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
            raise _RequestError(400, "top_logprobs must be an integer between 0 and 20.", param="top_logprobs")
        prompt, extra_stops = self._render_messages(messages)
        self._check_length(prompt, "messages", "messages")
        settings["stop"] = settings["stop"] + [s for s in extra_stops if s not in settings["stop"]]
        done = self.generator.complete(prompt, top_logprobs=(top or 0) if want_logprobs else None, **settings)
        text = done.text.strip() if extra_stops else done.text  # the transcript puts a space after "Assistant:"
        logprobs = None
        if want_logprobs:
            logprobs = {
                "content": [
                    {
                        "token": piece,
                        "logprob": lp,
                        "bytes": list(piece.encode("utf-8")),
                        "top_logprobs": [
                            {"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))} for t, v in alts.items()
                        ],
                    }
                    for piece, lp, alts in zip(done.tokens, done.token_logprobs, done.top_logprobs, strict=True)
                ]
            }
        usage = {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        }
        created = int(time.time())
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        self.handle_obj._count("completed")
        if body.get("stream"):
            return self._stream_chat(rid, created, text, done, usage, body)
        self._send_json(
            200,
            {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": self.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": logprobs,
                        "finish_reason": done.finish_reason,
                    }
                ],
                "usage": usage,
            },
        )

    def _stream_chat(
        self,
        rid: str,
        created: int,
        text: str,
        done: _Completion,
        usage: dict[str, int],
        body: dict[str, Any],
    ) -> None:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model_name,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        def events() -> Iterator[dict[str, Any]]:
            yield chunk({"role": "assistant", "content": ""}, None)
            # The text was generated whole; it is sent in token-sized pieces.
            rest = text
            for piece in done.tokens:
                part, rest = rest[: len(piece)], rest[len(piece) :]
                if part:
                    yield chunk({"content": part}, None)
            if rest:
                yield chunk({"content": rest}, None)
            yield chunk({}, done.finish_reason)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model_name,
                    "choices": [],
                    "usage": usage,
                }

        self._send_events(events())

    def _send_events(self, events: Iterator[dict[str, Any]]) -> None:
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
