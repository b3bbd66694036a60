"""AMPLIFY's gradient explainers on both proxies: seconds per example, batched vs one at a time.

For each proxy (MiniLM ``ProxyClassifier`` with an untrained head by default, and the
offline Gemma as ``CausalLMProxy``) and BIG-bench items of one task, it times:

* one forward pass (label logits, no gradient) and one forward+backward pass
  (gradient of the target logits w.r.t. the input embeddings) of the same batches:
  the floor an explainer cannot beat;
* each gradient explainer, batched (``--batch-size`` inputs per call) and one input
  at a time.

Each cell is seconds per example, mean ± std over ``--repeats`` (every repeat runs all
``--n`` items). One untimed warm-up call per model comes first.

    python benchmarks/bench_proxy_explainers.py --n 6 --batch-size 3 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from amplify_agents.explainers.gradient import (  # noqa: E402
    ContrastiveGradientExplainer,
    ContrastiveGradXInputExplainer,
    GradientExplainer,
    GradXInputExplainer,
)
from amplify_agents.models import load_causal_lm  # noqa: E402
from amplify_agents.models.proxy import CausalLMProxy, DifferentiableLabelModel, ProxyClassifier  # noqa: E402
from amplify_agents.tasks import load_task  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench"
EXPLAINERS = [
    GradientExplainer,
    GradXInputExplainer,
    ContrastiveGradientExplainer,
    ContrastiveGradXInputExplainer,
]


def per_example(fn: Callable[[], object], n: int, repeats: int) -> list[float]:
    """Seconds per example of ``fn`` (which processes ``n`` examples), once per repeat."""
    out = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) / n)
    return out


def fmt(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"


def bench_model(
    label: str, proxy: DifferentiableLabelModel, texts: list[str], golds: list[str], bs: int, repeats: int
) -> list[str]:
    n = len(texts)
    labels = list(proxy.labels)

    def chunks(size: int) -> list[tuple[list[str], list[str]]]:
        return [(texts[i : i + size], golds[i : i + size]) for i in range(0, n, size)]

    def forward(size: int) -> None:
        with torch.no_grad():
            for t, _ in chunks(size):
                batch = proxy.encode(t)
                proxy.label_logits_from_embeddings(batch.embeddings, batch)

    def forward_backward(size: int) -> None:
        for t, y in chunks(size):
            batch = proxy.encode(t)
            embeds = batch.embeddings.requires_grad_()
            logits = proxy.label_logits_from_embeddings(embeds, batch)
            idx = torch.tensor([labels.index(v) for v in y])
            torch.autograd.grad(logits[torch.arange(len(y)), idx].sum(), embeds)

    GradientExplainer(proxy, batch_size=bs).explain(texts[:1], golds[:1])  # warm-up
    fb = per_example(lambda: forward_backward(bs), n, repeats)
    rows = [
        f"| {label} | forward (no grad) | {fmt(per_example(lambda: forward(bs), n, repeats))} "
        f"| {fmt(per_example(lambda: forward(1), n, repeats))} | |",
        f"| {label} | forward + backward | {fmt(fb)} "
        f"| {fmt(per_example(lambda: forward_backward(1), n, repeats))} | 1.00x |",
    ]
    for cls in EXPLAINERS:
        batched = cls(proxy, batch_size=bs)
        single = cls(proxy, batch_size=1)
        b = per_example(lambda e=batched: e.explain(texts, golds), n, repeats)
        s = per_example(lambda e=single: [e.explain_one(t, y) for t, y in zip(texts, golds, strict=True)], n, repeats)
        ratio = statistics.mean(b) / statistics.mean(fb)
        rows.append(f"| {label} | {cls.name} | {fmt(b)} | {fmt(s)} | {ratio:.2f}x |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="snarks")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=6, help="examples per repeat")
    parser.add_argument("--batch-size", type=int, default=3, help="examples per batched call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="minilm,gemma", help="comma-separated: minilm, gemma")
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--causal-lm", default="gemma-3-270m")
    parser.add_argument("--epochs", type=int, default=0, help="fine-tuning epochs of the encoder proxy")
    # On the shared 2-core machines, two contended torch threads ran MiniLM 10-20x
    # slower than one: one thread gives stable numbers. 0 keeps torch's default.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    task = load_task(args.data / args.task)
    items = list(task.split(seed=args.seed, test=args.n).test)
    texts, golds = [e.input for e in items], [e.label for e in items]
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    rows: list[str] = []
    notes = []
    if "minilm" in models:
        began = time.perf_counter()
        proxy = ProxyClassifier.from_task(task, args.encoder, epochs=args.epochs, seed=args.seed, progress=False)
        n_tok = sum(len(proxy.encode([t]).feature_positions(0)) for t in texts) / len(texts)
        notes.append(
            f"{args.encoder} classifier (E={args.epochs}, load {time.perf_counter() - began:.1f} s, "
            f"~{n_tok:.0f} input tokens)"
        )
        rows += bench_model(args.encoder, proxy, texts, golds, args.batch_size, args.repeats)
    if "gemma" in models:
        began = time.perf_counter()
        lm = CausalLMProxy.from_task(task, load_causal_lm(args.causal_lm))
        batch = lm.encode(texts[:1])
        notes.append(
            f"{args.causal_lm} causal-LM proxy (load {time.perf_counter() - began:.1f} s, "
            f"~{batch.input_ids.shape[1]} prompt tokens, label tokens "
            f"{[len(i) for i in lm.label_token_ids()]})"
        )
        rows += bench_model(args.causal_lm, lm, texts, golds, args.batch_size, args.repeats)

    print(
        f"task {args.task}, n={len(texts)} examples x {args.repeats} repeats, batch size {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}, seed {args.seed}"
    )
    for note in notes:
        print(f"- {note}")
    print()
    print("| proxy | what | batched s / example | one at a time s / example | batched / fwd+bwd |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
