"""Hosted-model faults against a real HTTP server: retried, reported, or unparseable; never a crash.

A small scripted OpenAI-compatible server (stdlib ``http.server`` on 127.0.0.1, in a thread)
answers each generation request as its script says: 429 with ``Retry-After``, 500, 400, a reply
slower than the client's time-out, a body that is not JSON, a reply without ``choices``, an
answer outside the label space, a reply without log-probabilities. It is driven through the
library's public hosted entry points: a chain with a hosted :class:`Endpoint` route
(:func:`create_amplify_chain`), and the hosted :class:`Target` the evaluation harness answers with
(:func:`open_target` + :class:`Answerer`). No model is loaded; every wait is bounded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from amplify_agents.answering import Answerer, Endpoint, Target, open_endpoint, open_target
from amplify_agents.chains import create_amplify_chain
from amplify_agents.errors import EndpointError

MODEL = "scripted-model"
LABELS = ["yes", "no"]
YES = {"text": " yes", "top": {" yes": -0.1, " no": -2.4}}  # a reply with log-probabilities
MAYBE = {"text": " maybe", "top": {" maybe": -0.2, " perhaps": -1.9}}  # neither label in the top-k


@dataclass
class Fault:
    """One scripted answer: ``status`` (with ``headers``), ``body`` sent raw, or a ``reply``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    reply: dict[str, Any] | None = None
    delay_s: float = 0.0
    logprobs: bool = True


