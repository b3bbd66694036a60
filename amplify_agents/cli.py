"""The ``amplify-agents`` command line: build, select, eval, improve, inspect, export, import, demo.

Every option can also come from ``--config file.toml``: top-level keys apply to every
command that has that option, a ``[build]`` (``[eval]``, ...) table to one command only;
keys are the option names (``store_dir`` or ``store-dir``). Options given on the command
line win over the file.

Exit codes: 0 success; 1 a runtime failure (the message says what failed); 2 bad usage
or bad input (an unknown option or value, a missing task file or store, an unknown
explainer, strategy or method). Errors are one clear message, never a traceback
(set ``AMPLIFY_AGENTS_DEBUG=1`` to see one).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from amplify_agents.errors import EndpointError

if TYPE_CHECKING:
    from amplify_agents.demonstrations import Demonstration
    from amplify_agents.models.loading import LoadedModel
    from amplify_agents.stores import RationaleStore
    from amplify_agents.tasks import Task

__all__ = ["app", "load_slm", "main"]

app = typer.Typer(
    name="amplify-agents",
    help=(
        "AMPLIFY / Self-AMPLIFY from the command line: build rationale-annotated demonstrations "
        "into a Chroma store, retrieve them for a query, evaluate, improve from validation "
        "errors, and inspect what a store holds.\n\n"
        "Every option can also be set in a TOML file given with --config (keys = option names; "
        "a \\[command] table applies to one command). Exit codes: 0 ok, 1 runtime failure, 2 bad usage."
    ),
    epilog=(
        "Examples:\n\n"
        "amplify-agents demo\n\n"
        "amplify-agents build TASK.json -d chroma -n my-task --explainer grad_x_input --strategy h-mcs\n\n"
        "amplify-agents select chroma -n my-task -Q 'Juan Soto hit a home run' --k 4 --prompt\n\n"
        "amplify-agents inspect chroma -n my-task --explain ID_PREFIX --html exp.html --png exp.png"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # errors are one line, never a traceback
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

# Typer may ship its own copy of click: take click's classes from typer, never `import click`.
_CLICK_ERRORS: tuple[type[BaseException], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ in ("ClickException",)
)
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, *_CLICK_ERRORS)

DEFAULT_MODEL = "gemma-3-270m"
DEMO_TASK = "sports_understanding"

# Options shared by several commands (one definition: the same help everywhere).
ConfigOpt = typer.Option(
    None,
    "--config",
    help="TOML file of option values (keys = option names; a \\[command] table for one command).",
    show_default=False,
)
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")
TaskArg = typer.Argument(
    None,
    metavar="TASK",
    help="Task file: BIG-bench task.json (or its folder), .jsonl or .csv.",
    show_default=False,
)
StoreDirOpt = typer.Option(
    None,
    "--store-dir",
    "-d",
    help="Chroma directory of the store (created if missing).",
    show_default=False,
)
NameOpt = typer.Option(None, "--name", "-n", help="Store name (its Chroma collection).", show_default=False)
ProxyEpochsOpt = typer.Option(10, min=0, help="Fine-tuning epochs of the classifier proxy.")
# The target model behind an OpenAI-compatible endpoint (eval and build).
BaseUrlOpt = typer.Option(
    None,
    "--base-url",
    help="OpenAI-compatible endpoint of the target model (http://host:port/v1); --model names the served model.",
    show_default=False,
)
ApiKeyEnvOpt = typer.Option(
    None, "--api-key-env", help="NAME of the environment variable holding the endpoint's API key.", show_default=False
)
ApiOpt = typer.Option("completions", "--api", help="Endpoint API: completions (label log-probabilities) or chat.")
ConcurrencyOpt = typer.Option(4, min=1, help="Endpoint requests in flight at once.")
ExplainerModelOpt = typer.Option(
    None,
    "--explainer-model",
    help="Local model that Self-AMPLIFY explainers open (default: --model when it is local).",
    show_default=False,
)
ProxyTrainFractionOpt = typer.Option(
    0.5, min=0.05, max=0.95, help="AMPLIFY: share of the pool the proxy is fine-tuned on; selection uses the rest."
)


# ------------------------------------------------------------------------------ errors
def _guard(fn: F) -> F:
    """Turn any exception a command raises into one red line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            err_console.print("[red]Interrupted.[/]")
            raise typer.Exit(130) from None
        except EndpointError as exc:  # bad input: the URL, key variable or model name is wrong
            err_console.print(Text.assemble(("Error: ", "bold red"), str(exc)))
            raise typer.Exit(2) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's contract: a message, not a traceback
            if os.environ.get("AMPLIFY_AGENTS_DEBUG"):
                traceback.print_exc()
            err_console.print(Text.assemble(("Error: ", "bold red"), f"{type(exc).__name__}: {exc}"))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _bad(message: str, hint: str | None = None) -> typer.BadParameter:
    """A bad-input error: click prints the usage line and the message, exit code 2."""
    return typer.BadParameter(message, param_hint=hint)


# ------------------------------------------------------------------------------ config
def _all_option_names() -> set[str]:
    names: set[str] = set()
    group = typer.main.get_command(app)
    for cmd in getattr(group, "commands", {}).values():
        names.update(p.name for p in cmd.params if p.name)
    return names


def _configure(ctx: typer.Context, config: Path | None, values: dict[str, Any]) -> dict[str, Any]:
    """Merge ``config`` into ``values``: only options left at their default are taken from it."""
    out = {k: v for k, v in values.items() if k not in ("ctx", "config")}
    if config is not None:
        out = _merge_config(ctx, config, out)
    if out.get("quiet"):
        # Library chatter (weight-loading reports, bars) goes too; errors still show.
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    return out


