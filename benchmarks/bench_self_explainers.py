"""Self-AMPLIFY explainers on the causal LM: seconds per example, batched and unbatched.

For each explainer (gradient: Captum layer methods on the embeddings; perturbation:
Captum's KernelShap, Lime, FeatureAblation, Shapley sampling over words; self-reported:
self_topk, self_exp) it times :meth:`explain` on the ``--n`` shortest items of a BIG-bench
task:

* batched: all items in one call, rows batched (``internal_batch_size`` 16,
  ``perturbations_per_eval`` 16, one generation batch);
* unbatched: one item per call and one row per forward pass.

Next to them: one forward pass, and one forward + backward pass (gradient wrt the input
embeddings), of the same batch of prompt + label rows; and KernelShapExplainer against the time
of scoring the very perturbed prompts it scored (``n_samples`` rows per example),
replayed 16 per forward pass: the floor a perturbation method cannot beat.
Seconds are per example, mean ± std over ``--repeats``.

    python benchmarks/bench_self_explainers.py --n 2 --n-samples 16 --n-steps 8 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from amplify_agents.explainers._causal import TargetLogProb, encode_item, make_rows  # noqa: E402
from amplify_agents.explainers.captum_layer import (  # noqa: E402
    DeepLiftExplainer,
    GradientShapExplainer,
    GradXActivationExplainer,
    IntegratedGradientsExplainer,
)
from amplify_agents.explainers.perturbation import (  # noqa: E402
    FeatureAblationExplainer,
    KernelShapExplainer,
    LimeExplainer,
    ShapleySamplingExplainer,
)
from amplify_agents.explainers.self_reported import SelfExplanationExplainer, SelfTopKExplainer  # noqa: E402
from amplify_agents.explainers.words import split_words  # noqa: E402
from amplify_agents.framing import Frame  # noqa: E402
from amplify_agents.models import load_causal_lm  # noqa: E402
from amplify_agents.tasks import load_task  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench"
ALL = [
    "gradient_x_activation",
    "integrated_gradients",
    "gradient_shap",
    "deeplift",
    "kernel_shap",
    "lime",
    "feature_ablation",
    "shapley_sampling",
    "self_topk",
    "self_exp",
]


def fmt(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f}"


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def build(name: str, loaded: Any, labels: tuple[str, ...], frame: Frame, args: argparse.Namespace, batched: bool):
    """The explainer ``name`` with the benchmark's settings, batched or one row per pass."""
    rows = 16 if batched else 1
    common: dict[str, Any] = {"batch_size": args.n if batched else 1}
    grad = {**common, "internal_batch_size": rows}
    pert = {**common, "perturbations_per_eval": rows}
    gen = {**common, "max_new_tokens": args.max_new_tokens}
    table: dict[str, tuple[type, dict[str, Any]]] = {
        "gradient_x_activation": (GradXActivationExplainer, grad),
        "integrated_gradients": (IntegratedGradientsExplainer, {**grad, "n_steps": args.n_steps}),
        "gradient_shap": (GradientShapExplainer, {**grad, "n_samples": args.n_steps}),
        "deeplift": (DeepLiftExplainer, {**grad, "internal_batch_size": 2 * rows}),
        "kernel_shap": (KernelShapExplainer, {**pert, "n_samples": args.n_samples}),
        "lime": (LimeExplainer, {**pert, "n_samples": args.n_samples}),
        "feature_ablation": (FeatureAblationExplainer, pert),
        "shapley_sampling": (ShapleySamplingExplainer, {**pert, "n_samples": args.shapley_samples}),
        "self_topk": (SelfTopKExplainer, gen),
        "self_exp": (SelfExplanationExplainer, gen),
    }
    cls, kwargs = table[name]
    return cls(loaded, labels, frame, **kwargs)