class FaultServer:
    """A scripted OpenAI-compatible server; ``arrivals`` records when each POST came."""

    def __init__(self, script: list[Fault], default: Fault) -> None:
        self.script, self.default = list(script), default
        self.arrivals: list[float] = []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.arrivals.append(time.monotonic())
                    fault = outer.script.pop(0) if outer.script else outer.default
                if fault.delay_s and outer.stopping.wait(fault.delay_s):
                    return
                body = fault.body if fault.body is not None else _reply(self.path, request, fault)
                self._send(fault.status, body, fault.headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client timed out and left

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _reply(path: str, request: dict[str, Any], fault: Fault) -> bytes:
    """An OpenAI completions or chat reply with the scripted text (and top log-probabilities)."""
    reply = fault.reply or YES
    text, top = reply["text"], reply["top"]
    with_logprobs = fault.logprobs and bool(request.get("logprobs"))
    if path.endswith("/chat/completions"):
        content = [
            {"token": text, "logprob": top[text], "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()]}
        ]
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": {"content": content} if with_logprobs else None,
            "finish_reason": "stop",
        }
        return json.dumps(
            {"id": "c", "object": "chat.completion", "created": 0, "model": MODEL, "choices": [choice]}
        ).encode()
    logprobs = {"tokens": [text], "token_logprobs": [top[text]], "top_logprobs": [top], "text_offset": [0]}
    choice = {"text": text, "index": 0, "logprobs": logprobs if with_logprobs else None, "finish_reason": "length"}
    return json.dumps(
        {"id": "t", "object": "text_completion", "created": 0, "model": MODEL, "choices": [choice]}
    ).encode()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[FaultServer] = []

    def make(*script: Fault, default: Fault = Fault()) -> FaultServer:
        servers.append(FaultServer(list(script), default))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def _endpoint(server: FaultServer, **kwargs: Any) -> Endpoint:
    settings: dict[str, Any] = {"attempts": 3, "timeout": 2.0, "backoff_s": 0.01, "max_wait_s": 5.0, "concurrency": 1}
    return Endpoint(server.base_url, MODEL, **{**settings, **kwargs})


def _chain(server: FaultServer, **kwargs: Any) -> Any:
    return create_amplify_chain(labels=LABELS, hosted=_endpoint(server, **kwargs))


def test_429_waits_as_retry_after_says_capped(scripted: Any) -> None:
    server = scripted(
        Fault(429, {"Retry-After": "1.5"}, body=b'{"error": {"message": "slow down"}}'),
        Fault(429, {"Retry-After": "3600"}, body=b'{"error": {"message": "slow down"}}'),
    )
    result = _chain(server, max_wait_s=2.0).invoke("Is the sky blue?")
    assert result.answer == "yes" and result.label_probs["yes"] > 0.5
    first, second = server.gaps()
    assert 1.45 <= first < 2.0, first  # the server's 1.5 s, not the 0.01 s back-off
    assert 1.95 <= second < 3.0, second  # an hour asked, cut to max_wait_s


def test_the_chat_route_honours_retry_after_too(scripted: Any) -> None:
    # A chat Endpoint goes through ChatOpenAI; its openai client does the retrying (LangChain's
    # with_retry would wait its own back-off and ignore the server's Retry-After).
    server = scripted(Fault(429, {"Retry-After": "1.5"}, body=b'{"error": {"message": "slow down"}}'))
    result = _chain(server, api="chat").invoke("Is the sky blue?")
    assert result.answer == "yes"
    [gap] = server.gaps()
    assert 1.45 <= gap < 3.0, gap
    refusing = scripted(default=Fault(429, {"Retry-After": "0"}, body=b'{"error": {"message": "quota"}}'))
    with pytest.raises(Exception, match="quota"):
        _chain(refusing, api="chat", attempts=2).invoke("Is the sky blue?")
    assert len(refusing.arrivals) == 2  # attempts=2: one try and one retry, not 2 x 2


def test_rate_limit_that_persists_is_reported_with_the_fix(scripted: Any) -> None:
    server = scripted(default=Fault(429, {"Retry-After": "0"}, body=b'{"error": {"message": "quota"}}'))
    with pytest.raises(EndpointError, match=r"HTTP 429 \(rate limited\) after 2 attempt") as info:
        _chain(server, attempts=2).invoke("Is the sky blue?")
    assert server.base_url in str(info.value) and "concurrency" in str(info.value)
    assert len(server.arrivals) == 2


def test_500s_are_retried_then_reported(scripted: Any) -> None:
    server = scripted(Fault(500, body=b"{}"), Fault(503, body=b"{}"))
    assert _chain(server).invoke("Is the sky blue?").answer == "yes"
    assert len(server.arrivals) == 3
    down = scripted(default=Fault(500, body=b'{"error": {"message": "boom"}}'))
    backend = open_target(Target(MODEL, base_url=down.base_url, attempts=2, concurrency=1))
    try:
        with pytest.raises(EndpointError, match="HTTP 500 after 2 attempt") as info:
            Answerer(backend).answer(["Is the sky blue?"], LABELS)
    finally:
        backend.close()
    assert down.base_url in str(info.value) and "boom" in str(info.value)


def test_400_is_reported_at_once_not_retried(scripted: Any) -> None:
    server = scripted(default=Fault(400, body=b'{"error": {"message": "max_tokens is too large"}}'))
    with pytest.raises(EndpointError, match="refused the completions request with HTTP 400: max_tokens is too large"):
        _chain(server).invoke("Is the sky blue?")
    assert len(server.arrivals) == 1


def test_a_reply_slower_than_the_timeout_is_retried(scripted: Any) -> None:
    server = scripted(Fault(delay_s=10.0))
    started = time.monotonic()
    result = _chain(server, timeout=0.5).invoke("Is the sky blue?")
    assert result.answer == "yes" and len(server.arrivals) == 2
    assert time.monotonic() - started < 5.0  # one 0.5 s time-out, not the 10 s reply
    slow = scripted(default=Fault(delay_s=10.0))
    started = time.monotonic()
    with pytest.raises(EndpointError, match="did not answer after 2 attempt"):
        _chain(slow, timeout=0.5, attempts=2).invoke("Is the sky blue?")
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("api", ["completions", "chat"])
@pytest.mark.parametrize(
    "body", [b'{"choices": [{"text": "yes"', b"<html>bad gateway</html>", b'{"object": "text_completion"}']
)
def test_malformed_replies_are_retried_then_reported(scripted: Any, api: str, body: bytes) -> None:
    once = scripted(Fault(body=body))
    backend = open_endpoint(_endpoint(once, api=api))
    try:
        [answer] = Answerer(backend).answer(["Is the sky blue?"], LABELS)
        assert answer.predicted == "yes" and len(once.arrivals) == 2
    finally:
        backend.close()
    always = scripted(default=Fault(body=body))
    backend = open_endpoint(_endpoint(always, api=api, attempts=2))
    try:
        with pytest.raises(EndpointError, match=f"not an OpenAI {api} response.*after 2 attempt") as info:
            Answerer(backend).answer(["Is the sky blue?"], LABELS)
    finally:
        backend.close()
    assert always.base_url in str(info.value) and "\n" not in str(info.value)


def test_an_answer_outside_the_label_space_is_unparseable(scripted: Any) -> None:
    server = scripted(default=Fault(reply=MAYBE))
    result = _chain(server).invoke("Is the sky blue?")
    # Neither label is among the server's top-k: no guess from the bounds, the text decides.
    assert result.answer is None and result.label_probs is None and result.raw_text == " maybe"
    backend = open_target(Target(MODEL, base_url=server.base_url, concurrency=1))
    try:
        [answer] = Answerer(backend).answer(["Is the sky blue?"], LABELS)
    finally:
        backend.close()
    assert answer.predicted is None and not answer.parsed and answer.text == " maybe"


@pytest.mark.parametrize(("reply", "expected"), [({"text": " no", "top": {" no": 0.0}}, "no"), (MAYBE, None)])
def test_a_server_without_logprobs_is_parsed_not_crashed(scripted: Any, reply: dict[str, Any], expected: Any) -> None:
    server = scripted(default=Fault(reply=reply, logprobs=False))
    result = _chain(server).invoke("Is the sky blue?")
    assert result.answer == expected and result.label_probs is None


def test_endpoint_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        Endpoint("http://127.0.0.1:1/v1", MODEL, timeout=0)
    with pytest.raises(ValueError, match="backoff_s"):
        Endpoint("http://127.0.0.1:1/v1", MODEL, backoff_s=-1)
