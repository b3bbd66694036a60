"""``amplify-agents build``: predict, select, explain and store demonstrations of a task."""

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amplify_agents.cli.command import command
from amplify_agents.cli.common import (
    bad,
    check_device,
    check_endpoint,
    console,
    err_console,
    load_slm,
    load_task,
    make_explainer,
    split_task,
)
from amplify_agents.cli.options import (
    DEFAULT_EXPLAINER,
    AmplifyProxyOptions,
    Device,
    Labels,
    OptionGroup,
    Predictor,
    ProxyKind,
    ProxyTraining,
    ProxyTrainingOptions,
    Quiet,
    StoreOptions,
    Strategy,
    TargetOptions,
    TaskPath,
    choice,
    explainer_option,
    template_option,
)
from amplify_agents.cli.report import build_report_table
from amplify_agents.defaults import DEFAULTS

if TYPE_CHECKING:
    from amplify_agents.answering import AnswerBackend
    from amplify_agents.stores import RationaleStore
    from amplify_agents.tasks import Task, TaskSplits

__all__ = ["BuildOptions", "build"]


@dataclass(frozen=True)
class BuildOptions(OptionGroup):
    """What ``build`` makes: explainer, strategy, how many, and the split it builds from."""

    explainer: Annotated[
        str, explainer_option("Explainer writing the rationales (see `inspect --help` for the list).")
    ] = DEFAULT_EXPLAINER
    strategy: Annotated[
        Strategy,
        choice(Strategy, "strategy", help="Selection strategy: error, success, h-mcs, l-mcs, f-exp or random."),
    ] = Strategy(DEFAULTS.strategy)
    n: Annotated[int, typer.Option(min=1, help="Demonstrations to end up with (stored ones count).")] = (
        DEFAULTS.demonstrations
    )
    k: Annotated[int, typer.Option(min=1, help="Keywords per rationale.")] = DEFAULTS.keywords
    seed: Annotated[int, typer.Option(help="Seeds the split, the selection and the proxy.")] = 0
    predictor: Annotated[
        Predictor,
        choice(
            Predictor,
            "predictor",
            help="What selection ranks by: target (the target model's own answers and probabilities) or proxy "
            "(AMPLIFY: the target's errors, ranked by MCS on a classifier proxy fine-tuned on a separate part "
            "of the pool). 'slm' is an alias of target.",
        ),
    ] = Predictor.target
    pool: Annotated[
        int | None, typer.Option(min=1, help="Examples to select from (default: all not held out).", show_default=False)
    ] = None
    test: Annotated[
        int,
        typer.Option(
            min=0, help="Examples held out as the test split, never built from (same seed and size as eval/improve)."
        ),
    ] = 100
    template: Annotated[
        str | None,
        template_option("Rationale template id (default: the explainer's usual one).", show_default=False),
    ] = None


