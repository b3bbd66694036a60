"""Option declarations shared by several commands: typed choices, single options, option groups.

An option used by several commands is declared here once, so its flag, short name and help
read the same everywhere. Options that travel together (the store, the target model, the
proxy) form an :class:`OptionGroup`: a frozen dataclass whose fields are typer options;
:func:`amplify_agents.cli.command.command` spreads it into the command's flags and hands the
command the filled dataclass.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from amplify_agents.cli.common import DEFAULT_MODEL, open_store
from amplify_agents.defaults import DEFAULTS

if TYPE_CHECKING:
    from amplify_agents.answering import Target
    from amplify_agents.stores import RationaleStore

__all__ = [
    "AmplifyProxyOptions",
    "Choice",
    "DEFAULT_EXPLAINER",
    "DEVICE_VALUES",
    "DemoSetting",
    "Device",
    "EndpointApi",
    "ImproveStrategy",
    "LABELS_HELP",
    "Labels",
    "NewStoreArgs",
    "OptionGroup",
    "Predictor",
    "ProxyKind",
    "ProxyOptions",
    "ProxyTraining",
    "ProxyTrainingOptions",
    "Quiet",
    "SelectOn",
    "StoreArgs",
    "StoreName",
    "StoreOptions",
    "Strategy",
    "TargetOptions",
    "TaskPath",
    "choice",
    "explainer_option",
    "template_option",
]


# ------------------------------------------------------------------------- typed choices
class Choice(str, Enum):
    """A fixed set of option values; prints as its value (``h-mcs``, not ``Strategy.h_mcs``).

    Subclasses annotate ``_value_`` with the matching ``Literal``, so ``member.value`` type-checks
    where the library takes that literal type.
    """

    def __str__(self) -> str:
        return str(self.value)


class Strategy(Choice):
    """How ``build`` selects the examples it explains (:data:`amplify_agents.strategies.STRATEGIES`)."""

    _value_: Literal["error", "success", "h-mcs", "l-mcs", "f-exp", "random"]
    error = "error"
    success = "success"
    h_mcs = "h-mcs"
    l_mcs = "l-mcs"
    f_exp = "f-exp"
    random = "random"


class ImproveStrategy(Choice):
    """Which validation errors ``improve`` adds first (:data:`amplify_agents.improve.IMPROVE_STRATEGIES`)."""

    _value_: Literal["error", "h-mcs", "l-mcs"]
    error = "error"
    h_mcs = "h-mcs"
    l_mcs = "l-mcs"


class Predictor(Choice):
    """What ``build``'s selection ranks by; ``slm`` is the old name of ``target``."""

    _value_: Literal["target", "slm", "proxy"]
    target = "target"
    slm = "slm"
    proxy = "proxy"


class ProxyKind(Choice):
    """The proxy model of the proxy explainers."""

    _value_: Literal["classifier", "causal_lm"]
    classifier = "classifier"
    causal_lm = "causal_lm"


class ProxyTraining(Choice):
    """How the classifier proxy is trained: plain fine-tuning, or UIMER with one of its three losses."""

    _value_: Literal["plain", "uimer-gb", "uimer-im", "uimer-dm"]
    plain = "plain"
    uimer_gb = "uimer-gb"
    uimer_im = "uimer-im"
    uimer_dm = "uimer-dm"


class EndpointApi(Choice):
    """The API of an OpenAI-compatible endpoint."""

    _value_: Literal["completions", "chat"]
    completions = "completions"
    chat = "chat"


class DemoSetting(Choice):
    """One demonstration set per seed or round (fixed), or demonstrations retrieved per query."""

    _value_: Literal["fixed", "retrieved"]
    fixed = "fixed"
    retrieved = "retrieved"


class SelectOn(Choice):
    """The split ``eval`` compares its methods on."""

    _value_: Literal["test", "validation"]
    test = "test"
    validation = "validation"


C = TypeVar("C", bound=Choice)


def _one_of(value: str, valid: Sequence[str], what: str) -> str:
    if value not in valid:
        raise typer.BadParameter(f"unknown {what} {value!r}; valid: {', '.join(valid)}.")
    return value


def choice(enum: type[C], what: str, *decls: str, help: str) -> Any:
    """An option taking one value of ``enum``.

    Typer lists the values in the help and validates them; the parser only words the
    refusal the way this command line words every bad value ("unknown strategy 'best';
    valid: ..."). A value from ``--config`` goes through the same parser.
    """

    def parse(value: str | C) -> C:
        if isinstance(value, enum):
            return value
        _one_of(str(value), [m.value for m in enum], what)
        return enum(value)

    return typer.Option(*decls, help=help, parser=parse)


