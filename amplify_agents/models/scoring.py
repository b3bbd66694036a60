"""Label scoring: the log-probability a causal LM gives each label after a prompt.

This is the hot loop of building and evaluating, so it avoids the two big costs of
the obvious implementation:

* the vocabulary projection (262k entries for Gemma 3) is computed only at the
  positions that predict a label token, as a plain matrix product with the output
  embedding's weight, instead of at every position of the prompt;
* the token prefix shared by all prompts of a call (typically the few-shot
  demonstrations) is run once; its KV cache is reused for every prompt and label,
  and kept for the next call when that call starts with the same prefix.

The tokenisation and the projection are :mod:`amplify_agents.models.kernel`'s, which the
explainers that open the causal LM use too: they explain the very quantity scored here.
:meth:`LabelScorer.score_naive` is the straightforward reference (full logits, no
cache); tests and ``benchmarks/bench_scoring.py`` compare the two.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from amplify_agents.models.kernel import (
    LabelTree,
    cache_rows,
    check_context,
    encode_label,
    encode_prompt,
    label_tree_logprobs,
    make_rows,
    prefix_cache,
    vocab_logprobs,
)
from amplify_agents.models.loading import LoadedModel

__all__ = ["LabelScores", "LabelScorer", "label_lists", "surface_variants"]


def surface_variants(label: str, sep: str = " ") -> tuple[str, ...]:
    """Spellings of ``label`` a model may prefer: case, brackets, a trailing period, with and
    without the leading separator. ``"no"`` → "no", " no", "No", " No", "NO", "(no)", "no.", ...

    Variants are distinct strings; the label as written (with ``sep``) comes first.
    """
    core = label.strip()
    bare = core.strip("()[]").strip()
    forms = [core, core.lower(), core.capitalize(), core.upper()]
    if bare != core:
        forms += [bare, bare.lower(), bare.upper()]
    else:
        forms += [f"({core})"]
    forms += [f + "." for f in list(forms)]
    spaced = [sep + f for f in forms] + ([f for f in forms] if sep else [])
    return tuple(dict.fromkeys(spaced))


def label_lists(labels: Sequence[str] | Sequence[Sequence[str]], n: int) -> list[tuple[str, ...]]:
    """One label tuple per prompt: ``labels`` is one label space for all ``n`` prompts, or one list each."""
    if not labels:
        raise ValueError("No labels to score: pass the label space.")
    if isinstance(labels[0], str):
        return [tuple(labels)] * n  # type: ignore[arg-type]
    if len(labels) != n:
        raise ValueError(f"Got {len(labels)} label lists for {n} prompts: pass one per prompt.")
    return [tuple(x) for x in labels]


def _softmax(values: Sequence[float]) -> tuple[float, ...]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return tuple(e / total for e in exps)


@dataclass(frozen=True)
class LabelScores:
    """The scores of every label of one prompt.

    Attributes:
        labels: the label space scored, in order.
        logprobs: log-probability of each label's tokens, summed.
        mean_logprobs: the same divided by the label's token count (length-normalised).
        n_tokens: how many tokens each label continuation has.
    """

    labels: tuple[str, ...]
    logprobs: tuple[float, ...]
    mean_logprobs: tuple[float, ...]
    n_tokens: tuple[int, ...]

    @classmethod
    def from_sums(cls, labels: Sequence[str], sums: Sequence[float], counts: Sequence[int]) -> LabelScores:
        """Scores from each label's summed log-prob and token count (the mean is their ratio)."""
        return cls(
            labels=tuple(labels),
            logprobs=tuple(sums),
            mean_logprobs=tuple(s / c for s, c in zip(sums, counts, strict=True)),
            n_tokens=tuple(counts),
        )

    @property
    def probs(self) -> dict[str, float]:
        """Softmax over the summed log-probabilities: a distribution over the labels."""
        return dict(zip(self.labels, _softmax(self.logprobs)))

    @property
    def probs_normalized(self) -> dict[str, float]:
        """Softmax over the length-normalised log-probabilities."""
        return dict(zip(self.labels, _softmax(self.mean_logprobs)))

    @property
    def predicted(self) -> str:
        """The label with the highest summed log-probability."""
        return self.labels[max(range(len(self.labels)), key=self.logprobs.__getitem__)]

    @property
    def predicted_normalized(self) -> str:
        """The label with the highest length-normalised log-probability."""
        return self.labels[max(range(len(self.labels)), key=self.mean_logprobs.__getitem__)]

    def prob(self, label: str) -> float:
        """Probability of ``label`` under :attr:`probs`."""
        return self.probs[label]


@dataclass
class _PrefixCache:
    ids: tuple[int, ...]
    cache: Any


