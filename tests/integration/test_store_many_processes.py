"""Many processes, one store (issue #19): two selector processes and one builder share one
``chroma run`` server.

Real parts only: a ``chroma run`` server on 127.0.0.1, three processes started with the
"spawn" method (each imports the library afresh, as separate applications would), the store's
default offline MiniLM embeddings in every process. Each process is handed the same frozen
:class:`ServerSettings`, the one place for the connection settings (host, port, time-out,
retries, the name of the token variable), and opens the store itself; all three open it at
the same moment, before it exists.

The builder writes 6 batches of 5 demonstrations, then writes one batch again (a retried
write); after each write it waits until both selectors have selected again, so selections
really interleave with writes whatever the machine's speed. Each selector builds an
``AmplifyExampleSelector`` (similarity in one process, MMR in the other) and selects, in a
loop bounded in count and time, until a few selections after the builder is done. Every
selection must be a valid list of demonstrations, and none may raise; the store must end with
exactly the demonstrations written. Processes report through JSON files in ``tmp_path``.

This test found a race in chromadb 1.5.9: a query racing the first write to a new collection
can fail once ("Error creating hnsw segment reader: Nothing found on disk"). Server stores
retry that one error; the last test checks the retry without a server.
"""

# ruff: noqa: E402  (the environment is set before the imports that read it)
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import asyncio
import json
import multiprocessing
import pickle
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from chromadb.errors import InternalError

from amplify_agents.demonstrations import Demonstration
from amplify_agents.selectors import AmplifyExampleSelector, RetrievalSettings
from amplify_agents.stores import RationaleStore, ServerSettings
from amplify_agents.stores.connection import acall_with_retries, call_with_retries

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_store_server import HOST, checks, chroma_run  # (it registers store_fixtures' asserts)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # three processes load the MiniLM embeddings

TASK = "many-processes"
N_BATCHES, BATCH_SIZE = 6, 5
REWRITTEN_BATCH = 2  # written a second time, unchanged: a retried write
K = 4
SELECTORS = 2
TOKEN_ENV = "AMPLIFY_TEST_CHROMA_TOKEN"  # set here, read by each process when it connects
STARTUP_S = 150.0  # spawning, importing and loading MiniLM in three processes on a busy machine
LOOP_S = 60.0  # the longest a selector loops, and the builder waits for selections in all
MAX_SELECTS = 400
SELECTS_AFTER_DONE = 3
PHRASES = ("this morning", "said the weekly report", "in the small town", "for the first time", "as expected")
QUERIES = (
    "Who won the soccer match yesterday?",
    "How long should a loaf of bread stay in the oven?",
    "Why did the stock market drop when rates went up?",
    "What can astronomers see with a big telescope?",
    "When should I water my vegetables?",
    "Which instruments play in a symphony orchestra?",
)


def batches() -> list[list[Demonstration]]:
    """30 demonstrations with distinct inputs (6 topics x 5 phrasings), in 6 batches of 5."""
    topics = list(checks.TOPICS.items())
    demos = []
    for n in range(N_BATCHES * BATCH_SIZE):
        topic, text = topics[n % len(topics)]
        words = text.split()
        demos.append(
            Demonstration(
                input=f"{text.rstrip('.')} {PHRASES[n // len(topics)]}.",
                label=topic,
                rationale=f'The key words are: "{words[1]}", "{words[2]}".',
                task=TASK,
                keywords=words[1:3],
                explainer="self_topk",
                model_id="gemma-3-270m",
                strategy="success",
                k=2,
                template_id="key-words-v1",
                example_id=f"ex-{n}",
            )
        )
    return [demos[b * BATCH_SIZE : (b + 1) * BATCH_SIZE] for b in range(N_BATCHES)]


def _write_report(path: Path, report: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(report), encoding="utf-8")
    partial.replace(path)  # the parent never reads half a report


def _warm_up() -> None:
    """Load the MiniLM embeddings before the race, so the race is about the store."""
    from amplify_agents.stores import default_embeddings

    default_embeddings().embed_query("warm up")


# -- the child processes (module-level functions: "spawn" imports this module in each child) --


