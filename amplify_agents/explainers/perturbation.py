"""Perturbation explainers on the causal LM, with the input's words as features.

Each explainer scores the log-probability of the target label's tokens after the prompt
(as :mod:`~amplify_agents.explainers.captum_layer` does) for many perturbed copies of
the input, where a perturbation removes some of the input's *words* (from
:func:`~amplify_agents.explainers.words.split_words`, punctuation marks included):

* :class:`KernelShapExplainer` (``"kernel_shap"``), :class:`LimeExplainer` (``"lime"``),
  :class:`FeatureAblationExplainer` (``"feature_ablation"``) and :class:`ShapleySamplingExplainer`
  (``"shapley_sampling"``), all from ``captum.attr``.

How a perturbation is applied (``mask``): ``"drop"`` (default) deletes the tokens of
the absent words from the prompt; ``"pad"`` replaces them with the pad token (the same
baseline as the gradient explainers). The edit is made on the token ids of the
unperturbed prompt, so no retokenization happens and words keep their tokens; a token
spanning two words goes when either is absent. Captum hands the forward a batch of
``perturbations_per_eval`` binary word masks; the forward scores all of them in one
pass, projecting onto the vocabulary only at the label positions, and reuses the KV
cache of the prompt tokens before the input when there are at least
``min_prefix_tokens`` of them (a task instruction).

Token scores: each input token gets the score of its word (a token spanning several
words is split at the word boundaries into one piece per word), so the base class's
word aggregation returns the word scores exactly, whatever the aggregation.
Every input is explained with the same seed, so batching does not change results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from captum._utils.models.linear_model import SkLearnLasso
from captum.attr import FeatureAblation, KernelShap, Lime, ShapleyValueSampling

from amplify_agents.explainers._causal import (
    CausalItem,
    RowScorer,
    encode_item,
    pad_id,
    seeded,
)
from amplify_agents.explainers.base import AttributionExplainer, TokenAttribution
from amplify_agents.explainers.slm import SLMExplainer
from amplify_agents.explainers.words import split_words, tokens_to_words
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel

__all__ = [
    "CausalPerturbationExplainer",
    "FeatureAblationExplainer",
    "KernelShapExplainer",
    "LimeExplainer",
    "ShapleySamplingExplainer",
]

MaskMode = Literal["drop", "pad"]


class CausalPerturbationExplainer(SLMExplainer, AttributionExplainer):
    """Base of the word-perturbation explainers on a causal LM.

    Args:
        mask: ``"drop"`` removes an absent word's tokens, ``"pad"`` replaces them with pad.
        perturbations_per_eval: perturbed prompts scored per forward pass.
        min_prefix_tokens: cache the prompt tokens before the input when there are this many.
        seed: seeds the sampler (the same for every input).
        (``loaded``, ``labels``, ``frame``, ``max_length`` and the base settings in
        ``**kwargs``: see :class:`~amplify_agents.explainers.slm.SLMExplainer`)
    """

    name = "causal_perturbation"

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        mask: MaskMode = "drop",
        perturbations_per_eval: int = 16,
        min_prefix_tokens: int = 16,
        seed: int = 0,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if mask not in ("drop", "pad"):
            raise ValueError(f"Unknown mask {mask!r}: use 'drop' or 'pad'.")
        super().__init__(loaded, labels, frame, max_length=max_length, **kwargs)
        self.mask: MaskMode = mask
        self.perturbations_per_eval = perturbations_per_eval
        self.seed = seed
        self.scorer = RowScorer(loaded, batch_size=perturbations_per_eval, min_prefix_tokens=min_prefix_tokens)
        self.pad_id = pad_id(loaded)

    # ----------------------------------------------------------------- plumbing
    def _extra_settings(self) -> dict[str, Any]:
        return {**super()._extra_settings(), "mask": self.mask, "seed": self.seed, **self._method_settings()}

    def _method_settings(self) -> dict[str, Any]:
        return {}

    def _method(self, forward: Any) -> Any:
        raise NotImplementedError

    def _method_kwargs(self) -> dict[str, Any]:
        return {}

    def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
        out = []
        for i, (text, target) in enumerate(zip(texts, targets, strict=True)):
            item = encode_item(self.loaded, self.frame, text, target, max_length=self.max_length, index=i)
            out.append(self._explain_item(item))
        return out

    def _explain_item(self, item: CausalItem) -> TokenAttribution:
        words = split_words(item.text)
        token_words = tokens_to_words(item.offsets, words)
        input_ids = [item.prompt_ids[p] for p in item.positions]
        head, tail = item.head, item.tail
        n_words = len(words)
        calls = [0]

        def forward(present: torch.Tensor) -> torch.Tensor:
            # present: [k, n_words], 1 = word kept; one perturbed prompt per row.
            keep = present.detach().cpu() > 0.5
            suffixes = []
            for row in keep.tolist():
                ids: list[int] = []
                for tok_id, w_ids in zip(input_ids, token_words, strict=True):
                    if all(row[w] for w in w_ids):
                        ids.append(tok_id)
                    elif self.mask == "pad":
                        ids.append(self.pad_id)
                suffixes.append(ids + tail)
            calls[0] += len(suffixes)
            return self.scorer.score(head, suffixes, item.label_ids).to(present.device)

        inputs = torch.ones(1, n_words)
        baselines = torch.zeros(1, n_words)
        feature_mask = torch.arange(n_words)[None, :]
        with seeded(self.seed):
            attr = self._method(forward).attribute(
                inputs,
                baselines=baselines,
                feature_mask=feature_mask,
                perturbations_per_eval=self.perturbations_per_eval,
                **self._method_kwargs(),
            )
        word_scores = attr.detach().float().reshape(-1).tolist()
        tokens, scores, offsets = [], [], []
        for tok, (a, b), w_ids in zip(item.tokens, item.offsets, token_words, strict=True):
            for w in w_ids:  # one piece per word the token overlaps
                lo, hi = max(a, words[w].start), min(b, words[w].end)
                tokens.append(tok if len(w_ids) == 1 else item.text[lo:hi])
                scores.append(word_scores[w])
                offsets.append((lo, hi))
        info = {"n_features": n_words, "n_input_tokens": len(item.positions), "forward_rows": calls[0]}
        return TokenAttribution(tokens, scores, offsets, info=info)


class _SampledPerturbation(CausalPerturbationExplainer):
    """Base of the explainers that sample ``n_samples`` perturbations (or orders) per input."""

    default_n_samples: int

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        n_samples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, labels, frame, **kwargs)
        self.n_samples = self.default_n_samples if n_samples is None else n_samples
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {self.n_samples}.")

    def _method_settings(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples}

    def _method_kwargs(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "show_progress": False}


class KernelShapExplainer(_SampledPerturbation):
    """KernelSHAP over the input's words (``captum.attr.KernelShap``).

    Args:
        n_samples: coalitions sampled and scored (350, as in Self-AMPLIFY).
        (other arguments: see :class:`CausalPerturbationExplainer`)
    """

    name = "kernel_shap"
    default_n_samples = 350

    def _method(self, forward: Any) -> Any:
        return KernelShap(forward)


class LimeExplainer(_SampledPerturbation):
    """LIME over the input's words (``captum.attr.Lime``, Captum's default exponential
    cosine kernel), with a Lasso surrogate.

    Args:
        n_samples: perturbed inputs sampled and scored (350, the KernelShapExplainer budget).
        alpha: the Lasso's L1 weight (Captum's default 0.01). Label log-probs move by
            fractions of a nat, so a larger alpha zeroes most words.
        (other arguments: see :class:`CausalPerturbationExplainer`)
    """

    name = "lime"
    default_n_samples = 350

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        alpha: float = 0.01,
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, labels, frame, **kwargs)
        self.alpha = alpha

    def _method_settings(self) -> dict[str, Any]:
        return {**super()._method_settings(), "alpha": self.alpha}

    def _method(self, forward: Any) -> Any:
        return Lime(forward, interpretable_model=SkLearnLasso(alpha=self.alpha))


class FeatureAblationExplainer(CausalPerturbationExplainer):
    """Leave-one-word-out (``captum.attr.FeatureAblation``): score(input) - score(input
    without the word); one forward row per word plus one. Deterministic."""

    name = "feature_ablation"

    def _method(self, forward: Any) -> Any:
        return FeatureAblation(forward)


class ShapleySamplingExplainer(_SampledPerturbation):
    """Shapley values by permutation sampling (``captum.attr.ShapleyValueSampling``).

    Args:
        n_samples: random word orders (Captum's default 25); each costs one forward row
            per word, so ``n_samples * (n_words + 1)`` rows in all.
        (other arguments: see :class:`CausalPerturbationExplainer`)
    """

    name = "shapley_sampling"
    default_n_samples = 25

    def _method(self, forward: Any) -> Any:
        return ShapleyValueSampling(forward)
