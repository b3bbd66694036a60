"""Models: loading (hub id, directory, GGUF, offline names), label scoring, AMPLIFY's proxies, generation, parsing."""

from amplify_agents.models.generation import GenerationSettings, generate_text
from amplify_agents.models.loading import LoadedModel, default_cache_dir, load_causal_lm, load_encoder
from amplify_agents.models.parsing import normalize_label, parse_answer
from amplify_agents.models.proxy import CausalLMProxy, DifferentiableLabelModel, ProxyClassifier
from amplify_agents.models.registry import OFFLINE_MODELS, resolve_offline
from amplify_agents.models.scoring import LabelScorer, LabelScores

__all__ = [
    "CausalLMProxy",
    "DifferentiableLabelModel",
    "GenerationSettings",
    "LabelScorer",
    "LabelScores",
    "LoadedModel",
    "OFFLINE_MODELS",
    "ProxyClassifier",
    "default_cache_dir",
    "generate_text",
    "load_causal_lm",
    "load_encoder",
    "normalize_label",
    "parse_answer",
    "resolve_offline",
]
