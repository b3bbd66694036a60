"""Gradient explainers over a :class:`~amplify_agents.models.proxy.DifferentiableLabelModel`.

The four post hoc explainers AMPLIFY (Krishna et al. 2023) uses on its proxy model:

=============================== ====================================================
name                            token score
=============================== ====================================================
``"grad"``                      L2 norm of d logit[target] / d embedding
``"grad_x_input"``              sum over hidden dims of gradient * embedding
``"contrastive_grad"``          L2 norm of d (logit[target] - logit[foil]) / d embedding
``"contrastive_grad_x_input"``  sum over hidden dims of that gradient * embedding
=============================== ====================================================

The *foil* of the contrastive variants is the predicted class, or the runner-up when
the prediction is the target. The gradients come from Captum (``Saliency`` and
``InputXGradient``) applied to a forward function that maps input embeddings to
label logits; a whole batch takes one forward and one backward pass (rows are
independent, so the gradient of the sum of the rows' outputs is each row's gradient).
The label probabilities and the prediction reported with each explanation come from
that same forward pass.

Only the input text's tokens get scores (special and template tokens are dropped).
An input longer than the model's limit is truncated at the end of the text and its
explanation carries ``info["truncated"] = True`` (``False`` otherwise).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

import torch
from captum.attr import InputXGradient, Saliency

from amplify_agents.errors import LabelError
from amplify_agents.explainers.base import AttributionExplainer, TokenAttribution
from amplify_agents.models.proxy import DifferentiableLabelModel, EncodedBatch

__all__ = [
    "GradientExplainer",
    "GradXInputExplainer",
    "ContrastiveGradientExplainer",
    "ContrastiveGradXInputExplainer",
]


def _signature_with_model() -> inspect.Signature:
    """``(model, *, <the base explainer's settings>)``: what the constructor accepts."""
    base = inspect.signature(AttributionExplainer)
    model = inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="DifferentiableLabelModel")
    return base.replace(parameters=[model, *base.parameters.values()])


class _EmbeddingGradientExplainer(AttributionExplainer):
    """Shared machinery: one Captum call per batch on the proxy's input embeddings.

    Args:
        model: the proxy to explain (:class:`~amplify_agents.models.proxy.ProxyClassifier`
            or :class:`~amplify_agents.models.proxy.CausalLMProxy`).
        **options: the settings of :class:`~amplify_agents.explainers.base.Explainer`
            (``k``, ``aggregation``, ``stopwords``, ``exclude_punctuation``, ``rank_by``,
            ``batch_size``, ...). ``k`` larger than the number of eligible words returns
            all of them.
    """

    #: "saliency" (L2 norm of the gradient) or "input_x_gradient" (summed gradient * input)
    method: Literal["saliency", "input_x_gradient"] = "saliency"
    #: differentiate logit[target] - logit[foil] instead of logit[target]
    contrastive: bool = False

    # The options pass straight to the base class, whose parameter list is not repeated here;
    # this signature still names them, so create_explainer refuses an unknown setting up front.
    __signature__: ClassVar[inspect.Signature] = _signature_with_model()

    def __init__(self, model: DifferentiableLabelModel, **options: Any) -> None:
        super().__init__(**options)
        self.model = model
        self.labels = tuple(model.labels)

    def _extra_settings(self) -> dict[str, Any]:
        return {"model": dict(getattr(self.model, "settings", {}))}

    def _check_targets(self, targets: list[str]) -> None:
        unknown = sorted({t for t in targets if t not in self.labels})
        if unknown:
            raise LabelError(f"Targets {unknown} are not in the model's label space {list(self.labels)}.")

    def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
        batch = self.model.encode(texts)
        device = batch.embeddings.device
        target_idx = torch.tensor([self.labels.index(t) for t in targets], device=device)
        rows = torch.arange(len(texts), device=device)
        seen: dict[str, torch.Tensor] = {}

        def forward(embeds: torch.Tensor) -> torch.Tensor:
            logits = self.model.label_logits_from_embeddings(embeds, batch)
            seen["logits"] = logits.detach()
            if not self.contrastive:
                return logits  # Captum selects the target column
            # The foil is fixed by this forward pass (argmax is not differentiated).
            others = logits.detach().clone()
            others[rows, target_idx] = float("-inf")
            foil = others.argmax(dim=-1)
            seen["foil"] = foil
            return logits[rows, target_idx] - logits[rows, foil]

        target = None if self.contrastive else target_idx
        inputs = batch.embeddings.requires_grad_()  # a detached leaf: Captum differentiates it
        if self.method == "saliency":
            grads = Saliency(forward).attribute(inputs, target=target, abs=False)
            scores = grads.float().norm(dim=-1)
        else:
            scores = InputXGradient(forward).attribute(inputs, target=target).float().sum(dim=-1)
        return self._collect(batch, scores, seen, target_idx)

    def _collect(
        self,
        batch: EncodedBatch,
        scores: torch.Tensor,
        seen: dict[str, torch.Tensor],
        target_idx: torch.Tensor,
    ) -> list[TokenAttribution]:
        logits = seen["logits"].float()
        probs = torch.softmax(logits, dim=-1)
        out = []
        for b in range(len(batch)):
            positions = batch.feature_positions(b)
            info: dict[str, Any] = {
                "truncated": batch.truncated[b],
                "label_logits": dict(zip(self.labels, logits[b].tolist(), strict=True)),
            }
            if "foil" in seen:
                info["foil"] = self.labels[int(seen["foil"][b])]
            out.append(
                TokenAttribution(
                    tokens=[batch.tokens[b][i] for i in positions],
                    scores=scores[b, positions].tolist(),
                    offsets=[batch.offsets[b][i] for i in positions],  # type: ignore[misc]
                    predicted=self.labels[int(logits[b].argmax())],
                    label_probs=dict(zip(self.labels, probs[b].tolist(), strict=True)),
                    info=info,
                )
            )
        return out


class GradientExplainer(_EmbeddingGradientExplainer):
    """Vanilla gradient ("grad"): L2 norm of d logit[target] / d input embedding, per token.

    Scores are magnitudes (never negative). Batched through ``captum.attr.Saliency``.
    """

    name = "grad"
    method = "saliency"
    contrastive = False


class GradXInputExplainer(_EmbeddingGradientExplainer):
    """Gradient x Input ("grad_x_input"): sum over hidden dims of gradient * input embedding.

    Signed: positive supports the target. Batched through ``captum.attr.InputXGradient``.
    """

    name = "grad_x_input"
    method = "input_x_gradient"
    contrastive = False


class ContrastiveGradientExplainer(_EmbeddingGradientExplainer):
    """Contrastive gradient ("contrastive_grad"): L2 norm of d (logit[target] - logit[foil]).

    The foil is the predicted class, or the runner-up when the prediction is the target
    (AMPLIFY's contrastive explanations); it is reported in ``info["foil"]``.
    """

    name = "contrastive_grad"
    method = "saliency"
    contrastive = True


class ContrastiveGradXInputExplainer(_EmbeddingGradientExplainer):
    """Contrastive Gradient x Input ("contrastive_grad_x_input"): gradient of
    logit[target] - logit[foil], times the input embedding, summed over hidden dims."""

    name = "contrastive_grad_x_input"
    method = "input_x_gradient"
    contrastive = True
