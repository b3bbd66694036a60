"""Module-level factories for the Ray build test: each Ray worker calls them to make its own
models and store (Ray pickles them by value, so the workers need not import this file)."""

from __future__ import annotations

from pathlib import Path

from amplify_agents.explainers.gradient import GradXInputExplainer
from amplify_agents.models.proxy import ProxyClassifier
from amplify_agents.stores import RationaleStore, ServerSettings
from amplify_agents.tasks import Task, load_task

TASK = "sports_understanding"


def task(bigbench_dir: Path) -> Task:
    return load_task(bigbench_dir / TASK)


def proxy(bigbench_dir: Path) -> ProxyClassifier:
    """MiniLM with a seeded, untrained head: the same weights in every process."""
    return ProxyClassifier.from_task(task(bigbench_dir), epochs=0, seed=0, progress=False)


def explainer(bigbench_dir: Path) -> GradXInputExplainer:
    """AMPLIFY's explainer: Grad×Input on the proxy (real forward and backward passes)."""
    return GradXInputExplainer(proxy(bigbench_dir), k=3)


def store(name: str, port: int) -> RationaleStore:
    return RationaleStore.server(name, connection=ServerSettings(port=port, timeout_s=30.0))
