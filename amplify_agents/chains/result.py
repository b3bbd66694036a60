"""What an AMPLIFY chain returns."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AmplifyResult"]


class AmplifyResult(BaseModel):
    """The answer of an AMPLIFY chain and how it was reached.

    Attributes:
        answer: the label the model answered (a member of the label space), or ``None``
            when its text could not be parsed. Without a label space: the answer text.
        raw_text: what the model produced (for label scoring: the winning label).
        rationale: the text the model wrote before its answer ("" when none).
        demonstrations: the demonstrations put in the prompt, as the selector returned them
            (``input``, ``rationale``, ``answer`` and, from a rationale store, ``demo_id``).
        label_probs: a distribution over the labels (local label scoring only), else ``None``.
        model: the model that answered: the one the route declares, or the name a hosted
            endpoint reported.
        route: which route answered, ``"local"`` or ``"hosted"``.
        fallback: ``True`` when another route was asked for and this one answered instead
            (the hosted model failed and the local model stood in).
        prompt: the prompt sent; a chat prompt is rendered as a ``Role: text`` transcript.
        context: the retrieved documents (RAG chains only).
    """

    model_config = ConfigDict(frozen=True)

    answer: str | None
    raw_text: str
    rationale: str = ""
    demonstrations: list[dict[str, Any]] = Field(default_factory=list)
    label_probs: dict[str, float] | None = None
    model: str
    route: str
    fallback: bool = False
    prompt: str
    context: list[Document] = Field(default_factory=list)

    @property
    def demo_ids(self) -> list[str]:
        """The store ids of the demonstrations used (those that have one)."""
        return [str(d["demo_id"]) for d in self.demonstrations if d.get("demo_id")]
