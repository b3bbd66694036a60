"""The improvement loop: evaluate on validation, explain the errors, add them, repeat.

:func:`improve_store` runs Self-AMPLIFY's idea as a loop over a labelled validation split:

1. **evaluate**: every validation item is label-scored by the SLM with demonstrations
   from the store, retrieved per item by :class:`~amplify_agents.selectors.AmplifyExampleSelector`
   (``demo_setting="retrieved"``) or one label-balanced set per round (``"fixed"``).
   An item is never shown its own demonstration (filtered by example id and input
   text), so adding an item cannot make it "correct" by copying its label;
2. **record** accuracy, balanced accuracy and the predicted-label distribution;
3. **stop** when accuracy has not improved by more than ``min_delta`` over the best so
   far for ``patience`` rounds, or when there is nothing left to add;
4. **add** up to ``n_per_round`` of the round's errors (``strategy="error"``, or the most
   confidently wrong first with ``"h-mcs"``), label-balanced, each explained for its gold
   label by the explainer and stored as a demonstration. Only items with verified gold
   labels are added: validation examples are labelled; one whose
   ``fields["verified"]`` is ``False`` is skipped.

**Leakage guard.** A validation item that is also in the test split (same id, or same
input after :func:`~amplify_agents.hygiene.normalize_text`) is never added:
``on_overlap="skip"`` (default) counts and skips it, ``"raise"`` refuses to start.

The loop evaluates ``rounds + 1`` times (round 0 is the store as given; round r > 0
follows the r-th addition) and adds at most ``rounds`` times. The history is returned
as an :class:`ImproveHistory` and, for a store in a local directory, appended to a
JSON file beside it (``<dir>/<store>.improve-history.json``; see :func:`history_path_for`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from amplify_agents.answering import AnswerBackend, Answerer, AnswerSettings, open_target
from amplify_agents.builder import BuildConfig, DemonstrationBuilder
from amplify_agents.demonstrations import Demonstration, utc_now
from amplify_agents.errors import AmplifyError
from amplify_agents.explainers.base import Explainer
from amplify_agents.files import atomic_write
from amplify_agents.framing import Frame
from amplify_agents.hygiene import normalize_text
from amplify_agents.models.loading import LoadedModel
from amplify_agents.predictors import Prediction, TargetPredictor
from amplify_agents.prompts import PromptStyle
from amplify_agents.rationales import RationaleTemplate
from amplify_agents.selectors import AmplifyExampleSelector, RetrievalSettings
from amplify_agents.stores import RationaleStore
from amplify_agents.strategies import round_robin, select_by_strategy
from amplify_agents.tasks import Example, Task

__all__ = [
    "IMPROVE_STRATEGIES",
    "DataLeakageError",
    "ImproveHistory",
    "RoundRecord",
    "ImproveConfig",
    "history_path_for",
    "improve_store",
    "load_histories",
]

log = logging.getLogger(__name__)

IMPROVE_STRATEGIES: tuple[str, ...] = ("error", "h-mcs", "l-mcs")
"""Strategies that pick among the round's errors."""

HISTORY_FORMAT = "amplify-agents-improve/1"


class DataLeakageError(AmplifyError, ValueError):
    """Validation items that are also test items would have entered the store."""


# ------------------------------------------------------------------------------ history
@dataclass
class RoundRecord:
    """One evaluation of the validation split, and what was added after it.

    Attributes:
        round: 0 for the store as given, r after the r-th addition.
        accuracy / balanced_accuracy: on the validation items.
        n_items / n_errors: validation items, and how many the model got wrong.
        pred_dist: share of each predicted label.
        store_size: demonstrations of the task in the store when evaluated.
        added: ids of the demonstrations added after this evaluation.
        added_examples: the validation example ids they were made from.
        guarded: errors not added because the item is also in the test split.
        already_stored: errors whose demonstration was already in the store.
        unverified: errors not added because their gold label is not verified.
        unusable: errors whose explanation was unusable (degenerate, no keywords).
        items: per item ``{"id", "gold", "pred", "correct"}``.
        seconds: time spent evaluating and adding.
    """

    round: int
    accuracy: float
    balanced_accuracy: float
    n_items: int
    n_errors: int
    pred_dist: dict[str, float]
    store_size: int
    added: list[str] = field(default_factory=list)
    added_examples: list[str] = field(default_factory=list)
    guarded: int = 0
    already_stored: int = 0
    unverified: int = 0
    unusable: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def wrong_ids(self) -> set[str]:
        """Ids of the validation items predicted wrongly in this round."""
        return {it["id"] for it in self.items if not it["correct"]}


