"""``inspect --explain``: re-explain one stored demonstration and draw its heat-maps."""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from amplify_agents.cli.common import (
    DEFAULT_MODEL,
    ProxyName,
    bad,
    console,
    err_console,
    load_task,
    make_explainer,
    parse_labels,
)
from amplify_agents.cli.options import LABELS_HELP, OptionGroup, explainer_option

if TYPE_CHECKING:
    from amplify_agents.demonstrations import Demonstration
    from amplify_agents.explainers.base import Explanation
    from amplify_agents.stores import RationaleStore
    from amplify_agents.tasks import Task

__all__ = ["ExplainOptions", "explain_demo"]


@dataclass(frozen=True)
class ExplainOptions(OptionGroup):
    """Which demonstration ``inspect`` re-explains, with what, and where the heat-maps go."""

    explain: Annotated[
        str | None,
        typer.Option(help="Re-explain this demonstration (its id, or a unique prefix).", show_default=False),
    ] = None
    html: Annotated[
        Path | None, typer.Option(help="With --explain: write the HTML heat-map here.", show_default=False)
    ] = None
    png: Annotated[
        Path | None, typer.Option(help="With --explain: write the PNG heat-map here.", show_default=False)
    ] = None
    explainer: Annotated[
        str | None,
        explainer_option(
            "With --explain: use this explainer instead of the one recorded in the demonstration.", show_default=False
        ),
    ] = None
    task_file: Annotated[
        Path | None,
        typer.Option(
            help="With --explain: the task file (label space, framing, proxy training data).", show_default=False
        ),
    ] = None
    model: Annotated[str, typer.Option(help="With --explain: the small LM of SLM explainers.")] = DEFAULT_MODEL
    labels: Annotated[
        str | None, typer.Option("--labels", help=f"With --explain: {LABELS_HELP}", show_default=False)
    ] = None
    proxy_epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="With --explain: proxy fine-tuning epochs (default: as recorded with --task-file, else 0).",
            show_default=False,
        ),
    ] = None


def explain_demo(store: "RationaleStore", store_dir: Path, opts: ExplainOptions, device: str | None = None) -> None:
    """Re-explain the demonstration ``opts.explain`` names; print old and new keywords, write the heat-maps.

    The small LM and the proxy load on ``device`` (the library's ``device=``; None = CPU).
    """
    from amplify_agents.explainers.registry import explainer_names

    assert opts.explain is not None
    demo = _find(store, opts.explain)
    name = opts.explainer or demo.explainer
    if name not in explainer_names():
        raise bad(
            f"the demonstration was written by {demo.explainer!r}, which cannot be re-run: pass --explainer NAME.",
            "--explainer",
        )
    same = name == demo.explainer  # the recorded settings (and saved proxy) apply only to the same explainer
    settings = dict(demo.explainer_settings) if same else {}
    task = _task(store, demo, name, opts)
    proxy_kind, epochs = _proxy_settings(settings, name, opts)
    proxy = _saved_proxy(demo, store_dir, device) if same else None
    explainer, _ = make_explainer(
        name,
        task=task if proxy is None else replace(task, labels=tuple(proxy.labels)),
        pool=task,
        k=demo.k or int(settings.get("k", 5)),
        seed=int(settings.get("seed", 0)),
        slm_name=opts.model,
        proxy_kind=proxy_kind,
        proxy_epochs=epochs,
        proxy=proxy,
        device=device,
    )
    weights = demo.extra.get("word_weights") if same else None  # the build's corpus weights
    exp = explainer.explain_one(demo.input, demo.label, word_weights=json.loads(str(weights)) if weights else None)
    console.print(_explanation_table(demo, exp))
    _write_heatmaps(exp, opts)


