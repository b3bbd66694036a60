"""Local vs hosted routing: one AMPLIFY chain, two models, retries and a local fallback.

The chain answers with the local model (label scoring on the offline Gemma) by default;
``chain.with_config(configurable={"llm": "hosted"})`` sends the same query, with the same
retrieved demonstrations, to a hosted OpenAI-compatible chat model instead. The hosted model
is retried on transient errors and, if it keeps failing, the local model answers: the result
says which model answered (``route``, ``model``, ``fallback``).

Without ``--base-url`` the "hosted" model is the offline Gemma served by the project's own
OpenAI-compatible server (``amplify_agents.serving.serve``) on 127.0.0.1, and the script also
shows the fallback: the server is made to fail, then stopped.

Run:
    python examples/02_local_vs_hosted.py [--quick]
    python examples/02_local_vs_hosted.py --base-url http://127.0.0.1:8000/v1 --model-name NAME --api-key KEY
"""

from __future__ import annotations

import argparse
import os
import time

from _common import add_common_args, build_demo_store, load_bigbench_task, pick_queries, store_directory
from langchain_openai import ChatOpenAI

from amplify_agents import (
    AmplifyExampleSelector,
    AmplifyResult,
    Frame,
    RouteSettings,
    create_amplify_chain,
    load_causal_lm,
)
from amplify_agents.serving import serve


def show(label: str, result: AmplifyResult, seconds: float) -> None:
    fallback = " (fallback)" if result.fallback else ""
    print(
        f"{label:>8}: answer={result.answer!s:<12} route={result.route}{fallback} model={result.model} "
        f"time={seconds:.1f}s reply={result.raw_text.strip()[:60]!r}"
    )


def timed(chain, query: str) -> tuple[AmplifyResult, float]:  # noqa: ANN001 - any runnable
    started = time.perf_counter()
    result = chain.invoke(query)
    return result, time.perf_counter() - started


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible /v1 URL (default: start a local one)")
    parser.add_argument("--model-name", default=None, help="the hosted model's name")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "local-test-key"))
    parser.add_argument("--timeout", type=float, default=120.0, help="hosted request timeout (s)")
    args = parser.parse_args()
    n_demos, n_queries, k = (4, 1, args.k or 2) if args.quick else (12, 4, args.k or 4)

    task = load_bigbench_task(args)
    queries = pick_queries(task, n_queries)
    store = build_demo_store(task, store_directory(args), n=n_demos, exclude=[q.input for q in queries])
    selector = AmplifyExampleSelector(store, k=k, task=task.name)
    loaded = load_causal_lm(args.model)

    server = None
    if args.base_url is None:
        server = serve(loaded, model_name="gemma-hosted", api_key=args.api_key)
        print(f"started an OpenAI-compatible server for {loaded.name} at {server.base_url}")
    hosted = ChatOpenAI(
        base_url=args.base_url or server.base_url,
        api_key=args.api_key,
        model=args.model_name or (server.model_name if server else "gpt-4o-mini"),
        temperature=0,
        max_tokens=24 if args.quick else 48,
        timeout=args.timeout,
        max_retries=0,  # the chain retries (with_retry) and then falls back
    )
    chain = create_amplify_chain(
        selector,
        labels=list(task.labels),
        frame=Frame.from_task(task),
        local=loaded,
        hosted=hosted,
        routing=RouteSettings(hosted_attempts=2),
    )
    via_hosted = chain.with_config(configurable={"llm": "hosted"})

    try:
        for query in queries:
            print(f"\nquery: {query.input!r} (gold: {query.label})")
            show("local", *timed(chain, query.input))
            show("hosted", *timed(via_hosted, query.input))

        if server is not None:
            print("\nthe hosted server now fails every request (HTTP 500):")
            server.inject(fail_next_n=1_000)
            show("fallback", *timed(via_hosted, queries[0].input))
            print(f"server saw {server.stats['requests']} requests, {server.stats['failed']} failed")
            server.stop()
            print("the hosted server is stopped (port closed):")
            show("fallback", *timed(via_hosted, queries[0].input))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