def builder_main(
    settings: ServerSettings, name: str, start: Any, done: Any, failed: Any, selects: Any, report_path: str
) -> None:
    report: dict[str, Any] = {
        "role": "builder",
        "writes": [],
        "interleaved": [],
        "error": None,
        "entered": time.monotonic(),
    }
    try:
        _warm_up()
        report["ready"] = time.monotonic()
        start.wait()
        store = RationaleStore.server(name, connection=settings)  # the default (lazy) MiniLM
        plan = [(b, batch) for b, batch in enumerate(batches())] + [(REWRITTEN_BATCH, batches()[REWRITTEN_BATCH])]
        deadline = time.monotonic() + LOOP_S  # for all the waits together
        for b, batch in plan:
            started = time.monotonic()
            ids = store.add(batch)
            report["writes"].append({"batch": b, "ids": ids, "started": started, "ended": time.monotonic()})
            # Let both selectors select at least once after this write (two completions: one
            # whole selection began after the write ended).
            before = selects[:]
            while not failed.is_set() and time.monotonic() < deadline:
                if all(now >= then + 2 for now, then in zip(selects[:], before)):
                    break
                time.sleep(0.01)
            report["interleaved"].append(all(now >= then + 2 for now, then in zip(selects[:], before)))
            if failed.is_set():
                break
        report["count"] = store.count()
        report["ids"] = sorted(d.demo_id for d in store.list())
    except BaseException:
        report["error"] = traceback.format_exc()
        failed.set()
        start.abort()  # the others stop waiting for this process
        raise
    finally:
        done.set()
        _write_report(Path(report_path), report)


def selector_main(
    index: int,
    settings: ServerSettings,
    name: str,
    start: Any,
    done: Any,
    failed: Any,
    selects: Any,
    report_path: str,
) -> None:
    report: dict[str, Any] = {"role": f"selector-{index}", "selects": [], "error": None, "entered": time.monotonic()}
    try:
        _warm_up()
        report["ready"] = time.monotonic()
        start.wait()
        store = RationaleStore.server(name, connection=settings)
        retrieval = RetrievalSettings(mmr=index % 2 == 1)
        deadline = time.monotonic() + LOOP_S
        after_done = 0
        for n in range(MAX_SELECTS):
            if failed.is_set() or time.monotonic() > deadline or after_done >= SELECTS_AFTER_DONE:
                break
            writing = not done.is_set()
            selector = AmplifyExampleSelector(store, k=K, task=TASK, retrieval=retrieval)
            examples = selector.select_examples({"input": QUERIES[(n + index) % len(QUERIES)]})
            report["selects"].append({"writing": writing, "ended": time.monotonic(), "examples": examples})
            with selects.get_lock():
                selects[index] += 1
            after_done += not writing
    except BaseException:
        report["error"] = traceback.format_exc()
        failed.set()
        start.abort()  # the others stop waiting for this process
        raise
    finally:
        _write_report(Path(report_path), report)


# -- the test ------------------------------------------------------------------------------


def _run(processes: list[multiprocessing.process.BaseProcess], within_s: float) -> None:
    """Join every process by a common deadline; kill the late ones (the test then fails)."""
    deadline = time.monotonic() + within_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(15)


