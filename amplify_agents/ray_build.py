"""The builder's predict and explain stages on Ray Data, one model per worker (optional extra ``[ray]``).

A corpus too large for one process (KernelShap at 350 samples costs about 21 s per example on
two CPU cores) is built by a pool of Ray actors, each holding its own predictor and explainer
(a GPU per actor where Ray sees GPUs, CPU otherwise):

1. **predict**: the corpus, cut into chunks, goes through ``Dataset.map_batches`` over the
   workers; each returns its chunk's label probabilities;
2. **rank**: the driver ranks them with the same strategy, seed and label balance as
   :class:`~amplify_agents.builder.DemonstrationBuilder` (no model needed);
3. **explain and store**: the first candidates still needed, cut into the builder's own
   batches, go through the workers again; each worker explains its batch and writes it to
   the store (a Chroma server every worker reaches: :meth:`RationaleStore.server`) with the
   demonstrations' stable ids. Candidates whose explanation is unusable are replaced by the
   next ones in a further round, as the single-process walk does.

Because the ids, the ranking and the batches are the single-process build's, a Ray build gives
the same demonstrations (ids, rationales, metadata), and a stopped one resumes: stored ids are
counted, not explained again. Nothing here is used by the single-process path, which stays the
default. What each worker builds comes from a :class:`BuildRecipe` of picklable factories.

Example:
    >>> recipe = BuildRecipe(task, predictor=make_predictor, explainer=make_explainer,  # doctest: +SKIP
    ...                      store=partial(RationaleStore.server, "my-task", connection=ServerSettings(port=8000)))
    >>> report = RayBuilder(RayBuildSettings(workers=4)).run(recipe, pool)  # doctest: +SKIP
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amplify_agents.builder import (
    BuildConfig,
    BuildReport,
    DemonstrationBuilder,
    corpus_word_weights,
    open_build,
    rank_predictions,
)
from amplify_agents.errors import AmplifyError
from amplify_agents.explainers.base import Explainer
from amplify_agents.predictors import LabelPredictor, Prediction, predict_pool
from amplify_agents.stores import RationaleStore
from amplify_agents.tasks import Example, Task

__all__ = ["BuildRecipe", "RayBuildSettings", "RayBuilder"]

Factory = Callable[[], Any]
"""Called once in each worker, with no arguments."""


@dataclass(frozen=True)
class BuildRecipe:
    """What each worker builds for itself: the task, the settings, and picklable factories.

    A factory is called once in each worker, with no arguments; use module-level functions or
    ``functools.partial`` of them (Ray pickles them to the workers). A worker that Ray gave a GPU
    sees just that GPU: load models with ``device="auto"`` to use it.

    Attributes:
        task: the task (its name, labels and options are the demonstrations' ids).
        predictor: returns the :class:`~amplify_agents.predictors.LabelPredictor` whose mistakes
            select examples.
        explainer: returns the :class:`~amplify_agents.explainers.base.Explainer` that writes
            the rationales.
        store: returns the :class:`~amplify_agents.stores.RationaleStore` every worker writes to,
            e.g. ``partial(RationaleStore.server, name, connection=ServerSettings(...))``.
        config: the build's settings, as for :class:`DemonstrationBuilder`.
        model_id: recorded as the explained model (default: the explainer's model name).
        metadata: recorded in every demonstration's ``extra`` (not part of the ids).
    """

    task: Task
    predictor: Factory
    explainer: Factory
    store: Factory
    config: BuildConfig = BuildConfig()
    model_id: str | None = None
    metadata: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def builder(self) -> DemonstrationBuilder:
        """The single-process builder of these settings (each worker makes one)."""
        predictor: LabelPredictor = self.predictor()
        explainer: Explainer = self.explainer()
        store: RationaleStore = self.store()
        return DemonstrationBuilder(
            self.task,
            predictor,
            explainer,
            store,
            self.config,
            model_id=self.model_id,
            progress=False,
            metadata=self.metadata,
        )


@dataclass(frozen=True)
class RayBuildSettings:
    """How the Ray build spreads its work.

    Attributes:
        workers: actors, one model each (on a GPU each where Ray has GPUs and ``gpus_per_worker``
            is not 0).
        predict_chunk: examples per prediction task.
        cpus_per_worker: CPUs Ray reserves for each actor.
        gpus_per_worker: GPUs per actor; None: 1 when the cluster has GPUs, else 0.
        address: the Ray cluster to join (``ray.init(address=...)``); None: the one this process
            already joined, or a local one started for the build and stopped after it.
    """

    workers: int = 2
    predict_chunk: int = 32
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"RayBuildSettings.workers must be at least 1, got {self.workers}.")
        if self.predict_chunk < 1:
            raise ValueError(f"RayBuildSettings.predict_chunk must be at least 1, got {self.predict_chunk}.")


class _Worker:
    """One Ray actor: a builder of the recipe's settings, on this worker's device."""

    def __init__(self, recipe: BuildRecipe, word_weights: dict[str, float] | None) -> None:
        self.builder = recipe.builder()
        if self.builder.explainer.word_weights is None:  # as DemonstrationBuilder.start: the corpus's weights
            self.builder.word_weights = word_weights

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        out = [pickle.dumps(self._run(pickle.loads(payload))) for payload in rows["payload"]]
        return {"chunk": rows["chunk"], "payload": out}

    def _run(self, job: tuple[str, Any]) -> Any:
        kind, data = job
        if kind == "predict":
            return [(p.predicted, p.probs) for p in predict_pool(self.builder.predictor, data)]
        report = BuildReport(self.builder.task.name, self.builder.config.strategy, self.builder.config.n)
        report.seconds.update(explain=0.0, store=0.0)
        skeletons = [self.builder.skeleton(p, filled=filled) for p, filled in data]
        stored = self.builder.store.has([s.demo_id for s in skeletons])
        todo = []
        for pred, skel in zip((p for p, _ in data), skeletons):
            if skel.demo_id in stored:
                self.builder.count_stored(skel, report)
            else:
                todo.append((pred, skel))
        if todo:
            self.builder.explain_and_store(todo, report)
        return report


class RayBuilder:
    """Build a store with Ray Data: the predict and explain stages over a pool of workers.

    Args:
        settings: workers, chunk size, resources per worker, cluster address.
    """

    def __init__(self, settings: RayBuildSettings = RayBuildSettings()) -> None:
        self.settings = settings

    def run(self, recipe: BuildRecipe, examples: Sequence[Example] | None = None) -> BuildReport:
        """Build (or resume building) up to ``recipe.config.n`` demonstrations; the same report as
        :meth:`DemonstrationBuilder.run`."""
        try:
            import ray
        except ImportError as exc:  # the optional extra
            raise ImportError("RayBuilder needs Ray: pip install 'amplify-agents[ray]'.") from exc
        if recipe.config.strategy == "f-exp":
            raise AmplifyError(
                "The Ray build does not run strategy 'f-exp' (its ranking explains a candidate pool "
                "first): build it with DemonstrationBuilder, or pick another strategy."
            )
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.settings.address, include_dashboard=False, log_to_driver=False)
        try:
            return self._run(ray, recipe, examples)
        finally:
            if started:
                ray.shutdown()

    # ------------------------------------------------------------------ stages
    def _run(self, ray: Any, recipe: BuildRecipe, examples: Sequence[Example] | None) -> BuildReport:
        # The driver ranks as the single-process build does; it needs no model.
        corpus, report = open_build(recipe.task, recipe.config, examples)
        weights = corpus_word_weights(recipe.config, corpus)
        t = time.perf_counter()
        chunks = [
            corpus[i : i + self.settings.predict_chunk] for i in range(0, len(corpus), self.settings.predict_chunk)
        ]
        results = self._map(ray, recipe, weights, [("predict", c) for c in chunks])
        predictions = [
            Prediction(ex, predicted, probs)
            for chunk, result in zip(chunks, results)
            for ex, (predicted, probs) in zip(chunk, result, strict=True)
        ]
        report.predicted = len(predictions)
        report.seconds["predict"] = time.perf_counter() - t
        ranked = rank_predictions(recipe.task.name, recipe.config, predictions, report)

        queue = [(p, p.example.id in ranked.filled) for p in ranked.chosen]
        have, size = 0, recipe.config.batch_size
        while queue and have < recipe.config.n:
            # The next candidates still needed, in rank order and in the builder's batches; stored
            # ones count (a resumed build), unusable ones are replaced in the next round.
            take, queue = queue[: recipe.config.n - have], queue[recipe.config.n - have :]
            t = time.perf_counter()
            batches = [take[i : i + size] for i in range(0, len(take), size)]
            for part in self._map(ray, recipe, weights, [("explain", b) for b in batches]):
                _merge(report, part)
            have = len(report.demo_ids)
            report.seconds["explain"] += time.perf_counter() - t
        return report

    def _map(
        self, ray: Any, recipe: BuildRecipe, weights: dict[str, float] | None, jobs: list[tuple[str, Any]]
    ) -> list[Any]:
        """Run jobs on the worker pool, one job per row, results in job order."""
        if not jobs:
            return []
        gpus = self.settings.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
        rows = [{"chunk": i, "payload": pickle.dumps(job)} for i, job in enumerate(jobs)]
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * self.settings.workers))
        out = dataset.map_batches(
            _Worker,
            fn_constructor_args=(recipe, weights),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(self.settings.workers, len(rows))),
            num_cpus=self.settings.cpus_per_worker,
            num_gpus=gpus,
        ).take_all()
        by_chunk = {int(r["chunk"]): pickle.loads(r["payload"]) for r in out}
        return [by_chunk[i] for i in range(len(jobs))]


def _merge(report: BuildReport, part: BuildReport) -> None:
    report.explained += part.explained
    report.added.extend(part.added)
    report.skipped_existing.extend(part.skipped_existing)
    report.discarded.update(part.discarded)
    report.label_counts.update(part.label_counts)
    report.filled += part.filled
    report.seconds["store"] += part.seconds.get("store", 0.0)
