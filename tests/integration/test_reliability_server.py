"""The in-process OpenAI-compatible server refuses bad input before it costs anything (issue #15).

Real sockets on 127.0.0.1 against the real server over Gemma 3 270M: malformed and hostile
``Content-Length`` headers sent raw, an oversize body, idle and trickling sockets, more
connections than allowed, too many or too long prompts, a body nested too deeply. Every wait is
bounded (socket time-outs of a few seconds); no test sends more than a few hundred kilobytes.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from amplify_agents.limits import TextLimits
from amplify_agents.serving import ServerHandle, ServerLimits, serve

SERVED = "gemma-served"
LIMITS = ServerLimits(
    max_body_bytes=64 * 1024,
    max_prompts=2,
    read_timeout_s=2.0,
    max_connections=4,
    text=TextLimits(max_input_chars=2000),
)
CLIENT_WAIT_S = 6.0  # longer than the server's read time-out: a reply that never comes fails the test


@pytest.fixture
def server(gemma) -> Iterator[ServerHandle]:
    with serve(gemma, model_name=SERVED, limits=LIMITS) as handle:
        yield handle


def _connect(server: ServerHandle) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=CLIENT_WAIT_S)


def _read_reply(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP reply read off a raw socket (until EOF, bounded)."""
    data = b""
    deadline = time.monotonic() + CLIENT_WAIT_S
    while time.monotonic() < deadline and len(data) < 1 << 20:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _raw(server: ServerHandle, request: bytes) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(request)
        status, headers, body = _read_reply(sock)
    return status, headers, body, time.monotonic() - started


def _error(body: bytes) -> dict[str, object]:
    assert body.count(b"\n") == 1 and body.endswith(b"\n"), body  # one line of JSON
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"]
    return error


def _post(server: ServerHandle, payload: object, path: str = "/v1/completions") -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


POST = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
BODY = b'{"prompt": "Hello", "max_tokens": 1}'


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        (b"Content-Length: -1\r\n", 400, "not a non-negative integer"),
        (b"Content-Length: abc\r\n", 400, "not a non-negative integer"),
        (b"Content-Length: +37\r\n", 400, "not a non-negative integer"),
        (b"Content-Length: 1e3\r\n", 400, "not a non-negative integer"),
        (b"Content-Length: 37\r\nContent-Length: 5\r\n", 400, "Conflicting Content-Length"),
        (b"", 411, "Content-Length header is required"),
        (b"Transfer-Encoding: chunked\r\n", 411, "Chunked bodies are not supported"),
    ],
)
def test_bad_content_length_is_refused_at_once(server: ServerHandle, headers: bytes, status: int, says: str) -> None:
    # The body is sent but the socket is left open: a server reading "to the end" would hang here.
    got, reply_headers, body, elapsed = _raw(server, POST + headers + b"\r\n" + BODY)
    error = _error(body)
    assert got == status and says in str(error["message"]), error
    assert reply_headers.get("connection") == "close"
    assert elapsed < 3.0, elapsed  # answered, not read until the client gave up
    assert server.stats["requests"] == 0  # nothing reached the model


def test_oversize_body_gets_413_before_it_is_read(server: ServerHandle) -> None:
    declared = 60_000_000  # the 60 MB prompt; only the first 64 KB are ever sent
    got, _, body, elapsed = _raw(server, POST + f"Content-Length: {declared}\r\n\r\n".encode() + b"x" * 65536)
    error = _error(body)
    assert got == 413 and error["code"] == "request_too_large"
    assert f"{declared} bytes" in str(error["message"]) and str(LIMITS.max_body_bytes) in str(error["message"])
    assert elapsed < 3.0, elapsed


def test_idle_socket_is_closed_after_the_read_timeout(server: ServerHandle) -> None:
    started = time.monotonic()
    with _connect(server) as sock:
        assert sock.recv(1024) == b""  # the server hangs up; the client's own time-out would raise
    elapsed = time.monotonic() - started
    assert LIMITS.read_timeout_s - 0.5 < elapsed < LIMITS.read_timeout_s + 2.0, elapsed


def test_a_body_that_stops_arriving_gets_408(server: ServerHandle) -> None:
    with _connect(server) as sock:
        sock.sendall(POST + b"Content-Length: 1000\r\n\r\n" + BODY[:10])  # 10 of the 1000 bytes
        got, _, body = _read_reply(sock)
    assert got == 408 and _error(body)["code"] == "timeout"


def test_connections_over_the_limit_get_503_and_slots_come_back(server: ServerHandle) -> None:
    idle = [_connect(server) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.5)  # the server accepts the four and holds a thread for each
        got, headers, body, elapsed = _raw(server, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert got == 503 and _error(body)["code"] == "server_busy" and headers.get("retry-after") == "1"
        assert elapsed < 1.5, elapsed  # refused at once, not queued behind the idle ones
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)  # their threads see EOF and give their slots back
    got, _, body, _ = _raw(server, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert got == 200 and json.loads(body)["data"][0]["id"] == SERVED


def test_too_many_prompts_get_400_and_the_limit_is_served(server: ServerHandle) -> None:
    status, reply = _post(server, {"prompt": ["Hi"] * (LIMITS.max_prompts + 1), "max_tokens": 1})
    assert status == 400 and reply["error"]["param"] == "prompt", reply  # type: ignore[index]
    assert f"limit of {LIMITS.max_prompts}" in reply["error"]["message"]  # type: ignore[index]
    assert server.stats["completed"] == 0
    status, reply = _post(server, {"prompt": ["Hi"] * LIMITS.max_prompts, "max_tokens": 1, "temperature": 0})
    assert status == 200 and len(reply["choices"]) == LIMITS.max_prompts  # type: ignore[arg-type]


def test_prompt_over_the_text_limit_gets_400_naming_it(server: ServerHandle) -> None:
    status, reply = _post(server, {"prompt": ["Hi", "x" * 2001], "max_tokens": 1})
    error = reply["error"]
    assert status == 400 and error["code"] == "input_too_long", reply  # type: ignore[index]
    assert error["message"].startswith("prompt[1]: the input is 2,001 characters")  # type: ignore[index]
    chat = {"messages": [{"role": "user", "content": "y" * 2001}], "max_tokens": 1}
    status, reply = _post(server, chat, "/v1/chat/completions")
    assert status == 400 and reply["error"]["param"] == "messages"  # type: ignore[index]
    assert server.stats["completed"] == 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 50_000, "not valid JSON"),  # nested too deeply for json (was a RecursionError: 500)
        (b'{"prompt": "caf\xe9"}', "not UTF-8"),
        (b'{"prompt": ', "not valid JSON"),
    ],
)
def test_malformed_body_gets_400_not_500(server: ServerHandle, body: bytes, says: str) -> None:
    got, _, reply, _ = _raw(server, POST + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    error = _error(reply)
    assert got == 400 and says in str(error["message"]), error


def test_garbage_request_line_is_answered_in_json(server: ServerHandle) -> None:
    got, _, body, _ = _raw(server, b"GARBAGE\r\n\r\n")
    assert got == 400 and _error(body)["type"] == "invalid_request_error"


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_prompts"):
        ServerLimits(max_prompts=0)
    with pytest.raises(ValueError, match="read_timeout_s"):
        ServerLimits(read_timeout_s=0)
