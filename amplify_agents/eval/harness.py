"""``run_eval``: every method on every seed, scored by label scoring, saved as it goes.

For each seed the task is split once (``task.split(seed=, test=test_size)``; the rest is
the demo pool, capped by ``pool_size``): every method of the seed uses that pool and that
test split. For each (method, seed):

1. the method's demonstrations are prepared (:func:`~amplify_agents.eval.methods.prepare_demos`);
2. every test item's prompt is built with :func:`~amplify_agents.prompts.build_text_prompt`,
   rationales before answers, the test item scored directly after the output prefix;
3. labels are scored with :class:`~amplify_agents.models.LabelScorer`. With fixed demos all
   test prompts of the method go in **one** ``score`` call, so the demonstrations (the
   shared token prefix) run once and their KV cache serves every item; with per-query
   demos each prompt is its own call, so the prompt is the cached prefix and the labels
   cost a few tokens each;
4. accuracy, balanced accuracy, the predicted-label distribution and (two labels) AUROC
   are computed and the run, with every item's prediction, is written to
   ``out_dir/results.json`` at once.

Resuming: a run whose key (task, model, n_shot, k, test size, demo setting, pool size,
method, seed and the method's own settings) is in the results file is not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from amplify_agents.eval import answering, stats
from amplify_agents.eval.config import EvalConfig
from amplify_agents.eval.methods import MethodSpec, SeedContext, parse_method
from amplify_agents.eval.report import EvalResults, read_results_file, write_results_file
from amplify_agents.framing import Frame
from amplify_agents.models import LabelScorer, LoadedModel, load_causal_lm
from amplify_agents.tasks import Task, load_task

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
    model: LoadedModel | None = None,
    embeddings: Any = None,
) -> EvalResults:
    """Evaluate every method of ``config`` on every seed; resume from ``config.results_path``.

    Args:
        config: what to run.
        progress: show a progress bar over method x seed.
        model: the already loaded SLM (``config.model`` still names it in the results);
            loaded from ``config.model`` when needed otherwise.
        embeddings: LangChain embeddings for the stores and Auto-CoT's clusters (default:
            the offline MiniLM of :func:`~amplify_agents.stores.default_embeddings`).

    Returns:
        The runs of this configuration (finished earlier or now), with ``computed`` and
        ``skipped`` telling which is which. ``results.json``, ``results.csv``,
        ``results.md`` and (``config.plot``) ``results.png`` are written to ``out_dir``.
    """
    specs = [parse_method(m) for m in config.methods]  # fail before any work on a bad name
    task = load_task(config.task)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = read_results_file(config.results_path)
    frame = Frame.from_task(task)
    slm = model
    scorer: LabelScorer | None = None
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
                if slm is None:
                    slm = load_causal_lm(config.model, device=config.device)
                if scorer is None:
                    scorer = LabelScorer(slm, batch_size=config.batch_size, label_prefix=frame.label_prefix)
                ctx = _seed_context(config, task, frame, slm, scorer, seed, embeddings)
            record = _evaluate(spec, ctx, config, key)
            embeddings = ctx.embeddings  # loaded at most once, shared by the next seeds
            stored[key] = record
            write_results_file(config.results_path, stored, config)  # saved at once: resumable
            computed.append(key)
            bar.update(1)
        if ctx is not None:
            ctx.close()
    bar.close()

    runs = [stored[keys[(spec.name, seed)]] for spec in specs for seed in config.seeds]
    results = EvalResults(config, runs, computed=computed, skipped=skipped, labels=tuple(task.labels))
    results.to_csv(out_dir / "results.csv")
    results.to_markdown(out_dir / "results.md")
    if config.plot:
        results.plot(out_dir / "results.png")
    return results


def _seed_context(
    config: EvalConfig,
    task: Task,
    frame: Frame,
    slm: LoadedModel,
    scorer: LabelScorer,
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
        task=task,
        pool=splits.pool,
        test=splits.validation if config.evaluate_on == "validation" else splits.test,
        seed=seed,
        frame=frame,
        slm=slm,
        scorer=scorer,
        n_shot=config.n_shot,
        k=config.k,
        demo_setting=config.demo_setting,
        proxy_kind=config.proxy,
        proxy_epochs=config.proxy_epochs,
        proxy_model=config.proxy_model,
        retrieval_candidates=config.retrieval_candidates,
        autocot_max_new_tokens=config.autocot_max_new_tokens,
        rationale_max_new_tokens=config.rationale_max_new_tokens,
        device=config.device,
        explainer_settings=config.explainer_settings,
        embeddings=embeddings,
    )


def _evaluate(spec: MethodSpec, ctx: SeedContext, config: EvalConfig, key: str) -> dict[str, Any]:
    """Prepare demonstrations, score every test item, compute the run's metrics."""
    began = time.perf_counter()
    plan = ctx.plan(spec)
    demo_seconds = time.perf_counter() - began
    test = list(ctx.test)
    shared_labels = all(ex.choices is None for ex in test)
    label_lists = [ctx.task.labels_for(ex) for ex in test]
    t = time.perf_counter()
    reused = spec.uncalibrated in ctx.answers
    written: list[str] | None = [] if spec.placement == "gen" else None
    calibration: dict[str, Any] | None = None

    def maker(demos: list[dict[str, Any]], sink: list[str] | None = None) -> Any:
        return answering.prompt_maker(
            demos,
            ctx.frame,
            spec.placement,
            slm=ctx.slm,
            max_new_tokens=config.rationale_max_new_tokens,
            written=sink,
        )

    if plan.per_query is None:
        make = maker(plan.fixed or [])
        if not reused:
            # One scorer call: the demonstrations are the shared prefix, run once (KV cache).
            ctx.answers[spec.uncalibrated] = answering.answer_items(
                [ex.input for ex in test],
                ctx.task.labels if shared_labels else label_lists,
                ctx.scorer,
                maker(plan.fixed or [], written),
                written=written,
            )
        answers = ctx.answers[spec.uncalibrated]
        scores = list(answers.scores)
        if spec.calibration:
            scores, calibration = answering.calibrate(scores, spec.calibration, ctx.scorer, make, ctx.frame)
    else:
        # Per-query demos: one call per item (its prompt is the cached prefix), and one prior each.
        scores, rationales, priors = [], [], []
        for ex, labels in zip(test, label_lists, strict=True):
            sink: list[str] | None = [] if spec.placement == "gen" else None
            make = maker(plan.per_query(ex.input), sink)
            got = answering.answer_items([ex.input], labels, ctx.scorer, make, written=sink)
            item_scores = got.scores
            if spec.calibration:
                item_scores, info = answering.calibrate(item_scores, spec.calibration, ctx.scorer, make, ctx.frame)
                priors.extend(info["priors"])
            scores.extend(item_scores)
            rationales.extend(got.rationales or [])
        answers = answering.Answers(scores, rationales or None)
        if spec.calibration:
            calibration = {"method": spec.calibration, "per_query": True, "priors_first": priors[:3]}
    score_seconds = time.perf_counter() - t

    gold = [ex.label for ex in test]
    predicted = [s.predicted for s in scores]
    items = [
        {
            "id": ex.id,
            "gold": ex.label,
            "pred": s.predicted,
            "probs": {k: round(v, 6) for k, v in s.probs.items()},
        }
        for ex, s in zip(test, scores, strict=True)
    ]
    reasoning = None
    if answers.rationales is not None:
        for item, text in zip(items, answers.rationales, strict=True):
            item["query_rationale"] = text
        named = answering.label_named(answers.rationales, label_lists)
        reasoning = {
            "rationales_naming_a_label": sum(n is not None for n in named),
            "answer_equals_named_label": sum(n == p for n, p in zip(named, predicted, strict=True) if n is not None),
        }
    auroc = None
    if shared_labels and len(ctx.task.labels) == 2:
        first = ctx.task.labels[0]
        auroc = stats.auroc([g == first for g in gold], [s.probs[first] for s in scores])
    return {
        "key": key,
        "task": ctx.task.name,
        "model": config.model,
        "method": spec.name,
        "seed": ctx.seed,
        "n_shot": config.n_shot,
        "k": config.k,
        "test_size": config.test_size,
        "evaluated_on": config.evaluate_on,
        "demo_setting": "per-query" if spec.per_query(config.demo_setting) else "fixed",
        "placement": spec.placement,
        "calibration": calibration,
        "reasoning": reasoning,
        "labels": list(ctx.task.labels),
        "pool_size": len(ctx.pool),
        "n_items": len(test),
        "accuracy": stats.accuracy(gold, predicted),
        "balanced_accuracy": stats.balanced_accuracy(gold, predicted),
        "auroc": auroc,
        "pred_dist": stats.label_distribution(predicted, ctx.task.labels),
        "gold_dist": stats.label_distribution(gold, ctx.task.labels),
        "demo": plan.info,
        "items": items,
        "seconds": {
            "demos": round(demo_seconds, 3),
            "score": round(score_seconds, 3),
            "total": round(demo_seconds + score_seconds, 3),
            # True when the scores came from the uncalibrated twin of this seed (only the prior is new).
            "reused_scores": reused,
        },
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }
