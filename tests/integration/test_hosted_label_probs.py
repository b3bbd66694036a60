"""The chain's hosted route gives label probabilities, against llama.cpp's server serving the Gemma GGUF.

The hosted models are LangChain's own ``OpenAI`` (completions, text form) and ``ChatOpenAI``
(chat form) pointed at ``python -m llama_cpp.server``; the chain asks them for top
log-probabilities and reads the labels off them with the answering path's reader. Checked
against the chain's local route (exact label scoring of the same model, de-quantised), the
project's completions :class:`Endpoint` (the same values), and, for the chat route, labels the
model never says (reported outside the top-k, no distribution).

The server answers one request at a time: batches run with ``max_concurrency=1``.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from langchain_openai import ChatOpenAI, OpenAI

from amplify_agents.answering import Endpoint
from amplify_agents.chains import RouteSettings, create_amplify_chain
from amplify_agents.prompts import PromptStyle
from amplify_agents.tasks import load_task

try:
    from .chain_fixtures import TASK, frame, selector, sports, store  # noqa: F401 - fixtures
    from .llama_server import LlamaServer
except ImportError:
    from chain_fixtures import TASK, frame, selector, sports, store  # noqa: F401 - fixtures
    from llama_server import LlamaServer

pytestmark = pytest.mark.timeout(600)

N_ITEMS = 8
CONFIDENT = 0.7  # the local route's top probability at or above which the hosted argmax must agree
ONE_AT_A_TIME = {"max_concurrency": 1}
NO_FALLBACK = RouteSettings(hosted_attempts=1, fallback_to_local=False)  # a hosted failure fails the test


@pytest.fixture(scope="module")
def queries(bigbench_dir) -> list[str]:
    task = load_task(bigbench_dir / TASK)
    return [e.input for e in task.split(seed=0, test=N_ITEMS).test.examples]


def completions_model(server: LlamaServer, **kwargs: Any) -> OpenAI:
    # max_tokens=2: enough to spell either label (" plausible", " impl" + "ausible"); a reply that
    # stops inside one (" impl") leaves that label's probability unread (reported in outside_top_k).
    return OpenAI(
        base_url=server.base_url,
        api_key="not-needed",
        model=server.model,
        temperature=0,
        max_tokens=2,
        max_retries=0,
        timeout=120,
        **kwargs,
    )


def chat_model(server: LlamaServer) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=server.base_url,
        api_key="not-needed",
        model=server.model,
        temperature=0,
        max_retries=0,
        timeout=120,
        # ChatOpenAI sends max_completion_tokens, which llama-cpp-python's server ignores.
        extra_body={"max_tokens": 8},
    )


@pytest.fixture(scope="module")
def text_runs(llama_server: LlamaServer, gemma, selector, sports, frame, queries) -> dict[str, Any]:  # noqa: F811
    # The papers' (x, r, y) layout: on these 8 items it gives the local route enough confident
    # answers (top probability >= CONFIDENT) to compare the routes on; the default (x, y, r) gives 2.
    chain = create_amplify_chain(
        selector,
        labels=list(sports.labels),
        style=PromptStyle(frame=frame, rationale_first=True),
        local=gemma,
        hosted=completions_model(llama_server),
        routing=NO_FALLBACK,
    )
    hosted = chain.with_config(configurable={"llm": "hosted"}).batch(queries, config=ONE_AT_A_TIME)
    return {"chain": chain, "hosted": hosted, "local": chain.batch(queries)}


def test_openai_completions_route_agrees_with_local_scoring(text_runs, sports) -> None:  # noqa: F811
    labels = list(sports.labels)
    pairs = list(zip(text_runs["hosted"], text_runs["local"], strict=True))
    for hosted, local in pairs:
        assert (hosted.route, hosted.fallback, local.route) == ("hosted", False, "local")
        assert hosted.prompt == local.prompt  # the same text prompt on both routes
        assert hosted.label_probs is not None, hosted.raw_text
        assert set(hosted.label_probs) == set(labels)
        assert sum(hosted.label_probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert hosted.outside_top_k == []  # both labels among the top-20 first tokens
        assert hosted.answer == max(hosted.label_probs, key=hosted.label_probs.get)
    confident = [(h, loc) for h, loc in pairs if max(loc.label_probs.values()) >= CONFIDENT]
    gaps = [abs(h.label_probs[labels[0]] - loc.label_probs[labels[0]]) for h, loc in pairs]
    print(
        f"\n[{N_ITEMS} items] confident (local p >= {CONFIDENT}): {len(confident)}; "
        f"argmax agreement on all {sum(h.answer == loc.answer for h, loc in pairs)}/{len(pairs)}; "
        f"|p hosted - p local| median {statistics.median(gaps):.3f}, max {max(gaps):.3f}"
    )
    assert len(confident) >= 3
    assert all(h.answer == loc.answer for h, loc in confident)
    # Q4_K_M weights against the de-quantised ones, and the hosted reader takes " impl" for
    # " implausible": small gaps (measured on 10 items: median 0.03, max 0.06).
    assert statistics.median(gaps) < 0.1
    assert max(gaps) < 0.2


def test_a_label_outside_the_top_k_is_reported(llama_server: LlamaServer, selector, sports, frame, queries) -> None:  # noqa: F811
    labels = list(sports.labels)
    # Only the generated token's own log-probability comes back: the other label is not among them.
    top1 = completions_model(llama_server, logprobs=1)
    chain = create_amplify_chain(selector, labels=labels, frame=frame, hosted=top1, routing=NO_FALLBACK)
    result = chain.invoke(queries[0])
    said = result.raw_text.strip()
    assert said in labels
    [other] = [lab for lab in labels if lab != said]
    assert result.outside_top_k == [other]
    # The label said is read exactly; the other's probability is only a bound (the smallest one listed).
    assert result.label_probs is not None and result.answer == said
    assert result.label_probs[other] <= result.label_probs[said]


def test_openai_route_agrees_with_the_endpoint(llama_server: LlamaServer, selector, sports, frame, queries) -> None:  # noqa: F811
    labels = list(sports.labels)
    endpoint = Endpoint(llama_server.base_url, llama_server.model, concurrency=1, attempts=2, timeout=120.0)
    via_endpoint = create_amplify_chain(selector, labels=labels, frame=frame, hosted=endpoint, routing=NO_FALLBACK)
    via_openai = create_amplify_chain(
        selector, labels=labels, frame=frame, hosted=completions_model(llama_server), routing=NO_FALLBACK
    )
    for query in queries[:3]:  # one right after the other: llama.cpp's prompt cache moves the last digits
        mine, theirs = via_endpoint.invoke(query), via_openai.invoke(query)
        assert mine.prompt == theirs.prompt
        assert mine.label_probs == pytest.approx(theirs.label_probs, abs=0.05)
        assert (mine.answer, mine.outside_top_k) == (theirs.answer, theirs.outside_top_k)


def test_chat_route_gives_label_probs(llama_server: LlamaServer, selector, sports, frame, queries) -> None:  # noqa: F811
    labels = list(sports.labels)
    # Gemma's chat format has no system role: the instruction goes in the user turn.
    style = PromptStyle(frame=frame, system_message=False)
    chat = chat_model(llama_server)
    chain = create_amplify_chain(selector, labels=labels, style=style, hosted=chat, routing=NO_FALLBACK)
    results = chain.batch(queries[:2], config=ONE_AT_A_TIME)
    read = [r for r in results if r.label_probs is not None]
    for result in results:
        assert (result.route, result.fallback) == ("hosted", False) and result.raw_text
        if result.label_probs is None:  # every label outside the top-k: no distribution, the text decided
            assert set(result.outside_top_k) == set(labels), result.raw_text
    assert read, [r.raw_text for r in results]  # the server returns top log-probabilities
    for result in read:
        assert set(result.label_probs) == set(labels)
        assert sum(result.label_probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert result.answer == max(result.label_probs, key=result.label_probs.get)
    # Labels the model never says: every one outside the top-k, reported, and no distribution.
    odd = chain.invoke({"input": queries[0], "labels": ["zebra-7", "quasar-9"]})
    assert odd.label_probs is None and odd.answer is None
    assert set(odd.outside_top_k) == {"zebra-7", "quasar-9"}


def test_chat_route_with_the_rationale_after_the_answer(
    llama_server: LlamaServer, selector, sports, frame, queries
) -> None:  # noqa: F811
    """(x, y, r) in chat form: each demonstration's assistant turn states the answer, then its
    rationale; the server's reply is read for label probabilities from the first answer cue."""
    labels = list(sports.labels)
    style = PromptStyle(frame=frame, system_message=False, rationale_first=False)
    chat = chat_model(llama_server)
    chain = create_amplify_chain(selector, labels=labels, style=style, hosted=chat, routing=NO_FALLBACK)
    result = chain.invoke(queries[0])
    assert (result.route, result.fallback) == ("hosted", False) and result.raw_text
    turns = [t for t in result.prompt.split("\nAI: ")[1:]]
    assert turns and all(t.startswith(style.answer_prefix) for t in turns), result.prompt
    # each answer line is followed by that demonstration's rationale
    rationales = [d["rationale"] for d in result.demonstrations]
    assert len(turns) == len(rationales) and all(r for r in rationales), result.prompt
    assert all(t.split("\n", 1)[1].startswith(r) for t, r in zip(turns, rationales)), result.prompt
    if result.label_probs is not None:
        assert set(result.label_probs) == set(labels)
        assert result.answer == max(result.label_probs, key=result.label_probs.get)
    else:  # every label outside the top-k: the text decided
        assert set(result.outside_top_k) == set(labels), result.raw_text
