"""What every command shares: the consoles, bad-input errors, the model cache, task and store loading.

Library modules are imported inside the functions: ``amplify-agents --help`` must not pay for
torch, transformers or Chroma.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    from amplify_agents.answering import Target
    from amplify_agents.models.loading import LoadedModel
    from amplify_agents.stores import RationaleStore
    from amplify_agents.tasks import Task, TaskSplits

__all__ = [
    "DEFAULT_MODEL",
    "ProxyName",
    "bad",
    "check_device",
    "check_endpoint",
    "console",
    "default_bigbench_dir",
    "err_console",
    "load_slm",
    "load_task",
    "make_explainer",
    "open_store",
    "parse_labels",
    "quiet_libraries",
    "split_task",
]

DEFAULT_MODEL = "gemma-3-270m"
ProxyName = Literal["classifier", "causal_lm"]
"""The proxy kinds of :func:`amplify_agents.explainers.registry.create_proxy`."""

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def bad(message: str, hint: str | None = None) -> typer.BadParameter:
    """A bad-input error: click prints the usage line and the message, exit code 2."""
    return typer.BadParameter(message, param_hint=hint)


def quiet_libraries() -> None:
    """``--quiet``: library chatter (weight-loading reports, bars) goes too; errors still show."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


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
                raise bad(str(exc), "--model") from None
    return _SLM_CACHE[key]


def check_device(device: str) -> str | None:
    """The ``--device`` value as the library's ``device=``, checked once, before any model loads.

    ``cpu`` is None (the library's own default: torch is not even imported); ``auto`` is
    ``cuda`` when a CUDA device is visible, else None; ``cuda`` and ``cuda:N`` need that device
    to be visible, else they are bad input (exit 2) rather than a failure inside the first load.
    """
    if device == "cpu":
        return None
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        if not visible:
            err_console.print("--device auto: no CUDA device is visible; running on the CPU.")
        return "cuda" if visible else None
    if not visible:
        raise bad(
            f"{device!r} was asked for, but no CUDA device is visible on this machine "
            "(torch.cuda.is_available() is False): use --device cpu or --device auto.",
            "--device",
        )
    index = int(device.partition(":")[2] or 0)
    if index >= visible:
        raise bad(
            f"{device!r} was asked for, but only {visible} CUDA device(s) are visible (cuda:0 to cuda:{visible - 1}).",
            "--device",
        )
    return device


def check_endpoint(target: Target) -> None:
    """Fail fast (exit 2) when the endpoint does not answer, lacks its key or does not serve the model."""
    from amplify_agents.answering import open_endpoint

    with err_console.status(f"checking {target.base_url} ..."):
        open_endpoint(target.endpoint).close()


def parse_labels(value: str | None, hint: str = "--labels") -> tuple[str, ...] | None:
    """``--labels yes,no`` as ``("yes", "no")``; an empty or repeated label is bad input."""
    if value is None:
        return None
    labels = tuple(part.strip() for part in value.split(","))
    if len(labels) < 2 or any(not label for label in labels):
        raise bad(f"{value!r}: give two or more labels, comma-separated, none empty (e.g. yes,no).", hint)
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise bad(f"{value!r} lists {', '.join(twice)} more than once.", hint)
    return labels


def load_task(path: Path | None, hint: str = "TASK", labels: str | None = None) -> Task:
    """The task at ``path``; a missing or malformed file is bad input (exit 2), before any model loads.

    ``labels`` (the ``--labels`` value) fixes the label space: rows whose gold label is outside it
    are refused, with their count and first rows. Without it, the label space read from the file
    is printed, so a stray label in the data is seen.
    """
    from amplify_agents.errors import TaskFormatError
    from amplify_agents.tasks import load_task as load

    if path is None:
        raise bad("a task file is required (BIG-bench task.json or its folder, .jsonl or .csv).", hint)
    space = parse_labels(labels)
    try:
        task = load(path) if space is None else load(path, labels=space)
    except FileNotFoundError:
        raise bad(f"task file not found: {path}", hint) from None
    except TaskFormatError as exc:
        raise bad(_refused_rows(path, exc, space), hint) from None
    except ValueError as exc:  # e.g. FileEncodingError: the message names the file and line
        raise bad(str(exc), hint) from None
    if space is None:
        err_console.print(
            f"task {task.name!r}: {len(task)} examples; label space from the file: {', '.join(task.labels)} "
            "(pass --labels to fix it)",
            soft_wrap=True,
            markup=False,
        )
    return task