@dataclass
class ImproveHistory:
    """The rounds of one :func:`improve` run.

    Attributes:
        task / store: names.
        settings: the run's settings (rounds, n_per_round, k, patience, strategy, ...).
        rounds: one :class:`RoundRecord` per evaluation.
        guarded_items: validation ids also found in the test split (never added).
        store_test_overlap: demonstrations already in the store whose example is a test item
            (they were there before this run; reported, not removed).
        stop_reason: why the loop ended.
        best_round: the round with the best accuracy (the earliest among ties).
        removed: ids deleted by ``keep_best`` (added after the best round).
        started_at / finished_at: ISO-8601 UTC times.
    """

    task: str
    store: str
    settings: dict[str, Any] = field(default_factory=dict)
    rounds: list[RoundRecord] = field(default_factory=list)
    guarded_items: list[str] = field(default_factory=list)
    store_test_overlap: int = 0
    stop_reason: str = ""
    best_round: int = 0
    removed: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=utc_now)
    finished_at: str = ""

    @property
    def accuracies(self) -> list[float]:
        """Validation accuracy per round."""
        return [r.accuracy for r in self.rounds]

    @property
    def added_ids(self) -> list[str]:
        """Every demonstration id added by the run, in order (including any removed by keep_best)."""
        return [i for r in self.rounds for i in r.added]

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason not in ("", "completed")

    def table(self) -> str:
        """A plain-text table, one row per round."""
        head = f"{'round':>5} {'acc':>7} {'bal.acc':>8} {'errors':>7} {'store':>6} {'added':>6} {'guarded':>8}"
        lines = [head]
        for r in self.rounds:
            lines.append(
                f"{r.round:>5} {100 * r.accuracy:>6.1f}% {100 * r.balanced_accuracy:>7.1f}% "
                f"{r.n_errors:>7} {r.store_size:>6} {len(r.added):>6} {r.guarded:>8}"
            )
        lines.append(f"best round {self.best_round}; stopped: {self.stop_reason}")
        if self.guarded_items:
            lines.append(f"{len(self.guarded_items)} validation item(s) are also test items: never added")
        if self.removed:
            lines.append(f"keep_best removed {len(self.removed)} demonstration(s) added after the best round")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImproveHistory:
        """Rebuild from :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        round_fields = {f.name for f in fields(RoundRecord)}
        values["rounds"] = [
            RoundRecord(**{k: v for k, v in r.items() if k in round_fields}) for r in data.get("rounds", [])
        ]
        return cls(**values)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Append this run to the history file at ``path`` (a JSON list of runs), atomically."""
        path = Path(path)
        runs = _read_runs(path)
        runs = [r for r in runs if r.get("started_at") != self.started_at] + [self.to_dict()]
        payload = {"format": HISTORY_FORMAT, "runs": runs}
        return atomic_write(path, lambda fh: json.dump(payload, fh, indent=1, allow_nan=True))


def _read_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != HISTORY_FORMAT:
        raise ValueError(f"{path} is not an improve history file (format {data.get('format')!r}).")
    return list(data.get("runs", []))


def history_path_for(store: RationaleStore) -> Path | None:
    """Where :func:`improve` keeps the history of a store: beside its Chroma directory.

    ``<persist_directory>/<store name>.improve-history.json`` for a store in a local
    directory; None for an in-memory or server store (pass ``history_path=`` then).
    """
    try:
        settings = store.client.get_settings()
    except Exception:  # noqa: BLE001 - a client without settings (a server proxy, a fake)
        return None
    if not getattr(settings, "is_persistent", False) or not getattr(settings, "persist_directory", None):
        return None
    return Path(settings.persist_directory) / f"{store.name}.improve-history.json"


