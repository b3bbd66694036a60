"""Build throughput: the single-process builder beside the Ray build with 1 and 2 workers.

Self-AMPLIFY on the offline Gemma (the target predicts the pool, then explains itself) builds
``--n`` demonstrations of one BIG-bench task from a pool of ``--pool`` examples into a real
``chroma run`` server started here on 127.0.0.1, once per configuration, each into a fresh
collection, side by side in one run. Reported: seconds end to end (predict + rank + explain +
store, Ray's start-up of its workers included) and demonstrations per second. The Ray runs
join one local Ray instance (``--cpus``) started before them; its own start-up is printed
apart.

    python benchmarks/bench_ray_build.py --n 16 --pool 48 --explainer gradient_x_activation

Ray has to be installed (``pip install 'amplify-agents[ray]'``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
BIGBENCH = Path(os.environ.get("AMPLIFY_BIGBENCH_DIR", ROOT.parent / "shared" / "data" / "bigbench"))


def gemma_predictor(task_dir: str) -> object:
    from amplify_agents import Frame, SLMPredictor, load_causal_lm, load_task

    task = load_task(task_dir)
    return SLMPredictor(load_causal_lm("gemma-3-270m"), task.labels, Frame.from_task(task))


def gemma_explainer(task_dir: str, name: str, k: int) -> object:
    from amplify_agents import Frame, create_explainer, load_causal_lm, load_task

    task = load_task(task_dir)
    return create_explainer(
        name, slm=load_causal_lm("gemma-3-270m"), labels=task.labels, frame=Frame.from_task(task), k=k
    )


def server_store(name: str, port: int) -> object:
    from amplify_agents import RationaleStore, ServerSettings

    return RationaleStore.server(name, connection=ServerSettings(port=port, timeout_s=60.0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="sports_understanding")
    p.add_argument("--n", type=int, default=16, help="demonstrations to build")
    p.add_argument("--pool", type=int, default=48, help="examples predicted (the corpus)")
    p.add_argument("--explainer", default="gradient_x_activation")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray instance")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()

    import ray

    from amplify_agents import BuildConfig, BuildRecipe, DemonstrationBuilder, RayBuilder, RayBuildSettings, load_task

    task_dir = str(BIGBENCH / args.task)
    task = load_task(task_dir)
    pool = task.split(seed=0, test=0, pool=args.pool).pool.examples
    config = BuildConfig(strategy="error", n=args.n, seed=0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    port = 8765
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    server = subprocess.Popen(
        [chroma, "run", "--path", str(workdir / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                time.sleep(0.2)

        def recipe(name: str) -> BuildRecipe:
            return BuildRecipe(
                task,
                predictor=partial(gemma_predictor, task_dir),
                explainer=partial(gemma_explainer, task_dir, args.explainer, args.k),
                store=partial(server_store, name, port),
                config=config,
            )

        rows = []
        single = recipe("single-process")
        t = time.perf_counter()
        builder = DemonstrationBuilder(
            task,
            single.predictor(),
            single.explainer(),
            single.store(),
            config,
            progress=False,  # type: ignore[arg-type]
        )
        report = builder.run(pool)
        rows.append(("single process", time.perf_counter() - t, len(report.added)))
        expected = sorted(report.added)

        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        print(f"ray.init: {time.perf_counter() - t:.1f} s ({args.cpus} CPUs)")
        try:
            for workers in args.workers:
                settings = RayBuildSettings(workers=workers, cpus_per_worker=args.cpus / workers)
                t = time.perf_counter()
                report = RayBuilder(settings).run(recipe(f"ray-{workers}"), pool)
                rows.append((f"Ray, {workers} worker{'s' * (workers > 1)}", time.perf_counter() - t, len(report.added)))
                same = "same ids" if sorted(report.added) == expected else "DIFFERENT ids"
                print(f"Ray {workers}: {same} as the single-process build")
        finally:
            ray.shutdown()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{args.task}, {args.explainer} (k={args.k}), pool {args.pool}, n {args.n}, {args.cpus} CPUs")
    print("| build | seconds | demonstrations | demonstrations/s |\n|---|---|---|---|")
    for name, seconds, added in rows:
        print(f"| {name} | {seconds:.1f} | {added} | {added / seconds:.3f} |")


if __name__ == "__main__":
    main()
