"""The commands that read or copy a store: ``select``, ``inspect``, ``export`` and ``import``."""

import json
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from amplify_agents.cli.command import command
from amplify_agents.cli.common import bad, check_device, console, load_task
from amplify_agents.cli.explain import ExplainOptions, explain_demo
from amplify_agents.cli.options import Device, NewStoreArgs, OptionGroup, StoreArgs
from amplify_agents.cli.report import counter_table, demo_table, history_table, short
from amplify_agents.defaults import DEFAULTS

if TYPE_CHECKING:
    from amplify_agents.framing import Frame
    from amplify_agents.selectors import AmplifyExampleSelector
    from amplify_agents.stores import RationaleStore

__all__ = ["SelectorOptions", "export_cmd", "import_cmd", "inspect_cmd", "open_for_reading", "select_cmd"]

T = TypeVar("T")


def open_for_reading(store: StoreArgs) -> "RationaleStore":
    """The store of ``STORE_DIR``/``--name``, opened read-only: nothing in the folder is written.

    A missing folder, a folder that is not a store, or a store name it does not hold is bad
    input (exit 2), and the folder is left as it was.
    """
    from amplify_agents.errors import StoreError
    from amplify_agents.stores import RationaleStore, validate_store_name

    if store.store_dir is None:
        raise bad("the store directory is required.", "STORE_DIR")
    if not store.name:
        raise bad("the store name is required.", "--name")
    if not store.store_dir.is_dir():
        raise bad(f"no store directory {store.store_dir}.", "STORE_DIR")
    try:
        validate_store_name(store.name)
        return RationaleStore.local(store.name, store.store_dir, read_only=True)
    except StoreError as exc:
        raise bad(str(exc), "STORE_DIR / --name") from None


def _reporting_skips(read: Callable[[], T]) -> T:
    """``read()``, printing each skipped-record warning as one line instead of a traceback-style warning."""
    from amplify_agents.stores import UnreadableRecordWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnreadableRecordWarning)
        result = read()
    for warning in caught:
        if issubclass(warning.category, UnreadableRecordWarning):
            console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
        else:  # not ours: show it as Python would have
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return result


@dataclass(frozen=True)
class SelectorOptions(OptionGroup):
    """How :class:`~amplify_agents.selectors.AmplifyExampleSelector` picks (``select``)."""

    k: Annotated[int, typer.Option(min=1, help="Demonstrations to select.")] = DEFAULTS.shots
    task: Annotated[str | None, typer.Option(help="Only demonstrations of this task (name).", show_default=False)] = (
        None
    )
    explainer: Annotated[
        str | None, typer.Option(help="Only demonstrations from this explainer.", show_default=False)
    ] = None
    strategy: Annotated[
        str | None, typer.Option(help="Only demonstrations selected by this strategy.", show_default=False)
    ] = None
    mmr: Annotated[bool, typer.Option(help="Diverse demonstrations (maximal marginal relevance).")] = False
    mcs_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="Weight of the MCS score against similarity.")] = (
        0.0
    )
    balance: Annotated[bool, typer.Option(help="Take gold labels in turn.")] = True

    def selector(self, store: "RationaleStore", frame: "Frame") -> "AmplifyExampleSelector":
        """The selector over ``store``, laying prompts out with ``frame``."""
        from amplify_agents.selectors import AmplifyExampleSelector, RetrievalSettings

        return AmplifyExampleSelector(
            store,
            k=self.k,
            task=self.task,
            explainer=self.explainer,
            strategy=self.strategy,
            retrieval=RetrievalSettings(mmr=self.mmr, mcs_weight=self.mcs_weight, balance_labels=self.balance),
            frame=frame,
        )


@command
def select_cmd(
    store: StoreArgs,
    query: Annotated[
        str | None, typer.Option("--query", "-Q", help="The query to select demonstrations for.", show_default=False)
    ] = None,
    *,
    selection: SelectorOptions,
    prompt: Annotated[bool, typer.Option(help="Also print the few-shot prompt for the query.")] = False,
    task_file: Annotated[
        Path | None, typer.Option(help="Task file whose framing the --prompt uses.", show_default=False)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the selected demonstrations as JSON (for scripts).")
    ] = False,
) -> None:
    """Print the demonstrations AmplifyExampleSelector picks for a query."""
    from amplify_agents.framing import Frame
    from amplify_agents.prompts import PromptStyle, build_prompt

    if not query or not query.strip():
        raise bad("a non-empty query is required.", "--query")
    frame = Frame.from_task(load_task(task_file, "--task-file")) if task_file else Frame()
    demo_store = open_for_reading(store)
    demos = _reporting_skips(lambda: selection.selector(demo_store, frame).select_demonstrations(query))
    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in demos], ensure_ascii=False, indent=1))
        return
    if not demos:
        console.print(f"No demonstrations match in store {demo_store.name!r} ({demo_store.count()} stored).")
    else:
        console.print(demo_table(demos, f"{len(demos)} demonstration(s) for: {short(query, 60)}"))
    if prompt:
        console.rule("prompt")
        typer.echo(build_prompt(query, [d.to_example() for d in demos], PromptStyle(frame)))  # unwrapped


