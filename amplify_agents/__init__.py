"""amplify-agents: self-improving few-shot prompting for LangChain.

AMPLIFY (Krishna et al., 2023) and Self-AMPLIFY (Bhan et al., 2024) turn post hoc
explanations into rationales for few-shot demonstrations. This package builds those
demonstrations into a Chroma store and serves them through a drop-in LangChain
example selector, prompts and chains.

The public API is flat: everything listed in ``__all__`` is importable from here.
Names are imported on first use, so ``import amplify_agents`` stays fast (torch and
transformers load only when a model is needed).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # tasks and framing
    "Example": "amplify_agents.tasks",
    "Task": "amplify_agents.tasks",
    "TaskSplits": "amplify_agents.tasks",
    "load_task": "amplify_agents.tasks",
    "Frame": "amplify_agents.framing",
    # models
    "LoadedModel": "amplify_agents.models",
    "load_causal_lm": "amplify_agents.models",
    "load_encoder": "amplify_agents.models",
    "LabelScorer": "amplify_agents.models",
    "LabelScores": "amplify_agents.models",
    "GenerationSettings": "amplify_agents.models",
    "generate_text": "amplify_agents.models",
    "parse_answer": "amplify_agents.models",
    "ProxyClassifier": "amplify_agents.models",
    "CausalLMProxy": "amplify_agents.models",
    "UimerSettings": "amplify_agents.models.uimer",
    "UimerTrainer": "amplify_agents.models.uimer",
    "UimerReport": "amplify_agents.models.uimer",
    "rationales_from_store": "amplify_agents.models.uimer",
    "contextual_prior": "amplify_agents.models.calibration",
    "pmi_prior": "amplify_agents.models.calibration",
    "apply_prior": "amplify_agents.models.calibration",
    # the one answering path: local models, OpenAI-compatible endpoints, LangChain models
    "Answer": "amplify_agents.answering",
    "Answerer": "amplify_agents.answering",
    "AnswerSettings": "amplify_agents.answering",
    "Endpoint": "amplify_agents.answering",
    "LocalBackend": "amplify_agents.answering",
    "LangChainBackend": "amplify_agents.answering",
    "ResponseCache": "amplify_agents.answering",
    "Target": "amplify_agents.answering",
    "open_endpoint": "amplify_agents.answering",
    "open_target": "amplify_agents.answering",
    "PromptStyle": "amplify_agents.prompts",
    "build_prompt": "amplify_agents.prompts",
    # explainers
    "Explainer": "amplify_agents.explainers",
    "Explanation": "amplify_agents.explainers",
    "create_explainer": "amplify_agents.explainers.registry",
    # one class per explainer (see amplify_agents.explainers.registry for the names)
    "GradientExplainer": "amplify_agents.explainers.gradient",
    "GradXInputExplainer": "amplify_agents.explainers.gradient",
    "ContrastiveGradientExplainer": "amplify_agents.explainers.gradient",
    "ContrastiveGradXInputExplainer": "amplify_agents.explainers.gradient",
    "GradXActivationExplainer": "amplify_agents.explainers.captum_layer",
    "IntegratedGradientsExplainer": "amplify_agents.explainers.captum_layer",
    "GradientShapExplainer": "amplify_agents.explainers.captum_layer",
    "DeepLiftExplainer": "amplify_agents.explainers.captum_layer",
    "KernelShapExplainer": "amplify_agents.explainers.perturbation",
    "LimeExplainer": "amplify_agents.explainers.perturbation",
    "FeatureAblationExplainer": "amplify_agents.explainers.perturbation",
    "ShapleySamplingExplainer": "amplify_agents.explainers.perturbation",
    "SelfTopKExplainer": "amplify_agents.explainers.self_reported",
    "SelfExplanationExplainer": "amplify_agents.explainers.self_reported",
    "RandomExplainer": "amplify_agents.explainers.random",
    # selection, rationales, building
    "SLMPredictor": "amplify_agents.predictors",
    "TargetPredictor": "amplify_agents.predictors",
    "ProxyMCSPredictor": "amplify_agents.predictors",
    "predict_pool": "amplify_agents.predictors",
    "select_by_strategy": "amplify_agents.strategies",
    "RationaleTemplate": "amplify_agents.rationales",
    "write_demonstration": "amplify_agents.rationales",
    "get_template": "amplify_agents.rationales",
    "BuildConfig": "amplify_agents.builder",
    "BuildReport": "amplify_agents.builder",
    "DemonstrationBuilder": "amplify_agents.builder",
    "BuildRecipe": "amplify_agents.ray_build",  # the [ray] extra: Ray is imported only when a build runs
    "RayBuilder": "amplify_agents.ray_build",
    "RayBuildSettings": "amplify_agents.ray_build",
    "Demonstration": "amplify_agents.demonstrations",
    "DemoKeys": "amplify_agents.demonstrations",
    # store, selector, prompts
    "RationaleStore": "amplify_agents.stores",
    "ServerSettings": "amplify_agents.stores",
    "UnreadableRecordWarning": "amplify_agents.stores",
    "TextLimits": "amplify_agents.limits",
    "default_embeddings": "amplify_agents.stores",
    "AmplifyExampleSelector": "amplify_agents.selectors",
    "RetrievalSettings": "amplify_agents.selectors",
    "TokenBudget": "amplify_agents.selectors",
    "build_text_prompt": "amplify_agents.prompts",
    "build_chat_messages": "amplify_agents.prompts",
    "few_shot_text_template": "amplify_agents.prompts",
    "few_shot_chat_template": "amplify_agents.prompts",
    # agents (LangChain 1.x create_agent)
    "AmplifyMiddleware": "amplify_agents.agents",
    "AmplifyMiddlewareSettings": "amplify_agents.agents",
    # stores as LangChain retrievers, LangChain-shaped selectors
    "DemonstrationRetriever": "amplify_agents.stores",
    "demonstration_to_document": "amplify_agents.stores",
    "document_to_demonstration": "amplify_agents.stores",
    "infer_example_keys": "amplify_agents.selectors",
    "prompt_layout": "amplify_agents.selectors",
    # chains
    "AmplifyResult": "amplify_agents.chains",
    "ChatReply": "amplify_agents.chains",
    "chain_input_schema": "amplify_agents.chains.amplify",
    "sqlite_checkpointer": "amplify_agents.chains",
    "create_amplify_chain": "amplify_agents.chains",
    "create_amplify_chatbot": "amplify_agents.chains",
    "create_amplify_rag_chain": "amplify_agents.chains",
    "create_plain_rag_chain": "amplify_agents.chains",
    "LabelScoringLLM": "amplify_agents.chains",
    "RouteSettings": "amplify_agents.chains",
    # feedback, improvement, pictures
    "FeedbackLog": "amplify_agents.feedback",
    "ImproveConfig": "amplify_agents.improve",
    "improve_store": "amplify_agents.improve",
    "explanation_html": "amplify_agents.viz",
    "explanation_png": "amplify_agents.viz",
    # errors
    "AmplifyError": "amplify_agents.errors",
    "ContextLengthError": "amplify_agents.errors",
    "EndpointError": "amplify_agents.errors",
    "FileEncodingError": "amplify_agents.errors",
    "InputTooLongError": "amplify_agents.errors",
    "LabelError": "amplify_agents.errors",
    "ModelCacheError": "amplify_agents.errors",
    "StoreConnectionError": "amplify_agents.errors",
    "StoreError": "amplify_agents.errors",
    "TaskFormatError": "amplify_agents.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'amplify_agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
