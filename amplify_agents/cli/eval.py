"""``amplify-agents eval``: methods x seeds on a task, by label scoring; the summary table."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amplify_agents.cli.command import command
from amplify_agents.cli.common import bad, check_device, check_endpoint, console, load_slm, load_task
from amplify_agents.cli.options import (
    AmplifyProxyOptions,
    DemoSetting,
    Device,
    Labels,
    OptionGroup,
    Quiet,
    SelectOn,
    TargetOptions,
    TaskPath,
    choice,
)
from amplify_agents.cli.report import eval_table
from amplify_agents.defaults import DEFAULTS

if TYPE_CHECKING:
    from amplify_agents.eval import EvalConfig

__all__ = ["EvalSplitOptions", "MethodOptions", "eval_cmd"]


def _method(value: str) -> str:
    """A method name, checked by the harness's own parser (``Unknown method 'x'`` is bad input)."""
    from amplify_agents.eval import parse_method

    try:
        parse_method(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


@dataclass(frozen=True)
class MethodOptions(OptionGroup):
    """What ``eval`` compares: the methods, the seeds and the demonstrations each prompt gets."""

    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            "-m",
            help="Method to compare (repeat the option); default: the standard set. E.g. zero-shot, io, "
            "amplify:grad_x_input:h-mcs, self:gradient_x_activation:error.",
            show_default=False,
            parser=_method,
        ),
    ] = None
    seed: Annotated[list[int], typer.Option("--seed", "-s", help="Seed (repeat the option for several).")] = field(
        default_factory=lambda: [0]
    )
    n_shot: Annotated[int, typer.Option(min=0, help="Demonstrations per prompt.")] = DEFAULTS.shots
    k: Annotated[int, typer.Option(min=1, help="Keywords per rationale.")] = DEFAULTS.keywords
    demo_setting: Annotated[
        DemoSetting,
        choice(
            DemoSetting, "demo setting", help="fixed (one demo set per seed) or retrieved (per query, from a store)."
        ),
    ] = DemoSetting.fixed
    pool_size: Annotated[int | None, typer.Option(min=1, help="Cap on the demo pool.", show_default=False)] = None
    retrieval_candidates: Annotated[
        int | None, typer.Option(min=1, help="Retrieved setting: demonstrations built per method.", show_default=False)
    ] = None


_SELECT_ON_HELP = (
    "test: evaluate every method on test. validation: pick the best method on a validation split "
    "(balanced accuracy), then evaluate only it and io on test."
)


@dataclass(frozen=True)
class EvalSplitOptions(OptionGroup):
    """The items ``eval`` scores: the test split, and optionally a validation split to choose a method on."""

    test_size: Annotated[int, typer.Option(min=1, help="Test items per seed.")] = 100
    select_on: Annotated[SelectOn, choice(SelectOn, "selection split", help=_SELECT_ON_HELP)] = SelectOn.test
    validation_size: Annotated[
        int, typer.Option(min=1, help="Validation items per seed (with --select-on validation).")
    ] = 50

    @property
    def validation_items(self) -> int:
        """Validation items per seed: none unless the method is chosen on validation."""
        return self.validation_size if self.select_on is SelectOn.validation else 0


@command
def eval_cmd(
    task_path: TaskPath = None,
    *,
    methods: MethodOptions,
    split: EvalSplitOptions,
    target: TargetOptions,
    proxy: AmplifyProxyOptions,
    out_dir: Annotated[Path, typer.Option(help="Where results.json (resumable), CSV, markdown and PNG go.")] = Path(
        "eval_results"
    ),
    plot: Annotated[bool, typer.Option(help="Write results.png.")] = True,
    labels: Labels = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Evaluate methods x seeds on a task by label scoring; print the summary table.

    Method names take modifiers: +cal / +pmi (calibrated scores), +xyr (rationale after the
    answer), +gen (the model writes the query's rationale first), e.g. io+cal.
    """
    model_device = check_device(device)  # before anything loads: a missing GPU is one line, not a failed load
    task = load_task(task_path, labels=labels)  # a bad file fails here, before the heavy imports
    from amplify_agents.eval import run_eval, select_on_validation

    if split.test_size + split.validation_items >= len(task):
        raise bad(
            f"--test-size {split.test_size}"
            + (f" + --validation-size {split.validation_items}" if split.validation_items else "")
            + f" leave no demo pool in the {len(task)} examples.",
            "--test-size",
        )
    cfg = _eval_config(
        task_path,
        methods,
        split,
        target,
        proxy,
        out_dir=out_dir,
        plot=plot,
        labels=task.labels if labels else None,
        device=model_device,
    )
    if cfg.base_url:
        check_endpoint(cfg.target)
    # Loaded here (once per process) on cfg.device: the harness's proxies and explainer model follow cfg.device.
    local = None if cfg.base_url else load_slm(target.model, device=cfg.device)
    if split.select_on is SelectOn.validation:
        chosen = select_on_validation(cfg, progress=not quiet, model=local)
        _print_results(chosen.validation, task.name, "validation")
        console.print(f"chosen on validation (balanced accuracy): [bold]{chosen.chosen}[/bold]")
        _print_results(chosen.test, task.name, "test")
        console.print(f"selection record: {chosen.path}")
        return
    _print_results(run_eval(cfg, progress=not quiet, model=local), task.name, "test")


def _eval_config(
    task_path: Path | None,
    methods: MethodOptions,
    split: EvalSplitOptions,
    target: TargetOptions,
    proxy: AmplifyProxyOptions,
    *,
    out_dir: Path,
    plot: bool,
    labels: tuple[str, ...] | None,
    device: str | None,
) -> "EvalConfig":
    """The harness's configuration from the options; a value it refuses is bad input."""
    from amplify_agents.eval import DEFAULT_METHODS, EvalConfig

    assert task_path is not None  # load_task refused a missing one
    try:
        return EvalConfig(
            task=task_path,
            model=target.model,
            base_url=target.base_url,
            api_key_env=target.api_key_env,
            api=target.api.value,
            concurrency=target.concurrency,
            explainer_model=target.explainer_model,
            proxy_train_fraction=proxy.proxy_train_fraction,
            n_shot=methods.n_shot,
            k=methods.k,
            seeds=tuple(methods.seed),
            methods=tuple(methods.method or DEFAULT_METHODS),
            test_size=split.test_size,
            demo_setting=methods.demo_setting.value,
            out_dir=out_dir,
            pool_size=methods.pool_size,
            proxy=proxy.proxy.value,
            proxy_epochs=proxy.proxy_epochs,
            retrieval_candidates=methods.retrieval_candidates,
            validation_size=split.validation_items,
            plot=plot,
            labels=labels,
            device=device,
        )
    except ValueError as exc:
        raise bad(str(exc)) from None


def _print_results(results: Any, task_name: str, split: str) -> None:
    console.print(eval_table(results, task_name, split))
    cfg = results.config
    console.print(f"computed {len(results.computed)} run(s), resumed {len(results.skipped)}; results in {cfg.out_dir}")