@command
def build(
    task_path: TaskPath = None,
    *,
    store: StoreOptions,
    options: BuildOptions,
    target: TargetOptions,
    proxy: AmplifyProxyOptions,
    training: ProxyTrainingOptions,
    labels: Labels = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Build demonstrations of a task into a store: predict, select, explain, store (resumable)."""
    model_device = check_device(device)  # before anything loads: a missing GPU is one line, not a failed load
    task = load_task(task_path, labels=labels)  # a bad file fails here, before the heavy imports
    splits = split_task(task, "--pool / --test", seed=options.seed, test=options.test, pool=options.pool)
    from amplify_agents.builder import BuildConfig, DemonstrationBuilder
    from amplify_agents.predictors import ProxyMCSPredictor

    demo_store = store.open(create=True)
    assert store.store_dir is not None  # open() refuses a missing directory
    target_predictor, backend, metadata = _target_predictor(task, target, store.store_dir, model_device)
    proxy_train, corpus = _proxy_split(splits, options, proxy, metadata)
    proxy_obj = None
    if _needs_saved_proxy(options, proxy):
        proxy_obj, folder = _saved_proxy(
            demo_store, store.store_dir, task, proxy_train, proxy.proxy_epochs, options.seed, training, model_device
        )
        metadata["proxy_dir"] = str(folder.relative_to(store.store_dir))  # inspect --explain reloads it
        if proxy_obj.training:
            metadata["proxy_training"] = proxy_obj.training["method"]
    elif training.proxy_training is not ProxyTraining.plain:
        raise bad(
            f"--proxy-training {training.proxy_training.value} trains the classifier proxy, which this build does not "
            "use: add --predictor proxy or a proxy explainer (e.g. --explainer grad_x_input).",
            "--proxy-training",
        )
    explainer = _explainer(task, corpus, options, target, proxy, proxy_obj, model_device)
    builder = DemonstrationBuilder(
        task,
        ProxyMCSPredictor(target_predictor, proxy_obj) if proxy_obj is not None else target_predictor,
        explainer,
        demo_store,
        BuildConfig(strategy=options.strategy.value, n=options.n, seed=options.seed, template=options.template),
        progress=not quiet,
        metadata=metadata,
    )
    report = builder.run(corpus.examples)
    backend.close()
    console.print(build_report_table(report))
    console.print(
        f"labels: {dict(report.label_counts)}; requested {report.requested}, have {len(report.demo_ids)}"
        + (" (short: too few eligible examples)" if report.short else "")
    )
    console.print(
        f"store {demo_store.name!r} in {store.store_dir}: {demo_store.count()} demonstration(s); "
        f"held out {len(splits.test)} test item(s) (seed {options.seed})."
    )


def _target_predictor(
    task: "Task", target: TargetOptions, store_dir: Path, device: str | None
) -> tuple[Any, "AnswerBackend", dict[str, Any]]:
    """The target's predictor, its backend (to close) and the metadata recorded with every demonstration."""
    from amplify_agents.answering import Answerer, AnswerSettings, ResponseCache, open_target
    from amplify_agents.framing import Frame
    from amplify_agents.predictors import TargetPredictor
    from amplify_agents.prompts import PromptStyle

    spec = target.target()
    # The builder keeps the target's predictions of the pool beside the store (a re-run predicts
    # nothing again); an endpoint's replies are also cached one by one, so a killed build resumes.
    if spec.hosted:
        check_endpoint(spec)
        backend = open_target(spec, cache=ResponseCache(store_dir / ".amplify" / "responses.sqlite"))
    else:
        backend = open_target(load_slm(target.model, device=device))
    answerer = Answerer(backend, AnswerSettings(PromptStyle(Frame.from_task(task))))
    metadata: dict[str, Any] = {"target": json.dumps(spec.describe(), sort_keys=True)}
    return TargetPredictor(answerer, task.labels), backend, metadata


def _proxy_split(
    splits: "TaskSplits", options: BuildOptions, proxy: AmplifyProxyOptions, metadata: dict[str, Any]
) -> tuple["Task", "Task"]:
    """The part of the pool the proxy trains on, and the part selection ranks.

    Both are the whole pool, except with ``--predictor proxy`` (AMPLIFY).
    """
    if options.predictor is not Predictor.proxy:
        return splits.pool, splits.pool
    # AMPLIFY: the proxy is fine-tuned on one part of the pool and ranks only the other.
    try:
        proxy_train, corpus = splits.pool.split_for_proxy(proxy.proxy_train_fraction, seed=options.seed)
    except ValueError as exc:
        raise bad(str(exc), "--pool") from None
    metadata.update(proxy_train_size=len(proxy_train), selection_size=len(corpus), split_seed=options.seed)
    return proxy_train, corpus


def _needs_saved_proxy(options: BuildOptions, proxy: AmplifyProxyOptions) -> bool:
    """A classifier proxy is trained (and saved beside the store) for MCS ranking or for a proxy explainer."""
    from amplify_agents.explainers.registry import explainer_family

    if options.predictor is Predictor.proxy:
        return True
    return explainer_family(options.explainer) == "proxy" and proxy.proxy is ProxyKind.classifier


def _explainer(
    task: "Task",
    corpus: "Task",
    options: BuildOptions,
    target: TargetOptions,
    proxy: AmplifyProxyOptions,
    saved: Any,
    device: str | None,
) -> Any:
    """The explainer writing the rationales; a local-model explainer needs a local model to open."""
    from amplify_agents.explainers.registry import explainer_family

    local_model = target.local_model
    if local_model is None and (explainer_family(options.explainer) == "slm" or proxy.proxy is ProxyKind.causal_lm):
        raise bad(f"{options.explainer!r} explains a local model: pass --explainer-model.", "--explainer-model")
    explainer, _ = make_explainer(
        options.explainer,
        task=task,
        pool=corpus,
        k=options.k,
        seed=options.seed,
        slm_name=local_model or "",
        proxy_kind=proxy.proxy.value,
        proxy_epochs=proxy.proxy_epochs,
        proxy=saved if proxy.proxy is ProxyKind.classifier else None,
        device=device,
    )
    return explainer


def _saved_proxy(
    store: "RationaleStore",
    store_dir: Path,
    task: "Task",
    train: "Task",
    epochs: int,
    seed: int,
    training: ProxyTrainingOptions,
    device: str | None,
) -> tuple[Any, Path]:
    """The classifier proxy trained on ``train`` (plainly or with UIMER), saved beside the store and
    reused by later builds (and by ``inspect --explain``); returns it and its folder."""
    from amplify_agents.explainers.registry import create_proxy
    from amplify_agents.models.proxy import ProxyClassifier

    uimer = training.uimer_settings()
    rationales = _gold_rationales(store_dir, training.rationale_store) if uimer is not None else None
    identity: list[Any] = [task.name, list(task.labels), sorted(e.id for e in train), epochs, seed]
    if uimer is not None:  # a plain proxy keeps the folder it had before UIMER existed
        gold = {e.id: e.gold_rationale for e in train if e.gold_rationale is not None} | dict(rationales or {})
        identity += [uimer.name, asdict(uimer), sorted((k, list(v)) for k, v in gold.items())]
    key = json.dumps(identity)
    folder = store_dir / ".amplify" / "proxies" / f"{store.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (folder / "amplify_proxy.json").is_file():
        try:
            return ProxyClassifier.load(folder, device=device, progress=True), folder
        except (OSError, ValueError):
            pass  # unreadable: train it again below
    how = f"with {uimer.name}" if uimer is not None else "plainly"
    err_console.print(f"training the classifier proxy {how} ({epochs} epochs, {len(train)} examples)")
    try:
        proxy = create_proxy(
            "classifier",
            labels=task.labels,
            pool=train,
            epochs=epochs,
            seed=seed,
            progress=True,
            training=uimer,
            rationales=rationales,
            device=device,
        )
    except ValueError as exc:  # e.g. no more epochs than warm-up epochs
        raise bad(str(exc), "--proxy-training") from exc
    if proxy.training:
        report = proxy.training
        err_console.print(
            f"{report['method']}: {report['with_rationale']} example(s) with a gold rationale; "
            f"{len(report['problems'])} rationale(s) not used"
        )
        for example_id, why in list(report["problems"].items())[:10]:
            err_console.print(f"  example {example_id}: {why} (trained on the task loss alone)")
    proxy.save(folder)
    return proxy, folder


def _gold_rationales(store_dir: Path, name: str | None) -> dict[str, Any]:
    """Gold rationales (example id -> keywords) from the demonstrations of store ``name``, read-only."""
    if name is None:
        return {}
    from amplify_agents.models.uimer import read_rationale_store

    return dict(read_rationale_store(store_dir, name))
