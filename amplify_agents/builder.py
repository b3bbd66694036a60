"""The offline half of AMPLIFY / Self-AMPLIFY: a labelled corpus in, a rationale store out.

corpus → predictions → selection → explanations → rationales → store, with a progress
bar per stage and a :class:`BuildReport` at the end.

The build is resumable and idempotent. Every demonstration's id is known before it is
explained (it depends on task, input, label, explainer and its settings, model,
strategy, k and template, see :attr:`Demonstration.demo_id`), so ids already in the
store are skipped, and each batch is written as soon as it is explained: a build
killed half-way loses at most the batch in flight, and a finished build re-run adds
nothing. A different explainer or ``k`` gives different ids: new demonstrations beside
the old ones, never a silent overwrite.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from tqdm.auto import tqdm

from amplify_agents.defaults import DEFAULTS
from amplify_agents.demonstrations import Demonstration
from amplify_agents.errors import AmplifyError, InputTooLongError
from amplify_agents.explainers.base import Explainer, Explanation
from amplify_agents.explainers.words import document_frequency_weights, split_words
from amplify_agents.predictors import LabelPredictor, Prediction, name_too_long, predict_pool
from amplify_agents.rationales import RationaleTemplate, demonstration_skeleton, template_for, write_rationale
from amplify_agents.stores import RationaleStore
from amplify_agents.strategies import Selection, Strategy, select_by_strategy
from amplify_agents.tasks import Example, Task

__all__ = [
    "BuildConfig",
    "BuildReport",
    "DemonstrationBuilder",
    "corpus_word_weights",
    "open_build",
    "rank_predictions",
    "remove_words",
]


def remove_words(text: str, words: Sequence[str]) -> str:
    """``text`` without every occurrence of ``words`` (case-insensitive, whole words)."""
    drop = {w.lower() for w in words}
    out, last = [], 0
    for w in split_words(text):
        if w.text.lower() in drop:
            out.append(text[last : w.start])
            last = w.end
    out.append(text[last:])
    return " ".join("".join(out).split())


@dataclass(frozen=True)
class BuildConfig:
    """How to build.

    Attributes:
        strategy: selection strategy (see :mod:`amplify_agents.strategies`).
        n: how many demonstrations to end up with (stored ones count).
        seed: seeds selection order.
        balanced: take gold labels in turn (on by default).
        template: rationale template or its id; None picks the explainer family's own
            (:func:`~amplify_agents.rationales.template_for`).
        on_short: "proceed" (default) with fewer demonstrations than ``n`` when too few
            are eligible, or "fail" before writing anything.
        fexp_candidates: for ``f-exp``, how many candidates to explain and rank (default 4n).
        batch_size: examples explained, and written, per batch.
        df_filter: down-weight keywords by their document frequency over the corpus
            (see :func:`document_frequency_weights`); on by default.
        min_df: words in at least this fraction of the corpus's inputs are down-weighted.
    """

    strategy: Strategy | str = DEFAULTS.strategy
    n: int = DEFAULTS.demonstrations
    seed: int = 0
    balanced: bool = True
    template: str | RationaleTemplate | None = None
    on_short: Literal["proceed", "fail"] = "proceed"
    fexp_candidates: int | None = None
    batch_size: int = 4
    df_filter: bool = True
    min_df: float = 0.5


@dataclass
class BuildReport:
    """What a build did: counts per stage, what was discarded and why, time per stage."""

    task: str
    strategy: str
    requested: int
    examples: int = 0
    predicted: int = 0
    eligible: int = 0
    explained: int = 0
    added: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    discarded: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    label_counts: Counter[str] = field(default_factory=Counter)
    filled: int = 0
    """Demonstrations (stored now or before) taken outside the strategy to balance labels."""

    @property
    def demo_ids(self) -> list[str]:
        """Ids of all demonstrations this build stands for (added now or found stored)."""
        return self.skipped_existing + self.added

    @property
    def short(self) -> bool:
        return len(self.demo_ids) < self.requested

    def rows(self) -> list[tuple[str, int, float]]:
        """The stages as (name, count, seconds), in pipeline order: what every rendering shows."""
        return [
            ("examples", self.examples, self.seconds.get("load", 0.0)),
            ("predicted", self.predicted, self.seconds.get("predict", 0.0)),
            (f"eligible ({self.strategy})", self.eligible, self.seconds.get("select", 0.0)),
            ("label-balance fill", self.filled, 0.0),
            ("explained", self.explained, self.seconds.get("explain", 0.0)),
            ("stored (new)", len(self.added), self.seconds.get("store", 0.0)),
            ("already stored", len(self.skipped_existing), 0.0),
        ]

    def table(self) -> str:
        """A plain-text summary, one stage per line."""
        lines = [f"{'stage':<26}{'count':>7}{'seconds':>10}"]
        lines += [f"{name:<26}{count:>7}{secs:>10.1f}" for name, count, secs in self.rows()]
        for reason, count in sorted(self.discarded.items()):
            lines.append(f"discarded: {reason} ({count})")
        lines.append(f"labels: {dict(self.label_counts)}; requested {self.requested}, have {len(self.demo_ids)}")
        return "\n".join(lines)


def corpus_word_weights(config: BuildConfig, corpus: Sequence[Example]) -> dict[str, float] | None:
    """The keyword-ranking weights of a build over ``corpus`` (None without ``config.df_filter``)."""
    if not config.df_filter:
        return None
    return document_frequency_weights((e.input for e in corpus), min_df=config.min_df)


def open_build(
    task: Task, config: BuildConfig, examples: Sequence[Example] | None = None
) -> tuple[list[Example], BuildReport]:
    """The corpus (``examples``, else the task's) and an empty report; refuses an empty corpus."""
    corpus = list(examples if examples is not None else task.examples)
    if not corpus:
        raise AmplifyError(f"Nothing to build: the corpus of task {task.name!r} is empty.")
    return corpus, BuildReport(task.name, config.strategy, config.n, examples=len(corpus))


def rank_predictions(
    task_name: str,
    config: BuildConfig,
    predictions: Sequence[Prediction],
    report: BuildReport,
    *,
    faithfulness: dict[str, float] | None = None,
) -> Selection:
    """Rank every eligible prediction by the build's strategy, recording the counts in ``report``.

    Raises:
        AmplifyError: fewer than ``config.n`` are eligible and ``config.on_short`` is "fail".
    """
    t = time.perf_counter()
    ranked = select_by_strategy(
        predictions,
        config.strategy,
        len(predictions),
        seed=config.seed,
        balanced=config.balanced,
        faithfulness=faithfulness,
    )
    report.eligible = ranked.eligible
    report.discarded.update(ranked.discarded)
    report.seconds["select"] = time.perf_counter() - t
    report.seconds.setdefault("explain", 0.0)
    report.seconds.setdefault("store", 0.0)
    if ranked.eligible < config.n and config.on_short == "fail":
        raise AmplifyError(
            f"Strategy {config.strategy!r} found {ranked.eligible} eligible examples of {config.n} requested "
            f"in task {task_name!r}; nothing was written. Pass on_short='proceed' to build with fewer."
        )
    return ranked


class DemonstrationBuilder:
    """Build rationale-annotated demonstrations of a task into a :class:`RationaleStore`.

    Args:
        task: the task (its examples are the corpus unless :meth:`run` gets others).
        predictor: gives label probabilities for selection (the SLM or a proxy).
        explainer: writes the rationales.
        store: where demonstrations go.
        config: strategy, n, template, ...
        model_id: recorded as the explained model; defaults to the explainer's model name.
        metadata: recorded in every demonstration's ``extra`` (e.g. the target model and the
            proxy's training split); not part of the ids.

    Example:
        >>> builder = DemonstrationBuilder(task, SLMPredictor(gemma, task.labels), explainer, store,
        ...                                BuildConfig(strategy="error", n=8))
        >>> report = builder.run(splits.pool.examples)
        >>> print(report.table())
    """

    def __init__(
        self,
        task: Task,
        predictor: LabelPredictor,
        explainer: Explainer,
        store: RationaleStore,
        config: BuildConfig = BuildConfig(),
        *,
        model_id: str | None = None,
        progress: bool = True,
        on_batch_stored: Callable[[list[str]], None] | None = None,
        metadata: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        self.task = task
        self.predictor = predictor
        self.explainer = explainer
        self.store = store
        self.config = config
        self.template = template_for(explainer, config.template)
        loaded = getattr(explainer, "loaded", None)
        self.model_id: str = model_id or str(loaded.name if loaded is not None else getattr(predictor, "model_id", ""))
        self.progress = progress
        self.on_batch_stored = on_batch_stored
        self.metadata = dict(metadata or {})
        #: the keyword-ranking weights of the current run (document frequencies over its corpus)
        self.word_weights: dict[str, float] | None = explainer.word_weights

    # ------------------------------------------------------------------ pieces
    def skeleton(self, prediction: Prediction, *, filled: bool = False) -> Demonstration:
        """The demonstration an example will become, without its rationale: its id is final.

        ``filled`` marks an example added only to balance labels (``scores["balance_fill"]``).
        """
        scores = prediction.scores()
        if filled:
            scores["balance_fill"] = True
        return demonstration_skeleton(
            self.explainer,
            self.template,
            input=prediction.example.input,
            label=prediction.example.label,
            task=self.task.name,
            strategy=self.config.strategy,
            model_id=self.model_id,
            example_id=prediction.example.id,
            scores=scores,
            word_weights=self.word_weights,
        )

    def render(self, skeleton: Demonstration, explanation: Explanation, faithfulness: float | None) -> Demonstration:
        """Fill a skeleton with the rationale written from ``explanation``."""
        extra = dict(self.metadata)
        if self.word_weights:  # what inspect --explain needs to reproduce the keywords
            extra["word_weights"] = json.dumps(self.word_weights, sort_keys=True)
        demo = write_rationale(skeleton, explanation, self.template, extra=extra)
        if faithfulness is None:
            return demo
        return replace(demo, scores={**demo.scores, "faithfulness": round(faithfulness, 6)})

    def explain(self, texts: Sequence[str], labels: Sequence[str]) -> list[Explanation]:
        """Explain (text, gold label) pairs with this build's word weights."""
        return self.explainer.explain(texts, labels, word_weights=self.word_weights)

    def faithfulness(self, explanations: Sequence[Explanation]) -> list[float | None]:
        """Drop of p(gold) when the explanation's top words are removed from the input."""
        usable = [e for e in explanations if e.top_words]
        if not usable:
            return [None] * len(explanations)
        texts = [e.text for e in usable] + [remove_words(e.text, e.top_words) or e.text for e in usable]
        probs = self.predictor.predict_proba(texts)
        drops = {
            id(e): probs[i].get(e.target, 0.0) - probs[i + len(usable)].get(e.target, 0.0) for i, e in enumerate(usable)
        }
        return [drops.get(id(e)) for e in explanations]

    # --------------------------------------------------------------------- run
    def run(self, examples: Sequence[Example] | None = None) -> BuildReport:
        """Build (or resume building) up to ``config.n`` demonstrations; return the report."""
        corpus, report = self.start(examples)
        t = time.perf_counter()
        # The target's predictions are kept beside a persistent store: a re-run predicts nothing again.
        cache_dir = self.store.directory / ".amplify" / "predictions" if self.store.directory else None
        predictions = predict_pool(self.predictor, corpus, progress=self.progress, cache_dir=cache_dir)
        report.predicted = len(predictions)
        report.seconds["predict"] = time.perf_counter() - t
        ranked = self.rank(predictions, report)

        skeletons = [self.skeleton(p, filled=p.example.id in ranked.filled) for p in ranked.chosen]
        stored = self.store.has([s.demo_id for s in skeletons])
        bar = tqdm(
            total=min(self.config.n, len(skeletons)), desc=f"explain ({self.explainer.name})", disable=not self.progress
        )
        queue = list(zip(ranked.chosen, skeletons))
        have = 0
        while queue and have < self.config.n:
            batch: list[tuple[Prediction, Demonstration]] = []
            while queue and have + len(batch) < self.config.n and len(batch) < self.config.batch_size:
                pred, skel = queue.pop(0)
                if skel.demo_id in stored:
                    self.count_stored(skel, report)
                    have += 1
                    bar.update(1)
                else:
                    batch.append((pred, skel))
            if batch:
                have += self.explain_and_store(batch, report)
                bar.n = have
                bar.refresh()
        bar.close()
        return report

    # The stages of :meth:`run`, also driven one by one by a distributed build
    # (:mod:`amplify_agents.ray_build`), so both give the same demonstrations.
    def start(self, examples: Sequence[Example] | None = None) -> tuple[list[Example], BuildReport]:
        """The corpus and an empty report; sets this run's keyword weights from the corpus."""
        corpus, report = open_build(self.task, self.config, examples)
        if self.explainer.word_weights is None:  # passed to each explain call, never set on the caller's explainer
            self.word_weights = corpus_word_weights(self.config, corpus)
        return corpus, report

    def rank(self, predictions: list[Prediction], report: BuildReport) -> Selection:
        """Rank every eligible example by the strategy (the walk stops once ``n`` are stored)."""
        faith_scores = self._rank_faithfulness(predictions, report) if self.config.strategy == "f-exp" else None
        return rank_predictions(self.task.name, self.config, predictions, report, faithfulness=faith_scores)

    @staticmethod
    def count_stored(skeleton: Demonstration, report: BuildReport) -> None:
        """Count a demonstration found already stored (a resumed build)."""
        report.skipped_existing.append(skeleton.demo_id)
        report.label_counts[skeleton.label] += 1
        report.filled += bool(skeleton.scores.get("balance_fill"))

    def _rank_faithfulness(self, predictions: list[Prediction], report: BuildReport) -> dict[str, float]:
        pool = select_by_strategy(
            predictions, "random", self.config.fexp_candidates or 4 * self.config.n, seed=self.config.seed
        ).chosen
        explanations = self._explain_examples([p.example for p in pool])
        scores = self.faithfulness(explanations)
        return {p.example.id: s for p, s in zip(pool, scores) if s is not None}

    def _explain_examples(self, examples: Sequence[Example]) -> list[Explanation]:
        """Explain examples with their gold labels; an over-long one is named in the error."""

        def explain(batch: Sequence[Example]) -> list[Explanation]:
            return self.explain([e.input for e in batch], [e.label for e in batch])

        try:
            return explain(examples)
        except InputTooLongError as exc:
            # The batches before this one are stored: a re-run after fixing the row resumes.
            raise name_too_long(exc, examples, explain) from exc

    def explain_and_store(self, batch: Sequence[tuple[Prediction, Demonstration]], report: BuildReport) -> int:
        """Explain a batch of not-yet-stored skeletons, write the usable ones; how many were stored."""
        t = time.perf_counter()
        explanations = self._explain_examples([p.example for p, _ in batch])
        faith = self.faithfulness(explanations) if not self.template.needs_explanation else [None] * len(batch)
        report.seconds["explain"] += time.perf_counter() - t
        report.explained += len(batch)
        demos = []
        for (_, skel), exp, f in zip(batch, explanations, faith):
            if not exp.ok:
                report.discarded[f"unusable explanation: {exp.degenerate or 'no keywords'}"] += 1
                continue
            demos.append(self.render(skel, exp, f))
        t = time.perf_counter()
        if demos:
            ids = self.store.add(demos)
            report.added.extend(ids)
            for d in demos:
                report.label_counts[d.label] += 1
                report.filled += bool(d.scores.get("balance_fill"))
            if self.on_batch_stored is not None:
                self.on_batch_stored(ids)
        report.seconds["store"] += time.perf_counter() - t
        return len(demos)
