"""What every Self-AMPLIFY explainer keeps: the small LM it opens, its label space, the frame.

Self-AMPLIFY's explainers (Captum layer gradients, word perturbations, self-reported
keywords and explanations) all explain the small LM itself, for a label scored after the
task's frame. :class:`SLMExplainer` holds that once; each family's base class combines it
with its own (``class CausalGradientExplainer(SLMExplainer, AttributionExplainer)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from amplify_agents.explainers._causal import check_labels, context_length
from amplify_agents.explainers.base import Explainer
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel

__all__ = ["SLMExplainer"]


class SLMExplainer(Explainer):
    """Base of the explainers that open the small causal LM itself.

    Args:
        loaded: the causal LM and its tokenizer.
        labels: the label space; a target outside it raises
            :class:`~amplify_agents.errors.LabelError`.
        frame: how the input sits in the prompt and where the label starts.
        max_length: the context length (default: the model's); a longer prompt raises
            :class:`~amplify_agents.errors.ExplanationError` (nothing is truncated).
        **kwargs: the base :class:`~amplify_agents.explainers.base.Explainer` settings
            (``k``, ``aggregation``, ``stopwords``, ``batch_size`` ...).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not labels:
            raise ValueError("labels is empty: pass the task's label space.")
        self.loaded = loaded
        self.labels = tuple(labels)
        self.frame = frame
        self.max_length = max_length or context_length(loaded)

    def _check_targets(self, targets: list[str]) -> None:
        check_labels(targets, self.labels)

    def _extra_settings(self) -> dict[str, Any]:
        return {"model": self.loaded.name, "frame": asdict(self.frame)}
