"""Explainers by name: one factory for every explainer of the library.

Three families, by what they open:

* **proxy** explainers (AMPLIFY): ``grad``, ``grad_x_input``, ``contrastive_grad``,
  ``contrastive_grad_x_input`` explain a differentiable proxy: by default a
  :class:`~amplify_agents.models.proxy.ProxyClassifier` on MiniLM fine-tuned on the
  demo pool, or a :class:`~amplify_agents.models.proxy.CausalLMProxy` on the SLM
  (``proxy="causal_lm"``), or any proxy object passed in;
* **slm** explainers (Self-AMPLIFY): ``gradient_x_activation``, ``integrated_gradients``,
  ``gradient_shap``, ``deeplift`` (Captum on the embedding layer), ``kernel_shap``,
  ``lime``, ``feature_ablation``, ``shapley_sampling`` (perturbation) and ``self_topk``,
  ``self_exp`` (the model writes its own explanation) open the SLM itself;
* **none**: ``random``, the control (random words of the input, no model).

Modules are imported on first use, so creating one explainer never imports the others.

Example:
    >>> explainer = create_explainer("gradient_x_activation", slm=gemma, labels=task.labels,
    ...                              frame=Frame.from_task(task), k=5)
    >>> explainer = create_explainer("grad_x_input", slm=None, labels=task.labels, frame=frame,
    ...                              pool=splits.pool, epochs=10, seed=0)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from amplify_agents.defaults import DEFAULTS
from amplify_agents.explainers.base import Explainer
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel
from amplify_agents.tasks import Example, GoldMarks, Task

if TYPE_CHECKING:
    from amplify_agents.models.uimer import UimerSettings

__all__ = [
    "EXPLAINERS",
    "ExplainerInfo",
    "create_explainer",
    "create_proxy",
    "explainer_class",
    "explainer_family",
    "explainer_names",
]

Family = Literal["proxy", "slm", "none"]


@dataclass(frozen=True)
class ExplainerInfo:
    """Where an explainer lives and what it opens."""

    name: str
    module: str
    class_name: str
    family: Family


def _entry(name: str, module: str, class_name: str, family: Family) -> tuple[str, ExplainerInfo]:
    return name, ExplainerInfo(name, f"amplify_agents.explainers.{module}", class_name, family)


# An explicit name -> class table (by module and class name, so that creating one explainer
# imports only its own module: the Captum and transformers imports are heavy).
EXPLAINERS: dict[str, ExplainerInfo] = dict(
    [
        _entry("grad", "gradient", "GradientExplainer", "proxy"),
        _entry("grad_x_input", "gradient", "GradXInputExplainer", "proxy"),
        _entry("contrastive_grad", "gradient", "ContrastiveGradientExplainer", "proxy"),
        _entry("contrastive_grad_x_input", "gradient", "ContrastiveGradXInputExplainer", "proxy"),
        _entry("gradient_x_activation", "captum_layer", "GradXActivationExplainer", "slm"),
        _entry("integrated_gradients", "captum_layer", "IntegratedGradientsExplainer", "slm"),
        _entry("gradient_shap", "captum_layer", "GradientShapExplainer", "slm"),
        _entry("deeplift", "captum_layer", "DeepLiftExplainer", "slm"),
        _entry("kernel_shap", "perturbation", "KernelShapExplainer", "slm"),
        _entry("lime", "perturbation", "LimeExplainer", "slm"),
        _entry("feature_ablation", "perturbation", "FeatureAblationExplainer", "slm"),
        _entry("shapley_sampling", "perturbation", "ShapleySamplingExplainer", "slm"),
        _entry("self_topk", "self_reported", "SelfTopKExplainer", "slm"),
        _entry("self_exp", "self_reported", "SelfExplanationExplainer", "slm"),
        _entry("random", "random", "RandomExplainer", "none"),
    ]
)
"""Every explainer name, with its module, class and family."""

DEFAULT_PROXY_MODEL = "all-MiniLM-L6-v2"


def explainer_names() -> list[str]:
    """All valid explainer names, in a stable order."""
    return list(EXPLAINERS)


def explainer_family(name: str) -> Family:
    """``"proxy"``, ``"slm"`` or ``"none"`` for a valid name (ValueError otherwise)."""
    return _info(name).family


def _info(name: str) -> ExplainerInfo:
    try:
        return EXPLAINERS[name]
    except KeyError:
        raise ValueError(f"Unknown explainer {name!r}. Valid names: {', '.join(EXPLAINERS)}.") from None


def explainer_class(name: str) -> type[Explainer]:
    """The class of the explainer called ``name`` (imports its module; ValueError for an unknown name)."""
    info = _info(name)
    try:
        module = importlib.import_module(info.module)
    except ImportError as exc:
        raise ValueError(f"Explainer {info.name!r} is not available: importing {info.module} failed ({exc}).") from exc
    cls = getattr(module, info.class_name)
    if not (isinstance(cls, type) and issubclass(cls, Explainer) and cls.name == info.name):
        raise TypeError(
            f"Registry entry {info.name!r} names {info.module}.{info.class_name}, which is not that explainer."
        )
    return cls


def create_proxy(
    kind: Literal["classifier", "causal_lm"] = "classifier",
    *,
    labels: Sequence[str],
    slm: LoadedModel | None = None,
    frame: Frame | None = None,
    pool: Task | Sequence[Example] | None = None,
    epochs: int = 10,
    seed: int = 0,
    model: str = DEFAULT_PROXY_MODEL,
    progress: bool = False,
    device: str | None = None,
    training: UimerSettings | None = None,
    rationales: Mapping[str, GoldMarks] | None = None,
) -> Any:
    """Build the proxy that AMPLIFY's gradient explainers open.

    Args:
        kind: ``"classifier"`` (AMPLIFY: an encoder with a classification head, fine-tuned
            on ``pool`` for ``epochs``) or ``"causal_lm"`` (the SLM itself, no training).
        labels: the label space.
        slm: the causal LM (needed for ``"causal_lm"``).
        frame: the task's frame (used by ``"causal_lm"``; the classifier reads the bare input).
        pool: the examples the classifier is fine-tuned on (needed when ``epochs > 0``).
        epochs: fine-tuning epochs (AMPLIFY reports 0, 10 and 200); 0 = an untrained head.
        seed: seeds the head's initialisation and the training order.
        model: the encoder of the classifier.
        progress: show the fine-tuning progress bar.
        device: the classifier's device (None = CPU; the causal-LM proxy stays on the SLM's).
        training: train the classifier with UIMER (:class:`~amplify_agents.models.uimer.UimerSettings`)
            instead of plain fine-tuning, for ``epochs`` in all; its gold rationales are the pool
            examples' ``gold_rationale`` and ``rationales`` (example id -> words or spans).
        rationales: gold rationales by example id, for ``training`` (e.g. from a rationale store).
    """
    from amplify_agents.models.proxy import CausalLMProxy, ProxyClassifier

    if kind == "causal_lm":
        if slm is None:
            raise ValueError("proxy='causal_lm' needs the SLM: pass slm=.")
        return CausalLMProxy(slm, labels, frame=frame)
    if kind != "classifier":
        raise ValueError(f"Unknown proxy kind {kind!r}: use 'classifier' or 'causal_lm' (or pass a proxy object).")
    if epochs > 0 and pool is None:
        raise ValueError(f"Fine-tuning the proxy for {epochs} epochs needs training data: pass pool= (or epochs=0).")
    if isinstance(pool, Task):
        task = pool
    else:
        examples = tuple(pool or ())
        task = Task(name="proxy-pool", labels=tuple(labels), examples=examples)
    if tuple(task.labels) != tuple(labels):
        task = Task(name=task.name, labels=tuple(labels), examples=task.examples)
    if training is None:
        return ProxyClassifier.from_task(task, model, epochs=epochs, seed=seed, progress=progress, device=device)
    from amplify_agents.models.uimer import UimerTrainer

    proxy = ProxyClassifier.from_task(task, model, epochs=0, seed=seed, progress=progress, device=device)
    UimerTrainer(training).fit(proxy, task, epochs, rationales=rationales)
    return proxy


def create_explainer(
    name: str,
    *,
    slm: LoadedModel | None,
    labels: Sequence[str],
    frame: Frame,
    k: int = DEFAULTS.keywords,
    proxy: Any = None,
    **settings: Any,
) -> Explainer:
    """Create the explainer called ``name``.

    Args:
        name: one of :func:`explainer_names` (the error message lists them).
        slm: the small causal LM; required by the ``slm`` family and by ``proxy="causal_lm"``.
        labels: the task's label space.
        frame: how an input sits in the prompt (SLM explainers score the label after it).
        k: keywords per rationale.
        proxy: for the proxy family: a proxy object (anything with ``encode`` /
            ``label_logits_from_embeddings``), ``"classifier"`` (the default when None) or
            ``"causal_lm"``.
        **settings: ``pool``, ``epochs`` (default 10), ``seed``, ``proxy_model``,
            ``proxy_device``, ``progress``, ``proxy_training`` (UIMER's settings) and
            ``rationales`` (its gold rationales by example id) configure a default proxy;
            ``seed`` also seeds ``random`` (and
            any explainer whose constructor takes one); every other setting goes to the
            explainer's constructor (e.g. ``n_steps=``, ``internal_batch_size=``).

    Raises:
        ValueError: an unknown name, a missing model, or a setting the explainer does not take.
    """
    info = _info(name)
    cls = explainer_class(name)
    seed = settings.pop("seed", None)
    proxy_settings = {
        key: settings.pop(key)
        for key in ("pool", "epochs", "proxy_model", "proxy_device", "progress", "proxy_training", "rationales")
        if key in settings
    }
    if info.family == "proxy":
        model = proxy
        if model is None or isinstance(model, str):
            model = create_proxy(
                model or "classifier",  # type: ignore[arg-type]
                labels=labels,
                slm=slm,
                frame=frame,
                pool=proxy_settings.get("pool"),
                epochs=proxy_settings.get("epochs", 10),
                seed=seed or 0,
                model=proxy_settings.get("proxy_model", DEFAULT_PROXY_MODEL),
                progress=proxy_settings.get("progress", False),
                device=proxy_settings.get("proxy_device"),
                training=proxy_settings.get("proxy_training"),
                rationales=proxy_settings.get("rationales"),
            )
        return _construct(cls, name, (model,), dict(k=k, **settings))
    if seed is not None and "seed" in inspect.signature(cls).parameters:
        settings["seed"] = seed
    if info.family == "none":
        return _construct(cls, name, (), dict(k=k, **settings))
    if slm is None:
        raise ValueError(f"Explainer {name!r} opens the SLM: pass slm= (a loaded causal LM).")
    return _construct(cls, name, (slm, tuple(labels), frame), dict(k=k, **settings))


def _construct(cls: type[Explainer], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Explainer:
    try:
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as exc:
        raise ValueError(f"Explainer {name!r} ({cls.__name__}) does not take these settings: {exc}.") from exc
    return cls(*args, **kwargs)
