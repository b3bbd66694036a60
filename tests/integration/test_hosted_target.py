"""The hosted-model answering path against a real third-party server: llama.cpp's OpenAI-compatible
server (``llama-cpp-python[server]``) serving the offline Gemma 3 270M GGUF (Q4_K_M).

* completions scoring agrees with local transformers scoring of the same model;
* the chat route gives a label distribution;
* the faults a user meets: server down, model not served, key variable unset, time-out, a
  reply outside the label space, a server without log-probabilities (a real server that
  ignores the field, through a pass-through proxy; and llama.cpp run without ``logits_all``);
* the response cache answers a second pass without a request.

The server handles one request at a time: every endpoint here has ``concurrency=1``. Echo
scoring is never used (llama-cpp-python sorts the 262k vocabulary per echoed token). Every
wait is bounded: client time-outs, few attempts, and a per-test timeout.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from amplify_agents.answering import (
    Answerer,
    AnswerSettings,
    CachedBackend,
    ChatBackend,
    CompletionsBackend,
    Endpoint,
    LocalBackend,
    ResponseCache,
    Target,
    open_endpoint,
    open_target,
)
from amplify_agents.errors import EndpointError
from amplify_agents.framing import Frame
from amplify_agents.prompts import PromptStyle
from amplify_agents.tasks import Task, load_task

try:
    from .llama_server import LlamaServer, free_port, llama_server_process
except ImportError:
    from llama_server import LlamaServer, free_port, llama_server_process

pytestmark = pytest.mark.timeout(300)

MODEL = "gemma-3-270m"
TASK = "sports_understanding"
N_TEST = 40
N_POOL = 4
SHORT = 3  # items in the quick tests


@dataclass(frozen=True)
class Items:
    task: Task
    queries: list[str]
    gold: list[str]
    demos: list[dict[str, str]]
    settings: AnswerSettings

    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)


@pytest.fixture(scope="module")
def items(bigbench_dir: Path) -> Items:
    task = load_task(bigbench_dir / TASK)
    splits = task.split(seed=0, test=N_TEST, pool=N_POOL)
    demos = [{"input": e.input, "answer": e.label} for e in splits.pool.examples]
    return Items(
        task=task,
        queries=[e.input for e in splits.test.examples],
        gold=[e.label for e in splits.test.examples],
        demos=demos,
        settings=AnswerSettings(PromptStyle(Frame.from_task(task))),
    )


def endpoint(server: LlamaServer, **kwargs: Any) -> Endpoint:
    kwargs.setdefault("concurrency", 1)
    kwargs.setdefault("timeout", 120.0)
    kwargs.setdefault("attempts", 2)
    return Endpoint(server.base_url, server.model, **kwargs)


def chat_settings(items: Items) -> AnswerSettings:
    # Gemma's chat template has no system role (llama.cpp's "gemma" format drops it): the
    # instruction goes in the user turn.
    return AnswerSettings(PromptStyle(items.settings.style.frame, system_message=False), max_new_tokens=8)


# ------------------------------------------------------------------ a pass-through proxy
@dataclass
class Proxy:
    """An HTTP proxy on 127.0.0.1 in front of a server: counts POSTs and, with ``strip_logprobs``,
    drops the log-probability fields from requests, as servers that ignore them do."""

    base_url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def proxy_factory(llama_server: LlamaServer) -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []
    upstream = urlsplit(llama_server.base_url)

    def make(*, strip_logprobs: bool) -> Proxy:
        proxy = Proxy("")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _forward(self, method: str, body: bytes | None) -> None:
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
                try:
                    headers = {"Content-Type": "application/json"} if body is not None else {}
                    conn.request(method, self.path, body=body, headers=headers)
                    reply = conn.getresponse()
                    data = reply.read()
                    status = reply.status
                finally:
                    conn.close()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._forward("GET", None)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append(self.path)
                if strip_logprobs:
                    body = json.loads(raw)
                    for key in ("logprobs", "top_logprobs", "echo"):
                        body.pop(key, None)
                    raw = json.dumps(body).encode()
                self._forward("POST", raw)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(server)
        proxy.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return proxy

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ a. agreement with the local model
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_completions_scoring_agrees_with_local_transformers(llama_server: LlamaServer, gemma, items: Items) -> None:
    # label_tokens=1: " plausible" and " impl(ausible)" part at their first token, so the scores
    # equal the default's (4 tokens, measured) while llama-cpp-python sorts the 262k vocabulary
    # once per request instead of four times (about half the time on two cores).
    backend = open_endpoint(endpoint(llama_server, label_tokens=1))
    try:
        started = time.monotonic()
        hosted = Answerer(backend, items.settings).answer(items.queries, items.labels, demos=items.demos)
        hosted_s = time.monotonic() - started
    finally:
        backend.close()
    started = time.monotonic()
    local = Answerer(LocalBackend(gemma), items.settings).answer(items.queries, items.labels, demos=items.demos)
    local_s = time.monotonic() - started

    assert len(hosted) == len(local) == N_TEST
    assert all(a.scores is not None and a.predicted in items.labels for a in hosted)
    assert isinstance(backend, CompletionsBackend) and backend.logprobs_available is True
    pairs = list(zip(hosted, local, strict=True))
    agree = sum(h.predicted == loc.predicted for h, loc in pairs)
    diffs = [
        abs(x - y)
        for h, loc in pairs
        for x, y in zip(h.scores.logprobs, loc.scores.logprobs, strict=True)  # type: ignore[union-attr]
    ]
    # The label margin (first label minus second) per item: does the hosted model rank items alike?
    margins = [[_margin(a) for a in side] for side in (hosted, local)]
    margin_corr = statistics.correlation(*margins)
    outside = sum(bool(h.outside_top_k) for h in hosted)
    predicted = {name: Counter(a.predicted for a in side) for name, side in (("hosted", hosted), ("local", local))}
    accuracy = {
        name: sum(a.predicted == g for a, g in zip(side, items.gold, strict=True)) / N_TEST
        for name, side in (("hosted", hosted), ("local", local))
    }
    print(
        f"\n[{TASK}, {N_TEST} items, {N_POOL}-shot] agreement {agree}/{N_TEST} = {agree / N_TEST:.1%}; "
        f"|delta logprob| median {statistics.median(diffs):.4f}, max {max(diffs):.4f}; "
        f"label-margin correlation {margin_corr:.3f}; labels outside top-k: {outside}; "
        f"predicted {dict(predicted['hosted'])} vs {dict(predicted['local'])}; "
        f"accuracy hosted {accuracy['hosted']:.1%}, local {accuracy['local']:.1%}; "
        f"hosted {hosted_s:.0f} s, local {local_s:.0f} s"
    )
    assert outside == 0
    assert agree / N_TEST >= 0.9
    # Q4_K_M weights vs the de-quantised ones, and the hosted path reads only each label's
    # distinguishing token (the rest taken as certain; " implausible" is two tokens): small
    # gaps. Measured: median 0.065, max 0.30, margin correlation 0.84.
    assert statistics.median(diffs) < 0.15
    assert max(diffs) < 1.0
    assert margin_corr > 0.6


def _margin(answer: Any) -> float:
    assert answer.scores is not None
    return float(answer.scores.logprobs[0] - answer.scores.logprobs[1])


# ------------------------------------------------------------------ b. the chat route
def test_chat_route_gives_label_probabilities(llama_server: LlamaServer, items: Items) -> None:
    backend = open_endpoint(endpoint(llama_server, api="chat"))
    try:
        assert isinstance(backend, ChatBackend)
        answers = Answerer(backend, chat_settings(items)).answer(
            items.queries[:SHORT], items.labels, demos=items.demos[:2]
        )
    finally:
        backend.close()
    assert len(answers) == SHORT
    for answer in answers:
        assert answer.scores is not None, answer.text
        assert answer.predicted in items.labels
        assert set(answer.probs) == set(items.labels)
        assert sum(answer.probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert answer.text  # the reply's text is kept


def test_target_opens_the_hosted_backend(llama_server: LlamaServer, items: Items) -> None:
    target = Target(MODEL, base_url=llama_server.base_url, concurrency=1, attempts=2, timeout=120.0)
    assert target.hosted and target.describe()["endpoint"] == llama_server.base_url
    backend = open_target(target)
    try:
        assert isinstance(backend, CompletionsBackend) and backend.model_name == MODEL
        [answer] = Answerer(backend, items.settings).answer(items.queries[:1], items.labels, demos=items.demos)
    finally:
        backend.close()
    assert answer.predicted in items.labels and answer.scores is not None


# ------------------------------------------------------------------ c. faults a user meets
def test_server_down_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(EndpointError) as info:
        open_endpoint(Endpoint(url, MODEL, attempts=1, timeout=5.0))
    assert url in str(info.value)
    assert time.monotonic() - started < 30


def test_model_not_served_lists_the_served_ones(llama_server: LlamaServer) -> None:
    with pytest.raises(EndpointError) as info:
        open_endpoint(Endpoint(llama_server.base_url, "no-such-model", concurrency=1, attempts=1))
    message = str(info.value)
    assert "no-such-model" in message and MODEL in message


def test_unset_api_key_variable_is_named(llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    variable = "AMPLIFY_TEST_UNSET_KEY_VAR"
    monkeypatch.delenv(variable, raising=False)
    ep = endpoint(llama_server, api_key_env=variable)
    with pytest.raises(EndpointError, match=variable):
        ep.api_key()
    with pytest.raises(EndpointError, match=variable):
        open_endpoint(ep)
    monkeypatch.setenv(variable, "a-key-llama-cpp-ignores")
    backend = open_endpoint(ep)  # the server has no keys: any key is accepted
    backend.close()


def test_time_out_says_how_many_attempts(llama_server: LlamaServer, items: Items) -> None:
    backend = open_endpoint(endpoint(llama_server, timeout=0.001, attempts=2), check_model=False)
    started = time.monotonic()
    try:
        with pytest.raises(EndpointError) as info:
            Answerer(backend, items.settings).answer(items.queries[:1], items.labels)
    finally:
        backend.close()
    message = str(info.value)
    assert "2 attempt" in message and llama_server.base_url in message
    assert isinstance(info.value.__cause__, openai.APIConnectionError)
    assert time.monotonic() - started < 60


def test_reply_outside_the_label_space_is_reported(llama_server: LlamaServer, items: Items) -> None:
    labels = ["zebra-7", "quasar-9"]
    backend = open_endpoint(endpoint(llama_server, api="chat"))
    try:
        [answer] = Answerer(backend, chat_settings(items)).answer(items.queries[:1], labels)
        notes = list(backend.notes)  # type: ignore[attr-defined]
    finally:
        backend.close()
    assert set(answer.outside_top_k) == set(labels), answer.text
    # Every label outside the top-k: the bounds say nothing, so the reply's text decides, and it
    # names neither label.
    assert answer.scores is None and answer.predicted is None and answer.text
    assert any("outside the top-" in note for note in notes)


# ------------------------------------------------------------------ d. no log-probabilities
def test_server_ignoring_logprobs_falls_back_to_generation(proxy_factory: Any, items: Items) -> None:
    """A real server whose replies carry no log-probabilities (llama.cpp behind a proxy that drops
    the fields from requests, as servers that ignore them do): generation + the answer parser."""
    proxy = proxy_factory(strip_logprobs=True)
    backend = open_endpoint(Endpoint(proxy.base_url, MODEL, concurrency=1, attempts=2, timeout=120.0))
    assert isinstance(backend, CompletionsBackend)
    answerer = Answerer(backend, items.settings)
    try:
        first = answerer.answer(items.queries[:2], items.labels, demos=items.demos)
        second = answerer.answer(items.queries[2:SHORT], items.labels, demos=items.demos)
    finally:
        backend.close()
    assert backend.logprobs_available is False and backend.can_score is False
    fallback = [n for n in backend.notes if "no log-probabilities" in n]
    assert len(fallback) == 1 and proxy.base_url in fallback[0]
    for answer in [*first, *second]:
        assert answer.scores is None and answer.probs == {}
        assert answer.text is not None
        assert answer.predicted in (*items.labels, None)
    assert any(a.predicted in items.labels for a in [*first, *second])
    # One scoring try, then generation; the second call goes straight to generation.
    assert len(proxy.requests) == 2 + 2 + 1
    with pytest.raises(ValueError, match="calibration"):
        Answerer(backend, AnswerSettings(items.settings.style, calibration="contextual"))


def test_chat_server_ignoring_logprobs_parses_the_reply(proxy_factory: Any, items: Items) -> None:
    proxy = proxy_factory(strip_logprobs=True)
    backend = open_endpoint(Endpoint(proxy.base_url, MODEL, api="chat", concurrency=1, attempts=2, timeout=120.0))
    try:
        [answer] = Answerer(backend, chat_settings(items)).answer(items.queries[:1], items.labels)
        notes = list(backend.notes)  # type: ignore[attr-defined]
    finally:
        backend.close()
    assert answer.scores is None and answer.text is not None
    assert answer.predicted in (*items.labels, None)
    assert sum("no log-probabilities" in n for n in notes) == 1


@pytest.mark.slow
def test_server_refusing_logprobs_falls_back_to_generation(items: Items) -> None:
    # llama.cpp with --logits_all false answers a request for log-probabilities with HTTP 500: not
    # retried as transient, the backend answers by generation and the parser.
    with llama_server_process(extra_args=("--logits_all", "false")) as server:
        backend = open_endpoint(endpoint(server, attempts=3))
        try:
            [answer] = Answerer(backend, items.settings).answer(items.queries[:1], items.labels, demos=items.demos)
        finally:
            backend.close()
    assert answer.scores is None and answer.text is not None


# ------------------------------------------------------------------ e. the response cache
def test_response_cache_answers_the_second_pass(proxy_factory: Any, items: Items, tmp_path: Path) -> None:
    proxy = proxy_factory(strip_logprobs=False)  # counts the requests that reach the server
    cache = ResponseCache(tmp_path / "r.sqlite")
    ep = Endpoint(proxy.base_url, MODEL, concurrency=1, attempts=2, timeout=120.0)
    queries = items.queries[:SHORT]
    backend = open_endpoint(ep, cache=cache)
    assert isinstance(backend, CachedBackend)
    try:
        first = Answerer(backend, items.settings).answer(queries, items.labels, demos=items.demos)
        sent = len(proxy.requests)
        hits = cache.hits
        second = Answerer(backend, items.settings).answer(queries, items.labels, demos=items.demos)
    finally:
        backend.close()
    assert sent == SHORT and len(cache) == SHORT
    assert len(proxy.requests) == sent  # nothing reached the server
    assert cache.hits == hits + SHORT
    assert [(a.predicted, a.scores, a.outside_top_k) for a in second] == [
        (a.predicted, a.scores, a.outside_top_k) for a in first
    ]

    # A new process (a new backend on the same file) resumes from the cache too.
    reopened = ResponseCache(tmp_path / "r.sqlite")
    backend = open_endpoint(ep, cache=reopened)
    try:
        third = Answerer(backend, items.settings).answer(queries, items.labels, demos=items.demos)
    finally:
        backend.close()
        reopened.close()
        cache.close()
    assert len(proxy.requests) == sent and reopened.hits == SHORT
    assert [a.scores for a in third] == [a.scores for a in first]
