"""Shared plumbing of the Self-AMPLIFY explainers that open the causal LM itself.

The explained quantity is always the same: the log-probability the model gives the
*target label's tokens* after the prompt (``frame`` renders instruction + input + output
prefix; the label follows after ``frame.label_prefix``), summed over the label's tokens.
It is computed by the scoring kernel (:mod:`amplify_agents.models.kernel`) that
:class:`~amplify_agents.models.scoring.LabelScorer` runs, so the explainers explain the
very number the scorer predicts; this module adds what explaining needs on top of it:

* :func:`encode_item`: the prompt and label token ids (the kernel's tokenisation), and
  which prompt positions are tokens of the input text, with their character spans
  relative to that text;
* :class:`TargetLogProb`: the kernel's forward as an ``nn.Module`` (so Captum's layer
  methods and DeepLift can hook it), differentiable, from token ids or input embeddings;
* :class:`RowScorer`: the same quantity without gradients for many token-id rows of one
  item (perturbation methods), with the token prefix shared by all rows run once and its
  KV cache reused;
* :func:`seeded`: a seed for Captum's samplers that leaves the global RNGs as it found them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from amplify_agents.errors import ContextLengthError, ExplanationError, LabelError
from amplify_agents.framing import Frame
from amplify_agents.models.kernel import (
    RowBatch,
    encode_label,
    encode_prompt,
    make_rows,
    prefix_cache,
    rows_label_logprobs,
)
from amplify_agents.models.kernel import (
    context_length as kernel_context_length,
)
from amplify_agents.models.loading import LoadedModel

__all__ = [
    "CausalItem",
    "RowBatch",
    "RowScorer",
    "TargetLogProb",
    "check_labels",
    "context_length",
    "encode_item",
    "make_rows",
    "pad_id",
    "seeded",
]


def context_length(loaded: LoadedModel) -> int:
    """The longest sequence the model was built for (``max_position_embeddings``): the
    kernel's :func:`~amplify_agents.models.kernel.context_length`, the bound every forward checks."""
    value = kernel_context_length(loaded.model, loaded.tokenizer)
    return int(value if value is not None else loaded.tokenizer.model_max_length)


def check_labels(targets: Sequence[str], labels: Sequence[str]) -> None:
    """Raise :class:`LabelError` for a target outside ``labels``."""
    space = set(labels)
    for i, target in enumerate(targets):
        if target not in space:
            raise LabelError(
                f"Target {target!r} of input {i} is not in the label space {list(labels)}: "
                f"explain one of these labels, or build the explainer with the task's labels."
            )


@dataclass
class CausalItem:
    """One (input text, target label) pair, tokenized inside its prompt.

    Attributes:
        text / target: what is explained.
        prompt: the rendered prompt (instruction + input prefix + text + output prefix).
        prompt_ids: the prompt's token ids, BOS included.
        label_ids: the ids of ``frame.label_prefix + target`` (no special tokens).
        positions: prompt positions of the input text's tokens, in order (contiguous).
        offsets: their character spans relative to ``text``; a token that straddles the
            text's edge (Gemma's "▁Which" carries the space of "Q: ") is clipped to the text.
        tokens: their token strings.
    """

    text: str
    target: str
    prompt: str
    prompt_ids: list[int]
    label_ids: list[int]
    positions: list[int]
    offsets: list[tuple[int, int]]
    tokens: list[str]

    @property
    def ids(self) -> list[int]:
        """Prompt then label ids: the row the target log-prob is read from."""
        return self.prompt_ids + self.label_ids

    @property
    def head(self) -> list[int]:
        """The prompt tokens before the input text (BOS, instruction, input prefix)."""
        return self.prompt_ids[: self.positions[0]]

    @property
    def tail(self) -> list[int]:
        """The prompt tokens after the input text (output prefix)."""
        return self.prompt_ids[self.positions[-1] + 1 :]

    def baseline_ids(self, pad_id: int) -> list[int]:
        """The prompt + label with every input-text token replaced by ``pad_id``."""
        ids = self.ids
        for p in self.positions:
            ids[p] = pad_id
        return ids


def encode_item(
    loaded: LoadedModel,
    frame: Frame,
    text: str,
    target: str,
    *,
    max_length: int,
    index: int = 0,
    reserve: int = 0,
) -> CausalItem:
    """Tokenize ``text`` in its prompt and ``target`` after it.

    Args:
        max_length: the context length; a longer prompt + label raises.
        index: the input's position in the caller's batch (for the error message).
        reserve: tokens to keep free after the prompt (e.g. ``max_new_tokens``).

    Raises:
        ContextLengthError: the prompt and label (plus ``reserve``) exceed ``max_length``
            (both an :class:`~amplify_agents.errors.InputTooLongError` and an
            :class:`ExplanationError`); checked before any forward pass.
        ExplanationError: the text has no token of its own.
    """
    tok = loaded.tokenizer
    prompt, span = frame.render(text)
    encoded = encode_prompt(tok, prompt, span)
    ids = encoded.ids
    label_ids = encode_label(tok, target, frame.label_prefix)
    total = len(ids) + len(label_ids) + reserve
    if total > max_length:
        raise ContextLengthError(
            f"Input {index} needs {total:,} tokens with its prompt and label"
            f"{f' (and {reserve} for generation)' if reserve else ''}, more than the model's context "
            f"of {max_length:,} tokens: shorten the input, or reject such inputs earlier with "
            f"TextLimits.for_context({max_length}) (nothing is truncated silently).",
            tokens=total,
            context=max_length,
        )
    positions = encoded.positions
    offsets = [s for s in encoded.spans if s is not None]
    if not positions:
        raise ExplanationError(f"Input {index} has no token of its own inside the prompt.")
    tokens = tok.convert_ids_to_tokens([ids[p] for p in positions])
    return CausalItem(text, target, prompt, ids, label_ids, positions, offsets, list(tokens))


