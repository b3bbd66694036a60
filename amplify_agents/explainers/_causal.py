"""Shared plumbing of the Self-AMPLIFY explainers that open the causal LM itself.

The explained quantity is always the same: the log-probability the model gives the
*target label's tokens* after the prompt (``frame`` renders instruction + input + output
prefix; the label follows after ``frame.label_prefix``, as in
:class:`~amplify_agents.models.scoring.LabelScorer`), summed over the label's tokens.

This module provides:

* :func:`encode_item`: the prompt and label token ids, and which prompt positions are
  tokens of the input text, with their character spans relative to that text;
* :class:`TargetLogProb`: a differentiable batched forward ``token ids -> target
  log-prob per row`` (an ``nn.Module``, so Captum's DeepLift can hook it) that projects
  hidden states onto the vocabulary only at the positions predicting label tokens;
* :class:`RowScorer`: the same quantity without gradients for many token-id rows of one
  item (perturbation methods), with the token prefix shared by all rows run once and its
  KV cache reused;
* :func:`seeded`: a seed for Captum's samplers that leaves the global RNGs as it found them.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from amplify_agents.errors import ExplanationError, LabelError
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel

__all__ = [
    "CausalItem",
    "RowScorer",
    "TargetLogProb",
    "check_labels",
    "context_length",
    "encode_item",
    "label_logprob_from_hidden",
    "seeded",
]


def context_length(loaded: LoadedModel) -> int:
    """The longest sequence the model was built for (``max_position_embeddings``)."""
    config = loaded.model.config
    value = getattr(config, "max_position_embeddings", None)
    if value is None and hasattr(config, "get_text_config"):
        value = getattr(config.get_text_config(), "max_position_embeddings", None)
    return int(value or loaded.tokenizer.model_max_length)


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
        ExplanationError: the prompt and label (plus ``reserve``) exceed ``max_length``,
            or the text has no token of its own.
    """
    tok = loaded.tokenizer
    prompt, (start, end) = frame.render(text)
    enc = tok(prompt, add_special_tokens=True, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    label_ids = list(tok(frame.label_prefix + target, add_special_tokens=False)["input_ids"])
    if not label_ids:
        raise LabelError(f"Label {target!r} tokenizes to nothing: labels must be non-empty text.")
    total = len(ids) + len(label_ids) + reserve
    if total > max_length:
        raise ExplanationError(
            f"Input {index} needs {total} tokens with its prompt and label"
            f"{f' (and {reserve} for generation)' if reserve else ''}, more than the model's context "
            f"of {max_length} tokens: shorten the input (nothing is truncated silently)."
        )
    positions, offsets = [], []
    for pos, (a, b) in enumerate(enc["offset_mapping"]):
        if b > a and a < end and b > start:  # special tokens have empty spans
            positions.append(pos)
            offsets.append((max(a, start) - start, min(b, end) - start))
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
def label_logprob_from_hidden(
    model: nn.Module,
    hidden: torch.Tensor,
    label_pos: torch.Tensor,
    label_ids: torch.Tensor,
    label_mask: torch.Tensor,
) -> torch.Tensor:
    """Summed log-prob of the label tokens, projecting only where they are predicted.

    Args:
        hidden: ``[B, L, H]`` final hidden states (after the final norm).
        label_pos: ``[B, T]`` position whose next-token distribution scores label token t.
        label_ids: ``[B, T]`` the label token ids; ``label_mask`` ``[B, T]`` 1 on real ones.

    Returns:
        ``[B]`` log-probabilities.
    """
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(label_pos)
    picked = hidden[rows, label_pos]  # [B, T, H]
    weight = model.get_output_embeddings().weight
    # A plain matmul with the head's weight on B*T rows, not the LM head on every position.
    logits = (picked.to(weight.dtype) @ weight.T).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    logp = torch.log_softmax(logits, dim=-1).gather(-1, label_ids[..., None]).squeeze(-1)
    return (logp * label_mask.to(logp.dtype)).sum(-1)


@dataclass
class RowBatch:
    """Right-padded rows and where their label tokens are, as the forward's arguments."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    label_pos: torch.Tensor
    label_ids: torch.Tensor
    label_mask: torch.Tensor

    def forward_args(self) -> tuple[torch.Tensor, ...]:
        """``(attention_mask, label_pos, label_ids, label_mask)``: Captum's additional args."""
        return (self.attention_mask, self.label_pos, self.label_ids, self.label_mask)


def make_rows(
    rows: Sequence[Sequence[int]],
    label_starts: Sequence[int],
    pad: int,
    device: torch.device,
    *,
    prefix_len: int = 0,
) -> RowBatch:
    """Right-pad ``rows`` (each ends with its label, which starts at ``label_starts[r]``).

    With ``prefix_len`` the rows continue a cached prefix of that many tokens: the
    attention mask covers it, and label positions stay relative to the row.
    """
    width = max(len(r) for r in rows)
    n_label = max(len(r) - s for r, s in zip(rows, label_starts, strict=True))
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), prefix_len + width), dtype=torch.long)
    mask[:, :prefix_len] = 1
    label_pos = torch.zeros((len(rows), n_label), dtype=torch.long)
    label_ids = torch.zeros((len(rows), n_label), dtype=torch.long)
    label_mask = torch.zeros((len(rows), n_label), dtype=torch.long)
    for r, (ids, s) in enumerate(zip(rows, label_starts, strict=True)):
        input_ids[r, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        # Right padding: real tokens never attend to pads, positions stay 0..n-1.
        mask[r, prefix_len : prefix_len + len(ids)] = 1
        n = len(ids) - s
        label_pos[r, :n] = torch.arange(s - 1, len(ids) - 1)
        label_ids[r, :n] = torch.tensor(list(ids[s:]), dtype=torch.long)
        label_mask[r, :n] = 1
    return RowBatch(*(t.to(device) for t in (input_ids, mask, label_pos, label_ids, label_mask)))


class TargetLogProb(nn.Module):
    """Differentiable ``token ids (or input embeddings) -> target label log-prob`` per row.

    ``forward(input_ids, attention_mask, label_pos, label_ids, label_mask)`` runs the
    decoder (the embedding layer included, so Captum's layer methods can hook
    ``model.get_input_embeddings()``) and returns ``[B]`` summed label log-probs.
    :meth:`forward_embeds` takes input embeddings instead of ids (already scaled, as
    Gemma's embedding layer returns them).
    """

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.lm = loaded.model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        label_pos: torch.Tensor,
        label_ids: torch.Tensor,
        label_mask: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return label_logprob_from_hidden(self.lm, hidden.last_hidden_state, label_pos, label_ids, label_mask)

    def forward_embeds(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        label_pos: torch.Tensor,
        label_ids: torch.Tensor,
        label_mask: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.lm.base_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
        return label_logprob_from_hidden(self.lm, hidden.last_hidden_state, label_pos, label_ids, label_mask)


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
            ids = torch.tensor([list(head)], device=self.loaded.device)
            out = self.loaded.model.base_model(input_ids=ids, use_cache=True)
            self._cache = (key, out.past_key_values)
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
            kwargs: dict[str, Any] = {
                "input_ids": batch.input_ids,
                "attention_mask": batch.attention_mask,
                "use_cache": use_cache,
            }
            if prefix is not None:
                cache = copy.deepcopy(prefix)  # the forward extends the cache in place
                cache.batch_repeat_interleave(len(rows))
                kwargs["past_key_values"] = cache
            hidden = self.loaded.model.base_model(**kwargs).last_hidden_state
            values = label_logprob_from_hidden(
                self.loaded.model, hidden, batch.label_pos, batch.label_ids, batch.label_mask
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
