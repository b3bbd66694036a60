"""The scoring kernel: the log-probability a causal LM gives a label's tokens after a prompt.

:class:`~amplify_agents.models.scoring.LabelScorer` (what the model predicts), the
Self-AMPLIFY explainers that open the causal LM (Captum layer methods, perturbations) and
:class:`~amplify_agents.models.proxy.CausalLMProxy` (what is explained) all compute that
quantity here, so an explanation is always of the number the scorer reports.

* tokenisation: :func:`encode_prompt` (the prompt's ids and, per position, the span of
  the input text it covers), :func:`encode_label` (``label_prefix + label``, no special
  tokens), :func:`make_rows` (prompt + label rows, right-padded, and the positions that
  score each label token);
* projection: :func:`vocab_logprobs` and :func:`label_logprobs` project final hidden
  states onto the vocabulary only at the positions that score a label token, as a plain
  matrix product with the output embedding (the full LM head on every position is what
  makes the naive implementation slow, see ``measured-facts.md``);
* :func:`rows_label_logprobs`: both together, from token ids or input embeddings, with
  an optional cached prefix;
* :func:`check_context`: every forward pass here first checks its sequence against the
  model's context (:func:`context_length`) and raises
  :class:`~amplify_agents.errors.ContextLengthError` (an ``InputTooLongError``) before
  allocating anything: a 1 MB input used to reach the model and fail asking for gigabytes.

Nothing here switches gradients off: the scorer calls it under ``inference_mode``,
perturbation methods under ``no_grad``, gradient methods differentiate through it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel

from amplify_agents.errors import ContextLengthError, LabelError

__all__ = [
    "PromptTokens",
    "RowBatch",
    "LabelTree",
    "cache_rows",
    "check_context",
    "context_length",
    "encode_label",
    "encode_prompt",
    "label_logprobs",
    "label_tree_logprobs",
    "make_rows",
    "prefix_cache",
    "rows_label_logprobs",
    "vocab_logprobs",
]


# --------------------------------------------------------------------- context
def context_length(model: Any, tokenizer: Any = None) -> int | None:
    """The longest sequence the model was built for (``max_position_embeddings``; a
    multimodal config's text part; else the tokenizer's ``model_max_length``), or None."""
    config: Any = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None)
    if value is None and hasattr(config, "get_text_config"):
        value = getattr(config.get_text_config(), "max_position_embeddings", None)
    if value is None and tokenizer is not None:
        value = getattr(tokenizer, "model_max_length", None)
        value = value if isinstance(value, int) and value < 10**9 else None  # 1e30 means "unset"
    return int(value) if value else None


def check_context(model: Any, n_tokens: int, *, what: str = "A prompt", tokenizer: Any = None) -> None:
    """Raise :class:`ContextLengthError` when ``n_tokens`` exceed the model's context.

    Checked before a forward pass, so an over-long prompt costs a tokenisation, not the
    gigabytes of attention a forward pass would try to allocate. ``what`` starts the message
    ("Prompt 3 of 8 (with its longest label)").
    """
    context = context_length(model, tokenizer)
    if context is None or n_tokens <= context:
        return
    raise ContextLengthError(
        f"{what} is {n_tokens:,} tokens, over the model's context of {context:,} tokens: use fewer "
        f"demonstrations (shots), shorten the input, or reject such inputs before they reach the "
        f"model with TextLimits.for_context({context}). Nothing was truncated or run.",
        tokens=n_tokens,
        context=context,
    )


# ---------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class PromptTokens:
    """A prompt's token ids and which of them are tokens of the input text.

    Attributes:
        ids: the prompt's token ids, special tokens (BOS) included.
        spans: per position, the token's character span relative to the input text, or
            ``None`` for a token outside it (special, instruction, prefixes). A token that
            straddles the text's edge (Gemma's "▁Which" carries the space of "Q: ") is
            clipped to the text.
    """

    ids: list[int]
    spans: list[tuple[int, int] | None]

    @property
    def positions(self) -> list[int]:
        """Positions of the input text's tokens, in order."""
        return [i for i, span in enumerate(self.spans) if span is not None]


