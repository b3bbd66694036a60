"""What the model says about each pool example: the predictions that selection ranks.

Predictions come from any :class:`LabelPredictor`: the target model through the answering
path (:class:`TargetPredictor`, :class:`SLMPredictor` for a local model), a proxy classifier,
or AMPLIFY's pairing of the two (:class:`ProxyMCSPredictor`: the target decides what is an
error, the proxy gives the Misclassification Confidence Score). :func:`predict_pool` asks a
predictor about every example over its own options, and caches the answers beside a store.

An example whose prompt is longer than the model's context fails the call before any forward
pass (:class:`~amplify_agents.errors.InputTooLongError`), and the error names that example
(:func:`name_too_long`): the scorer only knows prompt positions, which batching, caching and
calibration renumber.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from amplify_agents.errors import ContextLengthError, InputTooLongError
from amplify_agents.files import atomic_write
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel
from amplify_agents.prompts import PromptStyle
from amplify_agents.tasks import Example

if TYPE_CHECKING:
    from amplify_agents.answering import Answerer

__all__ = [
    "LabelPredictor",
    "Prediction",
    "ProxyMCSPredictor",
    "SLMPredictor",
    "TargetPredictor",
    "name_too_long",
    "predict_pool",
]


@runtime_checkable
class LabelPredictor(Protocol):
    """Anything that gives label probabilities for texts (the target model, a proxy classifier).

    A predictor with a ``predict_options(texts, options)`` method scores each text's own
    options (see :class:`TargetPredictor`); one without is asked over its label space and its
    probabilities are restricted to each example's options by :func:`predict`.
    """

    labels: tuple[str, ...]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class TargetPredictor:
    """The target model's zero-shot answers, through the one answering path.

    Each example is asked over **its own options** (a task whose items carry their own answer
    strings is never scored over the whole task's label space). A backend that gives label
    scores yields a distribution; a generation-only backend (a chat model without
    log-probabilities, any LangChain model) yields the parsed answer with probability 1, or
    no prediction when the reply cannot be parsed.

    Args:
        answerer: the :class:`~amplify_agents.answering.Answerer` of the target.
        labels: the task's label space (used when an example has no options of its own).
    """

    def __init__(self, answerer: Answerer, labels: Sequence[str]) -> None:
        self.answerer = answerer
        self.labels = tuple(labels)

    @property
    def model_id(self) -> str:
        return self.answerer.backend.model_name

    @property
    def cache_identity(self) -> dict[str, object]:
        """What decides these predictions (model, backend, prompt layout): the key of cached predictions."""
        st = self.answerer.settings.style
        return {
            **self.answerer.identity,
            "frame": asdict(st.frame),
            "answer_prefix": st.answer_prefix,
            "system_message": st.system_message,
            "placement": self.answerer.settings.placement,
            "calibration": self.answerer.settings.calibration,
        }

    def predict_options(self, texts: Sequence[str], options: Sequence[Sequence[str]]) -> list[dict[str, float]]:
        """Probabilities over each text's own options ({} for an unparseable generated answer)."""
        answers = self.answerer.answer(list(texts), [tuple(o) for o in options])
        return [a.probs if a.scores is not None else ({a.predicted: 1.0} if a.predicted else {}) for a in answers]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return self.predict_options(texts, [self.labels] * len(texts))


class SLMPredictor(TargetPredictor):
    """A local causal LM's zero-shot label probabilities (a :class:`TargetPredictor` over a
    :class:`~amplify_agents.answering.LocalBackend`)."""

    def __init__(self, loaded: LoadedModel, labels: Sequence[str], frame: Frame = Frame(), *, batch_size: int = 16):
        from amplify_agents.answering import Answerer, AnswerSettings, LocalBackend

        self.loaded = loaded
        self.frame = frame
        super().__init__(
            Answerer(LocalBackend(loaded, batch_size=batch_size), AnswerSettings(PromptStyle(frame))), labels
        )


@dataclass(frozen=True)
class Prediction:
    """A model's prediction on one example, with the scores selection uses."""

    example: Example
    predicted: str | None
    """None when the model's answer was outside the label space."""
    probs: dict[str, float]

    @property
    def correct(self) -> bool:
        return self.predicted == self.example.label

    @property
    def gold_prob(self) -> float:
        return self.probs.get(self.example.label, 0.0)

    @property
    def mcs(self) -> float:
        """Misclassification Confidence Score: p(predicted) − p(gold); ≤ 0 when correct."""
        if self.predicted is None:
            return float("nan")
        return self.probs.get(self.predicted, 0.0) - self.gold_prob

    def scores(self) -> dict[str, float | str | None]:
        return {"prediction": self.predicted, "gold_prob": round(self.gold_prob, 6), "mcs": round(self.mcs, 6)}


def predict_pool(
    predictor: LabelPredictor,
    examples: Sequence[Example],
    *,
    batch_size: int = 32,
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[Prediction]:
    """Predict every example over its own options (``example.choices``, else the predictor's labels).

    A predictor that scores options itself (``predict_options``) is asked for them; any other
    is asked over its label space and its probabilities are restricted to the example's
    options and renormalised. No answer (an unparseable generated reply) becomes ``None``.

    With ``cache_dir``, the predictions of a predictor that names what decides them
    (``cache_identity``: model, backend, prompt layout) are kept there, keyed by that and the
    examples (ids, inputs, options): predicting the same pool again reads the file.
    """
    whole = getattr(predictor, "predict_examples", None)
    if whole is not None:
        return list(whole(examples, cache_dir=cache_dir))
    identity = getattr(predictor, "cache_identity", None)
    path = None
    if cache_dir is not None and identity is not None:
        rows = [[ex.id, ex.input, list(ex.choices or predictor.labels)] for ex in examples]
        blob = json.dumps({"predictor": identity, "examples": rows}, sort_keys=True, default=str)
        path = Path(cache_dir) / f"{hashlib.sha256(blob.encode()).hexdigest()[:32]}.json"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            return [Prediction(ex, r["predicted"], r["probs"]) for ex, r in zip(examples, stored, strict=True)]
    out = _predict(predictor, examples, batch_size, progress)
    if path is not None:
        data = [{"predicted": p.predicted, "probs": p.probs} for p in out]
        atomic_write(path, lambda fh: json.dump(data, fh))
    return out


def name_too_long(
    error: InputTooLongError, examples: Sequence[Example], ask: Callable[[list[Example]], object]
) -> InputTooLongError:
    """The error of a batch that was too long, naming the example that made it so.

    ``ask`` is called on each example alone, longest input first, until one raises: the
    over-long one is almost always the longest, and its check fails before any forward pass,
    so this usually costs one tokenisation. Returns ``error`` itself when none fails alone.
    """
    for example in sorted(examples, key=lambda e: -len(e.input)):
        try:
            ask([example])
        except InputTooLongError as one:
            message = f"example {example.id!r} ({len(example.input):,} characters): {one}"
            if isinstance(one, ContextLengthError):
                return ContextLengthError(message, one.tokens, one.context)
            return InputTooLongError(message)
    return error


def _predict(
    predictor: LabelPredictor, examples: Sequence[Example], batch_size: int, progress: bool
) -> list[Prediction]:
    out: list[Prediction] = []
    batches = range(0, len(examples), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch")
    for start in batches:
        chunk = list(examples[start : start + batch_size])
        try:
            got = _ask(predictor, chunk)
        except InputTooLongError as exc:
            raise name_too_long(exc, chunk, lambda one: _ask(predictor, one)) from exc
        for ex, probs in zip(chunk, got, strict=True):
            best = max(probs, key=probs.__getitem__) if probs else None
            out.append(Prediction(ex, best, dict(probs)))
    return out


def _ask(predictor: LabelPredictor, chunk: Sequence[Example]) -> list[dict[str, float]]:
    """The predictor's probabilities over each example's own options."""
    options = [tuple(ex.choices or predictor.labels) for ex in chunk]
    texts = [e.input for e in chunk]
    scores_options = getattr(predictor, "predict_options", None)
    if scores_options is not None:
        return list(scores_options(texts, options))
    return [_restrict(p, o) for p, o in zip(predictor.predict_proba(texts), options, strict=True)]


class ProxyMCSPredictor:
    """AMPLIFY's selection signal: the **target's** answer decides whether an example is an error,
    the **proxy's** probabilities give its Misclassification Confidence Score (MCS).

    Args:
        target: the target model's predictor (e.g. a :class:`TargetPredictor` of a hosted model).
        proxy: the proxy classifier (fine-tuned on data that is *not* the pool it ranks).
    """

    def __init__(self, target: LabelPredictor, proxy: LabelPredictor) -> None:
        self.target = target
        self.proxy = proxy
        self.labels = tuple(target.labels)
        self.model_id = getattr(target, "model_id", "")

    def predict_examples(
        self, examples: Sequence[Example], *, cache_dir: str | os.PathLike[str] | None = None
    ) -> list[Prediction]:
        """The target's prediction (cached in ``cache_dir`` when given) with the proxy's probabilities."""
        by_target, by_proxy = (
            predict_pool(self.target, examples, cache_dir=cache_dir),
            predict_pool(self.proxy, examples),
        )
        return [Prediction(t.example, t.predicted, p.probs) for t, p in zip(by_target, by_proxy, strict=True)]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """The proxy's probabilities (what faithfulness is measured on)."""
        return self.proxy.predict_proba(texts)


def _restrict(probs: dict[str, float], options: Sequence[str]) -> dict[str, float]:
    """``probs`` over ``options`` only, renormalised ({} when none of them has mass)."""
    kept = {o: probs.get(o, 0.0) for o in options}
    total = sum(kept.values())
    return {o: p / total for o, p in kept.items()} if total > 0 else {}
