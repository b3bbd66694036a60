"""``amplify-agents demo``: a short end-to-end run on a tiny temporary store."""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from amplify_agents.cli.command import command
from amplify_agents.cli.common import (
    DEFAULT_MODEL,
    bad,
    check_device,
    console,
    default_bigbench_dir,
    err_console,
    load_slm,
    load_task,
    open_store,
)
from amplify_agents.cli.options import Device, OptionGroup, Quiet
from amplify_agents.cli.report import build_report_table, demo_table

if TYPE_CHECKING:
    from amplify_agents.answering import Answer

__all__ = ["DEMO_TASK", "DemoOptions", "demo_cmd"]

DEMO_TASK = "sports_understanding"


@dataclass(frozen=True)
class DemoOptions(OptionGroup):
    """The demo's sizes, query, seed and model."""

    pool: Annotated[int, typer.Option(min=2, help="Pool examples the model labels and errors are chosen from.")] = 16
    n: Annotated[int, typer.Option(min=1, help="Demonstrations to build.")] = 4
    shots: Annotated[int, typer.Option(min=1, help="Demonstrations in the prompt.")] = 4
    k: Annotated[int, typer.Option(min=1, help="Keywords per rationale.")] = 4
    query: Annotated[
        str | None, typer.Option(help="The question to answer (default: a held-out test item).", show_default=False)
    ] = None
    seed: Annotated[int, typer.Option(help="Seeds the split and the selection.")] = 0
    model: Annotated[str, typer.Option(help="The small LM.")] = DEFAULT_MODEL


@command
def demo_cmd(
    task_path: Annotated[
        Path | None,
        typer.Option(
            "--task",
            help=f"Task file (default: BIG-bench {DEMO_TASK} under $AMPLIFY_BIGBENCH_DIR or ../shared/data).",
            show_default=False,
        ),
    ] = None,
    store_dir: Annotated[
        Path | None,
        typer.Option(
            "--store-dir",
            "-d",
            help="Keep the store in this directory (default: a temporary one, removed after).",
            show_default=False,
        ),
    ] = None,
    *,
    options: DemoOptions,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """A short end-to-end run: build a tiny store, retrieve demos for a query, answer it."""
    model_device = check_device(device)  # before anything loads: a missing GPU is one line, not a failed load
    path = task_path
    if path is None:
        root = default_bigbench_dir()
        if root is None:
            raise bad("BIG-bench data not found: set AMPLIFY_BIGBENCH_DIR or pass --task.", "--task")
        path = root / DEMO_TASK
    tmp = None
    if store_dir is None:
        tmp = tempfile.mkdtemp(prefix="amplify-demo-")
        store_dir = Path(tmp)
    try:
        _run_demo(path, store_dir, options, quiet, model_device)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run_demo(path: Path, store_dir: Path, opts: DemoOptions, quiet: bool, device: str | None) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from amplify_agents.answering import Answerer, AnswerSettings, LocalBackend
    from amplify_agents.builder import BuildConfig, DemonstrationBuilder
    from amplify_agents.explainers.gradient import GradXInputExplainer
    from amplify_agents.explainers.registry import create_proxy
    from amplify_agents.framing import Frame
    from amplify_agents.predictors import TargetPredictor
    from amplify_agents.prompts import PromptStyle
    from amplify_agents.selectors import AmplifyExampleSelector

    task = load_task(path, "--task")
    if opts.pool + 1 > len(task):
        raise bad(f"--pool {opts.pool} leaves no test item in the {len(task)} examples.", "--pool")
    splits = task.split(seed=opts.seed, test=1, pool=opts.pool)
    frame = Frame.from_task(task)
    steps = ["load the small LM", "AMPLIFY proxy (MiniLM)", "build the store", "select and answer"]
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    )
    with progress:
        bar = progress.add_task("demo", total=len(steps))
        progress.update(bar, description=steps[0])
        slm = load_slm(opts.model, device=device)
        answerer = Answerer(LocalBackend(slm), AnswerSettings(PromptStyle(frame)))
        progress.advance(bar)
        progress.update(bar, description=steps[1])
        # An untrained head keeps the demo quick; `build --proxy-epochs 10` is AMPLIFY's setting.
        proxy = create_proxy("classifier", labels=task.labels, epochs=0, seed=opts.seed, device=device)
        explainer = GradXInputExplainer(proxy, k=opts.k)
        progress.advance(bar)
        progress.update(bar, description=steps[2])
        store = open_store(store_dir, f"demo-{task.name}"[:63], create=True)
        report = DemonstrationBuilder(
            task,
            TargetPredictor(answerer, task.labels),
            explainer,
            store,
            BuildConfig(strategy="error", n=opts.n, seed=opts.seed),
            model_id=slm.name,
            progress=False,
        ).run(splits.pool.examples)
        progress.advance(bar)
        progress.update(bar, description=steps[3])
        gold = None
        query = opts.query
        if not query:
            query, gold = splits.test[0].input, splits.test[0].label
        selector = AmplifyExampleSelector(store, k=opts.shots, task=task.name, frame=frame)
        demos = selector.select_demonstrations(query)
        answer = answerer.answer_one(query, task.labels, [d.to_example() for d in demos])
        progress.advance(bar)
    console.print(f"[bold]task[/] {task.name}: labels {list(task.labels)}; pool {len(splits.pool)} examples")
    console.print(build_report_table(report))
    console.print(demo_table(demos, f"demonstrations selected for the query ({len(demos)})"))
    console.rule("prompt")
    typer.echo(answer.prompt)  # as the model reads it, not wrapped to the terminal
    console.rule("answer")
    _print_answer(answer, gold)


def _print_answer(answer: "Answer", gold: str | None) -> None:
    scores = answer.scores
    assert scores is not None  # a local model scores its labels
    probs = ", ".join(f"{lab} {p:.2f}" for lab, p in scores.probs.items())
    line = f"answer: [bold]{scores.predicted}[/] ({probs})"
    if gold is not None:
        line += f"; gold: {gold} ({'correct' if scores.predicted == gold else 'wrong'})"
    console.print(line)
    console.print("(Gemma 3 270M is a tiny base model: this shows the pipeline, not the method's accuracy.)")