def _merge_config(ctx: typer.Context, config: Path, out: dict[str, Any]) -> dict[str, Any]:
    """``out`` with the values ``config`` gives for options left at their default."""
    if not config.is_file():
        raise _bad(f"config file {config} does not exist.", "--config")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _bad(f"{config} is not valid TOML: {exc}", "--config") from None
    command = ctx.info_name or ""
    params = {p.name: p for p in ctx.command.params if p.name}
    commands = set(getattr(ctx.parent.command, "commands", {}) if ctx.parent else ())
    known_anywhere = _all_option_names()
    chosen: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in commands:
                raise _bad(
                    f"{config}: unknown table [{key}]; tables are named after commands: {', '.join(sorted(commands))}.",
                    "--config",
                )
            continue
        name = key.replace("-", "_")
        if name in params:
            chosen[name] = (value, key)
        elif name not in known_anywhere:
            raise _bad(f"{config}: unknown key {key!r}.", "--config")
    for key, value in (data.get(command) or {}).items():
        name = key.replace("-", "_")
        if name not in params or name == "config":
            valid = ", ".join(sorted(n for n in params if n != "config"))
            raise _bad(f"{config}: [{command}] has unknown key {key!r}; valid keys: {valid}.", "--config")
        chosen[name] = (value, f"{command}.{key}")
    for name, (value, key) in chosen.items():
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            continue  # the command line (or the environment) wins
        param = params[name]
        try:
            if isinstance(value, list) and not param.multiple:
                raise typer.BadParameter("a list is not allowed here")
            if param.multiple and not isinstance(value, list):
                value = [value]  # `seed = 0` for an option that takes several
            out[name] = param.process_value(ctx, value)  # the option's own type conversion and checks
        except _CLICK_ERRORS as exc:
            message = getattr(exc, "message", str(exc))
            raise _bad(f"{config}: {key} = {value!r}: {message}", "--config") from None
    return out


# ---------------------------------------------------------------------------- loading
_SLM_CACHE: dict[tuple[str, str | None], LoadedModel] = {}


def load_slm(name: str, device: str | None = None) -> LoadedModel:
    """The small LM ``name``, loaded once per process (commands run in one process share it)."""
    key = (name, device)
    if key not in _SLM_CACHE:
        from amplify_agents.errors import ModelNotAvailableError
        from amplify_agents.models import load_causal_lm

        with err_console.status(f"loading {name} ..."):
            try:
                _SLM_CACHE[key] = load_causal_lm(name, device=device)
            except ModelNotAvailableError as exc:
                raise _bad(str(exc), "--model") from None
    return _SLM_CACHE[key]


def _check_endpoint(target: Any) -> None:
    """Fail fast (exit 2) when the endpoint does not answer, lacks its key or does not serve the model."""
    from amplify_agents.answering import open_endpoint

    with err_console.status(f"checking {target.base_url} ..."):
        open_endpoint(target.endpoint).close()


def _load_task(path: Path | None, hint: str = "TASK") -> Task:
    from amplify_agents.errors import TaskFormatError
    from amplify_agents.tasks import load_task

    if path is None:
        raise _bad("a task file is required (BIG-bench task.json or its folder, .jsonl or .csv).", hint)
    try:
        return load_task(path)
    except FileNotFoundError:
        raise _bad(f"task file not found: {path}", hint) from None
    except (TaskFormatError, ValueError) as exc:
        raise _bad(str(exc), hint) from None


def _check_choice(value: str, valid: Sequence[str], hint: str, what: str) -> str:
    if value not in valid:
        raise _bad(f"unknown {what} {value!r}; valid: {', '.join(valid)}.", hint)
    return value


def _check_explainer(name: str, hint: str = "--explainer") -> str:
    from amplify_agents.explainers.registry import explainer_names

    return _check_choice(name, explainer_names(), hint, "explainer")


def _open_store(store_dir: Path | None, name: str | None, *, create: bool) -> RationaleStore:
    """Open a store; for reading (``create=False``) a missing directory or store is bad input."""
    import chromadb

    from amplify_agents.errors import StoreError
    from amplify_agents.stores import RationaleStore, validate_store_name

    if store_dir is None:
        raise _bad("the store directory is required.", "STORE_DIR / --store-dir")
    if not name:
        raise _bad("the store name is required.", "--name")
    try:
        validate_store_name(name)
    except StoreError as exc:
        raise _bad(str(exc), "--name") from None
    if not create:
        if not store_dir.is_dir():
            raise _bad(f"no store directory {store_dir}.", "STORE_DIR")
        client = chromadb.PersistentClient(path=str(store_dir))
        names = sorted(c if isinstance(c, str) else c.name for c in client.list_collections())
        if name not in names:
            listing = ", ".join(names) if names else "none"
            raise _bad(f"no store named {name!r} in {store_dir} (stores there: {listing}).", "--name")
        try:
            return RationaleStore(name, client=client)
        except StoreError as exc:
            raise _bad(str(exc), "--name") from None
    try:
        return RationaleStore.local(name, store_dir)
    except StoreError as exc:
        raise _bad(str(exc), "--name") from None


