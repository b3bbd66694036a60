"""Run the evaluation harness on BIG-bench tasks and write JSON / CSV / PNG / markdown per task.

Defaults: the four development tasks in ``../shared/data/bigbench`` (or
``$AMPLIFY_BIGBENCH_DIR``), the default methods of :data:`amplify_agents.eval.DEFAULT_METHODS`,
3 seeds, 100 test items, fixed demonstrations; results go to
``benchmarks/results/<task>/`` (``results.json`` is resumable: re-running the same command
skips finished (method, seed) runs).

Examples:
    # the full benchmark (long: see the estimate in the project notes)
    python benchmarks/run_eval.py

    # the target behind an OpenAI-compatible server (llama.cpp serving a GGUF), the
    # self-explaining methods on the same GGUF loaded through transformers
    python benchmarks/run_eval.py --base-url http://127.0.0.1:8080/v1 --model qwen-0.5b \\
        --explainer-model .cache/models/qwen2.5-coder-0.5b-instruct.gguf --n-shot 4

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

from amplify_agents.defaults import DEFAULTS
from amplify_agents.eval import DEFAULT_METHODS, EvalConfig, run_eval

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("AMPLIFY_BIGBENCH_DIR", ROOT.parent / "shared" / "data" / "bigbench"))
DEFAULT_TASKS = ("snarks", "causal_judgment", "implicatures", "sports_understanding")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of BIG-bench task folders")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="task folder names (or paths)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="method names")
    p.add_argument("--model", default="gemma-3-270m", help="local model, or the served model's name with --base-url")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint of the target (e.g. llama.cpp)")
    p.add_argument("--api", choices=("completions", "chat"), default="completions")
    p.add_argument("--api-key-env", default=None, help="NAME of the variable holding the endpoint's key")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight to the endpoint")
    p.add_argument("--explainer-model", default=None, help="local model of the self: methods (default: the target)")
    p.add_argument("--validation-size", type=int, default=0, help="items per seed held out for validation")
    p.add_argument("--evaluate-on", choices=("test", "validation"), default="test")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--test-size", type=int, default=100)
    p.add_argument("--n-shot", type=int, default=DEFAULTS.shots)
    p.add_argument("--k", type=int, default=DEFAULTS.keywords, help="keywords per rationale")
    p.add_argument("--demo-setting", choices=("fixed", "retrieved"), default="fixed")
    p.add_argument("--pool-size", type=int, default=None, help="cap on the demo pool (default: all)")
    p.add_argument("--proxy", choices=("classifier", "causal_lm"), default="classifier")
    p.add_argument("--proxy-epochs", type=int, default=10)
    p.add_argument("--uimer-alpha", type=float, default=1.0, help="UIMER's alpha (amplify:...:uimer-gb methods)")
    p.add_argument("--uimer-warmup", type=int, default=2, help="UIMER's warm-up epochs")
    p.add_argument(
        "--rationale-store",
        nargs=2,
        metavar=("DIR", "NAME"),
        default=None,
        help="UIMER's gold rationales: the keywords of this store's demonstrations, by example id",
    )
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
            base_url=args.base_url,
            api=args.api,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
            explainer_model=args.explainer_model,
            validation_size=args.validation_size,
            evaluate_on=args.evaluate_on,
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
            uimer_alpha=args.uimer_alpha,
            uimer_warmup=args.uimer_warmup,
            rationale_store=tuple(args.rationale_store) if args.rationale_store else None,
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
