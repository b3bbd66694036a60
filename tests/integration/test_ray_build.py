"""The builder on Ray Data (issue 19): a local Ray instance (2 CPUs, started and stopped here)
builds a small BIG-bench store into a real ``chroma run`` server, and gives the same
demonstration ids, rationales and metadata as the single-process build of the same settings;
a second run resumes (adds nothing)."""

# ruff: noqa: E402
from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the optional extra [ray] is not installed")

from amplify_agents.builder import BuildConfig, DemonstrationBuilder
from amplify_agents.ray_build import BuildRecipe, RayBuilder, RayBuildSettings

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray_recipe as factories
from test_store_server import chroma_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

N = 6
CONFIG = BuildConfig(strategy="error", n=N, seed=0, batch_size=2)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(factories)  # workers do not have tests/ on their path
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with chroma_run(tmp_path_factory.mktemp("ray-chroma")) as (_, server_port):
        yield server_port


def _recipe(bigbench_dir: Path, name: str, port: int) -> BuildRecipe:
    return BuildRecipe(
        factories.task(bigbench_dir),
        predictor=partial(factories.proxy, bigbench_dir),
        explainer=partial(factories.explainer, bigbench_dir),
        store=partial(factories.store, name, port),
        config=CONFIG,
        metadata={"built_by": "test"},
    )


def _extra(demo) -> dict:  # type: ignore[no-untyped-def]
    return {k: v for k, v in demo.extra.items() if k != "seconds"}  # how long its explanation took


def _content(store) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    return {
        d.demo_id: (
            d.input,
            d.label,
            d.rationale,
            tuple(d.keywords),
            d.explainer_settings,
            d.model_id,
            _extra(d),
            d.scores,
        )
        for d in store.list()
    }


def test_a_ray_build_equals_the_single_process_build_and_resumes(local_ray, port, bigbench_dir) -> None:
    pool = factories.task(bigbench_dir).split(seed=0, test=0, pool=40).pool.examples
    single = _recipe(bigbench_dir, "single-process", port)
    expected = DemonstrationBuilder(
        single.task,
        single.predictor(),
        single.explainer(),
        single.store(),
        CONFIG,
        progress=False,
        metadata=single.metadata,
    ).run(pool)
    assert len(expected.added) == N

    recipe = _recipe(bigbench_dir, "ray", port)
    report = RayBuilder(RayBuildSettings(workers=2, predict_chunk=16)).run(recipe, pool)
    assert ray.is_initialized()  # the build joined the test's instance and left it running
    assert sorted(report.added) == sorted(expected.added)
    assert (report.predicted, report.eligible, report.label_counts) == (
        expected.predicted,
        expected.eligible,
        expected.label_counts,
    )
    mine, theirs = _content(recipe.store()), _content(single.store())
    assert mine.keys() == theirs.keys()
    for demo_id, row in theirs.items():
        *same, scores = row
        assert list(mine[demo_id][:-1]) == same, demo_id
        numbers = {k: v for k, v in scores.items() if isinstance(v, float)}
        assert {k: v for k, v in mine[demo_id][-1].items() if k not in numbers} == {
            k: v for k, v in scores.items() if k not in numbers
        }
        assert {k: mine[demo_id][-1][k] for k in numbers} == pytest.approx(numbers, abs=1e-5), demo_id

    # Stopped or finished, a run again resumes: every id is found stored, nothing is explained.
    again = RayBuilder(RayBuildSettings(workers=1)).run(recipe, pool)
    assert (again.added, again.explained) == ([], 0)
    assert sorted(again.skipped_existing) == sorted(expected.added)
    assert recipe.store().count() == N


def test_the_ray_build_refuses_what_it_cannot_run(bigbench_dir) -> None:
    recipe = BuildRecipe(
        factories.task(bigbench_dir),
        predictor=object,
        explainer=object,
        store=object,
        config=BuildConfig(strategy="f-exp"),
    )
    with pytest.raises(Exception, match="f-exp"):
        RayBuilder().run(recipe, [])
    with pytest.raises(ValueError, match="workers"):
        RayBuildSettings(workers=0)
