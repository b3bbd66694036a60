"""The AMPLIFY proxies, where the gradient explainers have always imported them from.

The proxies are models (fitted, saved, loaded, predicting): they live in
:mod:`amplify_agents.models.proxy`. This module re-exports them so that
``from amplify_agents.explainers.proxy import ProxyClassifier`` keeps working.
"""

from __future__ import annotations

# ``X as X``: an explicit re-export (the names are the models module's, listed in its __all__).
from amplify_agents.models.proxy import CausalLMProxy as CausalLMProxy
from amplify_agents.models.proxy import DifferentiableLabelModel as DifferentiableLabelModel
from amplify_agents.models.proxy import EncodedBatch as EncodedBatch
from amplify_agents.models.proxy import ProxyClassifier as ProxyClassifier
from amplify_agents.models.proxy import misclassification_confidence as misclassification_confidence
