"""The one answering path: (demonstrations, query, label space, placement, calibration) → answer.

The chains, the evaluation harness, ``improve``, the builder's predictions and the demo all
answer through :class:`Answerer`, so what is measured is what users run. Prompts come from
:func:`~amplify_agents.prompts.build_prompt` (explicit endings, never cut by length); the
backend (:mod:`~amplify_agents.answering.backends`) scores the labels or generates text.

Placements of the rationale:

======= ==========================================================================================
``xry`` demos as (x, r, y), rationale before the answer as in both papers; the query is
        answered directly after the answer cue
``xyr`` demos as (x, y, r), the rationale after the answer; the query is answered directly (chat
        form: the demos' assistant turns state the answer, then the rationale)
``gen`` demos as (x, r, y); the model first writes the query's own rationale (greedy, one line),
        then the labels are scored after it (chat form: the model's reply holds both)
======= ==========================================================================================

The default is the library's, ``DEFAULTS.placement`` (:mod:`amplify_agents.defaults`). The
placement decides the demonstrations' layout: it overrides ``style.rationale_first``.

Calibration (``"contextual"``, Zhao et al. 2021; ``"pmi"``, Holtzman et al. 2021) subtracts a
label prior computed from the *same* prompt layout (same demonstrations and context) with
content-free queries, or from the bare answer cue. The prior's prompts go to the backend in
the same call as the real ones (a local model runs their shared demonstrations once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage

from amplify_agents.answering.backends import AnswerBackend, Prompt, Reply, ReplySettings
from amplify_agents.defaults import DEFAULTS
from amplify_agents.models.calibration import (
    CONTENT_FREE_INPUTS,
    CalibrationMethod,
    LabelPrior,
    apply_prior,
    pmi_premise,
    prior_from_scores,
)
from amplify_agents.models.parsing import parse_answer
from amplify_agents.models.scoring import LabelScores
from amplify_agents.models.scoring import label_lists as as_label_lists
from amplify_agents.prompts import PromptForm, PromptStyle, build_prompt

__all__ = ["Answer", "AnswerSettings", "Answerer", "Placement", "parse_completion", "prior_prompts"]

Placement = Literal["xry", "xyr", "gen"]
Demo = Mapping[str, Any]


@dataclass(frozen=True)
class AnswerSettings:
    """How the answering path lays out prompts and reads answers.

    Attributes:
        style: the prompt layout (frame, keys, chat answer cue, context).
        placement: ``"xry"``, ``"xyr"`` or ``"gen"`` (see the module doc); default: the library's.
        calibration: None, ``"contextual"`` or ``"pmi"`` (needs a backend that scores labels).
        max_new_tokens: the answer's length when it is generated (backends without scores).
        rationale_max_new_tokens: the query rationale's length under ``"gen"``.
    """

    style: PromptStyle = PromptStyle()
    placement: Placement = DEFAULTS.placement
    calibration: CalibrationMethod | None = None
    max_new_tokens: int = 16
    rationale_max_new_tokens: int = 48

    def __post_init__(self) -> None:
        if self.placement not in ("xry", "xyr", "gen"):
            raise ValueError(f"Unknown placement {self.placement!r}: use 'xry', 'xyr' or 'gen'.")
        if self.calibration not in (None, "contextual", "pmi"):
            raise ValueError(f"Unknown calibration {self.calibration!r}: use None, 'contextual' or 'pmi'.")


@dataclass(frozen=True)
class Answer:
    """The answer to one query.

    Attributes:
        labels: the label space answered over (the query's own options).
        predicted: the chosen label; None when a generated answer could not be parsed.
        scores: the label scores (calibrated when calibration is on); None when generated.
        raw_scores: the scores before calibration.
        text: the model's generated text (None when the labels were scored directly).
        rationale: the query's rationale (placement ``"gen"``, or the chat reply's text
            before the answer cue).
        outside_top_k: labels whose probability is an upper bound (chat top-logprobs).
        prompt: the prompt answered (text, or the chat messages rendered as text).
        prior: the calibration prior, when one was applied.
    """

    labels: tuple[str, ...]
    predicted: str | None
    scores: LabelScores | None = None
    raw_scores: LabelScores | None = None
    text: str | None = None
    rationale: str = ""
    outside_top_k: tuple[str, ...] = ()
    prompt: str = ""
    prior: dict[str, float] | None = None

    @property
    def probs(self) -> dict[str, float]:
        """The label distribution (empty when the answer was generated and parsed)."""
        return self.scores.probs if self.scores is not None else {}

    @property
    def parsed(self) -> bool:
        """Whether a label was found (always, when labels were scored)."""
        return self.predicted is not None


@dataclass
class _Group:
    """Queries that share one demonstration list (and so one calibration prior)."""

    indices: list[int] = field(default_factory=list)


class Answerer:
    """Answer queries with a backend: build each prompt, score (or generate and parse), calibrate.

    Args:
        backend: what answers (:class:`~amplify_agents.answering.LocalBackend`,
            ``CompletionsBackend``, ``ChatBackend``, ``LangChainBackend``).
        settings: layout, placement, calibration.

    Example:
        >>> answerer = Answerer(LocalBackend(gemma), AnswerSettings(PromptStyle(frame)))  # doctest: +SKIP
        >>> [a] = answerer.answer(["Is the sky blue?"], ["yes", "no"], demos=[...])  # doctest: +SKIP
        >>> a.predicted, a.probs  # doctest: +SKIP
    """

    def __init__(self, backend: AnswerBackend, settings: AnswerSettings = AnswerSettings()) -> None:
        if settings.calibration and not backend.can_score:
            raise ValueError(
                f"calibration={settings.calibration!r} needs label scores, and the {backend.kind} backend "
                f"({backend.model_name}) gives none: use a local model or a completions endpoint with "
                "log-probabilities, or turn calibration off."
            )
        self.backend = backend
        self.settings = settings
        # The placement decides the demonstrations' layout, and how a chat reply is read back.
        self.style = replace(settings.style, rationale_first=settings.placement != "xyr")

    @property
    def form(self) -> PromptForm:
        return self.backend.form

    @property
    def identity(self) -> dict[str, Any]:
        """The backend and model that answer (recorded with every result)."""
        return self.backend.identity

    # ------------------------------------------------------------------ prompts
    def prompt(
        self,
        query: str,
        demos: Sequence[Demo] = (),
        *,
        history: Sequence[BaseMessage] = (),
        context: Sequence[Document] | None = None,
        ending: Literal["answer", "rationale"] = "answer",
    ) -> Prompt:
        """The prompt for one query in this answerer's form and placement."""
        return build_prompt(query, demos, self.style, form=self.form, history=history, context=context, ending=ending)

    # ------------------------------------------------------------------ answers
    def answer(
        self,
        queries: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        demos: Sequence[Demo] | None = None,
        demos_per_query: Sequence[Sequence[Demo]] | None = None,
        history: Sequence[BaseMessage] = (),
        context: Sequence[Document] | None = None,
    ) -> list[Answer]:
        """Answer every query over its labels.

        Args:
            queries: the inputs.
            labels: one label space for all queries, or one list per query (each example's
                own options).
            demos: one demonstration list shared by every query (fixed demonstrations: a
                local model runs them once), or
            demos_per_query: one list per query (retrieved demonstrations).
            history: chat history (chains) put before the query.
            context: retrieved documents shown with every query (RAG).
        """
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings, not one string.")
        if not queries:
            return []
        label_lists = as_label_lists(labels, len(queries))
        if demos_per_query is not None:
            if demos is not None:
                raise ValueError("Pass demos (shared) or demos_per_query (one list each), not both.")
            if len(demos_per_query) != len(queries):
                raise ValueError(f"Got {len(demos_per_query)} demo lists for {len(queries)} queries.")
            per_query = [list(d) for d in demos_per_query]
        else:
            shared = list(demos or [])
            per_query = [shared] * len(queries)
        ctx: dict[str, Any] = {"history": history, "context": context}

        rationales = [""] * len(queries)
        if self.settings.placement == "gen" and self.form == "text":
            prompts, rationales = self._with_rationales(queries, per_query, ctx)
        else:
            prompts = [self.prompt(q, d, **ctx) for q, d in zip(queries, per_query, strict=True)]

        # Calibration: one prior per distinct (demonstrations, label list), scored in the same call.
        prior_prompts: list[Prompt] = []
        prior_slices: dict[tuple[int, tuple[str, ...]], tuple[int, int]] = {}
        if self.settings.calibration:
            # Shared demonstrations are one list object for every query: one prior per label list.
            for i, d in enumerate(per_query):
                key = (id(d), label_lists[i])
                if key in prior_slices:
                    continue
                extra = self._prior_prompts(d, ctx)
                start = len(queries) + len(prior_prompts)
                prior_prompts += extra
                prior_slices[key] = (start, start + len(extra))
        all_labels = list(label_lists)
        for (_, labs), (a, b) in prior_slices.items():
            all_labels += [labs] * (b - a)

        replies = self._ask([*prompts, *prior_prompts], all_labels)
        priors: dict[tuple[int, tuple[str, ...]], LabelPrior] = {}
        for key, (a, b) in prior_slices.items():
            reference = [r.scores for r in replies[a:b] if r.scores is not None]
            priors[key] = prior_from_scores(reference, self.settings.calibration or "")

        answers = []
        for i, (reply, labs) in enumerate(zip(replies[: len(queries)], label_lists, strict=True)):
            prior = priors.get((id(per_query[i]), labs))
            answers.append(self._finish(reply, labs, prompts[i], rationales[i], prior))
        return answers

    def answer_one(self, query: str, labels: Sequence[str], demos: Sequence[Demo] = (), **kwargs: Any) -> Answer:
        """:meth:`answer` for a single query."""
        return self.answer([query], list(labels), demos=demos, **kwargs)[0]

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """Free text from the backend (Auto-CoT rationales, test-time reasoning)."""
        return self.backend.generate(prompts, max_new_tokens=max_new_tokens, stop=stop)

    # ------------------------------------------------------------------ pieces
    def _ask(self, prompts: Sequence[Prompt], label_lists: Sequence[tuple[str, ...]]) -> list[Reply]:
        st = self.style
        max_new = self.settings.max_new_tokens
        if self.form == "chat" and self.settings.placement == "gen":
            max_new += self.settings.rationale_max_new_tokens
        stops = (*st.text_stops, "\n") if self.form == "text" else ()
        how = ReplySettings(st.frame.label_prefix, st.answer_prefix, max_new, stops)
        return self.backend.answer(prompts, label_lists, how)

    def _with_rationales(
        self, queries: Sequence[str], per_query: Sequence[Sequence[Demo]], ctx: Mapping[str, Any]
    ) -> tuple[list[Prompt], list[str]]:
        heads = [self.prompt(q, d, ending="rationale", **ctx) for q, d in zip(queries, per_query, strict=True)]
        written = self.backend.generate(heads, max_new_tokens=self.settings.rationale_max_new_tokens, stop=("\n",))
        texts = [" ".join(t.split()) for t in written]
        cue = self.style.frame.output_prefix
        return [f"{h}{t}{cue}" for h, t in zip(heads, texts, strict=True)], texts  # type: ignore[operator]

    def _prior_prompts(self, demos: Sequence[Demo], ctx: Mapping[str, Any]) -> list[Prompt]:
        method = self.settings.calibration or "contextual"
        if method == "contextual" and self.settings.placement == "gen" and self.form == "text":
            return self._with_rationales(CONTENT_FREE_INPUTS, [demos] * len(CONTENT_FREE_INPUTS), ctx)[0]
        return prior_prompts(method, lambda x: self.prompt(x, demos, **ctx), self.style)

    def _finish(
        self, reply: Reply, labels: tuple[str, ...], prompt: Prompt, rationale: str, prior: LabelPrior | None
    ) -> Answer:
        text_prompt = prompt if isinstance(prompt, str) else _render(prompt)
        if reply.scores is not None and reply.readable(labels):  # else the reply's text decides
            scores = apply_prior(reply.scores, prior) if prior is not None else reply.scores
            if reply.text is not None and not rationale:
                rationale = parse_completion(reply.text, None, self.form, self.style)[0]
            return Answer(
                labels=labels,
                predicted=scores.predicted,
                scores=scores,
                raw_scores=reply.scores,
                text=reply.text,
                rationale=rationale,
                outside_top_k=reply.outside_top_k,
                prompt=text_prompt,
                prior=prior.as_dict() if prior is not None else None,
            )
        written, predicted = parse_completion(reply.text or "", labels, self.form, self.style)
        return Answer(
            labels=labels,
            predicted=predicted,
            text=reply.text,
            rationale=rationale or written,
            outside_top_k=reply.outside_top_k,
            prompt=text_prompt,
        )


