"""Model load: first load of the offline Gemma (GGUF de-quantisation + save) vs the cached load.

Each repeat uses a fresh temporary cache directory for the first load, then loads
again from it. Prints seconds (mean ± std over repeats).

    python benchmarks/bench_load.py --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from amplify_agents.models import load_causal_lm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    first, cached = [], []
    for _ in range(args.repeats):
        cache = tempfile.mkdtemp(prefix="bench-load-")
        try:
            t = time.perf_counter()
            a = load_causal_lm(args.model, cache_dir=cache)
            first.append(time.perf_counter() - t)
            assert not a.from_cache
            del a
            t = time.perf_counter()
            b = load_causal_lm(args.model, cache_dir=cache)
            cached.append(time.perf_counter() - t)
            assert b.from_cache
            del b
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    def fmt(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.1f}"

    print(f"| load of {args.model} | seconds (mean ± std, n={args.repeats}) |")
    print("|---|---|")
    print(f"| first (de-quantise GGUF, save converted copy) | {fmt(first)} |")
    print(f"| cached (read converted safetensors) | {fmt(cached)} |")


if __name__ == "__main__":
    main()