def _refused_rows(path: Path, exc: Any, space: tuple[str, ...] | None, shown: int = 5) -> str:
    """The message of a task file with bad rows: how many, the first few, and the fix."""
    problems = list(getattr(exc, "problems", []))
    if not problems:
        return str(exc)
    listing = "; ".join(str(p) for p in problems[:shown]) + (
        f"; ... (first {shown} of {len(problems)})" if len(problems) > shown else ""
    )
    outside = sum("not in the label space" in p.reason for p in problems)
    fix = "Fix or remove those rows"
    if space is not None and outside:
        fix = f"{outside} of them have a gold label outside --labels {','.join(space)}: add it to --labels, or fix them"
    return f"{path}: {len(problems)} bad row(s) refused: {listing}. {fix}."


def split_task(task: Task, hint: str, **sizes: Any) -> TaskSplits:
    """``task.split(**sizes)``; sizes the task cannot hold are bad input for the options ``hint`` names."""
    try:
        return task.split(**sizes)
    except ValueError as exc:
        raise bad(str(exc), hint) from None


def open_store(store_dir: Path | None, name: str | None, *, create: bool) -> RationaleStore:
    """Open a store; for reading (``create=False``) a missing directory or store is bad input."""
    from amplify_agents.errors import StoreError
    from amplify_agents.stores import RationaleStore, validate_store_name

    if store_dir is None:
        raise bad("the store directory is required.", "STORE_DIR / --store-dir")
    if not name:
        raise bad("the store name is required.", "--name")
    try:
        validate_store_name(name)
        if create:
            return RationaleStore.local(name, store_dir)
        return RationaleStore(name, client=_existing_client(store_dir, name))
    except StoreError as exc:
        raise bad(str(exc), "--name") from None


def _existing_client(store_dir: Path, name: str) -> Any:
    """A Chroma client of ``store_dir``, which must exist and hold the store ``name``."""
    import chromadb

    if not store_dir.is_dir():
        raise bad(f"no store directory {store_dir}.", "STORE_DIR")
    client = chromadb.PersistentClient(path=str(store_dir))
    names = sorted(c if isinstance(c, str) else c.name for c in client.list_collections())
    if name not in names:
        listing = ", ".join(names) if names else "none"
        raise bad(f"no store named {name!r} in {store_dir} (stores there: {listing}).", "--name")
    return client


def default_bigbench_dir() -> Path | None:
    """BIG-bench's task folders: ``$AMPLIFY_BIGBENCH_DIR``, else a ``shared/data/bigbench`` nearby."""
    candidates = [os.environ.get("AMPLIFY_BIGBENCH_DIR")]
    candidates += [str(Path.cwd().parent / "shared" / "data" / "bigbench")]
    candidates += [str(Path(__file__).resolve().parents[3] / "shared" / "data" / "bigbench")]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


# ---------------------------------------------------------------------------- explainers
def make_explainer(
    name: str,
    *,
    task: Task,
    pool: Task,
    k: int,
    seed: int,
    slm_name: str,
    proxy_kind: ProxyName,
    proxy_epochs: int,
    proxy: Any = None,
    device: str | None = None,
) -> tuple[Any, Any]:
    """The explainer ``name`` and the proxy it uses (or None), loading only what it opens, on ``device``
    (the library's ``device=``: :func:`check_device`'s value; a given ``proxy`` stays where it is)."""
    from amplify_agents.explainers.registry import create_explainer, create_proxy, explainer_family
    from amplify_agents.framing import Frame

    frame = Frame.from_task(task)
    family = explainer_family(name)
    slm = None
    if family == "slm" or (family == "proxy" and proxy_kind == "causal_lm"):
        slm = load_slm(slm_name, device=device)
    if family == "proxy" and proxy is None:
        with err_console.status(f"preparing the {proxy_kind} proxy ..."):
            proxy = create_proxy(
                proxy_kind,
                labels=task.labels,
                slm=slm,
                frame=frame,
                pool=pool,
                epochs=proxy_epochs,
                seed=seed,
                device=device,
            )
    explainer = create_explainer(
        name,
        slm=slm,
        labels=task.labels,
        frame=frame,
        k=k,
        proxy=proxy if family == "proxy" else None,
        seed=seed,
        proxy_device=device,
    )
    return explainer, proxy if family == "proxy" else None