def test_two_selector_processes_and_a_builder_share_one_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "token-from-the-environment")  # inherited by the children
    expected = {d.demo_id: d for batch in batches() for d in batch}
    batch_of = {d.demo_id: b for b, batch in enumerate(batches()) for d in batch}
    assert len(expected) == N_BATCHES * BATCH_SIZE

    with chroma_run(tmp_path) as (_, port):
        settings = ServerSettings(host=HOST, port=port, timeout_s=10.0, retries=2, token_env=TOKEN_ENV)
        assert b"token-from-the-environment" not in pickle.dumps(settings)  # a name travels, not a token
        name = checks.unique_name("many")
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(1 + SELECTORS, timeout=STARTUP_S)  # all three open the store at once
        done, failed = ctx.Event(), ctx.Event()
        selects = ctx.Array("i", SELECTORS)
        reports = {"builder": tmp_path / "builder.json"}
        reports.update({f"selector-{i}": tmp_path / f"selector-{i}.json" for i in range(SELECTORS)})
        common = (start, done, failed, selects)
        processes = {
            "builder": ctx.Process(
                target=builder_main, args=(settings, name, *common, str(reports["builder"])), name="builder"
            ),
            **{
                f"selector-{i}": ctx.Process(
                    target=selector_main,
                    args=(i, settings, name, *common, str(reports[f"selector-{i}"])),
                    name=f"selector-{i}",
                )
                for i in range(SELECTORS)
            },
        }
        started = time.monotonic()
        for process in processes.values():
            process.start()
        _run(list(processes.values()), STARTUP_S + LOOP_S + 30.0)
        elapsed = time.monotonic() - started

        # No child crashed, timed out or raised.
        got: dict[str, dict[str, Any]] = {}
        for role, process in processes.items():
            report = json.loads(reports[role].read_text(encoding="utf-8")) if reports[role].exists() else None
            error = report["error"] if report else "no report"
            assert process.exitcode == 0, f"{role} exited with {process.exitcode} after {elapsed:.0f} s: {error}"
            assert report is not None and report["error"] is None, (role, error)
            got[role] = report

        ends = [s["ended"] for r in got.values() for s in r.get("selects", [])] + [
            w["ended"] for w in got["builder"]["writes"]
        ]
        print(  # shown with -s: where the time went
            f"imports {max(r['entered'] for r in got.values()) - started:.1f} s, "
            f"models {max(r['ready'] - r['entered'] for r in got.values()):.1f} s, "
            f"race {max(ends) - max(r['ready'] for r in got.values()):.1f} s, "
            f"selections {[len(got[f'selector-{i}']['selects']) for i in range(SELECTORS)]}"
        )

        # The builder: every batch written, the rewritten one to the same ids, each followed by
        # selections in both selector processes.
        builder = got["builder"]
        writes = builder["writes"]
        assert [w["batch"] for w in writes] == [*range(N_BATCHES), REWRITTEN_BATCH]
        for w in writes:
            assert w["ids"] == [d.demo_id for d in batches()[w["batch"]]]
        assert all(builder["interleaved"]), builder["interleaved"]
        # The count is exactly the distinct demonstrations written, despite the second write.
        assert builder["count"] == len(expected)
        assert builder["ids"] == sorted(expected)
        first_write = {}
        for w in writes:
            first_write.setdefault(w["batch"], w["started"])

        # Each selector: only valid selections, many of them during the writes.
        for i in range(SELECTORS):
            selections = got[f"selector-{i}"]["selects"]
            assert sum(s["writing"] for s in selections) >= 2 * (N_BATCHES + 1), (i, len(selections))
            assert len(selections) <= MAX_SELECTS
            assert sum(not s["writing"] for s in selections) == SELECTS_AFTER_DONE, i
            seen_while_writing: set[str] = set()
            for s in selections:
                examples = s["examples"]
                assert len(examples) <= K, examples
                ids = [e["demo_id"] for e in examples]
                assert len(set(ids)) == len(ids), ids  # no duplicates
                for example in examples:
                    demo = expected.get(example["demo_id"])
                    assert demo is not None, f"selector-{i} returned an id that was never written: {example}"
                    for key in ("input", "answer", "rationale"):
                        assert isinstance(example[key], str) and example[key].strip(), (key, example)
                    assert (example["input"], example["answer"], example["rationale"]) == (
                        demo.input,
                        demo.label,
                        demo.rationale,
                    )
                    # Nothing is read before its write began.
                    assert s["ended"] >= first_write[batch_of[demo.demo_id]]
                if s["writing"]:
                    seen_while_writing.update(ids)
            assert seen_while_writing, i  # selections during the writes found demonstrations
            # Once the store is complete, a selection returns k demonstrations.
            assert all(len(s["examples"]) == K for s in selections if not s["writing"]), i

        # And a fresh store object in this process sees the same, exact count.
        store = RationaleStore.server(name, connection=settings)
        assert store.count() == len(expected)
        assert sorted(d.demo_id for d in store.list()) == sorted(expected)


# The race this test met (chromadb 1.5.9): a query that races the first write to a new
# collection fails once with this error, and the same query a moment later succeeds.
RACE = "Error executing plan: Internal error: Error creating hnsw segment reader: Nothing found on disk"


def test_the_first_write_race_is_retried_and_other_server_errors_are_not() -> None:
    settings = ServerSettings(port=9, retries=2)  # nothing is contacted
    attempts: list[int] = []

    def flaky(error: str, failures: int) -> Any:
        def call() -> str:
            attempts.append(1)
            if len(attempts) <= failures:
                raise InternalError(error)
            return "answer"

        return call

    assert call_with_retries(settings, "search", flaky(RACE, 2)) == "answer" and len(attempts) == 3
    attempts.clear()
    with pytest.raises(InternalError, match="Nothing found on disk"):  # it persists: raised as it is
        call_with_retries(settings, "search", flaky(RACE, 3))
    assert len(attempts) == 3
    attempts.clear()
    with pytest.raises(InternalError, match="Error loading hnsw index"):  # not known to pass: at once
        call_with_retries(settings, "search", flaky("Error loading hnsw index", 1))
    assert len(attempts) == 1

    attempts.clear()

    async def aflaky() -> str:
        return flaky(RACE, 1)()

    assert asyncio.run(acall_with_retries(settings, "search", aflaky)) == "answer" and len(attempts) == 2
