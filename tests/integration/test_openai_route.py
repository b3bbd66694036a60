"""The hosted route against the in-project OpenAI-compatible server serving the real Gemma.

The server runs on 127.0.0.1 on a random free port; faults are injected server-side (500s,
delays past the client's timeout) or by stopping it (port closed). Every wait is bounded:
client timeouts, ``max_retries=0`` on the client (retries belong to the chain), no back-off
jitter, and a per-test timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAI

from amplify_agents.chains import RouteSettings, create_amplify_chain
from amplify_agents.serving import ServerHandle, serve

try:
    from .chain_fixtures import QUERIES, frame, selector, sports, store  # noqa: F401 - fixtures
except ImportError:
    from chain_fixtures import QUERIES, frame, selector, sports, store  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(240)

SERVED = "hosted-gemma"  # served under its own name so results show which model answered
QUERY = next(iter(QUERIES))


@pytest.fixture
def server(gemma) -> Iterator[ServerHandle]:
    with serve(gemma, model_name=SERVED, api_key="test") as handle:
        yield handle


def chat_model(server: ServerHandle, *, timeout: float = 120.0, max_tokens: int = 24) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=server.base_url,
        api_key="test",
        model=SERVED,
        max_retries=0,
        timeout=timeout,
        temperature=0,
        max_tokens=max_tokens,
    )


def make_chain(gemma, selector, sports, frame, hosted, *, attempts: int = 3):  # noqa: F811
    chain = create_amplify_chain(
        selector,
        labels=list(sports.labels),
        frame=frame,
        local=gemma,
        hosted=hosted,
        routing=RouteSettings(hosted_attempts=attempts, retry_jitter=False),  # no back-off waits in tests
    )
    return chain.with_config(configurable={"llm": "hosted"})


def test_official_client_parses_every_endpoint(server: ServerHandle) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=120)
    assert [m.id for m in client.models.list().data] == [SERVED]
    done = client.completions.create(
        model=SERVED, prompt="Q: What is the capital of France?\nA:", max_tokens=3, temperature=0, logprobs=2
    )
    choice = done.choices[0]
    assert choice.text and choice.finish_reason in ("length", "stop")
    assert len(choice.logprobs.tokens) == len(choice.logprobs.token_logprobs) == len(choice.logprobs.top_logprobs)
    assert "".join(choice.logprobs.tokens) == choice.text
    assert all(len(top) == 2 and max(top.values()) <= 0 for top in choice.logprobs.top_logprobs)
    assert done.usage.completion_tokens == len(choice.logprobs.tokens) and done.usage.prompt_tokens > 5
    stopped = client.completions.create(model=SERVED, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[","])
    assert "," not in stopped.choices[0].text and stopped.choices[0].finish_reason == "stop"
    chat = client.chat.completions.create(
        model=SERVED,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of France?"},
        ],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=1,
    )
    assert chat.choices[0].message.role == "assistant" and chat.choices[0].message.content
    assert chat.choices[0].logprobs.content[0].top_logprobs[0].logprob <= 0
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0, timeout=30).models.list()


def test_hosted_chat_route_answers(server: ServerHandle, gemma, selector, sports, frame) -> None:  # noqa: F811
    chain = make_chain(gemma, selector, sports, frame, chat_model(server))
    result = chain.invoke(QUERY)
    assert (result.route, result.model, result.fallback) == ("hosted", SERVED, False)
    assert result.raw_text
    # ChatOpenAI is asked for top log-probabilities: the label distribution is read after the answer cue.
    assert result.label_probs is not None and set(result.label_probs) == set(sports.labels)
    assert abs(sum(result.label_probs.values()) - 1) < 1e-6
    assert result.answer in (*sports.labels, None)  # a base model behind a transcript may not say a label
    assert "System: " + frame.instruction.strip() in result.prompt and "The answer is" in result.prompt
    assert server.stats == {"requests": 1, "failed": 0, "completed": 1}


def test_hosted_completions_route_uses_the_text_form(server: ServerHandle, gemma, selector, sports, frame) -> None:  # noqa: F811
    completions = OpenAI(
        base_url=server.base_url,
        api_key="test",
        model=SERVED,
        max_retries=0,
        timeout=120,
        temperature=0,
        max_tokens=4,
    )
    result = make_chain(gemma, selector, sports, frame, completions).invoke(QUERY)
    local = (
        make_chain(gemma, selector, sports, frame, completions).with_config(configurable={"llm": "local"}).invoke(QUERY)
    )
    assert (result.route, result.fallback) == ("hosted", False)
    assert result.prompt == local.prompt  # the same text prompt as the local route
    assert result.answer in sports.labels  # greedy Gemma follows the demos' "Plausible/implausible? <label>"


def test_server_errors_are_retried(server: ServerHandle, gemma, selector, sports, frame) -> None:  # noqa: F811
    server.inject(fail_next_n=2)
    result = make_chain(gemma, selector, sports, frame, chat_model(server), attempts=3).invoke(QUERY)
    assert (result.route, result.model, result.fallback) == ("hosted", SERVED, False)
    assert server.stats == {"requests": 3, "failed": 2, "completed": 1}


def test_persistent_errors_fall_back_to_local(server: ServerHandle, gemma, selector, sports, frame) -> None:  # noqa: F811
    server.inject(fail_next_n=100)
    result = make_chain(gemma, selector, sports, frame, chat_model(server), attempts=2).invoke(QUERY)
    assert (result.route, result.model, result.fallback) == ("local", gemma.name, True)
    assert result.answer in sports.labels and result.label_probs is not None
    assert server.stats["requests"] == 2 and server.stats["completed"] == 0


def test_timeout_falls_back_to_local(server: ServerHandle, gemma, selector, sports, frame) -> None:  # noqa: F811
    server.inject(delay_s=30)
    started = time.monotonic()
    result = make_chain(gemma, selector, sports, frame, chat_model(server, timeout=1.0), attempts=2).invoke(QUERY)
    elapsed = time.monotonic() - started
    assert (result.route, result.fallback) == ("local", True)
    assert server.stats["requests"] == 2 and server.stats["completed"] == 0
    assert elapsed < 25, elapsed  # two 1 s timeouts and a local answer, not the 30 s delay


def test_server_down_falls_back_to_local(gemma, selector, sports, frame) -> None:  # noqa: F811
    handle = serve(gemma, model_name=SERVED)
    hosted = chat_model(handle, timeout=10.0)
    handle.stop()  # the port is closed now
    result = make_chain(gemma, selector, sports, frame, hosted, attempts=2).invoke(QUERY)
    assert (result.route, result.model, result.fallback) == ("local", gemma.name, True)


def test_refuses_non_loopback_hosts(gemma) -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve(gemma, host="0.0.0.0")
