"""Gradient explainers on the causal LM's embedding layer (Self-AMPLIFY's post hoc explainers).

Each explainer attributes the log-probability of the *target label's tokens* after the
prompt (the gold label, as Self-AMPLIFY's "The answer is (" prefill) to the embeddings of
the prompt's tokens, with a Captum method applied to ``model.get_input_embeddings()``
(for Gemma ``model.model.embed_tokens``, whose output already carries the sqrt(hidden)
scaling):

* :class:`GradXActivationExplainer` (``"gradient_x_activation"``): ``LayerGradientXActivation``;
* :class:`IntegratedGradientsExplainer` (``"integrated_gradients"``): ``LayerIntegratedGradients``;
* :class:`GradientShapExplainer` (``"gradient_shap"``): GradientShapExplainer on the embedding layer's output;
* :class:`DeepLiftExplainer` (``"deeplift"``): ``LayerDeepLift``.

How it differs from Captum's ``LLMGradientAttribution`` (used only as a reference in the
tests): the forward (:class:`~amplify_agents.explainers._causal.TargetLogProb`) is batched
over inputs with right padding, scores the whole label in one pass instead of one pass
per label token, and projects onto the 262k-entry vocabulary only at the label
positions.

Baseline: the same prompt with the input text's tokens replaced by the pad token, so the
instruction/template tokens are identical in input and baseline and get attribution
exactly 0 from the baseline methods (IG, GradientShapExplainer with ``stdevs=0``, DeepLiftExplainer). Scores
are reported for the input text's tokens only; a token that straddles the text's edge
(Gemma's "▁Which" after "Q:" carries the template's space) counts as an input token.

Token score = the attribution summed over the embedding dimension (as Captum's LLM
wrappers do); the base class aggregates tokens into words.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
from captum.attr import GradientShap, LayerDeepLift, LayerGradientXActivation, LayerIntegratedGradients

from amplify_agents.explainers._causal import (
    CausalItem,
    RowBatch,
    TargetLogProb,
    check_labels,
    encode_item,
    make_rows,
    pad_id,
    seeded,
)
from amplify_agents.explainers.base import AttributionExplainer, TokenAttribution
from amplify_agents.explainers.slm import SLMExplainer
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel

__all__ = [
    "CausalGradientExplainer",
    "DeepLiftExplainer",
    "GradientShapExplainer",
    "GradXActivationExplainer",
    "IntegratedGradientsExplainer",
]


class CausalGradientExplainer(SLMExplainer, AttributionExplainer):
    """Base of the gradient explainers on a causal LM's input embeddings.

    Args:
        internal_batch_size: rows per forward/backward pass (inputs x steps/samples).
        (``loaded``, ``labels``, ``frame``, ``max_length`` and the base settings in
        ``**kwargs``: see :class:`~amplify_agents.explainers.slm.SLMExplainer`)
    """

    name = "causal_gradient"

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        internal_batch_size: int = 16,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, labels, frame, max_length=max_length, **kwargs)
        self.internal_batch_size = internal_batch_size
        self.forward_module = TargetLogProb(loaded)
        self.layer = loaded.model.get_input_embeddings()
        self.pad_id = pad_id(loaded)

    # ----------------------------------------------------------------- plumbing
    def _extra_settings(self) -> dict[str, Any]:
        return {**super()._extra_settings(), **self._method_settings()}

    def _method_settings(self) -> dict[str, Any]:
        return {}

    def encode(self, texts: Sequence[str], targets: Sequence[str]) -> list[CausalItem]:
        """Tokenize each (text, target) in its prompt (raises for a too-long input)."""
        return [
            encode_item(self.loaded, self.frame, t, y, max_length=self.max_length, index=i)
            for i, (t, y) in enumerate(zip(texts, targets, strict=True))
        ]

    def _batch(self, items: Sequence[CausalItem], baseline: bool = False) -> RowBatch:
        rows = [it.baseline_ids(self.pad_id) if baseline else it.ids for it in items]
        return make_rows(rows, [len(it.prompt_ids) for it in items], self.pad_id, self.loaded.device)

    def attribute_positions(
        self, texts: Sequence[str], targets: Sequence[str]
    ) -> list[tuple[CausalItem, torch.Tensor]]:
        """Attribution of every position of prompt + label (not only the input's tokens).

        For inspection and tests: template positions are 0 for the baseline methods.
        Returns, per input, its :class:`CausalItem` and a ``[len(item.ids)]`` tensor.
        """
        check_labels(targets, self.labels)
        items = self.encode(texts, targets)
        return [(item, attr) for item, (attr, _) in zip(items, self._positions(items), strict=True)]

    def _positions(self, items: list[CausalItem]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        """Per item: attribution of every position of ``item.ids``, and extra info."""
        raise NotImplementedError

    def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
        items = self.encode(texts, targets)
        out = []
        for item, (attr, extra) in zip(items, self._positions(items), strict=True):
            inside = torch.zeros(len(attr), dtype=torch.bool)
            inside[item.positions] = True
            scores = attr[inside]
            outside = attr[~inside].abs().max().item() if (~inside).any() else 0.0
            info = {"outside_span_max_abs": outside, "n_input_tokens": len(item.positions), **extra}
            out.append(TokenAttribution(item.tokens, scores.tolist(), list(item.offsets), info=info))
        return out

    @staticmethod
    def _per_item(
        attr: torch.Tensor, items: Sequence[CausalItem], extra: dict[str, Any] | None = None
    ) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        # [B, L, H] -> per item, summed over the embedding dimension, padding cut off.
        summed = attr.detach().float().sum(-1).cpu()
        return [(summed[i, : len(it.ids)], dict(extra or {})) for i, it in enumerate(items)]


class GradXActivationExplainer(CausalGradientExplainer):
    """Gradient x embedding (``LayerGradientXActivation``), no baseline: one forward + backward.

    Template tokens get non-zero attributions here (there is no baseline); they are
    computed but never reported.
    """

    name = "gradient_x_activation"

    def _positions(self, items: list[CausalItem]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        method = LayerGradientXActivation(self.forward_module, self.layer)
        out: list[tuple[torch.Tensor, dict[str, Any]]] = []
        # The whole chunk is one pass: split it by internal_batch_size rows.
        for start in range(0, len(items), self.internal_batch_size):
            chunk = items[start : start + self.internal_batch_size]
            batch = self._batch(chunk)
            attr = method.attribute(batch.input_ids, additional_forward_args=batch.forward_args())
            out.extend(self._per_item(attr, chunk))
        return out


class IntegratedGradientsExplainer(CausalGradientExplainer):
    """Integrated Gradients (``LayerIntegratedGradients``) from the pad baseline.

    Args:
        n_steps: integration steps (Captum's default 50); each is a forward + backward
            of every input, batched by ``internal_batch_size`` rows.
        method: Captum's integration rule ("gausslegendre", "riemann_trapezoid", ...).
        (other arguments: see :class:`CausalGradientExplainer`)

    ``info["convergence_delta"]``: sum of attributions minus (f(input) - f(baseline)),
    IG's completeness gap; large values mean too few steps. On Gemma 3 270M the path from
    the pad baseline is far from smooth (the label log-prob is not monotone along it): on
    a snarks item, 16 Gauss-Legendre steps left a gap of 22 nats, 64 steps 0.35.
    """

    name = "integrated_gradients"

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        n_steps: int = 50,
        method: str = "gausslegendre",
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, labels, frame, **kwargs)
        self.n_steps = n_steps
        self.method = method

    def _method_settings(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "method": self.method}

    def _positions(self, items: list[CausalItem]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        ig = LayerIntegratedGradients(self.forward_module, self.layer)
        batch, base = self._batch(items), self._batch(items, baseline=True)
        attr, delta = ig.attribute(
            batch.input_ids,
            baselines=base.input_ids,
            additional_forward_args=batch.forward_args(),
            n_steps=self.n_steps,
            method=self.method,
            internal_batch_size=max(self.internal_batch_size, len(items)),
            return_convergence_delta=True,
        )
        out = self._per_item(attr, items)
        for (_, extra), d in zip(out, delta.detach().cpu().tolist(), strict=True):
            extra["convergence_delta"] = float(d)
        return out


class GradientShapExplainer(CausalGradientExplainer):
    """GradientShapExplainer on the embedding layer's output, from the pad baseline, seeded.

    Expected gradient x (input - baseline) at ``n_samples`` random points
    ``baseline + a * (input + noise - baseline)``, ``a ~ U(0, 1)``, noise
    ``N(0, stdevs^2)`` on the embeddings. Each input is explained on its own (its own
    baseline, the same seed), so results do not depend on how inputs are batched.

    Why not ``LayerGradientShap`` on the token ids: Captum's layer variant interpolates
    and noises the layer's *inputs*, here integer token ids. Given the ids it fails (its
    noise step turns them into floats, which ``nn.Embedding`` rejects); through Captum's
    ``LLMGradientAttribution`` (which feeds a 0/1 indicator and maps every value != 1 to
    the baseline token) every interpolated point is the baseline sequence itself, so all
    gradients are taken at the baseline. Running Captum's ``GradientShap`` on the
    embedding vectors (passed as ``inputs_embeds``) computes what LayerGradientShap on
    the embedding layer means.

    Args:
        n_samples: random points per input (Captum's default 5 is noisy; 20 here).
        stdevs: noise on the input embeddings (Captum's default 0.0). With noise, template
            tokens get non-zero attributions (they are not reported).
        seed: seeds the interpolation points and the noise for every input.
    """

    name = "gradient_shap"

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        n_samples: int = 20,
        stdevs: float = 0.0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, labels, frame, **kwargs)
        self.n_samples = n_samples
        self.stdevs = stdevs
        self.seed = seed

    def _method_settings(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "stdevs": self.stdevs, "seed": self.seed}

    def _positions(self, items: list[CausalItem]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        gs = GradientShap(self.forward_module.forward_embeds)
        out = []
        for item in items:
            batch, base = self._batch([item]), self._batch([item], baseline=True)
            with torch.no_grad():
                embeds = self.layer(batch.input_ids).detach()
                base_embeds = self.layer(base.input_ids).detach()
            with seeded(self.seed):
                attr = gs.attribute(
                    embeds,
                    baselines=base_embeds,
                    n_samples=self.n_samples,
                    stdevs=self.stdevs,
                    additional_forward_args=batch.forward_args(),
                )
            out.extend(self._per_item(attr, [item]))
        return out


class DeepLiftExplainer(CausalGradientExplainer):
    """DeepLiftExplainer (``LayerDeepLift``) on the embedding layer, from the pad baseline.

    Caveat: Captum's DeepLift applies its rescale rule only to ``nn.Module``
    nonlinearities it knows (ReLU, Sigmoid, Tanh, Softmax as modules ...). A Gemma-style
    decoder has none of them: GELU-tanh is its own module type, attention's softmax and
    RMSNorm are functional. On such a model the result is therefore
    gradient(input) x (input - baseline) over the embeddings, i.e. Gradient x Input
    relative to the pad baseline, and DeepLiftExplainer's summation-to-delta does not hold.
    ``info["deeplift_rescaled_modules"]`` counts the modules that did get the rule.
    Captum's warnings about hooks on nonlinear modules are silenced.
    """

    name = "deeplift"

    def _positions(self, items: list[CausalItem]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

        n_rescaled = sum(type(m) in SUPPORTED_NON_LINEAR for m in self.loaded.model.modules())
        dl = LayerDeepLift(self.forward_module, self.layer)
        out: list[tuple[torch.Tensor, dict[str, Any]]] = []
        # DeepLiftExplainer runs input and baseline rows in one pass: half the rows per chunk.
        step = max(1, self.internal_batch_size // 2)
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            batch, base = self._batch(chunk), self._batch(chunk, baseline=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                attr = dl.attribute(
                    batch.input_ids, baselines=base.input_ids, additional_forward_args=batch.forward_args()
                )
            out.extend(self._per_item(attr, chunk, {"deeplift_rescaled_modules": n_rescaled}))
        return out


Method = Literal["gradient_x_activation", "integrated_gradients", "gradient_shap", "deeplift"]
