"""Run the evaluation harness on BIG-bench tasks and write JSON / CSV / PNG / markdown per task.

Defaults: the four development tasks in ``../shared/data/bigbench`` (or
``$AMPLIFY_BIGBENCH_DIR``), the default methods of :data:`amplify_agents.eval.DEFAULT_METHODS`,
3 seeds, 100 test items, fixed demonstrations; results go to
``benchmarks/results/<task>/`` (``results.json`` is resumable: re-running the same command
skips finished (method, seed) runs).

Examples:
    # the full benchmark (long: see the estimate in the project notes)
    python benchmarks/run_eval.py

    # a smoke run
    python benchmarks/run_eval.py --tasks snarks --seeds 0 --test-size 6 --n-shot 2 \\
        --pool-size 16 --proxy-epochs 1 --out benchmarks/results-smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from amplify_agents.eval import DEFAULT_METHODS, EvalConfig, run_eval

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("AMPLIFY_BIGBENCH_DIR", ROOT.parent / "shared" / "data" / "bigbench"))
DEFAULT_TASKS = ("snarks", "causal_judgment", "implicatures", "sports_understanding")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of BIG-bench task folders")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="task folder names (or paths)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="method names")
    p.add_argument("--model", default="gemma-3-270m")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--test-size", type=int, default=100)
    p.add_argument("--n-shot", type=int, default=8)
    p.add_argument("--k", type=int, default=5, help="keywords per rationale")
    p.add_argument("--demo-setting", choices=("fixed", "retrieved"), default="fixed")
    p.add_argument("--pool-size", type=int, default=None, help="cap on the demo pool (default: all)")
    p.add_argument("--proxy", choices=("classifier", "causal_lm"), default="classifier")
    p.add_argument("--proxy-epochs", type=int, default=10)
    p.add_argument("--retrieval-candidates", type=int, default=None)
    p.add_argument("--device", default=None, help='"cuda" or "auto" for a GPU (default: CPU)')
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results root")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in args.tasks:
        path = Path(name) if Path(name).exists() else args.data / name
        out_dir = args.out / path.name
        config = EvalConfig(
            task=path,
            model=args.model,
            n_shot=args.n_shot,
            k=args.k,
            seeds=tuple(args.seeds),
            methods=tuple(args.methods),
            test_size=args.test_size,
            demo_setting=args.demo_setting,
            out_dir=out_dir,
            pool_size=args.pool_size,
            proxy=args.proxy,
            proxy_epochs=args.proxy_epochs,
            retrieval_candidates=args.retrieval_candidates,
            plot=not args.no_plot,
            device=args.device,
        )
        began = time.perf_counter()
        results = run_eval(config, progress=not args.quiet)
        print(
            f"\n## {path.name}  ({time.perf_counter() - began:.0f} s, {len(results.computed)} runs computed, "
            f"{len(results.skipped)} resumed; files in {out_dir})\n"
        )
        print(results.table())
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
