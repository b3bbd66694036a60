"""Label scoring: fast path (last-position logits + shared-prefix KV cache) vs naive.

Runs both side by side on the same 8-shot BIG-bench prompts and reports seconds per
test item (mean ± std over repeats), the speed-up and whether predictions agree.

    python benchmarks/bench_scoring.py --task snarks --n 10 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from amplify_agents.framing import Frame  # noqa: E402
from amplify_agents.models import LabelScorer, load_causal_lm  # noqa: E402
from amplify_agents.tasks import load_task  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="snarks")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--n", type=int, default=10, help="test items per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    began = time.perf_counter()
    loaded = load_causal_lm(args.model)
    load_s = time.perf_counter() - began
    task = load_task(args.data / args.task)
    splits = task.split(seed=args.seed, test=args.n)
    frame = Frame.from_task(task)
    demos = frame.instruction + "".join(frame.demo(e.input, e.label) + "\n" for e in splits.pool.examples[: args.shots])
    prompts = [demos + frame.render(e.input, instruction=False)[0] for e in splits.test]
    n_tokens = len(loaded.tokenizer(prompts[0])["input_ids"])

    fast_t, naive_t, agree = [], [], True
    for _ in range(args.repeats):
        scorer = LabelScorer(loaded)  # fresh: the prefix cache is built inside the timing
        t = time.perf_counter()
        fast = scorer.score(prompts, task.labels)
        fast_t.append((time.perf_counter() - t) / len(prompts))
        t = time.perf_counter()
        naive = scorer.score_naive(prompts, task.labels)
        naive_t.append((time.perf_counter() - t) / len(prompts))
        agree &= all(f.predicted == s.predicted for f, s in zip(fast, naive))
        max_diff = max(abs(a - b) for f, s in zip(fast, naive) for a, b in zip(f.logprobs, s.logprobs))

    def fmt(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"

    print(
        f"model {args.model} (load {load_s:.1f} s), task {args.task}, {args.shots}-shot prompt of ~{n_tokens} tokens, "
        f"{len(task.labels)} labels, n={len(prompts)} items x {args.repeats} repeats, seed {args.seed}"
    )
    print("| scoring | s / item (mean ± std) | speed-up | same predictions | max |Δ logprob| |")
    print("|---|---|---|---|---|")
    print(f"| naive (full logits, no cache) | {fmt(naive_t)} | 1.0x | | |")
    print(
        f"| fast (label-position logits + prefix KV) | {fmt(fast_t)} | "
        f"{statistics.mean(naive_t) / statistics.mean(fast_t):.1f}x | {agree} | {max_diff:.1e} |"
    )


if __name__ == "__main__":
    main()