def _find(store: "RationaleStore", wanted: str) -> "Demonstration":
    """The demonstration with id ``wanted``, or the one whose id starts with it."""
    demo = store.get(wanted)
    if demo is not None:
        return demo
    matches = [d for d in store.list() if d.demo_id.startswith(wanted)]
    if len(matches) != 1:
        why = "no demonstration" if not matches else f"{len(matches)} demonstrations"
        raise bad(f"{why} with id {wanted!r} in store {store.name!r}.", "--explain")
    return matches[0]


def _task(store: "RationaleStore", demo: "Demonstration", explainer: str, opts: ExplainOptions) -> "Task":
    """The task file's task, else ``--labels`` or the label space the store shows, with the default framing."""
    from amplify_agents.explainers.registry import explainer_family
    from amplify_agents.tasks import Example, Task

    if opts.task_file:
        return load_task(opts.task_file, "--task-file", labels=opts.labels)
    given = parse_labels(opts.labels)
    if given is not None:
        if demo.label not in given:
            raise bad(f"the demonstration's label {demo.label!r} is not in --labels {','.join(given)}.", "--labels")
        return Task(name=demo.task, labels=given, examples=(Example("demo", demo.input, demo.label),))
    labels = sorted({d.label for d in store.list(where={"task": demo.task})} | {demo.label})
    if len(labels) < 2 and explainer_family(explainer) != "none":
        raise bad(
            f"the store holds only the label {labels} for task {demo.task!r}: pass --task-file "
            "to give the label space.",
            "--task-file",
        )
    return Task(name=demo.task, labels=tuple(labels), examples=(Example("demo", demo.input, demo.label),))


def _proxy_settings(settings: dict[str, Any], explainer: str, opts: ExplainOptions) -> tuple[ProxyName, int]:
    """The proxy kind and epochs: as recorded (with a note where --proxy-epochs differs), or as asked."""
    from amplify_agents.explainers.registry import explainer_family

    recorded = settings.get("model", {}) if isinstance(settings.get("model"), dict) else {}
    proxy_kind: ProxyName = "causal_lm" if recorded.get("proxy") == "causal_lm" else "classifier"
    epochs = opts.proxy_epochs
    if epochs is None:
        epochs = int(recorded.get("epochs", 0)) if opts.task_file else 0
    if (
        explainer_family(explainer) == "proxy"
        and proxy_kind == "classifier"
        and epochs != recorded.get("epochs", epochs)
    ):
        err_console.print(
            f"note: the proxy is trained for {epochs} epoch(s), the stored rationale's for "
            f"{recorded.get('epochs')}: keywords may differ."
        )
    return proxy_kind, epochs


def _saved_proxy(demo: "Demonstration", store_dir: Path, device: str | None) -> Any:
    """The very proxy that wrote the rationale, when the build saved it beside the store; else None."""
    folder = demo.extra.get("proxy_dir")
    if not folder or not (store_dir / str(folder) / "amplify_proxy.json").is_file():
        return None
    from amplify_agents.models.proxy import ProxyClassifier

    return ProxyClassifier.load(store_dir / str(folder), device=device, progress=False)


def _explanation_table(demo: "Demonstration", exp: "Explanation") -> Table:
    table = Table(title=f"demonstration {demo.demo_id}")
    table.add_column("field")
    table.add_column("value")
    for key, value in (
        ("input", demo.input),
        ("label", demo.label),
        ("rationale", demo.rationale),
        ("stored keywords", ", ".join(demo.keywords)),
        ("explainer now", exp.explainer),
        ("keywords now", ", ".join(exp.top_words)),
    ):
        table.add_row(key, Text(value))
    return table


def _write_heatmaps(exp: "Explanation", opts: ExplainOptions) -> None:
    from amplify_agents.viz import explanation_html, explanation_png

    if opts.html:
        opts.html.parent.mkdir(parents=True, exist_ok=True)
        opts.html.write_text(explanation_html(exp), encoding="utf-8")
        console.print(f"html: {opts.html}")
    if opts.png:
        console.print(f"png: {explanation_png(exp, opts.png)}")
