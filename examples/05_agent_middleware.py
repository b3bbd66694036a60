"""Agent middleware: AMPLIFY demonstrations in every model call of a LangChain agent.

``langchain.agents.create_agent`` builds the agent; ``AmplifyMiddleware`` retrieves
demonstrations (with rationales) for the latest user message from the store and puts them into
the model request: appended to the system prompt (default) or as few-shot user/assistant
messages before the conversation. The agent's state never holds them. With ``feedback=`` the
agent's answers wait in a review queue, unverified.

The agent's chat model is the offline Gemma behind the project's local OpenAI-compatible
server, through ``ChatOpenAI`` (any chat model works: pass ``--base-url`` for a hosted one).

Run:
    python examples/05_agent_middleware.py [--quick]
    python examples/05_agent_middleware.py --base-url http://127.0.0.1:8000/v1 --model-name NAME
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from _common import add_common_args, build_demo_store, load_bigbench_task, pick_queries, store_directory
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from amplify_agents import (
    AmplifyExampleSelector,
    AmplifyMiddleware,
    AmplifyMiddlewareSettings,
    FeedbackLog,
    load_causal_lm,
)
from amplify_agents.serving import serve


class ShowRequest(BaseCallbackHandler):
    """Prints what the chat model receives."""

    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        for message in messages[0]:
            print(f"[{message.type}] {message.text}")


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible /v1 URL (default: a local one)")
    parser.add_argument("--model-name", default=None)
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "local-test-key"))
    args = parser.parse_args()
    n_demos, k = (4, 2) if args.quick else (12, args.k or 3)

    task = load_bigbench_task(args)
    [query] = pick_queries(task, 1, seed=5)
    directory = store_directory(args)
    store = build_demo_store(task, directory, n=n_demos, exclude=[query.input])
    selector = AmplifyExampleSelector(store, k=k, task=task.name)
    review = FeedbackLog(store, directory / "review.jsonl", task=task)

    server = None
    if args.base_url is None:
        server = serve(load_causal_lm(args.model), model_name="gemma-local", api_key=args.api_key)
    model = ChatOpenAI(
        base_url=args.base_url or server.base_url,
        api_key=args.api_key,
        model=args.model_name or "gemma-local",
        temperature=0,
        max_tokens=8 if args.quick else 32,
    )
    try:
        agent = create_agent(
            model,
            system_prompt=task.instruction.strip() or "Answer the question.",
            middleware=[AmplifyMiddleware(selector, feedback=review)],
        )
        print("=== request the model received (demonstrations in the system prompt) ===")
        state = agent.invoke({"messages": [{"role": "user", "content": query.input}]}, {"callbacks": [ShowRequest()]})
        print(f"agent answer: {state['messages'][-1].text.strip()!r} (gold {query.label})")
        print(f"agent state: {[m.type for m in state['messages']]} (no demonstrations in it)")

        few_shot = create_agent(
            model,
            system_prompt=task.instruction.strip() or "Answer the question.",
            middleware=[AmplifyMiddleware(selector, AmplifyMiddlewareSettings(placement="messages"))],
        )
        print("=== request the model received (few-shot messages) ===")
        state = few_shot.invoke(
            {"messages": [{"role": "user", "content": query.input}]}, {"callbacks": [ShowRequest()]}
        )
        print(f"few-shot agent answer: {state['messages'][-1].text.strip()!r}")
    finally:
        if server is not None:
            server.stop()

    pending = review.review_queue()
    print(f"review queue: {len(pending)} pending, first: {pending[0].query!r} -> {pending[0].answer!r}")


if __name__ == "__main__":
    main()