def _registry_option(
    names: Callable[[], Sequence[str]], what: str, help: str, trusted: str | None = None, **kw: Any
) -> Any:
    """An option naming an entry of a library registry (its names are read when a value is parsed).

    ``trusted`` (the default value) is returned unchecked: reading the explainer registry imports
    torch (seconds), which a command given a bad task file must not wait for; the registry still
    checks the name when the explainer is made.
    """

    def parse(value: str) -> str:
        if trusted is not None and value == trusted:
            return value
        return _one_of(str(value), list(names()), what)

    return typer.Option(help=help, parser=parse, **kw)


def _explainer_names() -> list[str]:
    from amplify_agents.explainers.registry import explainer_names

    return list(explainer_names())


def _template_ids() -> list[str]:
    from amplify_agents.rationales import TEMPLATES

    return sorted(TEMPLATES)


DEFAULT_EXPLAINER = DEFAULTS.explainer
"""The explainer of ``build`` and ``improve`` unless ``--explainer`` names another."""


def explainer_option(help: str, **kw: Any) -> Any:
    """``--explainer``: a name of the explainer registry (listed in ``inspect --help``)."""
    return _registry_option(_explainer_names, "explainer", help, DEFAULT_EXPLAINER, **kw)


def template_option(help: str, **kw: Any) -> Any:
    """``--template``: a rationale template id (the registry may grow: it is read at parse time)."""
    return _registry_option(_template_ids, "template", help, **kw)


# ------------------------------------------------------------------------ single options
TaskPath = Annotated[
    Path | None,
    typer.Argument(
        metavar="TASK", help="Task file: BIG-bench task.json (or its folder), .jsonl or .csv.", show_default=False
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
LABELS_HELP = (
    "The label space, comma-separated (e.g. yes,no): a row whose gold label is outside it is refused "
    "(default: the labels the task file gives, printed when it loads)."
)
Labels = Annotated[str | None, typer.Option("--labels", help=LABELS_HELP, show_default=False)]
StoreName = Annotated[
    str | None, typer.Option("--name", "-n", help="Store name (its Chroma collection).", show_default=False)
]
DEVICE_VALUES = "cpu, cuda, cuda:N (N = 0, 1, ...) or auto (cuda when visible, else cpu)"
"""The values ``--device`` accepts, as its help and its refusal list them."""
_DEVICE = re.compile(r"cpu|auto|cuda(:[0-9]+)?")


def _device(value: str) -> str:
    """A ``--device`` value, checked for its form only (whether CUDA is there is checked when a command runs)."""
    text = str(value).strip().lower()
    if not _DEVICE.fullmatch(text):
        raise typer.BadParameter(f"unknown device {value!r}; valid: {DEVICE_VALUES}.")
    return text


Device = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help=f"Where the models this command loads run (the small LM, the proxy): {DEVICE_VALUES}.",
        parser=_device,
    ),
]
"""``--device``: one declaration for every command that loads a model; :func:`~amplify_agents.cli.common.check_device`
turns its value into the library's ``device=``."""
ConfigPath = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file of option values (keys = option names; a \\[command] table for one command).",
        show_default=False,
    ),
]


# ------------------------------------------------------------------------- option groups
class OptionGroup:
    """Base of a frozen dataclass of options that the ``command`` decorator spreads into flags.

    Every field is annotated ``Annotated[type, typer.Option(...)]`` and has a default.
    """


@dataclass(frozen=True)
class StoreOptions(OptionGroup):
    """The store a command writes to: ``-d/--store-dir`` and ``-n/--name`` (build, improve)."""

    store_dir: Annotated[
        Path | None,
        typer.Option(
            "--store-dir", "-d", help="Chroma directory of the store (created if missing).", show_default=False
        ),
    ] = None
    name: StoreName = None

    def open(self, *, create: bool) -> "RationaleStore":
        """The store; with ``create=False`` a missing directory or store is bad input."""
        return open_store(self.store_dir, self.name, create=create)


@dataclass(frozen=True)
class StoreArgs(StoreOptions):
    """A store named by the ``STORE_DIR`` argument and ``-n/--name`` (select, inspect, export)."""

    store_dir: Annotated[
        Path | None,
        typer.Argument(metavar="STORE_DIR", help="Chroma directory of the store.", show_default=False),
    ] = None


