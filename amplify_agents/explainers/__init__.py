"""Post hoc explainers behind one interface (:class:`Explainer`.explain)."""

from amplify_agents.explainers.base import Explainer, Explanation, TokenAttribution
from amplify_agents.explainers.words import DEFAULT_STOPWORDS, Word, split_words

__all__ = ["Explainer", "Explanation", "TokenAttribution", "DEFAULT_STOPWORDS", "Word", "split_words"]
