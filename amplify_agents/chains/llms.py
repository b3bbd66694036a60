"""LangChain LLMs over the answering path's backends and a local :class:`~amplify_agents.models.LoadedModel`.

* :class:`LabelScoringLLM` answers by scoring every label after the prompt through an answering
  backend (a local model, or an endpoint with log-probabilities): its text is the most probable label and its
  ``generation_info`` carries ``label_probs``. It is a ``BaseLLM``, so callbacks, tracing and
  ``on_llm_start`` work as for any LLM.
* :func:`local_generation_llm` wraps a transformers ``text-generation`` pipeline in
  ``langchain_huggingface.HuggingFacePipeline`` (greedy), with ``stop`` strings honoured.

Both take the model's lock from :func:`model_lock`, so a chain's ``batch`` (which runs in
threads) and an in-process server never run the same model concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import torch
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from langchain_huggingface import HuggingFacePipeline
from pydantic import Field, PrivateAttr
from transformers import StoppingCriteria, StoppingCriteriaList

from amplify_agents.answering.backends import LocalBackend, ReplySettings
from amplify_agents.models.calibration import CalibrationMethod, apply_prior, prior_from_scores
from amplify_agents.models.generation import cut_at_stops
from amplify_agents.models.loading import LoadedModel
from amplify_agents.models.locks import model_lock

__all__ = [
    "LabelScoringLLM",
    "LocalGenerationLLM",
    "StopOnStrings",
    "cut_at_stops",
    "local_generation_llm",
    "model_lock",
]


class StopOnStrings(StoppingCriteria):
    """Stop generating once the new text of every row contains one of ``stops``.

    transformers' own ``stop_strings`` precomputes tables over the whole vocabulary on every
    call (6-7 s per call for Gemma's 262k tokens on two cores); decoding the few new tokens
    at each step costs next to nothing. Use one instance per ``generate`` call.

    Args:
        tokenizer: decodes the new tokens.
        stops: the stop strings.
        prompt_length: where the new tokens start (default: found at the first call, which
            comes right after the first new token).
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        if self.prompt_length is None:
            self.prompt_length = int(input_ids.shape[1]) - 1
        rows = input_ids[:, self.prompt_length :]
        done = [
            any(stop in self.tokenizer.decode(row, skip_special_tokens=True) for stop in self.stops) for row in rows
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class LabelScoringLLM(BaseLLM):
    """A LangChain LLM that answers with the most probable label of a known label space.

    Every label is scored after the prompt by an answering backend
    (:mod:`amplify_agents.answering`): a local model (:class:`~amplify_agents.answering.LocalBackend`,
    exact, the shared prompt prefix cached) by default, or any backend that gives label scores,
    such as an OpenAI-compatible completions endpoint (``backend=open_endpoint(Endpoint(...))``).
    The generation's text is the winning label and its ``generation_info`` holds ``label_probs``
    (softmax over the labels) and ``logprobs``.

    Args:
        loaded: the local model and tokenizer (or give ``backend``).
        backend: the scoring backend (default: a ``LocalBackend`` over ``loaded``).
        labels: the default label space; a call may pass ``labels=[...]`` instead.
        label_prefix: text between the prompt and each label (a frame's ``label_prefix``).
        model_name: reported in results (default: the backend's model name).

    Example:
        >>> llm = LabelScoringLLM(loaded=gemma, labels=["yes", "no"])  # doctest: +SKIP
        >>> result = llm.generate(["Is the sky blue?\\nA:"])  # doctest: +SKIP
        >>> result.generations[0][0].generation_info["label_probs"]  # doctest: +SKIP
    """

    loaded: Any = Field(default=None, exclude=True)
    backend: Any = Field(default=None, exclude=True)
    labels: list[str] = Field(default_factory=list)
    label_prefix: str = " "
    model_name: str = ""
    batch_size: int = 16
    surface_forms: bool | None = None
    """Score each label through its spellings ("no", " No", "(no)", "No.") combined by
    log-sum-exp (:func:`~amplify_agents.models.scoring.surface_variants`). ``None`` (default):
    on for chat models (a tokenizer with a chat template: instruction-tuned models often put
    their mass on a spelling the task file does not use), off for base models."""
    calibration: CalibrationMethod | None = None
    """Subtract a label prior (see :mod:`amplify_agents.models.calibration`) from the scores of
    each call. The call passes the prior's prompts as ``calibration_prompts``: the same prompt
    with content-free inputs (contextual, their probabilities averaged) or the bare answer
    prefix (pmi)."""

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if self.backend is None:
            if self.loaded is None:
                raise ValueError("LabelScoringLLM needs a model: pass loaded= (a local model) or backend=.")
            self.backend = LocalBackend(self.loaded, batch_size=self.batch_size, surface_forms=self.surface_forms)
        if not self.backend.can_score:
            raise ValueError(f"The {self.backend.kind} backend gives no label scores: LabelScoringLLM needs them.")
        if not self.model_name:
            self.model_name = str(self.backend.model_name)

    @property
    def uses_surface_forms(self) -> bool:
        """Whether labels are scored through their surface variants (see ``surface_forms``)."""
        return bool(getattr(self.backend, "surface_forms", False))

    @property
    def _llm_type(self) -> str:
        return "amplify-label-scoring"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "labels": self.labels, "label_prefix": self.label_prefix}

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        labels: Sequence[str] | None = None,
        calibration_prompts: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        space = list(labels) if labels else self.labels
        if not space:
            raise ValueError("LabelScoringLLM needs a label space: pass labels= when building it or calling it.")
        extra = list(calibration_prompts or []) if self.calibration else []
        if self.calibration and not extra:
            raise ValueError(
                f"calibration={self.calibration!r} needs the prior's prompts: call with calibration_prompts=[...] "
                "(create_amplify_chain passes them), or build the LLM without calibration."
            )
        # One call: the prior's prompts share the demonstrations (the cached prefix) with the query's.
        everything = list(prompts) + extra
        replies = self.backend.answer(everything, [space] * len(everything), ReplySettings(self.label_prefix))
        scores = [r.scores for r in replies]
        prior = None
        if extra:
            scores, reference = scores[: len(prompts)], [r for r in scores[len(prompts) :] if r is not None]
            raw = scores
            if reference:  # an endpoint that stopped giving log-probabilities gives no prior either
                prior = prior_from_scores(reference, self.calibration or "")
                scores = [apply_prior(s, prior) if s is not None else None for s in scores]
        generations = []
        for i, s in enumerate(scores):
            reply = replies[i]
            if s is None or not reply.readable(space):
                # No scores (the server returned no log-probabilities), or every label outside the
                # returned top-k (the bounds say nothing): the reply's own text is the answer, for
                # the answer parser to map onto the labels or report as unparseable, never a guess.
                unread = {"label_probs": None, "outside_top_k": list(reply.outside_top_k), "scored": False}
                generations.append([Generation(text=reply.text or "", generation_info=unread)])
                continue
            info: dict[str, Any] = {"label_probs": s.probs, "logprobs": dict(zip(s.labels, s.logprobs, strict=True))}
            if reply.outside_top_k:
                info["outside_top_k"] = list(reply.outside_top_k)
            if prior is not None:
                info["calibration"] = {"method": prior.method, "prior": prior.as_dict()}
                info["uncalibrated_label_probs"] = raw[i].probs  # type: ignore[union-attr]
            generations.append([Generation(text=s.predicted, generation_info=info)])
        return LLMResult(generations=generations, llm_output={"model_name": self.model_name})


class LocalGenerationLLM(HuggingFacePipeline):
    """``HuggingFacePipeline`` that honours ``stop`` strings and holds the model's lock.

    The base class ignores ``stop`` in ``invoke``/``generate``; here generation halts at the
    stop strings (transformers ``stop_strings``) and the text is cut before them.
    """

    _lock: threading.Lock | None = PrivateAttr(default=None)

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        pipeline_kwargs = dict(kwargs.pop("pipeline_kwargs", None) or {})
        stops = [s for s in (stop or []) if s]
        lock = self._lock or model_lock(self.pipeline.model)
        generations: list[list[Generation]] = []
        for prompt in prompts:  # one at a time: a stopping criterion holds one prompt's state
            if stops:
                criteria = StopOnStrings(self.pipeline.tokenizer, stops)
                pipeline_kwargs["stopping_criteria"] = StoppingCriteriaList([criteria])
            with lock:
                result = super()._generate([prompt], None, run_manager, pipeline_kwargs=pipeline_kwargs, **kwargs)
            for gen in result.generations[0]:
                gen.text = cut_at_stops(gen.text, stops)
            generations.append(result.generations[0])
        return LLMResult(generations=generations, llm_output={"model_name": self.model_id})


def local_generation_llm(
    loaded: LoadedModel,
    *,
    max_new_tokens: int = 32,
    model_name: str | None = None,
    **generate_kwargs: Any,
) -> LocalGenerationLLM:
    """A greedy ``HuggingFacePipeline`` (text-generation) over ``loaded``; returns only new text.

    Args:
        loaded: the model and tokenizer.
        max_new_tokens: the most tokens generated per call.
        model_name: reported in results (default ``loaded.name``).
        generate_kwargs: passed to the pipeline (e.g. ``repetition_penalty``).
    """
    from transformers import pipeline

    pipe = pipeline(  # type: ignore[call-overload]
        "text-generation",
        model=loaded.model,
        tokenizer=loaded.tokenizer,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        return_full_text=False,
        **generate_kwargs,
    )
    llm = LocalGenerationLLM(pipeline=pipe, model_id=model_name or loaded.name, batch_size=1)
    llm._lock = model_lock(loaded)
    return llm