@dataclass(frozen=True)
class NewStoreArgs(StoreOptions):
    """``STORE_DIR`` and ``-n/--name`` of a store that may not exist yet (import)."""

    store_dir: Annotated[
        Path | None,
        typer.Argument(
            metavar="STORE_DIR", help="Chroma directory of the store (created if missing).", show_default=False
        ),
    ] = None


@dataclass(frozen=True)
class TargetOptions(OptionGroup):
    """The target model: a local model, or one an OpenAI-compatible endpoint serves (build, eval)."""

    model: Annotated[
        str,
        typer.Option(
            help="The target model: an offline name, a .gguf file, a directory or a hub id; "
            "or the name --base-url serves."
        ),
    ] = DEFAULT_MODEL
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible endpoint of the target model (http://host:port/v1); "
            "--model names the served model.",
            show_default=False,
        ),
    ] = None
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="NAME of the environment variable holding the endpoint's API key.",
            show_default=False,
        ),
    ] = None
    api: Annotated[
        EndpointApi,
        choice(
            EndpointApi, "endpoint API", "--api", help="Endpoint API: completions (label log-probabilities) or chat."
        ),
    ] = EndpointApi.completions
    concurrency: Annotated[int, typer.Option(min=1, help="Endpoint requests in flight at once.")] = 4
    explainer_model: Annotated[
        str | None,
        typer.Option(
            "--explainer-model",
            help="Local model that Self-AMPLIFY explainers open (default: --model when it is local).",
            show_default=False,
        ),
    ] = None

    def target(self) -> "Target":
        """The :class:`~amplify_agents.answering.Target` these options name."""
        from amplify_agents.answering import Target

        return Target(
            self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            api=self.api.value,
            concurrency=self.concurrency,
        )

    @property
    def local_model(self) -> str | None:
        """The local model explainers open: --explainer-model, else --model when it is not hosted."""
        return self.explainer_model or (None if self.base_url is not None else self.model)


_PROXY_HELP = (
    "Proxy of the proxy explainers (and of amplify: methods): classifier (MiniLM head) or causal_lm (the small LM)."
)


@dataclass(frozen=True)
class ProxyOptions(OptionGroup):
    """The proxy model of the proxy explainers (build, eval, improve)."""

    proxy: Annotated[ProxyKind, choice(ProxyKind, "proxy", help=_PROXY_HELP)] = ProxyKind.classifier
    proxy_epochs: Annotated[
        int, typer.Option(min=0, help="Fine-tuning epochs of the classifier proxy (0 = untrained head).")
    ] = 10


@dataclass(frozen=True)
class AmplifyProxyOptions(ProxyOptions):
    """The proxy options, plus AMPLIFY's split of the pool between the proxy and selection (build, eval)."""

    proxy_train_fraction: Annotated[
        float,
        typer.Option(
            min=0.05,
            max=0.95,
            help="AMPLIFY: share of the pool the proxy is fine-tuned on; selection uses the rest.",
        ),
    ] = 0.5


@dataclass(frozen=True)
class ProxyTrainingOptions(OptionGroup):
    """How ``build`` trains the classifier proxy: plainly, or with UIMER on gold rationales."""

    proxy_training: Annotated[
        ProxyTraining,
        choice(
            ProxyTraining,
            "proxy-training",
            help="plain fine-tuning, or UIMER (gb: gradient, im: erasure, dm: extractor), which also trains the "
            "proxy's attributions to agree with gold rationales (the task file's rationale words or spans, and "
            "--rationale-store).",
        ),
    ] = ProxyTraining.plain
    uimer_alpha: Annotated[float, typer.Option(min=0.0, help="UIMER: weight of the interpretation loss.")] = 1.0
    uimer_warmup: Annotated[
        int, typer.Option(min=0, help="UIMER: epochs on the task loss alone before the interpretation loss joins.")
    ] = 2
    rationale_store: Annotated[
        str | None,
        typer.Option(help="UIMER: gold rationales from the keywords of this store's demonstrations (same directory)."),
    ] = None

    def uimer_settings(self) -> Any:
        """The :class:`~amplify_agents.models.uimer.UimerSettings` asked for, or None for plain training."""
        if self.proxy_training is ProxyTraining.plain:
            return None
        from amplify_agents.models.uimer import UimerSettings

        return UimerSettings.from_name(
            self.proxy_training.value, alpha=self.uimer_alpha, warmup_epochs=self.uimer_warmup
        )
