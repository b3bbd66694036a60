"""``run_eval``: every method on every seed, scored by label scoring, saved as it goes.

For each seed the task is split once (``task.split(seed=, test=test_size)``; the rest is
the demo pool, capped by ``pool_size``): every method of the seed uses that pool and that
test split. For each (method, seed):

1. the method's demonstrations are prepared (:func:`~amplify_agents.eval.methods.prepare_demos`);
2. every test item is answered through the one answering path
   (:class:`~amplify_agents.answering.Answerer`, the code the chains run) by the target:
   a local model (label scoring with the demonstrations' KV cache shared by every item) or
   an OpenAI-compatible endpoint (``base_url``: completions with log-probabilities, or chat),
   over each item's own options, with the method's placement and calibration;
3. every reply is kept in ``out_dir/responses.sqlite`` (``cache=True``): a calibrated twin
   reuses its uncalibrated run's replies, and an interrupted run asks nothing twice;
4. accuracy, balanced accuracy, the predicted-label distribution and (two labels) AUROC
   are computed and the run, with every item's prediction, is written to
   ``out_dir/results.json`` at once.

Resuming: a run whose key (task, model, n_shot, k, test size, demo setting, pool size,
method, seed and the method's own settings) is in the results file is not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from amplify_agents.answering import Answer, AnswerBackend, ResponseCache, open_target
from amplify_agents.eval import stats
from amplify_agents.eval.config import EvalConfig
from amplify_agents.eval.methods import DemoPlan, MethodSpec, SeedContext, parse_method
from amplify_agents.eval.report import EvalResults, read_results_file, write_results_file
from amplify_agents.framing import Frame
from amplify_agents.models import LoadedModel, load_causal_lm, parse_answer
from amplify_agents.tasks import Example, Task, load_task

__all__ = ["run_eval", "run_key"]


def run_key(config: EvalConfig, task: Task, spec: MethodSpec, seed: int) -> str:
    """The identity of one (method, seed) result: everything that changes its numbers.

    Readable parts first (task, model, n-shot, k, test size, setting, method, seed), then a
    short hash of the method-specific settings (proxy, explainer settings, retrieval and
    Auto-CoT lengths) so that changing one of them recomputes only the methods it affects.
    """
    extra: dict[str, Any] = {"pool_size": config.pool_size, "n_examples": len(task)}
    if spec.kind == "amplify":
        extra.update(proxy=config.proxy, proxy_epochs=config.proxy_epochs, proxy_model=config.proxy_model)
    if spec.explainer and spec.explainer in config.explainer_settings:
        extra["explainer_settings"] = dict(config.explainer_settings[spec.explainer])
    if spec.per_query(config.demo_setting) and spec.built:
        extra["retrieval_candidates"] = config.retrieval_candidates
    if spec.kind == "auto-cot":
        extra["autocot_max_new_tokens"] = config.autocot_max_new_tokens
    if spec.placement == "gen":
        extra["rationale_max_new_tokens"] = config.rationale_max_new_tokens
    if config.validation_size:
        extra["validation_size"] = config.validation_size  # it changes the pool
    if config.base_url:
        extra["target"] = config.target.describe()
    if config.labels:
        extra["labels"] = list(config.labels)  # absent otherwise: earlier results keep their keys
    if spec.kind == "amplify":
        extra["proxy_train_fraction"] = config.proxy_train_fraction
    if spec.kind == "self" and config.explainer_model:
        extra["explainer_model"] = config.explainer_model
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode()).hexdigest()[:10]
    setting = "per-query" if spec.per_query(config.demo_setting) else "fixed"
    if config.evaluate_on == "validation":
        setting += "|on=validation"
    return (
        f"{task.name}|{config.model}|n_shot={config.n_shot}|k={config.k}|test={config.test_size}"
        f"|{setting}|{spec.name}|seed={seed}|{digest}"
    )


def run_eval(
    config: EvalConfig,
    *,
    progress: bool = True,
    model: LoadedModel | Any = None,
    embeddings: Any = None,
) -> EvalResults:
    """Evaluate every method of ``config`` on every seed; resume from ``config.results_path``.

    Args:
        config: what to run.
        progress: show a progress bar over method x seed.
        model: the already loaded local model (``config.model`` still names it in the results),
            or any LangChain model object to evaluate (generation plus the answer parser, or
            label scores where it returns log-probabilities); otherwise the target comes from
            ``config`` (a local model, or the endpoint ``config.base_url``).
        embeddings: LangChain embeddings for the stores and Auto-CoT's clusters (default:
            the offline MiniLM of :func:`~amplify_agents.stores.default_embeddings`).

    Returns:
        The runs of this configuration (finished earlier or now), with ``computed`` and
        ``skipped`` telling which is which. ``results.json``, ``results.csv``,
        ``results.md`` and (``config.plot``) ``results.png`` are written to ``out_dir``.
    """
    # Fail before any work on a bad name. Results name each method canonically ("amplify" is
    # recorded as the method it stands for), once.
    specs = list({spec.name: spec for spec in (parse_method(m) for m in config.methods)}.values())
    config = replace(config, methods=tuple(spec.name for spec in specs))
    task = load_task(config.task, labels=list(config.labels) if config.labels else None)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = read_results_file(config.results_path)
    frame = Frame.from_task(task)
    backend: AnswerBackend | None = None
    slm: LoadedModel | None = None
    computed: list[str] = []
    skipped: list[str] = []
    keys: dict[tuple[str, int], str] = {}

    bar = tqdm(total=len(specs) * len(config.seeds), desc="eval", unit="run", disable=not progress)
    for seed in config.seeds:
        ctx: SeedContext | None = None
        for spec in specs:
            key = run_key(config, task, spec, seed)
            keys[(spec.name, seed)] = key
            bar.set_postfix_str(f"{spec.name} seed={seed}")
            if key in stored:
                skipped.append(key)
                bar.update(1)
                continue
            if ctx is None:
                if backend is None:
                    backend, slm = _open_backend(config, model, out_dir)
                ctx = _seed_context(config, task, frame, backend, slm, seed, embeddings)
            record = _evaluate(spec, ctx, key)
            embeddings = ctx.embeddings  # loaded at most once, shared by the next seeds
            stored[key] = record
            write_results_file(config.results_path, stored, config)  # saved at once: resumable
            computed.append(key)
            bar.update(1)
        if ctx is not None:
            ctx.close()
    bar.close()
    if backend is not None:
        backend.close()

    runs = [stored[keys[(spec.name, seed)]] for spec in specs for seed in config.seeds]
    results = EvalResults(config, runs, computed=computed, skipped=skipped, labels=tuple(task.labels))
    results.to_csv(out_dir / "results.csv")
    results.to_markdown(out_dir / "results.md")
    if config.plot:
        results.plot(out_dir / "results.png")
    return results


def _open_backend(config: EvalConfig, model: Any, out_dir: Path) -> tuple[AnswerBackend, LoadedModel | None]:
    """The target's backend (behind the response cache) and the local model that explains itself."""
    cache = ResponseCache(out_dir / "responses.sqlite") if config.cache else None
    local = model if isinstance(model, LoadedModel) else None
    if model is None and config.base_url is None:
        local = load_causal_lm(config.model, device=config.device)
    target = model if model is not None else (local if local is not None else config.target)
    explainer = local
    if config.explainer_model and not (local is not None and config.explainer_model == config.model):
        explainer = load_causal_lm(config.explainer_model, device=config.device)
    return open_target(target, cache=cache, batch_size=config.batch_size), explainer