def encode_prompt(tokenizer: Any, prompt: str, span: tuple[int, int] | None = None) -> PromptTokens:
    """Tokenize ``prompt`` (special tokens added, as the scorer does); with ``span`` (the input
    text's character range in the prompt) also mark which tokens are the text's.

    Special tokens are never tokens of the text. Needs a fast tokenizer when ``span`` is given
    (character offsets).
    """
    if span is None:
        ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
        return PromptTokens(ids, [None] * len(ids))
    enc = tokenizer(
        prompt,
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        verbose=False,  # callers check the length themselves and say what to do
    )
    a, b = span
    spans: list[tuple[int, int] | None] = []
    for (s, e), special in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True):
        if special or e <= s or e <= a or s >= b:
            spans.append(None)
        else:
            spans.append((max(s, a) - a, min(e, b) - a))
    return PromptTokens(list(enc["input_ids"]), spans)


def encode_label(tokenizer: Any, label: str, label_prefix: str = "") -> list[int]:
    """Token ids of ``label_prefix + label``, no special tokens: what follows the prompt.

    Raises:
        LabelError: the label tokenizes to nothing.
    """
    ids = list(tokenizer(label_prefix + label, add_special_tokens=False)["input_ids"])
    if not ids:
        raise LabelError(f"Label {label!r} tokenizes to nothing: labels must be non-empty text.")
    return ids


@dataclass
class RowBatch:
    """Right-padded prompt + label rows and where their label tokens are scored.

    Attributes:
        input_ids: ``[B, W]`` the rows' token ids.
        attention_mask: ``[B, P + W]``, 1 on real tokens (and on a cached prefix of P tokens).
        label_pos: ``[B, T]`` the position whose next-token distribution scores label token t.
        label_ids: ``[B, T]`` the label token ids; ``label_mask`` ``[B, T]`` 1 on real ones.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    label_pos: torch.Tensor
    label_ids: torch.Tensor
    label_mask: torch.Tensor

    def forward_args(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(attention_mask, label_pos, label_ids, label_mask)``: the arguments after the
        inputs of :func:`rows_label_logprobs` (and Captum's ``additional_forward_args``)."""
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