@command
def inspect_cmd(
    store: StoreArgs,
    sample: Annotated[int, typer.Option(min=0, help="How many of the newest demonstrations to show.")] = 3,
    *,
    heatmap: ExplainOptions,
    device: Device = "cpu",
) -> None:
    """Show a store's statistics and a sample; with --explain, draw a demonstration's heat-map.

    Explainers: grad, grad_x_input, contrastive_grad, contrastive_grad_x_input (proxy);
    gradient_x_activation, integrated_gradients, gradient_shap, deeplift, kernel_shap, lime,
    feature_ablation, shapley_sampling, self_topk, self_exp (the small LM); random.
    """
    if (heatmap.html or heatmap.png or heatmap.explainer) and not heatmap.explain:
        raise bad("--html, --png and --explainer need --explain DEMO_ID.", "--explain")
    model_device = check_device(device) if heatmap.explain else None  # only --explain loads a model
    demo_store = open_for_reading(store)
    if heatmap.explain:
        assert store.store_dir is not None  # open() refuses a missing directory
        explain_demo(demo_store, store.store_dir, heatmap, device=model_device)
        return
    _print_statistics(demo_store, store.store_dir, sample)


def _print_statistics(store: "RationaleStore", store_dir: Path | None, sample: int) -> None:
    """``inspect``: counts per task, label, explainer and strategy; usefulness; the newest; the last improve run."""
    from amplify_agents.feedback import usefulness_of
    from amplify_agents.improve import load_histories

    demos = _reporting_skips(store.list)
    console.print(f"[bold]store {store.name!r}[/] in {store_dir}: {len(demos)} demonstration(s)")
    unreadable = store.unreadable()
    if unreadable:
        console.print(f"[bold yellow]{len(unreadable)} unreadable record(s)[/] (skipped by every read):")
        for record_id, reason in sorted(unreadable.items()):
            console.print(f"  {record_id}: {reason}", highlight=False)
    if demos:
        for title, key in (
            ("per task", "task"),
            ("per label", "label"),
            ("per explainer", "explainer"),
            ("per strategy", "strategy"),
        ):
            console.print(counter_table(f"demonstrations {title}", Counter(getattr(d, key) for d in demos), len(demos)))
        judged = [u for u in (usefulness_of(d) for d in demos) if u.used]
        if judged:
            console.print(
                f"usefulness: {len(judged)} demonstration(s) judged, {sum(u.correct for u in judged)} "
                f"correct and {sum(u.wrong for u in judged)} wrong answers counted"
            )
        newest = sorted(demos, key=lambda d: d.created_at, reverse=True)[:sample]
        if newest:
            console.print(demo_table(newest, f"sample: the {len(newest)} newest"))
    histories = load_histories(store)
    if histories:
        console.print(history_table(histories[-1]))


@command
def export_cmd(
    store: StoreArgs,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="JSONL file to write (sorted by id: exports diff cleanly).", show_default=False
        ),
    ] = None,
) -> None:
    """Write every demonstration of a store to a JSONL file."""
    if out is None:
        raise bad("the output file is required.", "--out")
    demo_store = open_for_reading(store)
    count = _reporting_skips(lambda: demo_store.export_jsonl(out))
    console.print(f"exported {count} demonstration(s) from {demo_store.name!r} to {out}")


@command
def import_cmd(
    store: NewStoreArgs,
    source: Annotated[
        Path | None, typer.Option("--in", "-i", help="JSONL file to read (written by export).", show_default=False)
    ] = None,
) -> None:
    """Add (upsert) every demonstration of a JSONL file to a store."""
    from amplify_agents.errors import FileEncodingError, InputTooLongError, StoreError
    from amplify_agents.stores import read_jsonl, validate_batch

    if source is None:
        raise bad("the input file is required.", "--in")
    if not source.is_file():
        raise bad(f"file not found: {source}", "--in")
    try:
        demos = read_jsonl(source)  # checked whole before the store is touched
        validate_batch(demos)  # a blank input or label fails here, before the store is created
    except (StoreError, FileEncodingError, InputTooLongError) as exc:  # each names file:line
        raise bad(str(exc), "--in") from None
    demo_store = store.open(create=True)
    demo_store.add(demos)
    console.print(f"imported {len(demos)} demonstration(s) into {demo_store.name!r}: it holds {demo_store.count()}")