def _seed_context(
    config: EvalConfig,
    task: Task,
    frame: Frame,
    backend: AnswerBackend,
    slm: LoadedModel | None,
    seed: int,
    embeddings: Any,
) -> SeedContext:
    held_out = config.test_size + config.validation_size
    if held_out >= len(task):
        raise ValueError(
            f"test_size={config.test_size} + validation_size={config.validation_size} leave no demo pool in "
            f"the {len(task)} examples of {task.name!r}."
        )
    pool_size = None if config.pool_size is None else min(config.pool_size, len(task) - held_out)
    splits = task.split(seed=seed, test=config.test_size, validation=config.validation_size, pool=pool_size)
    return SeedContext(
        config=config,
        task=task,
        pool=splits.pool,
        test=splits.validation if config.evaluate_on == "validation" else splits.test,
        seed=seed,
        frame=frame,
        backend=backend,
        slm=slm,
        embeddings=embeddings,
    )


def _evaluate(spec: MethodSpec, ctx: SeedContext, key: str) -> dict[str, Any]:
    """Prepare demonstrations, answer every test item through the answering path, compute the metrics."""
    began = time.perf_counter()
    plan = ctx.plan(spec)
    demo_seconds = time.perf_counter() - began
    test = list(ctx.test)
    t = time.perf_counter()
    answers = _answer(spec, ctx, plan, test)
    score_seconds = time.perf_counter() - t
    # A calibrated twin run after its base method finds the base's replies in the response cache:
    # only the prior's prompts are new.
    reused = bool(ctx.config.cache and spec.calibration and spec.uncalibrated in ctx.answered)
    ctx.answered.add(spec.uncalibrated)
    seconds = {
        "demos": round(demo_seconds, 3),
        "score": round(score_seconds, 3),
        "total": round(demo_seconds + score_seconds, 3),
        "reused_scores": reused,
    }
    return _record(spec, ctx, key, plan, test, answers, seconds)


def _answer(spec: MethodSpec, ctx: SeedContext, plan: DemoPlan, test: Sequence[Example]) -> list[Answer]:
    """Every test item answered over its own options, with the plan's demonstrations."""
    label_lists = [ctx.task.labels_for(ex) for ex in test]
    queries = [ex.input for ex in test]
    answerer = ctx.answerer(spec.placement, spec.calibration)
    if plan.per_query is None:
        return answerer.answer(queries, label_lists, demos=plan.fixed or [])
    return answerer.answer(queries, label_lists, demos_per_query=[plan.per_query(q) for q in queries])