# ------------------------------------------------------------------ projection
def vocab_logprobs(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the vocabulary at final hidden states ``[..., H]`` → ``[..., V]`` (float32).

    A plain matrix product with the output embedding's weight: on a few rows it is several
    times faster than the LM-head module. Gemma's final logit soft-capping is applied.
    """
    weight = model.get_output_embeddings().weight
    logits = (hidden.to(weight.dtype) @ weight.T).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits, dim=-1)


def label_logprobs(
    model: PreTrainedModel,
    hidden: torch.Tensor,
    label_pos: torch.Tensor,
    label_ids: torch.Tensor,
    label_mask: torch.Tensor,
) -> torch.Tensor:
    """``[B]`` summed log-prob of each row's label tokens, projecting only where they are scored.

    Args:
        hidden: ``[B, L, H]`` final hidden states (after the final norm).
        label_pos / label_ids / label_mask: ``[B, T]``, as :class:`RowBatch` holds them.
    """
    keep = label_mask.bool()
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(label_pos)[keep]
    # Only the real label tokens are projected: rows with shorter labels add no padding rows.
    picked = hidden[rows, label_pos[keep]]  # [N, H]
    token_logp = vocab_logprobs(model, picked).gather(-1, label_ids[keep][:, None]).squeeze(-1)
    return token_logp.new_zeros(hidden.shape[0]).index_add(0, rows, token_logp)


def prefix_cache(model: PreTrainedModel, ids: Sequence[int], device: torch.device) -> Any:
    """Run the token prefix ``ids`` once and return its KV cache (for :func:`rows_label_logprobs`)."""
    check_context(model, len(ids), what="A shared prompt prefix")
    return model.base_model(input_ids=torch.tensor([list(ids)], device=device), use_cache=True).past_key_values


def cache_rows(cache: Any, indices: Sequence[int]) -> Any:
    """A KV cache of rows ``indices`` of ``cache`` (a batch-``B`` cache), leaving ``cache`` as it is.

    The layers are copied shallowly and only the selected tensors are new memory: a
    transformers cache layer rebinds its tensors on update (``torch.cat``), it never writes
    into them, so continuing the returned cache cannot change ``cache``. (``copy.deepcopy``
    then selecting would copy the whole batch once per call.)
    """
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    index = torch.tensor(list(indices), dtype=torch.long, device=_cache_device(cache))
    out.batch_select_indices(index)
    return out


def _cache_device(cache: Any) -> torch.device | None:
    for layer in cache.layers:
        keys = getattr(layer, "keys", None)
        if isinstance(keys, torch.Tensor):
            return keys.device
    return None


@dataclass(frozen=True)
class LabelTree:
    """The labels of one prompt as a token trie: each distinct proper prefix of a label's ids is
    one node, fed once, whatever the number of labels that share it.

    Attributes:
        tokens: per node, the token it feeds (the prefix's last token).
        parents: per node, the node of the prefix one token shorter (-1: the prompt's end).
        depths: per node, its position after the prompt's end (0 = the label's first token).
        scored: per label, the ``(node, next token id)`` pairs whose log-probs sum to the
            label's tokens after its first.
    """

    tokens: tuple[int, ...]
    parents: tuple[int, ...]
    depths: tuple[int, ...]
    scored: tuple[tuple[tuple[int, int], ...], ...]

    @classmethod
    def of(cls, labels: Sequence[Sequence[int]]) -> LabelTree:
        """The trie of ``labels`` (token id lists)."""
        index: dict[tuple[int, ...], int] = {}
        tokens: list[int] = []
        parents: list[int] = []
        depths: list[int] = []
        scored = []
        for ids in labels:
            pairs = []
            for t in range(1, len(ids)):
                key = tuple(ids[:t])
                if key not in index:
                    index[key] = len(tokens)
                    tokens.append(ids[t - 1])
                    parents.append(index.get(key[:-1], -1))
                    depths.append(t - 1)
                pairs.append((index[key], ids[t]))
            scored.append(tuple(pairs))
        return cls(tuple(tokens), tuple(parents), tuple(depths), tuple(scored))


def label_tree_logprobs(
    model: PreTrainedModel,
    cache: Any,
    prompt_mask: torch.Tensor,
    ends: torch.Tensor,
    trees: Sequence[LabelTree],
    *,
    pad: int = 0,
    chunk: int = 256,
) -> list[list[float]]:
    """Per prompt and label, the log-prob of the label's tokens after its first.

    ``cache`` holds ``B`` prompts (right-padded, ``prompt_mask`` ``[B, L]`` 1 on their real
    tokens, ``ends`` their real lengths); it is extended, so pass one you will not use again.
    All of a prompt's label tries go through the model in one row of one forward pass: a 4D
    attention mask lets each node see the prompt and its own ancestors only, and its position
    continues the prompt's real length. (A row per label would run the whole weight matrix
    once per handful of tokens, and copy the prompt's cache once per label.) Exact within a
    sliding window; past one, a shorter prompt's pad slots count against its window, so its
    labels see that many fewer of its oldest tokens (under 0.01 nats measured on Gemma 3).
    """
    device = prompt_mask.device
    width = max((len(t.tokens) for t in trees), default=0)
    out: list[list[float]] = [[0.0] * len(t.scored) for t in trees]
    if width == 0:
        return out
    n_rows, n_past = prompt_mask.shape
    input_ids = torch.full((n_rows, width), pad, dtype=torch.long)
    positions = torch.zeros((n_rows, width), dtype=torch.long)
    own = torch.zeros((n_rows, width, width), dtype=torch.bool)
    for r, tree in enumerate(trees):
        n = len(tree.tokens)
        input_ids[r, :n] = torch.tensor(tree.tokens, dtype=torch.long)
        positions[r, :n] = torch.tensor(tree.depths, dtype=torch.long)
        for q in range(width):
            node = q if q < n else -1
            if node < 0:
                own[r, q, q] = True  # a pad sees itself only: no empty row, no NaN
            while node >= 0:
                own[r, q, node] = True
                node = tree.parents[node]
    seen = prompt_mask.bool()[:, None, :].expand(n_rows, width, n_past).clone()
    for r, tree in enumerate(trees):
        seen[r, len(tree.tokens) :, :] = False
    allowed = torch.cat([seen, own.to(device)], dim=-1)[:, None]  # [B, 1, W, L + W]
    dtype = next(model.parameters()).dtype
    masks = {"full_attention": _additive(allowed, dtype)}
    window = getattr(model.config, "sliding_window", None)
    if window and "sliding_attention" in (getattr(model.config, "layer_types", None) or ()):
        # A sliding-window layer keeps only its last window - 1 slots: its mask covers those.
        visible = min(n_past, int(window) - 1)
        recent = torch.cat([allowed[..., n_past - visible : n_past], allowed[..., n_past:]], dim=-1)
        masks["sliding_attention"] = _additive(recent, dtype)
    hidden = model.base_model(
        input_ids=input_ids.to(device),
        attention_mask=masks if len(masks) > 1 or _takes_mask_mapping(model) else masks["full_attention"],
        position_ids=ends[:, None] + positions.to(device),
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state
    # Each (prompt, node, next token) once: labels that share a prefix share its projections.
    pairs = list(dict.fromkeys((r, n, target) for r, t in enumerate(trees) for lab in t.scored for n, target in lab))
    values: dict[tuple[int, int, int], float] = {}
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        rows = torch.tensor([r for r, _, _ in part], device=device)
        nodes = torch.tensor([n for _, n, _ in part], device=device)
        targets = torch.tensor([t for _, _, t in part], device=device)
        logp = vocab_logprobs(model, hidden[rows, nodes]).gather(-1, targets[:, None]).squeeze(-1)
        values.update(zip(part, logp.tolist()))
    for r, tree in enumerate(trees):
        for j, label in enumerate(tree.scored):
            out[r][j] = sum(values[(r, node, target)] for node, target in label)
    return out


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # 0 where attention is allowed, the dtype's minimum elsewhere: what eager and SDPA both add.
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def _takes_mask_mapping(model: PreTrainedModel) -> bool:
    return bool(getattr(model.config, "layer_types", None))


def rows_label_logprobs(
    model: PreTrainedModel,
    attention_mask: torch.Tensor,
    label_pos: torch.Tensor,
    label_ids: torch.Tensor,
    label_mask: torch.Tensor,
    *,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    past: Any = None,
) -> torch.Tensor:
    """``[B]`` summed label log-probs of rows laid out by :func:`make_rows`.

    Give ``input_ids`` or ``inputs_embeds`` (already scaled, as Gemma's embedding layer
    returns them). ``past`` is a prefix's KV cache (:func:`prefix_cache`) that every row
    continues; it is copied, not changed. Differentiable in ``inputs_embeds``.

    Raises:
        ContextLengthError: the rows (with the prefix) are longer than the model's context.
    """
    # The mask spans prefix + row: the full sequence each row attends over.
    check_context(model, int(attention_mask.shape[-1]), what="A scored row (prompt and label)")
    kwargs: dict[str, Any] = {"attention_mask": attention_mask, "use_cache": past is not None}
    if inputs_embeds is not None:
        kwargs["inputs_embeds"] = inputs_embeds
    else:
        kwargs["input_ids"] = input_ids
    if past is not None:
        cache = copy.deepcopy(past)  # the forward pass extends the cache in place
        cache.batch_repeat_interleave(attention_mask.shape[0])
        kwargs["past_key_values"] = cache
    hidden = model.base_model(**kwargs).last_hidden_state
    return label_logprobs(model, hidden, label_pos, label_ids, label_mask)