def pad_id(loaded: LoadedModel) -> int:
    """The pad token id (the baseline token), falling back to EOS, then 0."""
    tok = loaded.tokenizer
    for value in (tok.pad_token_id, tok.eos_token_id):
        if value is not None:
            return int(value)
    return 0


# --------------------------------------------------------------------- forward
class TargetLogProb(nn.Module):
    """Differentiable ``token ids (or input embeddings) -> target label log-prob`` per row.

    ``forward(input_ids, attention_mask, label_pos, label_ids, label_mask)`` (a
    :class:`RowBatch`'s ``input_ids`` and ``forward_args()``) runs the decoder (the
    embedding layer included, so Captum's layer methods can hook
    ``model.get_input_embeddings()``) and returns ``[B]`` summed label log-probs: the
    kernel's :func:`~amplify_agents.models.kernel.rows_label_logprobs`, the same numbers
    as :class:`~amplify_agents.models.scoring.LabelScorer`'s ``logprobs``.
    :meth:`forward_embeds` takes input embeddings instead of ids (already scaled, as
    Gemma's embedding layer returns them).
    """

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.lm = loaded.model

    # ``row_args`` = (attention_mask, label_pos, label_ids, label_mask): RowBatch.forward_args(),
    # which Captum passes (expanded per step or sample) as additional_forward_args.
    def forward(self, input_ids: torch.Tensor, *row_args: torch.Tensor) -> torch.Tensor:
        """``[B]`` summed label log-probs of the token-id rows ``input_ids``."""
        return rows_label_logprobs(self.lm, *row_args, input_ids=input_ids)

    def forward_embeds(self, inputs_embeds: torch.Tensor, *row_args: torch.Tensor) -> torch.Tensor:
        """``[B]`` summed label log-probs of rows given as input embeddings ``[B, W, H]``."""
        return rows_label_logprobs(self.lm, *row_args, inputs_embeds=inputs_embeds)


class RowScorer:
    """Target log-prob of many token-id rows of one item, without gradients.

    Each row is ``head + suffix + label``. When ``head`` (the tokens before the input
    text) has at least ``min_prefix_tokens`` tokens, it is run once and its KV cache is
    copied into every batch (kept across calls while the head does not change, e.g. a
    task's instruction shared by all items); shorter heads are simply prepended.

    Args:
        loaded: the causal LM.
        batch_size: rows per forward pass.
        min_prefix_tokens: shortest head worth caching.
    """

    def __init__(self, loaded: LoadedModel, *, batch_size: int = 16, min_prefix_tokens: int = 16) -> None:
        self.loaded = loaded
        self.batch_size = batch_size
        self.min_prefix_tokens = min_prefix_tokens
        self.pad = pad_id(loaded)
        self._cache: tuple[tuple[int, ...], Any] | None = None
        self.forward_passes = 0

    def _prefix_cache(self, head: Sequence[int]) -> Any:
        key = tuple(head)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, prefix_cache(self.loaded.model, head, self.loaded.device))
        return self._cache[1]

    @torch.no_grad()
    def score(self, head: Sequence[int], suffixes: Sequence[Sequence[int]], label_ids: Sequence[int]) -> torch.Tensor:
        """``[len(suffixes)]`` summed log-prob of ``label_ids`` after ``head + suffix``."""
        use_cache = len(head) >= self.min_prefix_tokens
        prefix = self._prefix_cache(head) if use_cache else None
        head_part = [] if use_cache else list(head)
        out = torch.empty(len(suffixes), dtype=torch.float32)
        for start in range(0, len(suffixes), self.batch_size):
            chunk = suffixes[start : start + self.batch_size]
            rows = [head_part + list(s) + list(label_ids) for s in chunk]
            starts = [len(head_part) + len(s) for s in chunk]
            batch = make_rows(rows, starts, self.pad, self.loaded.device, prefix_len=len(head) if use_cache else 0)
            values = rows_label_logprobs(
                self.loaded.model, *batch.forward_args(), input_ids=batch.input_ids, past=prefix
            )
            out[start : start + len(chunk)] = values.float().cpu()
            self.forward_passes += 1
        return out


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed torch, NumPy and ``random`` inside the block, then restore their states.

    Captum draws from all three (KernelShap/Lime from torch, GradientShap's interpolation
    points from NumPy); restoring keeps an explainer from changing the caller's streams.
    """
    if seed is None:
        yield
        return
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)
