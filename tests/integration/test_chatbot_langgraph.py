"""The LangGraph chatbot on the real Gemma and a real Chroma store: memory per thread, kept across a
restart by the SQLite checkpointer, and the chatbot example with deprecation warnings as errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from amplify_agents.chains import create_amplify_chatbot

try:
    from .chain_fixtures import QUERIES, frame, selector, sports, store  # noqa: F401 - fixtures
except ImportError:
    from chain_fixtures import QUERIES, frame, selector, sports, store  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(300)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# One turn of a chatbot whose conversations are in a SQLite file, in a process of its own.
ONE_TURN = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from chain_fixtures import make_selector, make_store, sports_frame, sports_task
from amplify_agents.chains import create_amplify_chatbot, sqlite_checkpointer
from amplify_agents.models import load_causal_lm

bigbench, store_dir, db, message = sys.argv[2:6]
task = sports_task(Path(bigbench))
store = make_store(Path(store_dir), "chatbot-demos", task)
bot = create_amplify_chatbot(
    load_causal_lm("gemma-3-270m"), make_selector(store, task), frame=sports_frame(task),
    labels=list(task.labels), checkpointer=sqlite_checkpointer(db), max_new_tokens=4,
)
cfg = {"configurable": {"thread_id": "fan"}}
reply = bot.invoke({"input": message}, cfg)
messages = [[m.type, m.content] for m in bot.get_state(cfg).values["messages"]]
print("RESULT " + json.dumps({"reply": reply, "messages": messages}))
"""


def one_turn(bigbench_dir: Path, tmp_path: Path, message: str) -> dict[str, Any]:
    args = [str(HERE), str(bigbench_dir), str(tmp_path / "chroma"), str(tmp_path / "state" / "chat.sqlite"), message]
    done = subprocess.run(
        [sys.executable, "-c", ONE_TURN, *args], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_a_new_process_continues_the_thread_from_the_sqlite_file(bigbench_dir: Path, tmp_path: Path, frame) -> None:  # noqa: F811
    one, two = list(QUERIES)
    first = one_turn(bigbench_dir, tmp_path, one)
    said = first["reply"]["output"]
    assert first["messages"] == [["human", one], ["ai", said]] and said
    second = one_turn(bigbench_dir, tmp_path, two)  # a restart: only the file is shared
    assert second["messages"] == [*first["messages"], ["human", two], ["ai", second["reply"]["output"]]]
    # The first process's turn is in the second process's prompt, right before the new message.
    prompt = second["reply"]["prompt"]
    assert f"{one}{frame.output_prefix} {said}\n{frame.input_prefix}{two}{frame.output_prefix}" in prompt
    assert second["reply"]["demonstrations"] and second["reply"]["demonstrations"] != first["reply"]["demonstrations"]


def test_threads_are_isolated_and_remember_their_own_turns(gemma, selector, frame, sports) -> None:  # noqa: F811
    saver = InMemorySaver()
    bot = create_amplify_chatbot(
        gemma, selector, frame=frame, labels=list(sports.labels), checkpointer=saver, max_new_tokens=4
    )
    one, two = list(QUERIES)
    alice, bob = ({"configurable": {"thread_id": name}} for name in ("alice", "bob"))
    a1 = bot.invoke({"input": one}, alice)
    b1 = bot.invoke({"input": two}, bob)
    a2 = asyncio.run(bot.ainvoke({"input": two}, alice))  # async, on the same checkpointer
    history = [(m.type, m.content) for m in bot.get_state(alice).values["messages"]]
    assert history == [("human", one), ("ai", a1["output"]), ("human", two), ("ai", a2["output"])]
    assert [(m.type, m.content) for m in bot.get_state(bob).values["messages"]] == [
        ("human", two),
        ("ai", b1["output"]),
    ]
    # Alice's second prompt holds her first turn; Bob's holds no turn of Alice's.
    assert f"{one}{frame.output_prefix} {a1['output']}\n" in a2["prompt"]
    assert one not in b1["prompt"].split(frame.input_prefix + two)[-1]
    assert b1["prompt"].count(frame.input_prefix) == len(b1["demonstrations"]) + 1  # demos + the message
    assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"alice", "bob"}


def test_chatbot_example_runs_with_deprecation_warnings_as_errors(bigbench_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "AMPLIFY_BIGBENCH_DIR": str(bigbench_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONWARNINGS", None)
    script = ROOT / "examples" / "03_chatbot.py"
    command = [sys.executable, "-W", "error::DeprecationWarning", str(script), "--quick"]
    done = subprocess.run(
        [*command, "--store-dir", str(tmp_path / "chroma")],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "--- history of thread 'alice' ---" in done.stdout and "thread 'bob' had 0 messages, now 2" in done.stdout
