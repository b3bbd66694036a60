"""What one evaluation run compares, and on what: :class:`EvalConfig`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from amplify_agents.answering.target import Target
from amplify_agents.defaults import DEFAULTS

__all__ = ["DEFAULT_METHODS", "EvalConfig"]

DEFAULT_METHODS: tuple[str, ...] = (
    "zero-shot",
    "io",
    "io-semantic",
    "random-keywords",
    "amplify:grad_x_input:h-mcs",
    "self:gradient_x_activation:error",
    "self:gradient_x_activation:success",
    "self:self_topk:error",
)
"""The baselines, the random-keyword control, one AMPLIFY and three Self-AMPLIFY methods."""

DemoSetting = Literal["fixed", "retrieved"]


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: a task, a model, methods, seeds and how demonstrations are used.

    Attributes:
        task: a task file (BIG-bench ``task.json`` or its folder, ``.jsonl``, ``.csv``).
        model: the target model that answers: a local model (offline name, ``.gguf``,
            directory or hub id) or, with ``base_url``, the name an endpoint serves.
        base_url: an OpenAI-compatible endpoint of the target (``http://host:port/v1``);
            None: the target is the local model ``model``.
        api_key_env: the *name* of the environment variable holding the endpoint's API key
            (the key is never printed, logged or written to results).
        api: the endpoint's API: ``"completions"`` (text prompts, exact label scoring with
            log-probabilities) or ``"chat"`` (labels from top log-probabilities, else parsed).
        concurrency: endpoint requests in flight at once.
        explainer_model: the local model that ``self:`` methods explain (and Auto-CoT's and
            ``+gen``'s text comes from the target). Default: ``model`` when the target is local;
            needed for ``self:`` methods with a hosted target.
        proxy_train_fraction: ``amplify:`` methods fine-tune the classifier proxy on this
            fraction of the demo pool (seeded) and select demonstrations from the rest, as
            AMPLIFY does: the proxy never ranks its own training data.
        cache: keep every reply in ``out_dir/responses.sqlite``, so an interrupted or repeated
            evaluation does not ask the model again.
        n_shot: demonstrations per prompt. The default 8 is the papers' order of magnitude
            (Self-AMPLIFY uses n = 8 to 20); on two CPU cores a 4-shot run is about twice as
            fast, which is the user's trade-off to make, not the library's.
        k: keywords per rationale (top-k words of the explanation).
        seeds: one split (pool / test) and one demo selection per seed.
        methods: method names (see :mod:`amplify_agents.eval.methods`).
        test_size: test items per seed (the rest of the task is the demo pool).
        demo_setting: ``"fixed"`` (the papers': one demo set per seed, the same for every
            test item) or ``"retrieved"`` (per query, through ``AmplifyExampleSelector``
            over a store holding the pool's built demonstrations). ``io`` and ``auto-cot``
            are fixed by definition and ``io-semantic`` is per query by definition.
        out_dir: where ``results.json`` (resumable), CSV, markdown and PNG go.
        pool_size: cap on the demo pool (None = every example not in the test split).
        proxy: the proxy of ``amplify:`` methods: ``"classifier"`` (MiniLM fine-tuned on
            the pool, AMPLIFY's) or ``"causal_lm"`` (the SLM itself).
        proxy_epochs: fine-tuning epochs of the classifier proxy (AMPLIFY: 0, 10, 200).
        proxy_model: the classifier proxy's encoder.
        retrieval_candidates: in the retrieved setting, how many demonstrations each method
            builds into its store (None = every eligible pool example; explaining them all is
            the cost of this setting).
        autocot_max_new_tokens: length of Auto-CoT's generated rationales.
        rationale_max_new_tokens: length of the query rationale ``+gen`` methods write.
        validation_size: items per seed held out as a validation split (never demos, never
            test); 0 = none. Needed by :func:`~amplify_agents.eval.select_on_validation`.
        evaluate_on: ``"test"`` or ``"validation"``: which split the methods are scored on.
        explainer_settings: extra constructor settings per explainer name, e.g.
            ``{"integrated_gradients": {"n_steps": 16}}``.
        reference: the method every other method is paired against (McNemar).
        device: the device of the SLM and of the classifier proxy (None = CPU; "cuda", "auto").
        batch_size: rows per forward pass when scoring labels.
        plot: write the PNG bar plot at the end of :func:`run_eval`.
        labels: the label space (None = the one the task file gives); a row whose gold label
            is outside it is refused when the task loads.
        uimer_alpha / uimer_warmup: UIMER's alpha and warm-up epochs, for ``amplify:`` methods whose
            proxy is trained with UIMER (``amplify:<explainer>:<strategy>:uimer-gb``).
        rationale_store: ``(directory, name)`` of a rationale store whose demonstrations' keywords
            are gold rationales (by example id) for UIMER, besides the task file's own.
    """

    task: str | os.PathLike[str]
    model: str = "gemma-3-270m"
    base_url: str | None = None
    api_key_env: str | None = None
    api: Literal["completions", "chat"] = "completions"
    concurrency: int = 4
    explainer_model: str | None = None
    proxy_train_fraction: float = 0.5
    cache: bool = True
    n_shot: int = DEFAULTS.shots
    k: int = DEFAULTS.keywords
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = DEFAULT_METHODS
    test_size: int = 100
    demo_setting: DemoSetting = "fixed"
    out_dir: str | os.PathLike[str] = "eval_results"
    pool_size: int | None = None
    proxy: Literal["classifier", "causal_lm"] = "classifier"
    proxy_epochs: int = 10
    proxy_model: str = "all-MiniLM-L6-v2"
    retrieval_candidates: int | None = None
    autocot_max_new_tokens: int = 64
    rationale_max_new_tokens: int = 48
    validation_size: int = 0
    evaluate_on: Literal["test", "validation"] = "test"
    explainer_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    reference: str = "io"
    device: str | None = None
    batch_size: int = 16
    plot: bool = True
    labels: tuple[str, ...] | None = None
    uimer_alpha: float = 1.0
    uimer_warmup: int = 2
    rationale_store: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        # Lists from a CLI or JSON become tuples, so configs compare and hash by value.
        object.__setattr__(self, "seeds", tuple(int(s) for s in _as_seq(self.seeds)))
        object.__setattr__(self, "methods", tuple(str(m) for m in _as_seq(self.methods)))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(label) for label in _as_seq(self.labels)))
        if self.rationale_store is not None:
            directory, name = (str(part) for part in self.rationale_store)
            object.__setattr__(self, "rationale_store", (directory, name))
        if self.n_shot < 0:
            raise ValueError(f"n_shot must be >= 0, got {self.n_shot}.")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}.")
        if self.test_size < 1:
            raise ValueError(f"test_size must be >= 1, got {self.test_size}.")
        if not self.seeds:
            raise ValueError("seeds is empty: pass at least one seed.")
        if not self.methods:
            raise ValueError("methods is empty: pass at least one method.")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods has duplicates: {list(self.methods)}.")
        if self.validation_size < 0:
            raise ValueError(f"validation_size must be >= 0, got {self.validation_size}.")
        if self.evaluate_on not in ("test", "validation"):
            raise ValueError(f"evaluate_on must be 'test' or 'validation', got {self.evaluate_on!r}.")
        if self.evaluate_on == "validation" and self.validation_size < 1:
            raise ValueError("evaluate_on='validation' needs a validation split: set validation_size >= 1.")
        if not 0.0 < self.proxy_train_fraction < 1.0:
            raise ValueError(f"proxy_train_fraction must be between 0 and 1, got {self.proxy_train_fraction}.")
        if self.demo_setting not in ("fixed", "retrieved"):
            raise ValueError(f"demo_setting must be 'fixed' or 'retrieved', got {self.demo_setting!r}.")

    @property
    def target(self) -> Target:
        """The answering model as a :class:`~amplify_agents.answering.Target`."""
        return Target(
            self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            api=self.api,
            concurrency=self.concurrency,
            device=self.device,
        )

    @property
    def local_model(self) -> str | None:
        """The local model that explains itself (``self:`` methods): ``explainer_model``, else a local target."""
        return self.explainer_model or (None if self.base_url else self.model)

    @property
    def results_path(self) -> Path:
        """The resumable results file: ``out_dir / "results.json"``."""
        return Path(self.out_dir) / "results.json"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        data = asdict(self)
        data["task"] = str(self.task)
        data["out_dir"] = str(self.out_dir)
        data["explainer_settings"] = json.loads(json.dumps(dict(self.explainer_settings), default=str))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalConfig:
        """Rebuild from :meth:`to_dict` (unknown keys are ignored, for older files)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def _as_seq(value: Any) -> Sequence[Any]:
    if isinstance(value, (str, int)):
        return (value,)
    return tuple(value)