def settings_of(name: str, args: argparse.Namespace) -> str:
    return {
        "integrated_gradients": f"n_steps={args.n_steps}",
        "gradient_shap": f"n_samples={args.n_steps}",
        "kernel_shap": f"n_samples={args.n_samples}",
        "lime": f"n_samples={args.n_samples}",
        "shapley_sampling": f"n_samples={args.shapley_samples}",
        "self_topk": f"max_new_tokens={args.max_new_tokens}",
        "self_exp": f"max_new_tokens={args.max_new_tokens}",
    }.get(name, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="snarks")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--n", type=int, default=2, help="items (the shortest of the task)")
    parser.add_argument("--n-samples", type=int, default=350, help="KernelShapExplainer / LimeExplainer samples")
    parser.add_argument("--n-steps", type=int, default=50, help="IG steps and GradientShapExplainer samples")
    parser.add_argument("--shapley-samples", type=int, default=2, help="Shapley sampling permutations")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="self_topk / self_exp budget")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="*", default=ALL, choices=ALL)
    parser.add_argument("--skip-unbatched", action="store_true", help="time only the batched runs")
    args = parser.parse_args()

    loaded = load_causal_lm(args.model)
    task = load_task(args.data / args.task)
    frame = Frame.from_task(task)
    items = sorted(task.examples, key=lambda e: len(e.input))[: args.n]
    texts, targets = [e.input for e in items], [e.label for e in items]
    encoded = [encode_item(loaded, frame, t, y, max_length=10**6) for t, y in zip(texts, targets, strict=True)]
    n_tokens = statistics.mean(len(it.ids) for it in encoded)
    n_words = statistics.mean(len(split_words(it.text)) for it in encoded)

    # One forward, and one forward + backward, of the same batch of rows.
    forward = TargetLogProb(loaded)
    batch = make_rows([it.ids for it in encoded], [len(it.prompt_ids) for it in encoded], 0, loaded.device)
    embed = loaded.model.get_input_embeddings()

    def fwd() -> None:
        with torch.no_grad():
            forward(batch.input_ids, *batch.forward_args())

    def fwd_bwd() -> None:
        embeds = embed(batch.input_ids).detach().requires_grad_(True)
        out = forward.forward_embeds(embeds, *batch.forward_args()).sum()
        torch.autograd.grad(out, embeds)

    fwd()  # warm-up
    base_rows = {
        "one forward pass (batch)": [timed(fwd) / args.n for _ in range(args.repeats)],
        "one forward + backward pass (batch)": [timed(fwd_bwd) / args.n for _ in range(args.repeats)],
    }

    results: list[tuple[str, str, list[float], list[float]]] = []
    for name in args.methods:
        batched = build(name, loaded, task.labels, frame, args, batched=True)
        single = build(name, loaded, task.labels, frame, args, batched=False)
        b_times, u_times = [], []
        for _ in range(args.repeats):
            b_times.append(timed(lambda e=batched: e.explain(texts, targets)) / args.n)
            if not args.skip_unbatched:
                u_times.append(
                    timed(lambda e=single: [e.explain_one(t, y) for t, y in zip(texts, targets, strict=True)]) / args.n
                )
        results.append((name, settings_of(name, args), b_times, u_times))
        print(f"  {name}: batched {fmt(b_times)} s/example", flush=True)

    # KernelShapExplainer against the bare cost of scoring the very rows it scored, 16 per pass.
    shap_rows: list[tuple[list[float], list[float], float]] = []
    if "kernel_shap" in args.methods:
        shap = build("kernel_shap", loaded, task.labels, frame, args, batched=True)
        calls: list[tuple[Any, ...]] = []
        score = shap.scorer.score

        def recording(head: Any, suffixes: Any, label_ids: Any) -> torch.Tensor:
            calls.append((tuple(head), list(suffixes), tuple(label_ids)))
            return score(head, suffixes, label_ids)

        shap.scorer.score = recording  # type: ignore[method-assign]
        k_times, f_times = [], []
        for _ in range(args.repeats):
            calls.clear()
            k_times.append(timed(lambda: shap.explain(texts, targets)) / args.n)
            per_item: dict[tuple[Any, ...], list[Any]] = {}
            for head, suffixes, label_ids in calls:
                per_item.setdefault((head, label_ids), []).extend(suffixes)
            n_rows = sum(len(v) for v in per_item.values()) / args.n
            f_times.append(sum(timed(lambda k=k, v=v: score(k[0], v, k[1])) for k, v in per_item.items()) / args.n)
        shap_rows.append((k_times, f_times, n_rows))

    print()
    print(
        f"model {args.model} on {torch.get_num_threads()} CPU threads, task {args.task}: "
        f"the {args.n} shortest items (~{n_tokens:.0f} prompt+label tokens, ~{n_words:.0f} words), "
        f"{args.repeats} repeats; "
        f"n = items x repeats = {args.n * args.repeats}"
    )
    print()
    print("| explainer | settings | batched s/example | unbatched s/example | speed-up | n |")
    print("|---|---|---|---|---|---|")
    for label, xs in base_rows.items():
        print(f"| {label} | {args.n} rows | {fmt(xs)} | | | {args.n * args.repeats} |")
    for name, settings, b, u in results:
        speed = f"{statistics.mean(u) / statistics.mean(b):.1f}x" if u else ""
        print(f"| {name} | {settings} | {fmt(b)} | {fmt(u) if u else 'skipped'} | {speed} | {args.n * args.repeats} |")
    if shap_rows:
        [(k_times, f_times, n_rows)] = shap_rows
        print()
        print(
            "| KernelShapExplainer | s/example | scoring the same rows alone (16 per pass) | rows/example | ratio | n |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| n_samples={args.n_samples} | {fmt(k_times)} | {fmt(f_times)} | {n_rows:.0f} | "
            f"{statistics.mean(k_times) / statistics.mean(f_times):.2f}x | {args.n * args.repeats} |"
        )


if __name__ == "__main__":
    main()
