"""Selector latency: AmplifyExampleSelector vs LangChain's SemanticSimilarityExampleSelector.

Both run side by side, interleaved query by query, on the SAME Chroma collection and the
same MiniLM embeddings, at equal k, with default options. Reports p50/p95 per selector
and store size and the ratio of the medians.

    python benchmarks/bench_selector.py --sizes 1000 10000 --queries 200
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from langchain_core.example_selectors import SemanticSimilarityExampleSelector  # noqa: E402

from amplify_agents import AmplifyExampleSelector, Demonstration, RationaleStore, load_task  # noqa: E402
from amplify_agents.stores import default_embeddings  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench"


def corpus(size: int, seed: int) -> list[tuple[str, str]]:
    """``size`` distinct (input, label) pairs: the four BIG-bench tasks, with numbered variants past their end."""
    base = [
        (e.input, e.label)
        for t in ("sports_understanding", "implicatures", "causal_judgment", "snarks")
        for e in load_task(DATA / t)
    ]
    random.Random(seed).shuffle(base)
    return [
        (f"{text} (variant {i // len(base)})" if i >= len(base) else text, label)
        for i, (text, label) in enumerate(base[i % len(base)] for i in range(size))
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    embeddings = default_embeddings()
    embeddings.embed_query("warm up")
    print(f"k={args.k}, {args.queries} queries per size (interleaved, after 10 warm-up queries each), seed {args.seed}")
    print("| demos | selector | p50 ms | p95 ms | mean ms | p50 ratio |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        directory = tempfile.mkdtemp(prefix="bench-selector-")
        store = RationaleStore.local(f"bench-{size}", directory, embeddings=embeddings)
        pairs = corpus(size, args.seed)
        t = time.perf_counter()
        for start in range(0, size, 1000):
            store.add(
                Demonstration(
                    input=x,
                    label=y,
                    rationale=f"The key words: a and b are important clues to predict {y}.",
                    task="bench",
                    explainer="random",
                    strategy="random",
                    k=2,
                )
                for x, y in pairs[start : start + 1000]
            )
        build_s = time.perf_counter() - t
        ours = AmplifyExampleSelector(store, k=args.k)
        theirs = SemanticSimilarityExampleSelector(vectorstore=store.vectorstore, k=args.k, input_keys=["input"])
        queries = [x for x, _ in random.Random(args.seed + 1).sample(pairs, min(args.queries + 10, len(pairs)))]
        times: dict[str, list[float]] = {"AmplifyExampleSelector": [], "SemanticSimilarityExampleSelector": []}
        for i, q in enumerate(queries):
            order = [("AmplifyExampleSelector", ours), ("SemanticSimilarityExampleSelector", theirs)]
            if i % 2:
                order.reverse()  # alternate who goes first: no systematic cache advantage
            for name, sel in order:
                t = time.perf_counter()
                sel.select_examples({"input": q})
                if i >= 10:
                    times[name].append((time.perf_counter() - t) * 1000)
        base = statistics.median(times["SemanticSimilarityExampleSelector"])
        for name, values in times.items():
            print(
                f"| {size} | {name} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | "
                f"{statistics.mean(values):.1f} | {statistics.median(values) / base:.2f}x |"
            )
        print(f"<!-- {size} demos stored in {build_s:.1f} s -->")


if __name__ == "__main__":
    main()
