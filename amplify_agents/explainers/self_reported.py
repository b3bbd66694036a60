"""Self-reported explanations: the causal LM itself names keywords or writes an explanation.

Self-AMPLIFY (Bhan et al. 2024) asks the small LM, given the input and the gold answer,
for its top-k keywords (``self_topk``) or a p-step explanation (``self_exp``, Ph-CoT).
The papers use chat prompts with an assistant prefill; a base model such as the offline
Gemma 3 270M has no chat template, so these prompts are plain text that continue the
task's own frame: the prompt (instruction + input + output prefix), then the answer,
then a request the model completes::

    Q: Which statement is sarcastic? (a) ... (b) ...
    A: (b)
    The 5 most important keywords in the question for this answer are:

Generation is batched with left padding and ends early once every row has reached a stop string.
All decoding settings are constructor parameters; the defaults are greedy decoding, as
in the papers' released code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from amplify_agents.errors import ExplanationError
from amplify_agents.explainers._causal import seeded
from amplify_agents.explainers.base import SelfReport, SelfReportedExplainer
from amplify_agents.explainers.slm import SLMExplainer
from amplify_agents.explainers.words import is_punctuation, split_words
from amplify_agents.framing import Frame
from amplify_agents.models.generation import GenerationSettings, cut_at_stops, generate_ids
from amplify_agents.models.loading import LoadedModel

__all__ = ["SelfExplanationExplainer", "SelfTopKExplainer", "parse_keywords"]

DEFAULT_TOPK_TEMPLATE = "{prompt}{answer}\nThe {k} most important keywords in the question for this answer are:"
DEFAULT_EXP_TEMPLATE = "{prompt}{answer}\nExplanation of this answer in {p} steps, one sentence per step:\n"

# Bullets, numbering and quotes around a listed keyword.
_ITEM_STRIP = re.compile(r"^\s*(?:[-*•]+|\d+[.)]|\(\d+\))?\s*|[\s\"'`.:;!?]+$")


def parse_keywords(generated: str, text: str) -> tuple[list[str], list[str]]:
    """Split a generated keyword list and keep the words that occur in ``text``.

    The list may be separated by commas, semicolons or newlines, numbered or bulleted;
    a multi-word item contributes each of its words. Matching is case-insensitive and
    returns the word as spelled in ``text`` (first occurrence), each word once;
    punctuation is ignored.

    Returns:
        ``(kept, dropped)``: the kept words in the order named, and the named words that
        are not in the text (each once, in the order named).
    """
    in_text: dict[str, str] = {}
    for w in split_words(text):
        if not w.is_punctuation:
            in_text.setdefault(w.text.lower(), w.text)
    kept: list[str] = []
    dropped: list[str] = []
    for raw in re.split(r"[,;\n]+", generated):
        item = _ITEM_STRIP.sub("", raw.strip())
        for w in split_words(item):
            if is_punctuation(w.text):
                continue
            key = w.text.lower()
            if key in in_text:
                if in_text[key] not in kept:
                    kept.append(in_text[key])
            elif w.text not in dropped:
                dropped.append(w.text)
    return kept, dropped


class _SelfReported(SLMExplainer, SelfReportedExplainer):
    """Shared constructor, prompt checks and generation of the self-reported explainers.

    A subclass sets ``default_template`` and ``default_max_new_tokens``: the values used
    when the caller passes ``template=None`` / ``max_new_tokens=None``.
    """

    default_template: str
    default_max_new_tokens: int

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        template: str | None = None,
        max_new_tokens: int | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        num_beams: int = 1,
        seed: int | None = None,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, labels, frame, max_length=max_length, **kwargs)
        self.template = self.default_template if template is None else template
        self.generation = GenerationSettings(
            max_new_tokens=self.default_max_new_tokens if max_new_tokens is None else max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            num_beams=num_beams,
            seed=seed,
        )
        self.stops = self._stops(frame)

    @staticmethod
    def _stops(frame: Frame) -> tuple[str, ...]:
        # A blank line, or the frame starting a new question or answer, ends the text.
        stops = ["\n\n"]
        for prefix in (frame.input_prefix, frame.output_prefix):
            core = prefix.strip()
            if core:
                stops.append("\n" + core)
        return tuple(dict.fromkeys(stops))

    def _extra_settings(self) -> dict[str, Any]:
        gen = asdict(self.generation)
        gen.pop("stop")  # the stops follow from the frame and template
        return {**super()._extra_settings(), "template": self.template, **gen}

    def _fields(self, text: str, target: str) -> dict[str, Any]:
        prompt, _ = self.frame.render(text)
        return {"prompt": prompt, "answer": self.frame.label_prefix + target, "label": target}

    def _generate(self, prompts: list[str], extra_stops: Sequence[str] = ()) -> list[str]:
        """Continue each prompt (batched, left padding); return the new text, stripped and cut.

        Unlike a cut after generation, the stop strings also end generation early: a row
        is done once its new text (leading whitespace ignored) holds one of them, and the
        batch stops when every row is done (or at ``max_new_tokens``).
        """
        tok = self.loaded.tokenizer
        for i, prompt in enumerate(prompts):
            n = len(tok(prompt)["input_ids"]) + self.generation.max_new_tokens
            if n > self.max_length:
                raise ExplanationError(
                    f"Input {i} needs {n} tokens with its prompt and {self.generation.max_new_tokens} new "
                    f"tokens, more than the model's context of {self.max_length}: shorten the input."
                )
        stops = tuple(dict.fromkeys((*self.stops, *extra_stops)))
        settings = self.generation
        old_side = tok.padding_side
        tok.padding_side = "left"  # generation continues from the last column
        try:
            enc = tok(list(prompts), return_tensors="pt", padding=True).to(self.loaded.device)
            width = enc["input_ids"].shape[1]
            kwargs: dict[str, Any] = {
                "max_new_tokens": settings.max_new_tokens,
                "do_sample": settings.do_sample,
                "num_beams": settings.num_beams,
                "pad_token_id": tok.pad_token_id,
                "stopping_criteria": StoppingCriteriaList([_StopOnText(tok, width, stops)]),
            }
            if settings.do_sample:
                kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            with seeded(settings.seed if settings.do_sample else None), torch.inference_mode():
                out = generate_ids(self.loaded, enc, **kwargs)
        finally:
            tok.padding_side = old_side
        texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
        return [cut_at_stops(t.lstrip(), stops) for t in texts]


class _StopOnText(StoppingCriteria):
    """Per-row stop once the generated text (leading whitespace ignored) contains a stop string."""

    def __init__(self, tokenizer: Any, prompt_width: int, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.stops = tuple(stops)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width :], skip_special_tokens=True)
        done = [any(s in t.lstrip() for s in self.stops) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class SelfTopKExplainer(_SelfReported):
    """The LM names the k words of the input most important for the gold answer (``self_topk``).

    Prompt: ``template`` with ``{prompt}`` (the frame-rendered input, ending with the
    output prefix), ``{answer}`` (label prefix + label), ``{label}`` and ``{k}``; by
    default ``"{prompt}{answer}\\nThe {k} most important keywords in the question for
    this answer are:"``. The greedy continuation is cut at a blank line or the next
    question, split on commas/semicolons/newlines (:func:`parse_keywords`), and only
    words of the input (case-insensitive) are kept, in the order named, at most ``k``.

    Input words that are stop words of the explainer (``stopwords``) are not kept either.

    ``info``: ``generated`` (the text kept from the generation), ``n_named`` (words the
    model listed), ``dropped`` (``{"count", "words"}``: named words not in the input),
    ``stopwords_removed``. Every input word gets a score: ``1`` for the first kept
    keyword down to ``1/n`` for the last, ``0`` for the others, so ``word_scores`` show
    the ranking.

    Args:
        loaded: the causal LM (a base model: the prompt is text).
        labels: the label space (a target outside it raises ``LabelError``).
        frame: how the input sits in the prompt.
        template: the prompt template (see above).
        max_new_tokens: generation budget (default 32, ample for k <= 8 words).
        do_sample / temperature / top_p / num_beams: decoding; default greedy
            (``do_sample=False``, one beam), as in the papers' released code;
            ``temperature``/``top_p`` apply only when sampling.
        seed: seeds sampling (unused when greedy).
        max_length: the context length (default: the model's); a longer prompt plus
            ``max_new_tokens`` raises :class:`~amplify_agents.errors.ExplanationError`.
        **kwargs: the base explainer settings (``k`` = number of keywords asked, default 5).
    """

    name = "self_topk"
    default_template = DEFAULT_TOPK_TEMPLATE
    default_max_new_tokens = 32

    def build_prompt(self, text: str, target: str) -> str:
        """The prompt that asks for the keywords of ``text`` given ``target``."""
        return self.template.format(k=self.k, **self._fields(text, target))

    def _report(self, texts: list[str], targets: list[str]) -> list[SelfReport]:
        prompts = [self.build_prompt(t, y) for t, y in zip(texts, targets, strict=True)]
        # A base model that has listed its words tends to repeat the request line: stop there.
        echo = prompts[0].rstrip().rsplit("\n", 1)[-1].strip()[:20]
        out = []
        for text, generated in zip(texts, self._generate(prompts, [echo] if echo else []), strict=True):
            kept, dropped = parse_keywords(generated, text)
            # Input words that the explainer's settings never allow as keywords.
            unusable = [w for w in kept if w.lower() in self.stopwords]
            info = {
                "generated": generated,
                "n_named": len(kept) + len(dropped),
                "dropped": {"count": len(dropped), "words": dropped},
                "stopwords_removed": unusable,
            }
            out.append(SelfReport(keywords=[w for w in kept if w.lower() not in self.stopwords], info=info))
        return out


class SelfExplanationExplainer(_SelfReported):
    """The LM writes a p-step explanation of the gold answer (``self_exp``, Ph-CoT).

    Prompt: ``template`` with ``{prompt}``, ``{answer}``, ``{label}`` and ``{p}``, then
    ``primer``; by default::

        {prompt}{answer}
        Explanation of this answer in {p} steps, one sentence per step:
        Step 1:

    The text kept (``generated_text``) is the primer plus the greedy continuation, cut at
    a blank line, the next question/answer of the frame, or ``"Step {p+1}"``, stripped.
    An empty continuation gives an empty text (the explanation is then not ``ok``).

    Args:
        p: number of steps asked (default 3).
        primer: text the continuation starts from (part of the kept text).
        max_new_tokens: generation budget (default 96: about p sentences).
        do_sample / temperature / top_p / num_beams / seed / max_length: as for
            :class:`SelfTopKExplainer` (default greedy, as in the papers' released code).
        (``loaded``, ``labels``, ``frame``, ``template``, ``**kwargs``: as for :class:`SelfTopKExplainer`)
    """

    name = "self_exp"
    default_template = DEFAULT_EXP_TEMPLATE
    default_max_new_tokens = 96

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        frame: Frame = Frame(),
        *,
        p: int = 3,
        primer: str = "Step 1:",
        **kwargs: Any,
    ) -> None:
        if p < 1:
            raise ValueError(f"p must be at least 1, got {p}.")
        super().__init__(loaded, labels, frame, **kwargs)
        self.p = p
        self.primer = primer

    def _extra_settings(self) -> dict[str, Any]:
        return {**super()._extra_settings(), "p": self.p, "primer": self.primer}

    def build_prompt(self, text: str, target: str) -> str:
        """The prompt that asks for the explanation of ``target`` for ``text`` (primer included)."""
        return self.template.format(p=self.p, **self._fields(text, target)) + self.primer

    def _report(self, texts: list[str], targets: list[str]) -> list[SelfReport]:
        prompts = [self.build_prompt(t, y) for t, y in zip(texts, targets, strict=True)]
        out = []
        for generated in self._generate(prompts, [f"Step {self.p + 1}"]):
            # "Step 2:\nBecause ..." -> "Step 2: Because ...": one line per step.
            body = re.sub(r"(Step \d+:)[ \t]*\n\s*", r"\1 ", generated).strip()
            body = re.sub(r"\s*Step \d+:\s*$", "", body)  # a step announced but not written
            text = f"{self.primer} {body}".strip() if body else ""
            out.append(SelfReport(generated_text=text, info={"generated": generated}))
        return out
