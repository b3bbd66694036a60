"""Post hoc explainers behind one interface (:meth:`Explainer.explain`), one base class per family."""

from amplify_agents.explainers.base import (
    AttributionExplainer,
    Explainer,
    Explanation,
    SelfReport,
    SelfReportedExplainer,
    TokenAttribution,
    WordWeights,
)
from amplify_agents.explainers.words import DEFAULT_STOPWORDS, Word, split_words

__all__ = [
    "AttributionExplainer",
    "DEFAULT_STOPWORDS",
    "Explainer",
    "Explanation",
    "SelfReport",
    "SelfReportedExplainer",
    "TokenAttribution",
    "Word",
    "WordWeights",
    "split_words",
]