class LabelScorer:
    """Score label continuations of prompts with a causal LM.

    Args:
        loaded: the model and tokenizer (from :func:`~amplify_agents.models.load_causal_lm`).
        batch_size: how many prompts (and then label continuations) go through the model at once.
        min_prefix_tokens: shared prefixes shorter than this are not cached (not worth it).
        label_prefix: text put between the prompt and each label (" " by default, so a
            prompt ending in "A:" is scored on "A: Yes").

    Example:
        >>> scorer = LabelScorer(load_causal_lm("gemma-3-270m"))
        >>> [s] = scorer.score(["Is the sky blue? Answer:"], ["yes", "no"])
        >>> s.predicted, s.probs
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int = 16,
        min_prefix_tokens: int = 16,
        label_prefix: str = " ",
    ) -> None:
        self.loaded = loaded
        self.batch_size = batch_size
        self.min_prefix_tokens = min_prefix_tokens
        self.label_prefix = label_prefix
        self._prefix: _PrefixCache | None = None
        # score() reads and replaces the shared prefix cache: one call at a time.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ tokens
    # Tokenisation is the kernel's (models/kernel.py), shared with the explainers.
    def _encode_prompt(self, text: str) -> list[int]:
        return encode_prompt(self.loaded.tokenizer, text).ids

    def _encode_label(self, label: str, label_prefix: str) -> list[int]:
        return encode_label(self.loaded.tokenizer, label, label_prefix)

    # ----------------------------------------------------------------- scoring
    @torch.inference_mode()
    def score(
        self,
        prompts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        label_prefix: str | None = None,
        surface_forms: bool = False,
    ) -> list[LabelScores]:
        """Score every label after every prompt.

        Args:
            prompts: the prompts (each ends where the answer starts).
            labels: one label space for all prompts, or one list per prompt.
            label_prefix: overrides the scorer's ``label_prefix`` for this call.
            surface_forms: score each label through its surface variants (case,
                brackets, a trailing period, with and without the leading space; see
                :func:`surface_variants`) and combine them by log-sum-exp. Useful for
                instruction-tuned models that favour a spelling the task file does not use.

        Returns:
            One :class:`LabelScores` per prompt, in order.

        Raises:
            ContextLengthError: a prompt with a label is longer than the model's context
                (an :class:`~amplify_agents.errors.InputTooLongError`); checked for every
                prompt before any forward pass, the message names the prompt's position.
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings, not one string.")
        if not prompts:
            return []
        with self._lock:
            return self._score(prompts, labels, label_prefix, surface_forms)

    def _score(
        self,
        prompts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        label_prefix: str | None,
        surface_forms: bool,
    ) -> list[LabelScores]:
        sep = self.label_prefix if label_prefix is None else label_prefix
        spaces = label_lists(labels, len(prompts))
        if surface_forms:
            return self._score_surface_forms(prompts, spaces, sep)
        prompt_ids = [self._encode_prompt(p) for p in prompts]
        label_ids = {lab: self._encode_label(lab, sep) for labs in spaces for lab in labs}
        for i, (ids, labs) in enumerate(zip(prompt_ids, spaces)):
            # Every prompt is checked before anything runs: no forward pass for a call that fails.
            longest = max(len(label_ids[lab]) for lab in labs)
            what = f"Prompt {i + 1} of {len(prompts)} ({len(ids):,} prompt tokens + {longest} for its longest label)"
            check_context(self.loaded.model, len(ids) + longest, what=what, tokenizer=self.loaded.tokenizer)
        prefix = self._shared_prefix(prompt_ids, len(prompt_ids))

        totals: list[list[float]] = [[0.0] * len(labs) for labs in spaces]
        # Longest prompts first keeps padding low within each batch.
        order = sorted(range(len(prompts)), key=lambda i: -len(prompt_ids[i]))
        for start in range(0, len(order), self.batch_size):
            group = order[start : start + self.batch_size]
            for (i, j), value in self._score_group(group, prompt_ids, spaces, label_ids, prefix).items():
                totals[i][j] = value

        return [
            LabelScores.from_sums(labs, sums, [len(label_ids[lab]) for lab in labs])
            for labs, sums in zip(spaces, totals)
        ]

    def _score_surface_forms(
        self, prompts: Sequence[str], label_lists: list[tuple[str, ...]], sep: str
    ) -> list[LabelScores]:
        # Each variant is scored as its own "label" with no separator, then merged.
        variants = {lab: self._distinct_variants(surface_variants(lab, sep)) for labs in label_lists for lab in labs}
        expanded = [tuple(dict.fromkeys(v for lab in labs for v in variants[lab])) for labs in label_lists]
        raw = self._score(prompts, expanded, "", False)
        out = []
        for labs, scores in zip(label_lists, raw):
            by_variant = dict(zip(scores.labels, zip(scores.logprobs, scores.n_tokens)))
            sums, counts = [], []
            for lab in labs:
                values = [by_variant[v][0] for v in variants[lab]]
                top = max(values)
                sums.append(top + math.log(sum(math.exp(v - top) for v in values)))
                counts.append(by_variant[sep + lab][1] if sep + lab in by_variant else by_variant[variants[lab][0]][1])
            out.append(LabelScores.from_sums(labs, sums, counts))
        return out

    def _distinct_variants(self, forms: tuple[str, ...]) -> tuple[str, ...]:
        """Drop a variant whose tokens extend another's: its mass is already counted there
        (p("No" + ".") is part of p("No")), unless the tokenizer spells it differently."""
        ids = {f: tuple(self._encode_label(f, "")) for f in forms}
        keep = [
            f
            for f in forms
            if not any(g != f and len(ids[g]) < len(ids[f]) and ids[f][: len(ids[g])] == ids[g] for g in forms)
        ]
        return tuple(keep)

    def _shared_prefix(self, prompt_ids: list[list[int]], n_prompts: int) -> _PrefixCache | None:
        """The KV cache of the token prefix all prompts share: the last call's when it pays, else a new one.

        Reusing a last cache that covers only part of the shared prefix (e.g. the instruction
        alone, from a zero-shot call, before a few-shot call) leaves the rest to be run in every
        one of the ``n_prompts`` prompts; a new cache runs the whole shared prefix once. The cheaper
        of the two is taken: reuse when ``n_prompts * uncovered <= shared``. A chain's single query
        with the same demonstrations as the last call reuses their cache; a batch of test items
        with new demonstrations gets a cache of them.
        """
        shortest = min(len(ids) for ids in prompt_ids)
        # Keep at least one prompt token per row: its logits predict the label's first token.
        limit = shortest - 1
        first = prompt_ids[0]
        n = 0
        while n < limit and all(ids[n] == first[n] for ids in prompt_ids):
            n += 1
        last = self._prefix
        if last is not None and len(last.ids) <= n and tuple(first[: len(last.ids)]) == last.ids:
            if n_prompts * (n - len(last.ids)) <= n:
                return last
        if n < self.min_prefix_tokens:
            return None
        self._prefix = _PrefixCache(tuple(first[:n]), prefix_cache(self.loaded.model, first[:n], self.loaded.device))
        return self._prefix

    def _score_group(
        self,
        group: Sequence[int],
        prompt_ids: Sequence[Sequence[int]],
        spaces: Sequence[tuple[str, ...]],
        label_ids: Mapping[str, Sequence[int]],
        prefix: _PrefixCache | None,
    ) -> dict[tuple[int, int], float]:
        """Summed label log-prob of every (prompt, label) of the prompts ``group``.

        Each prompt's tokens after the shared prefix go through the model once; its next-token
        distribution there scores every label's first token, and the labels' remaining tokens,
        as one token trie per prompt, continue that prompt's KV cache in one more forward pass
        (:func:`~amplify_agents.models.kernel.label_tree_logprobs`). A prompt's cost no longer
        grows with its number of labels: the 24 surface forms of "(a)" / "(b)" used to run each
        prompt 24 times.
        """
        model, device = self.loaded.model, self.loaded.device
        pad = self.loaded.tokenizer.pad_token_id or 0
        n_prefix = len(prefix.ids) if prefix else 0
        suffixes = [list(prompt_ids[i][n_prefix:]) for i in group]
        # Right padding: real tokens never attend to pads, positions stay 0..n-1.
        rows = make_rows(suffixes, [len(x) for x in suffixes], pad, device, prefix_len=n_prefix)
        kwargs: dict[str, Any] = {"input_ids": rows.input_ids, "attention_mask": rows.attention_mask, "use_cache": True}
        if prefix is not None:
            cache = cache_rows(prefix.cache, [0] * len(group))
            kwargs["past_key_values"] = cache
        out = model.base_model(**kwargs)
        lengths = torch.tensor([len(x) for x in suffixes], device=device)
        last = out.last_hidden_state[torch.arange(len(group), device=device), lengths - 1]
        first = vocab_logprobs(model, last)  # [G, V]: every label's first token

        totals: dict[tuple[int, int], float] = {}
        for r, i in enumerate(group):
            for j, lab in enumerate(spaces[i]):
                totals[(i, j)] = float(first[r, label_ids[lab][0]])
        trees = [LabelTree.of([label_ids[lab] for lab in spaces[i]]) for i in group]
        rest = label_tree_logprobs(model, out.past_key_values, rows.attention_mask, n_prefix + lengths, trees, pad=pad)
        for r, i in enumerate(group):
            for j, value in enumerate(rest[r]):
                totals[(i, j)] += value
        return totals

    # --------------------------------------------------------------- reference
    @torch.inference_mode()
    def score_naive(
        self,
        prompts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        label_prefix: str | None = None,
    ) -> list[LabelScores]:
        """Reference implementation: one full forward per (prompt, label), logits everywhere.

        Slow by design; kept to check :meth:`score` and to benchmark against it.
        """
        sep = self.label_prefix if label_prefix is None else label_prefix
        results = []
        for prompt, labs in zip(prompts, label_lists(labels, len(prompts))):
            p_ids = self._encode_prompt(prompt)
            sums, counts = [], []
            for lab in labs:
                l_ids = self._encode_label(lab, sep)
                ids = torch.tensor([p_ids + l_ids], device=self.loaded.device)
                logits = self.loaded.model(input_ids=ids).logits[0].float()
                logp = torch.log_softmax(logits, dim=-1)
                positions = range(len(p_ids) - 1, len(p_ids) + len(l_ids) - 1)
                sums.append(sum(logp[t, tok].item() for t, tok in zip(positions, l_ids)))
                counts.append(len(l_ids))
            results.append(LabelScores.from_sums(labs, sums, counts))
        return results
