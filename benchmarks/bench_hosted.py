"""The answering path through two backends side by side: transformers vs llama.cpp's server.

The same 8-shot BIG-bench prompts (fixed demonstrations, one test split) are answered by
the local transformers backend and by a llama.cpp OpenAI-compatible server (started here on
127.0.0.1, serving the same Gemma GGUF file), alternating per repeat, without the response
cache. Reports items/s (mean ± std over repeats) and how often the two agree. Then it times
a ``build`` that adds nothing, run twice on a fresh store: the first run predicts the pool,
the second finds every answer in the response cache beside the store.

    python benchmarks/bench_hosted.py --task sports_understanding --n 20 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amplify_agents.answering import Answerer, AnswerSettings, Endpoint, LocalBackend, open_endpoint  # noqa: E402
from amplify_agents.framing import Frame  # noqa: E402
from amplify_agents.models import default_cache_dir, load_causal_lm  # noqa: E402
from amplify_agents.models.registry import resolve_offline  # noqa: E402
from amplify_agents.prompts import PromptStyle  # noqa: E402
from amplify_agents.tasks import load_task  # noqa: E402
from tests.integration.llama_server import llama_server_process  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench"


def _throughput(args: argparse.Namespace) -> None:
    task = load_task(args.data / args.task)
    frame = Frame.from_task(task)
    split = task.split(seed=args.seed, test=args.n, pool=args.shots)
    demos = [{"input": e.input, "answer": e.label, "rationale": ""} for e in split.pool]
    queries = [e.input for e in split.test]
    settings = AnswerSettings(PromptStyle(frame))
    gguf = resolve_offline("gemma-3-270m").locate(default_cache_dir())
    local = Answerer(LocalBackend(load_causal_lm("gemma-3-270m")), settings)
    rates: dict[str, list[float]] = {"transformers": [], "llama.cpp server": []}
    with llama_server_process(gguf) as server:
        remote = Answerer(open_endpoint(Endpoint(server.base_url, server.model, concurrency=1)), settings)
        answers: dict[str, list[str | None]] = {}
        for _ in range(args.repeats):
            for name, answerer in (("transformers", local), ("llama.cpp server", remote)):
                began = time.perf_counter()
                got = answerer.answer(queries, task.labels, demos=demos)
                rates[name].append(len(queries) / (time.perf_counter() - began))
                answers[name] = [a.predicted for a in got]
    agree = sum(a == b for a, b in zip(*answers.values(), strict=True))
    print(f"task {args.task}, {args.shots}-shot, n={args.n} items x {args.repeats} repeats, seed {args.seed}")
    print("| backend | items/s (mean ± std) |\n| --- | --- |")
    for name, values in rates.items():
        print(f"| {name} | {statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f} |")
    print(f"predictions agree on {agree}/{len(queries)}")


def _build_rerun(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "amplify_agents.cli", "build", str(args.data / args.task), "-d", f"{tmp}/db"]
        cmd += ["-n", "bench", "--pool", str(args.pool), "--explainer", "random", "--quiet"]
        seconds = []
        for _ in range(2):
            began = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            seconds.append(time.perf_counter() - began)
    print(f"build, pool {args.pool}: first run {seconds[0]:.1f} s, re-run that adds nothing {seconds[1]:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="sports_understanding")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=200, help="pool of the build re-run timing")
    args = parser.parse_args()
    _throughput(args)
    _build_rerun(args)


if __name__ == "__main__":
    main()
