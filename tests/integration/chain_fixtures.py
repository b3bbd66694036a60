"""Shared pieces of the chain tests: a tiny real Chroma store of BIG-bench sports demos.

Six demonstrations of ``sports_understanding`` (three per label) with hand-written rationales,
stored in an embedded Chroma with the offline MiniLM; each test module builds its own store
under a temp dir (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amplify_agents.demonstrations import Demonstration
from amplify_agents.framing import Frame
from amplify_agents.selectors import AmplifyExampleSelector
from amplify_agents.stores import RationaleStore, default_embeddings
from amplify_agents.tasks import Task, load_task

TASK = "sports_understanding"

# Input (as in the task file) -> hand-written rationale; the labels come from the task.
RATIONALES: dict[str, str] = {
    "Jamal Murray was perfect from the line": (
        "Jamal Murray plays basketball, where free throws are taken from the line."
    ),
    "Sam Darnold passed the puck": "Sam Darnold is a football quarterback, but a puck belongs to hockey.",
    "Liam Hendricks hit a double in the World Series": (
        "Liam Hendricks plays baseball, and the World Series is baseball."
    ),
    "Draymond Green threw a touchdown": ("Draymond Green plays basketball, but touchdowns are thrown in football."),
    "Wayne Rooney shot from outside the eighteen": (
        "Wayne Rooney plays soccer, and the eighteen is the soccer penalty box."
    ),
    "Juan Soto shot from beyond the arc": "Juan Soto plays baseball; shooting beyond the arc is basketball.",
}

QUERIES = {
    "Malcolm Brogdon banked the shot in": "plausible",
    "Gareth Bale launched the half court shot": "implausible",
}


def sports_task(bigbench_dir: Path) -> Task:
    return load_task(bigbench_dir / TASK)


def sports_frame(task: Task) -> Frame:
    return Frame.from_task(task)


def sports_demos(task: Task) -> list[Demonstration]:
    by_input = {example.input: example for example in task.examples}
    demos = []
    for text, rationale in RATIONALES.items():
        example = by_input[text]
        demos.append(
            Demonstration(
                input=example.input,
                label=example.label,
                rationale=rationale,
                task=task.name,
                explainer="provided",
                strategy="manual",
                example_id=example.id,
            )
        )
    return demos


def make_store(directory: Path, name: str, task: Task) -> RationaleStore:
    store = RationaleStore.local(name, directory, embeddings=default_embeddings())
    store.add(sports_demos(task))
    return store


def make_selector(store: RationaleStore, task: Task, *, k: int = 2) -> AmplifyExampleSelector:
    return AmplifyExampleSelector(store, k=k, task=task.name)


@pytest.fixture(scope="module")
def sports(bigbench_dir: Path) -> Task:
    return sports_task(bigbench_dir)


@pytest.fixture(scope="module")
def frame(sports: Task) -> Frame:
    return sports_frame(sports)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, sports: Task) -> RationaleStore:
    return make_store(tmp_path_factory.mktemp("chain-chroma"), "chain-demos", sports)


@pytest.fixture(scope="module")
def selector(store: RationaleStore, sports: Task) -> AmplifyExampleSelector:
    return make_selector(store, sports)