def load_histories(source: RationaleStore | str | os.PathLike[str]) -> list[ImproveHistory]:
    """Every improve run recorded for a store (or in a history file), oldest first."""
    path = history_path_for(source) if isinstance(source, RationaleStore) else Path(source)
    if path is None:
        return []
    return [ImproveHistory.from_dict(r) for r in _read_runs(path)]


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class ImproveConfig:
    """How :func:`improve_store` learns (hyperparameters; the data go to the call).

    Attributes:
        rounds: additions at most (evaluations: ``rounds + 1``).
        n_per_round: demonstrations added per round at most.
        k: demonstrations per prompt.
        patience: stop after this many evaluations without improvement over the best.
        strategy: "error" (any error), "h-mcs" (most confidently wrong first) or "l-mcs".
        demo_setting: "retrieved" (per item, by the selector) or "fixed" (one set per round).
        min_delta: an improvement must exceed this to count.
        seed: orders ties in the selection of errors (round r uses ``seed + r``).
        template: rationale template (default: the explainer family's own).
        retrieval: how the selector ranks demonstrations with ``demo_setting="retrieved"``
            (:class:`~amplify_agents.selectors.RetrievalSettings`: MMR, MCS weight, ...).
        on_overlap: "skip" validation items that are test items, or "raise" DataLeakageError.
        keep_best: at the end, delete what was added after the best round (when the last was not the best).
        batch_size: rows per forward pass when scoring labels.
    """

    rounds: int = 3
    n_per_round: int = 4
    k: int = 4
    patience: int = 1
    strategy: str = "error"
    demo_setting: Literal["retrieved", "fixed"] = "retrieved"
    min_delta: float = 0.0
    seed: int = 0
    template: str | RationaleTemplate | None = None
    retrieval: RetrievalSettings = RetrievalSettings()
    on_overlap: Literal["skip", "raise"] = "skip"
    keep_best: bool = False
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.strategy not in IMPROVE_STRATEGIES:
            raise ValueError(
                f"improve() learns from errors: strategy must be one of {IMPROVE_STRATEGIES}, got {self.strategy!r}."
            )
        if self.demo_setting not in ("retrieved", "fixed"):
            raise ValueError(f"demo_setting must be 'retrieved' or 'fixed', got {self.demo_setting!r}.")
        if self.on_overlap not in ("skip", "raise"):
            raise ValueError(f"on_overlap must be 'skip' or 'raise', got {self.on_overlap!r}.")
        for name in ("rounds", "n_per_round", "k", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")

    def recorded(self) -> dict[str, Any]:
        """The settings an :class:`ImproveHistory` records."""
        keys = ("rounds", "n_per_round", "k", "patience", "strategy", "demo_setting", "min_delta", "seed", "keep_best")
        return {key: getattr(self, key) for key in keys}


# --------------------------------------------------------------------------------- loop
def improve_store(
    task: Task,
    store: RationaleStore,
    slm: LoadedModel | AnswerBackend | Any,
    explainer: Explainer,
    validation: Task | Sequence[Example],
    test: Task | Sequence[Example] | None = None,
    config: ImproveConfig = ImproveConfig(),
    *,
    frame: Frame | None = None,
    history_path: str | os.PathLike[str] | None | Literal["auto"] = "auto",
    model_id: str | None = None,
    progress: bool = False,
) -> ImproveHistory:
    """Grow ``store`` with explained validation errors until validation accuracy stops improving.

    Args:
        task: the task (name, label space, framing).
        store: where demonstrations are retrieved from and added to.
        slm: the model that answers, through the answering path: a loaded local model (label
            scoring), an :class:`~amplify_agents.answering.AnswerBackend` (e.g. an endpoint's)
            or any LangChain model.
        explainer: writes each added demonstration's rationale (for the gold label).
        validation: labelled items to evaluate on and learn from.
        test: the held-out split: none of its items (by id or normalized input) is ever added.
        config: rounds, demonstrations per round, k, patience, strategy, ... (:class:`ImproveConfig`).
        frame: prompt layout (default: the task's).
        history_path: where to append the history; "auto" = :func:`history_path_for`; None = nowhere.
        model_id: recorded on the demonstrations (default: the SLM's name).
        progress: show a progress bar over rounds.

    Returns:
        The :class:`ImproveHistory` (also saved, see ``history_path``).

    Raises:
        ValueError: an empty validation split (bad settings are refused by :class:`ImproveConfig`).
        DataLeakageError: ``on_overlap="raise"`` and some validation item is a test item.
    """
    val_examples = list(validation)
    if not val_examples:
        raise ValueError("The validation split is empty: improve() needs labelled items to evaluate on.")
    test_examples = list(test) if test is not None else []
    frame = frame or Frame.from_task(task)
    guard = _LeakageGuard(test_examples)
    guarded = guard.check(val_examples, config.on_overlap)
    target = open_target(slm, batch_size=config.batch_size)
    history = ImproveHistory(
        task=task.name,
        store=store.name,
        settings={**config.recorded(), "explainer": explainer.name, "model": target.model_name},
        guarded_items=guarded,
    )
    history.settings.update(n_validation=len(val_examples), n_test=len(test_examples))
    if test_examples:
        stored = store.list(where={"task": task.name})
        history.store_test_overlap = sum(guard.covers(d.example_id, d.input) for d in stored)
        if history.store_test_overlap:
            log.warning("The store already holds %d demonstration(s) of test items.", history.store_test_overlap)

    answerer = Answerer(target, AnswerSettings(PromptStyle(frame)))
    # The builder gives the same ids, templates and rendering as a built store.
    builder = DemonstrationBuilder(
        task,
        TargetPredictor(answerer, task.labels),
        explainer,
        store,
        BuildConfig(strategy=config.strategy, n=config.n_per_round, seed=config.seed, template=config.template),
        model_id=model_id or target.model_name,
        progress=False,
    )
    _run_rounds(_Round(task, store, answerer, builder, config, frame, set(guarded)), val_examples, history, progress)
    if config.keep_best and history.best_round < len(history.rounds) - 1:
        # Demonstrations added after the best evaluation did not help: take them back.
        history.removed = [i for rec in history.rounds[history.best_round :] for i in rec.added]
        store.delete(history.removed)
    history.finished_at = utc_now()
    path = history_path_for(store) if history_path == "auto" else history_path
    if path is not None:
        history.save(path)
    return history


class _LeakageGuard:
    """Test items, by id and by normalized input text: never to be added to the store."""

    def __init__(self, test_examples: Sequence[Example]) -> None:
        self.ids = {ex.id for ex in test_examples}
        self.texts = {normalize_text(ex.input) for ex in test_examples}

    def covers(self, example_id: str, text: str) -> bool:
        return example_id in self.ids or normalize_text(text) in self.texts

    def check(self, validation: Sequence[Example], on_overlap: str) -> list[str]:
        """Ids of validation items that are test items; raises DataLeakageError with ``on_overlap="raise"``."""
        guarded = [ex.id for ex in validation if self.covers(ex.id, ex.input)]
        if guarded and on_overlap == "raise":
            raise DataLeakageError(
                f"{len(guarded)} validation item(s) are also in the test split (by id or input text), e.g. "
                f"{guarded[:5]}: they would leak into the store. Split without overlap, or pass "
                "on_overlap='skip'."
            )
        if guarded:
            log.warning("%d validation item(s) are also test items: they are evaluated but never added.", len(guarded))
        return guarded


@dataclass(frozen=True)
class _Round:
    """What every round of one run works with."""

    task: Task
    store: RationaleStore
    answerer: Answerer
    builder: DemonstrationBuilder
    config: ImproveConfig
    frame: Frame
    guarded: set[str]


def _run_rounds(run: _Round, val_examples: list[Example], history: ImproveHistory, progress: bool) -> None:
    """Evaluate, record, stop or add, ``rounds + 1`` times at most; fill ``history``."""
    from tqdm.auto import tqdm

    cfg = run.config
    bar = tqdm(total=cfg.rounds + 1, desc="improve", unit="round", disable=not progress)
    best_acc = float("-inf")
    stale = 0
    history.stop_reason = "completed"
    for r in range(cfg.rounds + 1):
        t = time.perf_counter()
        preds = _evaluate(run, val_examples)
        record = _round_record(r, run.task, preds, run.store.count({"task": run.task.name}))
        record.seconds["evaluate"] = round(time.perf_counter() - t, 3)
        history.rounds.append(record)
        bar.update(1)
        bar.set_postfix_str(f"acc={record.accuracy:.3f}")
        if record.accuracy > best_acc + cfg.min_delta:
            best_acc, history.best_round, stale = record.accuracy, r, 0
        elif r > 0:
            stale += 1
        if r == cfg.rounds:
            break
        if stale >= cfg.patience:
            history.stop_reason = f"no improvement for {stale} round(s) (patience {cfg.patience})"
            break
        if record.n_errors == 0:
            history.stop_reason = "every validation item is correct"
            break
        t = time.perf_counter()
        _add_errors(run, preds, record, seed=cfg.seed + r, round_no=r)
        record.seconds["add"] = round(time.perf_counter() - t, 3)
        if not record.added:
            history.stop_reason = "no new validation errors to add"
            break
    bar.close()


def _not_self(example: Example) -> dict[str, Any]:
    """A Chroma filter excluding an item's own demonstration (by example id and by input)."""
    return {"$and": [{"example_id": {"$ne": example.id}}, {"input": {"$ne": example.input}}]}


def _evaluate(run: _Round, examples: list[Example]) -> list[Prediction]:
    """Answer every example with its demonstrations (through the answering path); return the predictions."""
    task, store, k = run.task, run.store, run.config.k
    has_demos = store.count({"task": task.name}) > 0
    fixed = _fixed_demos(store, task, k) if run.config.demo_setting == "fixed" and has_demos else []
    per_item: list[list[dict[str, Any]]] = []
    for ex in examples:
        if not has_demos:
            demos: list[Demonstration] = []
        elif run.config.demo_setting == "retrieved":
            selector = AmplifyExampleSelector(
                store, k=k, task=task.name, where=_not_self(ex), frame=run.frame, retrieval=run.config.retrieval
            )
            demos = selector.select_demonstrations(ex.input)
        else:
            own = normalize_text(ex.input)
            demos = [d for d in fixed if d.example_id != ex.id and normalize_text(d.input) != own][:k]
        per_item.append([d.to_example() for d in demos])
    answers = run.answerer.answer(
        [ex.input for ex in examples], [task.labels_for(ex) for ex in examples], demos_per_query=per_item
    )
    return [Prediction(ex, a.predicted, dict(a.probs)) for ex, a in zip(examples, answers, strict=True)]


def _fixed_demos(store: RationaleStore, task: Task, k: int) -> list[Demonstration]:
    """One demo set per round: label-balanced, most useful then newest first.

    ``k + 1`` are kept so an item that is itself among them still gets ``k`` others.
    """
    from amplify_agents.feedback import usefulness_of

    demos = sorted(
        store.list(where={"task": task.name}),
        key=lambda d: (usefulness_of(d).score, d.created_at),
        reverse=True,
    )
    return round_robin(demos, k + 1, key=lambda d: d.label)


def _round_record(r: int, task: Task, preds: list[Prediction], store_size: int) -> RoundRecord:
    from amplify_agents.eval import stats

    gold = [p.example.label for p in preds]
    predicted = [p.predicted for p in preds]
    return RoundRecord(
        round=r,
        accuracy=stats.accuracy(gold, predicted),
        balanced_accuracy=stats.balanced_accuracy(gold, predicted),
        n_items=len(preds),
        n_errors=sum(not p.correct for p in preds),
        pred_dist=stats.label_distribution(predicted, task.labels),
        store_size=store_size,
        items=[{"id": p.example.id, "gold": p.example.label, "pred": p.predicted, "correct": p.correct} for p in preds],
    )


def _add_errors(run: _Round, preds: list[Prediction], record: RoundRecord, *, seed: int, round_no: int) -> None:
    """Explain up to ``n_per_round`` eligible errors and store them; fill ``record``'s counts."""
    builder = run.builder
    errors = [p for p in preds if not p.correct and p.predicted is not None]
    eligible: list[Prediction] = []
    counts: Counter[str] = Counter()
    skeletons = {p.example.id: builder.skeleton(p) for p in errors}
    stored = run.store.has([s.demo_id for s in skeletons.values()])
    for p in errors:
        if p.example.id in run.guarded:
            counts["guarded"] += 1
        elif p.example.fields.get("verified") is False:
            counts["unverified"] += 1
        elif skeletons[p.example.id].demo_id in stored:
            counts["already_stored"] += 1
        else:
            eligible.append(p)
    record.guarded = counts["guarded"]
    record.unverified = counts["unverified"]
    record.already_stored = counts["already_stored"]
    if not eligible:
        return
    # Errors only: no label-balance fill with correct items (those were not errors).
    n = run.config.n_per_round
    chosen = select_by_strategy(
        eligible, run.config.strategy, n, seed=seed, balanced=True, fill_missing_labels=False
    ).chosen
    explanations = builder.explain([p.example.input for p in chosen], [p.example.label for p in chosen])
    demos = []
    for p, exp in zip(chosen, explanations, strict=True):
        if not exp.ok:
            record.unusable += 1
            continue
        demo = builder.render(skeletons[p.example.id], exp, None)
        demos.append(replace(demo, extra={**demo.extra, "source": "improve", "round": round_no}))
    if demos:
        record.added = run.store.add(demos)
        record.added_examples = [d.example_id for d in demos]