def prior_prompts(method: str, build: Callable[[str], Prompt], style: PromptStyle) -> list[Prompt]:
    """The prompts of a calibration prior: ``build`` (the real prompt layout: same demonstrations,
    context and history) around each content-free input (``"contextual"``), or the bare answer
    cue (``"pmi"``)."""
    if method == "pmi":
        return [pmi_premise(style.frame.output_prefix)]
    if method != "contextual":
        raise ValueError(f"Unknown calibration {method!r}: use 'contextual' or 'pmi'.")
    return [build(x) for x in CONTENT_FREE_INPUTS]


def _render(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(f"{m.type}: {m.text if isinstance(m.text, str) else m.content}" for m in messages)


# -- reading a generated answer ---------------------------------------------------------------------
def _marker_regex(answer_prefix: str) -> re.Pattern[str] | None:
    words = answer_prefix.split()
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_completion(
    text: str, labels: Sequence[str] | None, form: PromptForm, style: PromptStyle
) -> tuple[str, str | None]:
    """Split a model's text into (rationale, answer).

    Text form with ``style.generate_rationale``: the rationale is what comes before the frame's
    answer cue (e.g. "A:"). Chat form: what comes before the last ``style.answer_prefix``; when
    the rationale goes after the answer (``style.rationale_first=False``) the answer is the line
    after the first ``answer_prefix`` and the rationale is the rest. The
    answer is parsed onto ``labels`` with :func:`~amplify_agents.models.parse_answer` (``None``
    if unparseable); without labels it is the first line of the answer text.
    """
    rationale, answer_text = "", text
    if form == "text" and style.generate_rationale:
        cue = style.frame.output_prefix.strip()
        at = text.find(cue) if cue else -1
        if at != -1:
            rationale, answer_text = text[:at].strip(), text[at + len(cue) :]
        else:
            rationale = text.strip()
    elif form == "chat":
        marker = _marker_regex(style.answer_prefix)
        found = list(marker.finditer(text)) if marker else []
        if found and not style.rationale_first:  # (x, y, r): the answer's line, then its rationale
            head, _, tail = text[found[0].end() :].strip().partition("\n")
            rationale, answer_text = " ".join([text[: found[0].start()].strip(), tail.strip()]).strip(), head
        elif found:
            rationale, answer_text = text[: found[-1].start()].strip(), text[found[-1].end() :]
    elif form == "text":
        answer_text = _first_line(text)  # the prompt ends at the answer cue: the answer is one line
    if labels:
        answer = parse_answer(answer_text, labels)
        if answer is None and answer_text is not text:
            answer = parse_answer(text, labels)  # e.g. the label was stated without the cue
        return rationale, answer
    free = _first_line(answer_text).strip(" .")
    return rationale, free or None
