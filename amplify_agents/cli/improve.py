"""``amplify-agents improve``: add explained validation errors to a store while accuracy improves."""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from amplify_agents.cli.command import command
from amplify_agents.cli.common import (
    DEFAULT_MODEL,
    check_device,
    console,
    load_slm,
    load_task,
    make_explainer,
    split_task,
)
from amplify_agents.cli.options import (
    DEFAULT_EXPLAINER,
    DemoSetting,
    Device,
    ImproveStrategy,
    Labels,
    OptionGroup,
    ProxyOptions,
    Quiet,
    StoreOptions,
    TaskPath,
    choice,
    explainer_option,
)
from amplify_agents.cli.report import history_table

if TYPE_CHECKING:
    from amplify_agents.improve import ImproveConfig

__all__ = ["HeldOutOptions", "LoopOptions", "improve_cmd"]


@dataclass(frozen=True)
class LoopOptions(OptionGroup):
    """How the improvement loop learns (:class:`amplify_agents.improve.ImproveConfig`)."""

    strategy: Annotated[
        ImproveStrategy, choice(ImproveStrategy, "strategy", help="Which errors first: error, h-mcs or l-mcs.")
    ] = ImproveStrategy.error
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of additions at most.")] = 3
    n_per_round: Annotated[int, typer.Option(min=1, help="Demonstrations added per round at most.")] = 4
    k: Annotated[int, typer.Option(min=1, help="Demonstrations per prompt (and keywords per rationale).")] = 4
    patience: Annotated[int, typer.Option(min=1, help="Stop after this many rounds without improvement.")] = 1
    demo_setting: Annotated[
        DemoSetting,
        choice(DemoSetting, "demo setting", help="retrieved (per item, by the selector) or fixed (one set per round)."),
    ] = DemoSetting.retrieved
    keep_best: Annotated[bool, typer.Option(help="At the end, remove what was added after the best round.")] = False

    def config(self, seed: int) -> "ImproveConfig":
        """The library's settings of the loop."""
        from amplify_agents.improve import ImproveConfig

        return ImproveConfig(
            rounds=self.rounds,
            n_per_round=self.n_per_round,
            k=self.k,
            patience=self.patience,
            strategy=self.strategy.value,
            demo_setting=self.demo_setting.value,
            seed=seed,
            keep_best=self.keep_best,
        )


@dataclass(frozen=True)
class HeldOutOptions(OptionGroup):
    """The validation items the loop learns from and the test items it never adds."""

    validation: Annotated[int, typer.Option(min=1, help="Validation items (evaluated and learnt from).")] = 16
    test: Annotated[int, typer.Option(min=0, help="Test items held out: never added to the store.")] = 100
    seed: Annotated[
        int, typer.Option(help="Seeds the split (same seed and --test as build/eval = same test split).")
    ] = 0


@command
def improve_cmd(
    task_path: TaskPath = None,
    *,
    store: StoreOptions,
    explainer: Annotated[
        str, explainer_option("Explainer writing the rationales of the added errors.")
    ] = DEFAULT_EXPLAINER,
    loop: LoopOptions,
    split: HeldOutOptions,
    model: Annotated[str, typer.Option(help="The small LM that answers.")] = DEFAULT_MODEL,
    proxy: ProxyOptions,
    plot: Annotated[
        Path | None, typer.Option(help="Write the accuracy-per-round plot to this PNG.", show_default=False)
    ] = None,
    labels: Labels = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Add explained validation errors to a store, round after round, while accuracy improves."""
    model_device = check_device(device)  # before anything loads: a missing GPU is one line, not a failed load
    task = load_task(task_path, labels=labels)  # a bad file fails here, before the heavy imports
    splits = split_task(task, "--validation / --test", seed=split.seed, test=split.test, validation=split.validation)
    from amplify_agents.improve import improve_store
    from amplify_agents.viz import plot_rounds

    demo_store = store.open(create=True)
    explainer_obj, _ = make_explainer(
        explainer,
        task=task,
        pool=splits.pool,
        k=loop.k,
        seed=split.seed,
        slm_name=model,
        proxy_kind=proxy.proxy.value,
        proxy_epochs=proxy.proxy_epochs,
        device=model_device,
    )
    history = improve_store(
        task,
        demo_store,
        load_slm(model, device=model_device),
        explainer_obj,
        splits.validation,
        splits.test,
        loop.config(split.seed),
        progress=not quiet,
    )
    console.print(history_table(history))
    console.print(
        f"added {len(history.added_ids)} demonstration(s); store {demo_store.name!r} holds {demo_store.count()}."
    )
    if plot is not None:
        console.print(f"plot: {plot_rounds(history, plot)}")