def _record(
    spec: MethodSpec,
    ctx: SeedContext,
    key: str,
    plan: DemoPlan,
    test: Sequence[Example],
    answers: Sequence[Answer],
    seconds: dict[str, Any],
) -> dict[str, Any]:
    """The run's record: its identity and settings, the metrics and every item's answer."""
    config, labels = ctx.config, ctx.task.labels
    gold = [ex.label for ex in test]
    predicted = [a.predicted for a in answers]
    items = _items(test, answers)
    return {
        "key": key,
        "task": ctx.task.name,
        "model": config.model,
        "backend": ctx.backend.identity,
        "method": spec.name,
        "seed": ctx.seed,
        "n_shot": config.n_shot,
        "k": config.k,
        "test_size": config.test_size,
        "evaluated_on": config.evaluate_on,
        "demo_setting": "per-query" if spec.per_query(config.demo_setting) else "fixed",
        "placement": spec.placement,
        "calibration": _calibration_info(spec, plan, answers),
        "reasoning": _reasoning(spec, ctx, test, answers, items),
        "labels": list(labels),
        "pool_size": len(ctx.pool),
        "n_items": len(test),
        "accuracy": stats.accuracy(gold, predicted),
        "balanced_accuracy": stats.balanced_accuracy(gold, predicted),
        "auroc": _auroc(ctx.task, test, answers),
        # Generated answers that named no label (backends without label scores); counted as wrong.
        "unparseable": sum(p is None for p in predicted),
        "outside_top_k": sum(bool(a.outside_top_k) for a in answers),
        "pred_dist": stats.label_distribution(predicted, labels),
        "gold_dist": stats.label_distribution(gold, labels),
        "demo": plan.info,
        "items": items,
        "seconds": seconds,
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }


def _items(test: Sequence[Example], answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """Every test item's gold label, prediction and probabilities (and generated text, where any)."""
    items: list[dict[str, Any]] = []
    for ex, a in zip(test, answers, strict=True):
        item: dict[str, Any] = {
            "id": ex.id,
            "gold": ex.label,
            "pred": a.predicted,
            "probs": {k: round(v, 6) for k, v in a.probs.items()},
        }
        if a.text is not None and a.scores is None:
            item["text"] = a.text
        if a.outside_top_k:
            item["outside_top_k"] = list(a.outside_top_k)  # these labels' probabilities are upper bounds
        items.append(item)
    return items


def _calibration_info(spec: MethodSpec, plan: DemoPlan, answers: Sequence[Answer]) -> dict[str, Any] | None:
    """The calibration method and its priors: the distinct ones (fixed demos) or the first three."""
    if not spec.calibration:
        return None
    priors = [{k: round(v, 4) for k, v in a.prior.items()} for a in answers if a.prior is not None]
    info: dict[str, Any] = {"method": spec.calibration, "per_query": plan.per_query is not None}
    if plan.per_query is None:
        info["priors"] = [dict(p) for p in {tuple(sorted(p.items())) for p in priors}]
    else:
        info["priors_first"] = priors[:3]
    return info


def _reasoning(
    spec: MethodSpec,
    ctx: SeedContext,
    test: Sequence[Example],
    answers: Sequence[Answer],
    items: list[dict[str, Any]],
) -> dict[str, int] | None:
    """``+gen``: keep each query's rationale in its item and count rationales that name the answer."""
    if spec.placement != "gen":
        return None
    rationales = [a.rationale for a in answers]
    for item, text in zip(items, rationales, strict=True):
        item["query_rationale"] = text
    named = label_named(rationales, [ctx.task.labels_for(ex) for ex in test])
    predicted = [a.predicted for a in answers]
    return {
        "rationales_naming_a_label": sum(n is not None for n in named),
        "answer_equals_named_label": sum(n == p for n, p in zip(named, predicted, strict=True) if n is not None),
    }


def _auroc(task: Task, test: Sequence[Example], answers: Sequence[Answer]) -> float | None:
    """AUROC of p(first label) on a two-label task answered by label scores (None otherwise)."""
    scored = all(a.scores is not None for a in answers)
    shared_labels = all(ex.choices is None for ex in test)
    if not (scored and shared_labels and len(task.labels) == 2):
        return None
    first = task.labels[0]
    return stats.auroc([ex.label == first for ex in test], [a.probs[first] for a in answers])


def label_named(rationales: Sequence[str], labels: Sequence[Sequence[str]]) -> list[str | None]:
    """The label each generated rationale names ("... to predict (b) ..."), or None.

    A label spelled exactly (case aside) wins when it is the only one; otherwise the
    answer parser decides (it returns None rather than guess).
    """
    named: list[str | None] = []
    for text, labs in zip(rationales, labels, strict=True):
        exact = {lab for lab in labs if re.search(rf"(?<!\w){re.escape(lab)}(?!\w)", text, re.IGNORECASE)}
        named.append(exact.pop() if len(exact) == 1 else parse_answer(text, labs))
    return named