def _default_bigbench_dir() -> Path | None:
    candidates = [os.environ.get("AMPLIFY_BIGBENCH_DIR")]
    candidates += [str(Path.cwd().parent / "shared" / "data" / "bigbench")]
    candidates += [str(Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench")]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def _make_explainer(
    name: str,
    *,
    task: Task,
    pool: Task,
    k: int,
    seed: int,
    slm_name: str,
    proxy_kind: str,
    proxy_epochs: int,
    proxy: Any = None,
) -> tuple[Any, Any]:
    """The explainer ``name`` and the proxy it uses (or None), loading only what it opens."""
    from amplify_agents.explainers.registry import create_explainer, create_proxy, explainer_family
    from amplify_agents.framing import Frame

    frame = Frame.from_task(task)
    family = explainer_family(name)
    slm = None
    if family == "slm" or (family == "proxy" and proxy_kind == "causal_lm"):
        slm = load_slm(slm_name)
    if family == "proxy" and proxy is None:
        with err_console.status(f"preparing the {proxy_kind} proxy ..."):
            proxy = create_proxy(
                proxy_kind,  # type: ignore[arg-type]
                labels=task.labels,
                slm=slm,
                frame=frame,
                pool=pool,
                epochs=proxy_epochs,
                seed=seed,
            )
    explainer = create_explainer(
        name,
        slm=slm,
        labels=task.labels,
        frame=frame,
        k=k,
        proxy=proxy if family == "proxy" else None,
        seed=seed,
    )
    return explainer, proxy if family == "proxy" else None


def _saved_proxy(
    store: RationaleStore, store_dir: Path, task: Task, train: Task, epochs: int, seed: int
) -> tuple[Any, Path]:
    """The classifier proxy fine-tuned on ``train``, saved beside the store and reused by later builds
    (and by ``inspect --explain``); returns it and its folder."""
    import hashlib

    from amplify_agents.explainers.proxy import ProxyClassifier
    from amplify_agents.explainers.registry import create_proxy

    key = json.dumps([task.name, list(task.labels), sorted(e.id for e in train), epochs, seed])
    folder = store_dir / ".amplify" / "proxies" / f"{store.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (folder / "amplify_proxy.json").is_file():
        try:
            return ProxyClassifier.load(folder, progress=True), folder
        except (OSError, ValueError):
            pass  # unreadable: train it again below
    err_console.print(f"fine-tuning the classifier proxy ({epochs} epochs, {len(train)} examples)")
    proxy = create_proxy("classifier", labels=task.labels, pool=train, epochs=epochs, seed=seed, progress=True)
    proxy.save(folder)
    return proxy, folder


# ---------------------------------------------------------------------------- tables
def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _demo_table(demos: Sequence[Demonstration], title: str) -> Table:
    """Demonstrations, one row each: short id (a unique prefix `inspect --explain` takes), label, text."""
    table = Table(title=title, show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("label", no_wrap=True)
    table.add_column("input, rationale (explainer / strategy)")
    for i, d in enumerate(demos, start=1):
        body = Text(_short(d.input, 200))
        body.append("\n" + _short(d.rationale, 200), style="dim")
        body.append(f" ({d.explainer} / {d.strategy})", style="italic dim")
        table.add_row(str(i), Text(d.demo_id[:12]), Text(d.label), body)
    return table


def _counter_table(title: str, counts: Counter[str], total: int) -> Table:
    table = Table(title=title)
    table.add_column(title.split(" ")[-1])
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for key, n in counts.most_common():
        table.add_row(Text(str(key)), str(n), f"{100 * n / max(1, total):.0f}%")
    return table


def _build_report_table(report: Any) -> Table:
    table = Table(title=f"build: {report.task} ({report.strategy})")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_column("seconds", justify="right")
    rows = [
        ("examples", report.examples, report.seconds.get("load", 0.0)),
        ("predicted", report.predicted, report.seconds.get("predict", 0.0)),
        (f"eligible ({report.strategy})", report.eligible, report.seconds.get("select", 0.0)),
        ("label-balance fill", report.filled, 0.0),
        ("explained", report.explained, report.seconds.get("explain", 0.0)),
        ("stored (new)", len(report.added), report.seconds.get("store", 0.0)),
        ("already stored", len(report.skipped_existing), 0.0),
    ]
    for name, count, secs in rows:
        table.add_row(name, str(count), f"{secs:.1f}")
    for reason, count in sorted(report.discarded.items()):
        table.add_row(Text(f"discarded: {reason}"), str(count), "")
    return table


def _history_table(history: Any) -> Table:
    table = Table(title=f"improve: {history.task} → {history.store}")
    for col in ("round", "accuracy", "bal. acc", "errors", "store", "added", "guarded"):
        table.add_column(col, justify="right")
    for r in history.rounds:
        table.add_row(
            str(r.round),
            f"{100 * r.accuracy:.1f}%",
            f"{100 * r.balanced_accuracy:.1f}%",
            str(r.n_errors),
            str(r.store_size),
            str(len(r.added)),
            str(r.guarded),
        )
    table.caption = f"best round {history.best_round}; stopped: {history.stop_reason}"
    return table


def _pct(value: Any) -> str:
    return "–" if value is None or value != value else f"{100 * float(value):.1f}"


# ---------------------------------------------------------------------------- commands
@app.command()
@_guard
def build(
    ctx: typer.Context,
    task_path: Path = TaskArg,
    store_dir: Path = StoreDirOpt,
    name: str = NameOpt,
    explainer: str = typer.Option(
        "grad_x_input", help="Explainer writing the rationales (see `inspect --help` for the list)."
    ),
    strategy: str = typer.Option("error", help="Selection strategy: error, success, h-mcs, l-mcs, f-exp or random."),
    n: int = typer.Option(8, min=1, help="Demonstrations to end up with (stored ones count)."),
    k: int = typer.Option(4, min=1, help="Keywords per rationale."),
    seed: int = typer.Option(0, help="Seeds the split, the selection and the proxy."),
    predictor: str = typer.Option(
        "target",
        help=(
            "What selection ranks by: target (the target model's own answers and probabilities) or proxy "
            "(AMPLIFY: the target's errors, ranked by MCS on a classifier proxy fine-tuned on a separate part "
            "of the pool). 'slm' is an alias of target."
        ),
    ),
    model: str = typer.Option(
        DEFAULT_MODEL,
        help="The target model: an offline name, a .gguf file, a directory or a hub id; or the name --base-url serves.",
    ),
    base_url: str = BaseUrlOpt,
    api_key_env: str = ApiKeyEnvOpt,
    api: str = ApiOpt,
    concurrency: int = ConcurrencyOpt,
    explainer_model: str = ExplainerModelOpt,
    proxy_train_fraction: float = ProxyTrainFractionOpt,
    pool: int = typer.Option(
        None, min=1, help="Examples to select from (default: all not held out).", show_default=False
    ),
    test: int = typer.Option(
        100,
        min=0,
        help="Examples held out as the test split, never built from (same seed and size as eval/improve).",
    ),
    proxy: str = typer.Option(
        "classifier", help="Proxy of proxy explainers: classifier (MiniLM head) or causal_lm (the small LM)."
    ),
    proxy_epochs: int = typer.Option(
        10, min=0, help="Fine-tuning epochs of the classifier proxy (0 = untrained head)."
    ),
    template: str = typer.Option(
        None, help="Rationale template id (default: the explainer's usual one).", show_default=False
    ),
    quiet: bool = QuietOpt,
    config: Path = ConfigOpt,
) -> None:
    """Build demonstrations of a task into a store: predict, select, explain, store (resumable)."""
    o = _configure(ctx, config, locals())
    from amplify_agents.answering import Answerer, AnswerSettings, ResponseCache, Target, open_target
    from amplify_agents.builder import BuildConfig, DemonstrationBuilder
    from amplify_agents.framing import Frame
    from amplify_agents.prompts import PromptStyle
    from amplify_agents.rationales import TEMPLATES
    from amplify_agents.selection import STRATEGIES, ProxyMCSPredictor, TargetPredictor

    _check_explainer(o["explainer"])
    _check_choice(o["strategy"], STRATEGIES, "--strategy", "strategy")
    _check_choice(o["predictor"], ("target", "slm", "proxy"), "--predictor", "predictor")
    _check_choice(o["proxy"], ("classifier", "causal_lm"), "--proxy", "proxy")
    _check_choice(o["api"], ("completions", "chat"), "--api", "endpoint API")
    if o["template"] is not None:
        _check_choice(o["template"], sorted(TEMPLATES), "--template", "template")
    task = _load_task(o["task_path"])
    try:
        splits = task.split(seed=o["seed"], test=o["test"], pool=o["pool"])
    except ValueError as exc:
        raise _bad(str(exc), "--pool / --test") from None
    store = _open_store(o["store_dir"], o["name"], create=True)
    frame = Frame.from_task(task)
    target = Target(
        o["model"], base_url=o["base_url"], api_key_env=o["api_key_env"], api=o["api"], concurrency=o["concurrency"]
    )
    if target.hosted:
        _check_endpoint(target)
    local_model: str | None = o["explainer_model"] or (None if target.hosted else o["model"])
    # The builder keeps the target's predictions of the pool beside the store (a re-run predicts
    # nothing again); an endpoint's replies are also cached one by one, so a killed build resumes.
    if target.hosted:
        backend = open_target(target, cache=ResponseCache(Path(o["store_dir"]) / ".amplify" / "responses.sqlite"))
    else:
        backend = open_target(load_slm(o["model"]))
    target_predictor = TargetPredictor(Answerer(backend, AnswerSettings(PromptStyle(frame))), task.labels)
    from amplify_agents.explainers.registry import explainer_family

    corpus = splits.pool
    proxy_obj = None
    metadata: dict[str, Any] = {"target": json.dumps(target.describe(), sort_keys=True)}
    proxy_train = splits.pool
    if o["predictor"] == "proxy":
        # AMPLIFY: the proxy is fine-tuned on one part of the pool and ranks only the other.
        try:
            proxy_train, corpus = splits.pool.split_for_proxy(o["proxy_train_fraction"], seed=o["seed"])
        except ValueError as exc:
            raise _bad(str(exc), "--pool") from None
        metadata.update(proxy_train_size=len(proxy_train), selection_size=len(corpus), split_seed=o["seed"])
    if o["predictor"] == "proxy" or (explainer_family(o["explainer"]) == "proxy" and o["proxy"] == "classifier"):
        store_dir = Path(o["store_dir"])
        proxy_obj, folder = _saved_proxy(store, store_dir, task, proxy_train, o["proxy_epochs"], o["seed"])
        metadata["proxy_dir"] = str(folder.relative_to(store_dir))  # inspect --explain reloads it
    if local_model is None and (explainer_family(o["explainer"]) == "slm" or o["proxy"] == "causal_lm"):
        raise _bad(f"{o['explainer']!r} explains a local model: pass --explainer-model.", "--explainer-model")
    explainer_obj, proxy_used = _make_explainer(
        o["explainer"],
        task=task,
        pool=corpus,
        k=o["k"],
        seed=o["seed"],
        slm_name=local_model or "",
        proxy_kind=o["proxy"],
        proxy_epochs=o["proxy_epochs"],
        proxy=proxy_obj if o["proxy"] == "classifier" else None,
    )
    pred: Any = ProxyMCSPredictor(target_predictor, proxy_obj) if proxy_obj is not None else target_predictor
    builder = DemonstrationBuilder(
        task,
        pred,
        explainer_obj,
        store,
        BuildConfig(strategy=o["strategy"], n=o["n"], seed=o["seed"], template=o["template"]),
        progress=not o["quiet"],
        metadata=metadata,
    )
    report = builder.run(corpus.examples)
    backend.close()
    console.print(_build_report_table(report))
    console.print(
        f"labels: {dict(report.label_counts)}; requested {report.requested}, have {len(report.demo_ids)}"
        + (" (short: too few eligible examples)" if report.short else "")
    )
    console.print(
        f"store {store.name!r} in {o['store_dir']}: {store.count()} demonstration(s); "
        f"held out {len(splits.test)} test item(s) (seed {o['seed']})."
    )


@app.command("select")
@_guard
def select_cmd(
    ctx: typer.Context,
    store_dir: Path = typer.Argument(
        None, metavar="STORE_DIR", help="Chroma directory of the store.", show_default=False
    ),
    name: str = NameOpt,
    query: str = typer.Option(
        None, "--query", "-Q", help="The query to select demonstrations for.", show_default=False
    ),
    k: int = typer.Option(4, min=1, help="Demonstrations to select."),
    task: str = typer.Option(None, help="Only demonstrations of this task (name).", show_default=False),
    explainer: str = typer.Option(None, help="Only demonstrations from this explainer.", show_default=False),
    strategy: str = typer.Option(None, help="Only demonstrations selected by this strategy.", show_default=False),
    mmr: bool = typer.Option(False, help="Diverse demonstrations (maximal marginal relevance)."),
    mcs_weight: float = typer.Option(0.0, min=0.0, max=1.0, help="Weight of the MCS score against similarity."),
    balance: bool = typer.Option(True, help="Take gold labels in turn."),
    prompt: bool = typer.Option(False, help="Also print the few-shot prompt for the query."),
    task_file: Path = typer.Option(None, help="Task file whose framing the --prompt uses.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the selected demonstrations as JSON (for scripts)."),
    config: Path = ConfigOpt,
) -> None:
    """Print the demonstrations AmplifyExampleSelector picks for a query."""
    o = _configure(ctx, config, locals())
    from amplify_agents.framing import Frame
    from amplify_agents.prompts import PromptStyle, build_prompt
    from amplify_agents.selectors import AmplifyExampleSelector

    if not o["query"] or not o["query"].strip():
        raise _bad("a non-empty query is required.", "--query")
    frame = Frame.from_task(_load_task(o["task_file"], "--task-file")) if o["task_file"] else Frame()
    store = _open_store(o["store_dir"], o["name"], create=False)
    selector = AmplifyExampleSelector(
        store,
        k=o["k"],
        task=o["task"],
        explainer=o["explainer"],
        strategy=o["strategy"],
        mmr=o["mmr"],
        mcs_weight=o["mcs_weight"],
        balance_labels=o["balance"],
        frame=frame,
    )
    demos = selector.select_demonstrations(o["query"])
    if o["as_json"]:
        typer.echo(json.dumps([d.to_dict() for d in demos], ensure_ascii=False, indent=1))
        return
    if not demos:
        console.print(f"No demonstrations match in store {store.name!r} ({store.count()} stored).")
    else:
        console.print(_demo_table(demos, f"{len(demos)} demonstration(s) for: {_short(o['query'], 60)}"))
    if o["prompt"]:
        console.rule("prompt")
        typer.echo(build_prompt(o["query"], [d.to_example() for d in demos], PromptStyle(frame)))  # unwrapped


@app.command("eval")
@_guard
def eval_cmd(
    ctx: typer.Context,
    task_path: Path = TaskArg,
    method: list[str] = typer.Option(
        None,
        "--method",
        "-m",
        help=(
            "Method to compare (repeat the option); default: the standard set. E.g. zero-shot, io, "
            "amplify:grad_x_input:h-mcs, self:gradient_x_activation:error."
        ),
        show_default=False,
    ),
    seed: list[int] = typer.Option([0], "--seed", "-s", help="Seed (repeat the option for several)."),
    n_shot: int = typer.Option(8, min=0, help="Demonstrations per prompt."),
    k: int = typer.Option(5, min=1, help="Keywords per rationale."),
    test_size: int = typer.Option(100, min=1, help="Test items per seed."),
    demo_setting: str = typer.Option(
        "fixed", help="fixed (one demo set per seed) or retrieved (per query, from a store)."
    ),
    out_dir: Path = typer.Option(
        Path("eval_results"), help="Where results.json (resumable), CSV, markdown and PNG go."
    ),
    model: str = typer.Option(DEFAULT_MODEL, help="The target model: a local model, or the name --base-url serves."),
    base_url: str = BaseUrlOpt,
    api_key_env: str = ApiKeyEnvOpt,
    api: str = ApiOpt,
    concurrency: int = ConcurrencyOpt,
    explainer_model: str = ExplainerModelOpt,
    pool_size: int = typer.Option(None, min=1, help="Cap on the demo pool.", show_default=False),
    proxy: str = typer.Option("classifier", help="Proxy of amplify: methods: classifier or causal_lm."),
    proxy_epochs: int = ProxyEpochsOpt,
    proxy_train_fraction: float = ProxyTrainFractionOpt,
    retrieval_candidates: int = typer.Option(
        None, min=1, help="Retrieved setting: demonstrations built per method.", show_default=False
    ),
    select_on: str = typer.Option(
        "test",
        help=(
            "test: evaluate every method on test. validation: pick the best method on a validation split "
            "(balanced accuracy), then evaluate only it and io on test."
        ),
    ),
    validation_size: int = typer.Option(50, min=1, help="Validation items per seed (with --select-on validation)."),
    plot: bool = typer.Option(True, help="Write results.png."),
    quiet: bool = QuietOpt,
    config: Path = ConfigOpt,
) -> None:
    """Evaluate methods x seeds on a task by label scoring; print the summary table.

    Method names take modifiers: +cal / +pmi (calibrated scores), +xyr (rationale after the
    answer), +gen (the model writes the query's rationale first), e.g. io+cal.
    """
    o = _configure(ctx, config, locals())
    from amplify_agents.eval import DEFAULT_METHODS, EvalConfig, parse_method, run_eval

    methods = tuple(o["method"] or DEFAULT_METHODS)
    for m in methods:
        try:
            parse_method(m)
        except ValueError as exc:
            raise _bad(str(exc), "--method") from None
    _check_choice(o["demo_setting"], ("fixed", "retrieved"), "--demo-setting", "demo setting")
    _check_choice(o["proxy"], ("classifier", "causal_lm"), "--proxy", "proxy")
    _check_choice(o["select_on"], ("test", "validation"), "--select-on", "selection split")
    _check_choice(o["api"], ("completions", "chat"), "--api", "endpoint API")
    on_validation = o["select_on"] == "validation"
    validation_size = o["validation_size"] if on_validation else 0
    task = _load_task(o["task_path"])
    if o["test_size"] + validation_size >= len(task):
        raise _bad(
            f"--test-size {o['test_size']}"
            + (f" + --validation-size {validation_size}" if on_validation else "")
            + f" leave no demo pool in the {len(task)} examples.",
            "--test-size",
        )
    try:
        cfg = EvalConfig(
            task=o["task_path"],
            model=o["model"],
            base_url=o["base_url"],
            api_key_env=o["api_key_env"],
            api=o["api"],
            concurrency=o["concurrency"],
            explainer_model=o["explainer_model"],
            proxy_train_fraction=o["proxy_train_fraction"],
            n_shot=o["n_shot"],
            k=o["k"],
            seeds=tuple(o["seed"]),
            methods=methods,
            test_size=o["test_size"],
            demo_setting=o["demo_setting"],
            out_dir=o["out_dir"],
            pool_size=o["pool_size"],
            proxy=o["proxy"],
            proxy_epochs=o["proxy_epochs"],
            retrieval_candidates=o["retrieval_candidates"],
            validation_size=validation_size,
            plot=o["plot"],
        )
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if cfg.base_url:
        _check_endpoint(cfg.target)
    local = None if cfg.base_url else load_slm(o["model"])
    if on_validation:
        from amplify_agents.eval import select_on_validation

        chosen = select_on_validation(cfg, progress=not o["quiet"], model=local)
        _print_eval_table(chosen.validation, task.name, "validation")
        console.print(f"chosen on validation (balanced accuracy): [bold]{chosen.chosen}[/bold]")
        _print_eval_table(chosen.test, task.name, "test")
        console.print(f"selection record: {chosen.path}")
        return
    results = run_eval(cfg, progress=not o["quiet"], model=local)
    _print_eval_table(results, task.name, "test")


def _print_eval_table(results: Any, task_name: str, split: str) -> None:
    cfg = results.config
    rows = results.summary()
    has_ref = bool(rows) and "p_vs_reference" in rows[0]
    table = Table(title=f"eval ({split}): {task_name} · {cfg.model} · {cfg.n_shot}-shot · seeds {list(cfg.seeds)}")
    for col in ("method", "acc %", "± std", "bal. acc %", "AUROC", "top answer", "n"):
        table.add_column(col, justify="left" if col in ("method", "top answer") else "right")
    if has_ref:
        table.add_column(f"Δ vs {cfg.reference}", justify="right")
        table.add_column("p", justify="right")
    for r in rows:
        cells: list[str | Text] = [
            Text(r["method"] + (" (short)" if r["short"] else "")),
            _pct(r["accuracy_mean"]),
            _pct(r["accuracy_std"]),
            _pct(r["balanced_accuracy_mean"]),
            "–" if r["auroc_mean"] != r["auroc_mean"] else f"{r['auroc_mean']:.2f}",
            Text(f"{r['top_label']} {_pct(r['top_label_share'])}%"),
            str(r["n_items"]),
        ]
        if has_ref:
            cells += [f"{100 * r['diff_vs_reference']:+.1f}", f"{r['p_vs_reference']:.2g}"]
        table.add_row(*cells)
    console.print(table)
    console.print(f"computed {len(results.computed)} run(s), resumed {len(results.skipped)}; results in {cfg.out_dir}")


@app.command("improve")
@_guard
def improve_cmd(
    ctx: typer.Context,
    task_path: Path = TaskArg,
    store_dir: Path = StoreDirOpt,
    name: str = NameOpt,
    explainer: str = typer.Option("grad_x_input", help="Explainer writing the rationales of the added errors."),
    strategy: str = typer.Option("error", help="Which errors first: error, h-mcs or l-mcs."),
    rounds: int = typer.Option(3, min=1, help="Rounds of additions at most."),
    n_per_round: int = typer.Option(4, min=1, help="Demonstrations added per round at most."),
    k: int = typer.Option(4, min=1, help="Demonstrations per prompt (and keywords per rationale)."),
    patience: int = typer.Option(1, min=1, help="Stop after this many rounds without improvement."),
    validation: int = typer.Option(16, min=1, help="Validation items (evaluated and learnt from)."),
    test: int = typer.Option(100, min=0, help="Test items held out: never added to the store."),
    seed: int = typer.Option(0, help="Seeds the split (same seed and --test as build/eval = same test split)."),
    model: str = typer.Option(DEFAULT_MODEL, help="The small LM that answers."),
    demo_setting: str = typer.Option(
        "retrieved", help="retrieved (per item, by the selector) or fixed (one set per round)."
    ),
    proxy: str = typer.Option("classifier", help="Proxy of proxy explainers: classifier or causal_lm."),
    proxy_epochs: int = ProxyEpochsOpt,
    keep_best: bool = typer.Option(False, help="At the end, remove what was added after the best round."),
    plot: Path = typer.Option(None, help="Write the accuracy-per-round plot to this PNG.", show_default=False),
    quiet: bool = QuietOpt,
    config: Path = ConfigOpt,
) -> None:
    """Add explained validation errors to a store, round after round, while accuracy improves."""
    o = _configure(ctx, config, locals())
    from amplify_agents.improve import IMPROVE_STRATEGIES, improve
    from amplify_agents.viz import plot_rounds

    _check_explainer(o["explainer"])
    _check_choice(o["strategy"], IMPROVE_STRATEGIES, "--strategy", "strategy")
    _check_choice(o["demo_setting"], ("retrieved", "fixed"), "--demo-setting", "demo setting")
    _check_choice(o["proxy"], ("classifier", "causal_lm"), "--proxy", "proxy")
    task = _load_task(o["task_path"])
    try:
        splits = task.split(seed=o["seed"], test=o["test"], validation=o["validation"])
    except ValueError as exc:
        raise _bad(str(exc), "--validation / --test") from None
    store = _open_store(o["store_dir"], o["name"], create=True)
    explainer_obj, _ = _make_explainer(
        o["explainer"],
        task=task,
        pool=splits.pool,
        k=o["k"],
        seed=o["seed"],
        slm_name=o["model"],
        proxy_kind=o["proxy"],
        proxy_epochs=o["proxy_epochs"],
    )
    history = improve(
        task,
        store,
        load_slm(o["model"]),
        explainer_obj,
        splits.validation,
        splits.test,
        rounds=o["rounds"],
        n_per_round=o["n_per_round"],
        k=o["k"],
        patience=o["patience"],
        strategy=o["strategy"],
        demo_setting=o["demo_setting"],
        seed=o["seed"],
        keep_best=o["keep_best"],
        progress=not o["quiet"],
    )
    console.print(_history_table(history))
    console.print(f"added {len(history.added_ids)} demonstration(s); store {store.name!r} holds {store.count()}.")
    if o["plot"] is not None:
        console.print(f"plot: {plot_rounds(history, o['plot'])}")


@app.command("inspect")
@_guard
def inspect_cmd(
    ctx: typer.Context,
    store_dir: Path = typer.Argument(
        None, metavar="STORE_DIR", help="Chroma directory of the store.", show_default=False
    ),
    name: str = NameOpt,
    sample: int = typer.Option(3, min=0, help="How many of the newest demonstrations to show."),
    explain: str = typer.Option(
        None, help="Re-explain this demonstration (its id, or a unique prefix).", show_default=False
    ),
    html: Path = typer.Option(None, help="With --explain: write the HTML heat-map here.", show_default=False),
    png: Path = typer.Option(None, help="With --explain: write the PNG heat-map here.", show_default=False),
    explainer: str = typer.Option(
        None,
        help="With --explain: use this explainer instead of the one recorded in the demonstration.",
        show_default=False,
    ),
    task_file: Path = typer.Option(
        None,
        help="With --explain: the task file (label space, framing, proxy training data).",
        show_default=False,
    ),
    model: str = typer.Option(DEFAULT_MODEL, help="With --explain: the small LM of SLM explainers."),
    proxy_epochs: int = typer.Option(
        None,
        min=0,
        help="With --explain: proxy fine-tuning epochs (default: as recorded with --task-file, else 0).",
        show_default=False,
    ),
    config: Path = ConfigOpt,
) -> None:
    """Show a store's statistics and a sample; with --explain, draw a demonstration's heat-map.

    Explainers: grad, grad_x_input, contrastive_grad, contrastive_grad_x_input (proxy);
    gradient_x_activation, integrated_gradients, gradient_shap, deeplift, kernel_shap, lime,
    feature_ablation, shapley_sampling, self_topk, self_exp (the small LM); random.
    """
    o = _configure(ctx, config, locals())
    if (o["html"] or o["png"] or o["explainer"]) and not o["explain"]:
        raise _bad("--html, --png and --explainer need --explain DEMO_ID.", "--explain")
    if o["explainer"]:
        _check_explainer(o["explainer"])
    store = _open_store(o["store_dir"], o["name"], create=False)
    if o["explain"]:
        _explain_demo(store, o)
        return
    from amplify_agents.feedback import usefulness_of
    from amplify_agents.improve import load_histories

    demos = store.list()
    console.print(f"[bold]store {store.name!r}[/] in {o['store_dir']}: {len(demos)} demonstration(s)")
    if demos:
        total = len(demos)
        for title, key in (
            ("per task", "task"),
            ("per label", "label"),
            ("per explainer", "explainer"),
            ("per strategy", "strategy"),
        ):
            console.print(_counter_table(f"demonstrations {title}", Counter(getattr(d, key) for d in demos), total))
        used = [usefulness_of(d) for d in demos]
        judged = [u for u in used if u.used]
        if judged:
            console.print(
                f"usefulness: {len(judged)} demonstration(s) judged, {sum(u.correct for u in judged)} "
                f"correct and {sum(u.wrong for u in judged)} wrong answers counted"
            )
        newest = sorted(demos, key=lambda d: d.created_at, reverse=True)[: o["sample"]]
        if newest:
            console.print(_demo_table(newest, f"sample: the {len(newest)} newest"))
    histories = load_histories(store)
    if histories:
        console.print(_history_table(histories[-1]))


def _explain_demo(store: RationaleStore, o: dict[str, Any]) -> None:
    """``inspect --explain``: re-explain one stored demonstration and write its heat-maps."""
    from amplify_agents.explainers.registry import explainer_family, explainer_names
    from amplify_agents.tasks import Example, Task
    from amplify_agents.viz import explanation_html, explanation_png

    wanted = o["explain"]
    demo = store.get(wanted)
    if demo is None:  # a unique prefix is enough
        matches = [d for d in store.list() if d.demo_id.startswith(wanted)]
        if len(matches) != 1:
            why = "no demonstration" if not matches else f"{len(matches)} demonstrations"
            raise _bad(f"{why} with id {wanted!r} in store {store.name!r}.", "--explain")
        demo = matches[0]
    name = o["explainer"] or demo.explainer
    if name not in explainer_names():
        raise _bad(
            f"the demonstration was written by {demo.explainer!r}, which cannot be re-run: pass --explainer NAME.",
            "--explainer",
        )
    settings = dict(demo.explainer_settings) if name == demo.explainer else {}
    k = demo.k or int(settings.get("k", 5))
    seed = int(settings.get("seed", 0))
    if o["task_file"]:
        task = _load_task(o["task_file"], "--task-file")
    else:
        labels = sorted({d.label for d in store.list(where={"task": demo.task})} | {demo.label})
        if len(labels) < 2 and explainer_family(name) != "none":
            raise _bad(
                f"the store holds only the label {labels} for task {demo.task!r}: pass --task-file "
                "to give the label space.",
                "--task-file",
            )
        # No task file: the label space the store shows, the default framing.
        task = Task(name=demo.task, labels=tuple(labels), examples=(Example("demo", demo.input, demo.label),))
    recorded_proxy = settings.get("model", {}) if isinstance(settings.get("model"), dict) else {}
    proxy_kind = "causal_lm" if recorded_proxy.get("proxy") == "causal_lm" else "classifier"
    epochs = o["proxy_epochs"]
    if epochs is None:
        epochs = int(recorded_proxy.get("epochs", 0)) if o["task_file"] else 0
    if (
        explainer_family(name) == "proxy"
        and proxy_kind == "classifier"
        and epochs != recorded_proxy.get("epochs", epochs)
    ):
        err_console.print(
            f"note: the proxy is trained for {epochs} epoch(s), the stored rationale's for "
            f"{recorded_proxy.get('epochs')}: keywords may differ."
        )
    saved = o["store_dir"] / str(demo.extra.get("proxy_dir", "")) if demo.extra.get("proxy_dir") else None
    proxy = None
    if saved is not None and name == demo.explainer and (saved / "amplify_proxy.json").is_file():
        from amplify_agents.explainers.proxy import ProxyClassifier

        proxy = ProxyClassifier.load(saved, progress=False)  # the very proxy that wrote the rationale
    explainer_obj, _ = _make_explainer(
        name,
        task=task if proxy is None else replace(task, labels=tuple(proxy.labels)),
        pool=task,
        k=k,
        seed=seed,
        slm_name=o["model"],
        proxy_kind=proxy_kind,
        proxy_epochs=epochs,
        proxy=proxy,
    )
    if name == demo.explainer and demo.extra.get("word_weights"):
        explainer_obj.word_weights = json.loads(str(demo.extra["word_weights"]))  # the build's corpus weights
    exp = explainer_obj.explain(demo.input, demo.label)
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
    console.print(table)
    if o["html"]:
        Path(o["html"]).parent.mkdir(parents=True, exist_ok=True)
        Path(o["html"]).write_text(explanation_html(exp), encoding="utf-8")
        console.print(f"html: {o['html']}")
    if o["png"]:
        console.print(f"png: {explanation_png(exp, o['png'])}")


@app.command("export")
@_guard
def export_cmd(
    ctx: typer.Context,
    store_dir: Path = typer.Argument(
        None, metavar="STORE_DIR", help="Chroma directory of the store.", show_default=False
    ),
    name: str = NameOpt,
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="JSONL file to write (sorted by id: exports diff cleanly).",
        show_default=False,
    ),
    config: Path = ConfigOpt,
) -> None:
    """Write every demonstration of a store to a JSONL file."""
    o = _configure(ctx, config, locals())
    if o["out"] is None:
        raise _bad("the output file is required.", "--out")
    store = _open_store(o["store_dir"], o["name"], create=False)
    count = store.export_jsonl(o["out"])
    console.print(f"exported {count} demonstration(s) from {store.name!r} to {o['out']}")


@app.command("import")
@_guard
def import_cmd(
    ctx: typer.Context,
    store_dir: Path = typer.Argument(
        None,
        metavar="STORE_DIR",
        help="Chroma directory of the store (created if missing).",
        show_default=False,
    ),
    name: str = NameOpt,
    source: Path = typer.Option(None, "--in", "-i", help="JSONL file to read (written by export).", show_default=False),
    config: Path = ConfigOpt,
) -> None:
    """Add (upsert) every demonstration of a JSONL file to a store."""
    o = _configure(ctx, config, locals())
    from amplify_agents.errors import StoreError
    from amplify_agents.stores import read_jsonl

    src = o["source"]
    if src is None:
        raise _bad("the input file is required.", "--in")
    if not src.is_file():
        raise _bad(f"file not found: {src}", "--in")
    try:
        demos = read_jsonl(src)  # checked whole before the store is touched
    except StoreError as exc:
        raise _bad(str(exc), "--in") from None
    store = _open_store(o["store_dir"], o["name"], create=True)
    store.add(demos)
    console.print(f"imported {len(demos)} demonstration(s) into {store.name!r}: it holds {store.count()}")


@app.command("demo")
@_guard
def demo_cmd(
    ctx: typer.Context,
    task_path: Path = typer.Option(
        None,
        "--task",
        help=f"Task file (default: BIG-bench {DEMO_TASK} under $AMPLIFY_BIGBENCH_DIR or ../shared/data).",
        show_default=False,
    ),
    store_dir: Path = typer.Option(
        None,
        "--store-dir",
        "-d",
        help="Keep the store in this directory (default: a temporary one, removed after).",
        show_default=False,
    ),
    pool: int = typer.Option(16, min=2, help="Pool examples the model labels and errors are chosen from."),
    n: int = typer.Option(4, min=1, help="Demonstrations to build."),
    shots: int = typer.Option(4, min=1, help="Demonstrations in the prompt."),
    k: int = typer.Option(4, min=1, help="Keywords per rationale."),
    query: str = typer.Option(None, help="The question to answer (default: a held-out test item).", show_default=False),
    seed: int = typer.Option(0, help="Seeds the split and the selection."),
    model: str = typer.Option(DEFAULT_MODEL, help="The small LM."),
    quiet: bool = QuietOpt,
    config: Path = ConfigOpt,
) -> None:
    """A short end-to-end run: build a tiny store, retrieve demos for a query, answer it."""
    o = _configure(ctx, config, locals())
    path = o["task_path"]
    if path is None:
        root = _default_bigbench_dir()
        if root is None:
            raise _bad("BIG-bench data not found: set AMPLIFY_BIGBENCH_DIR or pass --task.", "--task")
        path = root / DEMO_TASK
    tmp = None
    store_dir = o["store_dir"]
    if store_dir is None:
        tmp = tempfile.mkdtemp(prefix="amplify-demo-")
        store_dir = Path(tmp)
    try:
        _run_demo(path, store_dir, o)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run_demo(path: Path, store_dir: Path, o: dict[str, Any]) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from amplify_agents.answering import Answerer, AnswerSettings, LocalBackend
    from amplify_agents.builder import BuildConfig, DemonstrationBuilder
    from amplify_agents.explainers.gradient import GradXInputExplainer
    from amplify_agents.explainers.registry import create_proxy
    from amplify_agents.framing import Frame
    from amplify_agents.prompts import PromptStyle
    from amplify_agents.selection import TargetPredictor
    from amplify_agents.selectors import AmplifyExampleSelector

    task = _load_task(path, "--task")
    if o["pool"] + 1 > len(task):
        raise _bad(f"--pool {o['pool']} leaves no test item in the {len(task)} examples.", "--pool")
    splits = task.split(seed=o["seed"], test=1, pool=o["pool"])
    frame = Frame.from_task(task)
    steps = ["load the small LM", "AMPLIFY proxy (MiniLM)", "build the store", "select and answer"]
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=o["quiet"],
        transient=True,
    )
    with progress:
        bar = progress.add_task("demo", total=len(steps))
        progress.update(bar, description=steps[0])
        slm = load_slm(o["model"])
        answerer = Answerer(LocalBackend(slm), AnswerSettings(PromptStyle(frame)))
        progress.advance(bar)
        progress.update(bar, description=steps[1])
        # An untrained head keeps the demo quick; `build --proxy-epochs 10` is AMPLIFY's setting.
        proxy = create_proxy("classifier", labels=task.labels, epochs=0, seed=o["seed"])
        explainer = GradXInputExplainer(proxy, k=o["k"])
        progress.advance(bar)
        progress.update(bar, description=steps[2])
        store = _open_store(store_dir, f"demo-{task.name}"[:63], create=True)
        report = DemonstrationBuilder(
            task,
            TargetPredictor(answerer, task.labels),
            explainer,
            store,
            BuildConfig(strategy="error", n=o["n"], seed=o["seed"]),
            model_id=slm.name,
            progress=False,
        ).run(splits.pool.examples)
        progress.advance(bar)
        progress.update(bar, description=steps[3])
        gold = None
        q = o["query"]
        if not q:
            q, gold = splits.test[0].input, splits.test[0].label
        selector = AmplifyExampleSelector(store, k=o["shots"], task=task.name, frame=frame)
        demos = selector.select_demonstrations(q)
        answer = answerer.answer_one(q, task.labels, [d.to_example() for d in demos])
        prompt, scores = answer.prompt, answer.scores
        assert scores is not None  # a local model scores its labels
        progress.advance(bar)
    console.print(f"[bold]task[/] {task.name}: labels {list(task.labels)}; pool {len(splits.pool)} examples")
    console.print(_build_report_table(report))
    console.print(_demo_table(demos, f"demonstrations selected for the query ({len(demos)})"))
    console.rule("prompt")
    typer.echo(prompt)  # as the model reads it, not wrapped to the terminal
    console.rule("answer")
    probs = ", ".join(f"{lab} {p:.2f}" for lab, p in scores.probs.items())
    line = f"answer: [bold]{scores.predicted}[/] ({probs})"
    if gold is not None:
        line += f"; gold: {gold} ({'correct' if scores.predicted == gold else 'wrong'})"
    console.print(line)
    console.print("(Gemma 3 270M is a tiny base model: this shows the pipeline, not the method's accuracy.)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return its exit code (for ``python -m`` and embedding)."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
