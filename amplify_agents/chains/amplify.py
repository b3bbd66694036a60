"""The AMPLIFY chain: query → demonstrations → prompt → LLM → parsed answer, as one LCEL pipeline.

:func:`create_amplify_chain` composes LangChain runnables (``RunnableLambda``,
``RunnablePassthrough.assign``, ``configurable_alternatives``, ``with_retry``,
``with_fallbacks``), so callbacks, tags and tracing given in ``config`` reach every step, and
``invoke`` / ``ainvoke`` / ``batch`` / ``abatch`` / ``stream`` all work.

The pipeline, with the state dict it passes along::

    {"input": q}                      normalise: a str or a dict, plus the label space
      + demonstrations                selector.select_examples({"input": q})
      + context                       retriever (RAG chains only)
      -> route ("local" | "hosted")   chosen by configurable={"llm": ...}
           + prompt                   text form (base models) or chat form (chat models)
           + completion               the route's LLM
           -> AmplifyResult           answer parsed onto the label space

Streaming yields the final :class:`AmplifyResult` as one chunk (the answer can only be
parsed once the model's text is complete).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.language_models.llms import BaseLLM
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnablePassthrough

from amplify_agents.chains.llms import LabelScoringLLM, cut_at_stops, local_generation_llm
from amplify_agents.chains.result import AmplifyResult
from amplify_agents.chains.routing import HOSTED, LLM_FIELD, LOCAL, switchable, with_retries
from amplify_agents.framing import Frame
from amplify_agents.models.calibration import CONTENT_FREE_INPUTS, CalibrationMethod, pmi_premise
from amplify_agents.models.loading import LoadedModel
from amplify_agents.models.parsing import parse_answer
from amplify_agents.prompts import DemoKeys, build_chat_messages, build_text_prompt

__all__ = [
    "PromptStyle",
    "build_prompt",
    "create_amplify_chain",
    "format_documents",
    "local_llm",
    "parse_completion",
]

PromptForm = Literal["text", "chat"]
LocalMode = Literal["score", "generate"]
DocumentFormatter = Callable[[Sequence[Document]], str]


def format_documents(docs: Sequence[Document]) -> str:
    """Number the documents' texts, one per line: ``[1] ...``."""
    return "\n".join(f"[{i}] {' '.join(doc.page_content.split())}" for i, doc in enumerate(docs, start=1))


@dataclass(frozen=True)
class PromptStyle:
    """How a chain lays out its prompt and reads the answer back.

    Attributes:
        frame: instruction and the text around each input (text form), also used to cut the
            model's continuation before the next question.
        keys: the demo dict keys the selector returns.
        rationale_first: (x, r, y) demonstrations, as in both papers; False gives (x, y, r).
        generate_rationale: text form only: end the prompt after the query so the model
            writes a rationale, then the frame's answer cue and the answer. Default False:
            the prompt ends at the answer cue.
        answer_prefix: chat form: the demos' assistant turns say "<rationale> <answer_prefix>
            <label>"; the reply is read the same way.
        system_message: chat form: put the instruction in a system message (False for chat
            templates without a system role).
        context_header / context_formatter: how retrieved documents are shown (RAG).
    """

    frame: Frame = Frame()
    keys: DemoKeys = DemoKeys()
    rationale_first: bool = True
    generate_rationale: bool = False
    answer_prefix: str = "The answer is "
    system_message: bool = True
    context_header: str = "Context:"
    context_formatter: DocumentFormatter = format_documents

    @property
    def text_stops(self) -> list[str]:
        """Where a text-form continuation ends: where the next question would start."""
        head = self.frame.input_prefix.strip()
        return [f"\n{head}"] if head else []


# -- prompts ----------------------------------------------------------------------------------------


def _history_examples(history: Sequence[BaseMessage], keys: DemoKeys) -> list[dict[str, str]]:
    """Past (user, assistant) turns as answer-only examples for the text form."""
    pairs: list[dict[str, str]] = []
    pending: str | None = None
    for message in history:
        if isinstance(message, HumanMessage):
            pending = message.text
        elif isinstance(message, AIMessage) and pending is not None:
            pairs.append({keys.input: pending, keys.answer: message.text.strip(), keys.rationale: ""})
            pending = None
    return pairs


def build_prompt(state: Mapping[str, Any], form: PromptForm, style: PromptStyle) -> PromptValue:
    """The prompt for one state: query, demonstrations, and (when present) history and context."""
    query = str(state["input"])
    demos = list(state.get("demonstrations") or [])
    history = list(state.get("history") or [])
    context = state.get("context")
    block = f"{style.context_header}\n{style.context_formatter(context)}" if context is not None else None
    if form == "chat":
        messages = build_chat_messages(
            query,
            demos,
            style.frame,
            keys=style.keys,
            answer_prefix=style.answer_prefix,
            system=style.system_message,
        )
        last = messages.pop()
        if block is not None:
            last = HumanMessage(f"{block}\n\n{last.text}")
        return ChatPromptValue(messages=[*messages, *history, last])
    frame = style.frame
    examples = demos + _history_examples(history, style.keys)
    text = build_text_prompt(query, examples, frame, rationale_first=style.rationale_first, keys=style.keys)
    tail = frame.render(query, instruction=False)[0]
    head = text[: len(text) - len(tail)]  # build_text_prompt ends with exactly this tail
    if block is not None:
        head += f"\n{block}"
    if style.generate_rationale:
        tail = f"{frame.input_prefix}{query}\n"
    return StringPromptValue(text=head + tail)


# -- answers ----------------------------------------------------------------------------------------


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

    Text form with ``generate_rationale``: the rationale is what comes before the frame's
    answer cue (e.g. "A:"). Chat form: what comes before the last "The answer is". The answer
    is parsed onto ``labels`` with :func:`~amplify_agents.models.parse_answer` (``None`` if
    unparseable); without labels it is the first line of the answer text.
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
        if found:
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


# -- steps ------------------------------------------------------------------------------------------


def _completion(text: str, info: Mapping[str, Any] | None, model: str | None) -> dict[str, Any]:
    info = dict(info or {})
    return {"text": text, "label_probs": info.get("label_probs"), "model": model or info.get("model_name")}


def _from_llm_result(result: LLMResult) -> dict[str, Any]:
    gen = result.generations[0][0]
    return _completion(gen.text, gen.generation_info, (result.llm_output or {}).get("model_name"))


def _from_output(out: Any) -> dict[str, Any]:
    if isinstance(out, BaseMessage):
        return _completion(out.text, out.response_metadata, out.response_metadata.get("model_name"))
    return _completion(str(out), None, None)


def _calibration_prompts(state: Mapping[str, Any], method: str, form: PromptForm, style: PromptStyle) -> list[str]:
    """The prompts of the label prior for this state: the same prompt (demonstrations, context,
    history) with content-free queries (contextual), or the bare answer prefix (pmi)."""
    if method == "pmi":
        return [pmi_premise(style.frame.output_prefix)]
    return [build_prompt({**state, "input": x}, form, style).to_string() for x in CONTENT_FREE_INPUTS]


def _llm_step(
    llm: Runnable,
    stops: Sequence[str],
    name: str,
    prior_prompts: Callable[[Mapping[str, Any]], list[str]] | None = None,
) -> Runnable[Mapping[str, Any], dict[str, Any]]:
    """Call the route's model on ``state["prompt"]``.

    A ``BaseLLM`` is called through ``generate_prompt`` so its ``generation_info`` (the
    label probabilities of :class:`LabelScoringLLM`) survives; anything else (chat models,
    retry wrappers) through ``invoke``. Callbacks from the config are passed on either way.
    """
    is_llm = isinstance(llm, BaseLLM)
    stop = list(stops) or None

    def llm_kwargs(state: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if isinstance(llm, LabelScoringLLM):
            if state.get("labels"):
                kwargs["labels"] = list(state["labels"])
            if llm.calibration and prior_prompts is not None:
                kwargs["calibration_prompts"] = prior_prompts(state)
        return kwargs

    def run(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        if is_llm:
            result = llm.generate_prompt(  # type: ignore[attr-defined]
                [state["prompt"]], stop=stop, callbacks=config.get("callbacks"), **llm_kwargs(state)
            )
            return _from_llm_result(result)
        return _from_output(llm.invoke(state["prompt"], config))

    async def arun(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        if is_llm:
            result = await llm.agenerate_prompt(  # type: ignore[attr-defined]
                [state["prompt"]], stop=stop, callbacks=config.get("callbacks"), **llm_kwargs(state)
            )
            return _from_llm_result(result)
        return _from_output(await llm.ainvoke(state["prompt"], config))

    return RunnableLambda(run, afunc=arun, name=name)


def _prompt_text(prompt: PromptValue) -> str:
    return prompt.to_string()


def _route(
    name: str,
    llm: Runnable,
    *,
    form: PromptForm,
    style: PromptStyle,
    model_name: str,
    default_route: str,
    stops: Sequence[str],
) -> Runnable[Any, AmplifyResult]:
    """prompt → LLM → AmplifyResult for one model; the result names this route and model."""
    method = getattr(llm, "calibration", None) if isinstance(llm, LabelScoringLLM) else None
    prior_prompts = (lambda state: _calibration_prompts(state, method, form, style)) if method else None

    def finish(state: Mapping[str, Any], config: RunnableConfig) -> AmplifyResult:
        completion = state["completion"]
        text = cut_at_stops(completion["text"], stops)
        rationale, answer = parse_completion(text, state.get("labels"), form, style)
        requested = (config.get("configurable") or {}).get(LLM_FIELD.id, default_route)
        return AmplifyResult(
            answer=answer,
            raw_text=completion["text"],
            rationale=rationale,
            demonstrations=list(state.get("demonstrations") or []),
            label_probs=completion.get("label_probs"),
            model=completion.get("model") or model_name,
            route=name,
            fallback=requested != name,
            prompt=_prompt_text(state["prompt"]),
            context=list(state.get("context") or []),
        )

    return (
        RunnablePassthrough.assign(
            prompt=RunnableLambda(lambda state: build_prompt(state, form, style), name="amplify_prompt")
        )
        | RunnablePassthrough.assign(completion=_llm_step(llm, stops, name=f"{name}_llm", prior_prompts=prior_prompts))
        | RunnableLambda(finish, name="amplify_parse")
    ).with_config(run_name=f"{name}_route")


def _normalize(input_key: str, labels: Sequence[str] | None) -> Callable[[Any], dict[str, Any]]:
    def normalize(value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            state: dict[str, Any] = {"input": value}
        elif isinstance(value, Mapping):
            if input_key not in value:
                raise KeyError(f"The chain's input {sorted(value)} has no {input_key!r} (the query).")
            state = {**value, "input": str(value[input_key])}
        else:
            raise TypeError(f"Expected a query string or a dict with {input_key!r}, got {type(value).__name__}.")
        state["labels"] = list(state.get("labels") or labels or []) or None
        return state

    return normalize


def _select_step(selector: BaseExampleSelector | None) -> Runnable[Mapping[str, Any], list[dict[str, Any]]]:
    key = getattr(selector, "input_key", "input")

    def select(state: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [] if selector is None else list(selector.select_examples({key: state["input"]}))

    async def aselect(state: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [] if selector is None else list(await selector.aselect_examples({key: state["input"]}))

    return RunnableLambda(select, afunc=aselect, name="amplify_select")


def _front(
    selector: BaseExampleSelector | None,
    *,
    input_key: str,
    labels: Sequence[str] | None,
    retriever: BaseRetriever | None = None,
) -> Runnable[Any, dict[str, Any]]:
    """Normalise the input, then retrieve demonstrations (and documents) for the query."""
    steps: dict[str, Runnable] = {"demonstrations": _select_step(selector)}
    if retriever is not None:
        steps["context"] = itemgetter("input") | retriever
    return RunnableLambda(_normalize(input_key, labels), name="amplify_input") | RunnablePassthrough.assign(**steps)


def _form_of(llm: Any) -> PromptForm:
    return "chat" if isinstance(llm, BaseChatModel) else "text"


def _name_of(llm: Any) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


def local_llm(
    local: LoadedModel | BaseLanguageModel,
    *,
    mode: LocalMode = "score",
    labels: Sequence[str] | None = None,
    frame: Frame = Frame(),
    max_new_tokens: int = 16,
    calibration: CalibrationMethod | None = None,
) -> BaseLanguageModel:
    """The LangChain model of the local route.

    A :class:`LoadedModel` becomes a :class:`LabelScoringLLM` (``mode="score"``, needs the
    label space; ``calibration`` makes it subtract a label prior) or a greedy
    ``HuggingFacePipeline`` (``mode="generate"``); a LangChain model is returned unchanged.
    """
    if calibration not in (None, "contextual", "pmi"):
        raise ValueError(f"Unknown calibration {calibration!r}: use None, 'contextual' or 'pmi'.")
    if not isinstance(local, LoadedModel):
        return local
    if mode == "score":
        if not labels:
            raise ValueError('Label scoring needs the label space: pass labels=[...] or use local_mode="generate".')
        return LabelScoringLLM(
            loaded=local, labels=list(labels), label_prefix=frame.label_prefix, calibration=calibration
        )
    if mode == "generate":
        return local_generation_llm(local, max_new_tokens=max_new_tokens)
    raise ValueError(f'Unknown local mode {mode!r}: use "score" or "generate".')


def _routes(
    *,
    local: LoadedModel | BaseLanguageModel | None,
    hosted: BaseLanguageModel | None,
    local_mode: LocalMode,
    labels: Sequence[str] | None,
    style: PromptStyle,
    default_route: str | None,
    hosted_attempts: int,
    retry_on: Sequence[type[BaseException]] | None,
    retry_jitter: bool,
    fallback_to_local: bool,
    max_new_tokens: int,
    calibration: CalibrationMethod | None = None,
) -> Runnable[Mapping[str, Any], AmplifyResult]:
    if local is None and hosted is None:
        raise ValueError("Give a local model (local=...), a hosted one (hosted=...), or both.")
    default = default_route or (LOCAL if local is not None else HOSTED)
    routes: dict[str, Runnable] = {}
    if local is not None:
        llm = local_llm(
            local,
            mode=local_mode,
            labels=labels,
            frame=style.frame,
            max_new_tokens=max_new_tokens,
            calibration=calibration,
        )
        form = _form_of(llm)
        routes[LOCAL] = _route(
            LOCAL,
            llm,
            form=form,
            style=style,
            model_name=_name_of(llm),
            default_route=default,
            stops=style.text_stops if form == "text" else [],
        )
    if hosted is not None:
        form = _form_of(hosted)
        stops = style.text_stops if form == "text" else []
        bound = hosted.bind(stop=stops) if stops else hosted
        route = _route(
            HOSTED,
            with_retries(bound, hosted_attempts, retry_on=retry_on, jitter=retry_jitter),
            form=form,
            style=style,
            model_name=_name_of(hosted),
            default_route=default,
            stops=stops,
        )
        if LOCAL in routes and fallback_to_local:
            route = route.with_fallbacks([routes[LOCAL]])
        routes[HOSTED] = route
    return switchable(routes, default)


def create_amplify_chain(
    selector: BaseExampleSelector | None = None,
    *,
    labels: Sequence[str] | None = None,
    frame: Frame = Frame(),
    local: LoadedModel | BaseLanguageModel | None = None,
    local_mode: LocalMode = "score",
    hosted: BaseLanguageModel | None = None,
    default_route: Literal["local", "hosted"] | None = None,
    hosted_attempts: int = 3,
    retry_on: Sequence[type[BaseException]] | None = None,
    retry_jitter: bool = True,
    fallback_to_local: bool = True,
    max_new_tokens: int = 16,
    calibration: CalibrationMethod | None = None,
    generate_rationale: bool = False,
    rationale_first: bool = True,
    answer_prefix: str = "The answer is ",
    system_message: bool = True,
    keys: DemoKeys | None = None,
    input_key: str = "input",
    retriever: BaseRetriever | None = None,
    context_header: str = "Context:",
    context_formatter: DocumentFormatter = format_documents,
) -> Runnable[str | dict[str, Any], AmplifyResult]:
    """Build the AMPLIFY chain: few-shot demonstrations with rationales, retrieved per query.

    Args:
        selector: gives the demonstrations for each query (e.g. an
            :class:`~amplify_agents.selectors.AmplifyExampleSelector`); ``None`` for zero-shot.
        labels: the label space; answers are parsed onto it (a dict input may carry its own
            ``"labels"``). Required for local label scoring.
        frame: the prompt's instruction and the text around each input.
        local: the local model: a :class:`LoadedModel` (base models use the text form) or any
            LangChain LLM / chat model.
        local_mode: for a :class:`LoadedModel`: ``"score"`` (default) scores each label and
            gives ``label_probs``; ``"generate"`` generates greedily through
            ``HuggingFacePipeline`` and parses the text.
        hosted: the hosted model: ``ChatOpenAI`` (chat form) or ``OpenAI`` (completions, text
            form), or any LangChain model. Give it ``max_retries=0``: retries happen here.
        default_route: the route without configuration (``"local"`` when there is a local
            model). Switch with ``chain.with_config(configurable={"llm": "hosted"})``.
        hosted_attempts: ``with_retry(stop_after_attempt=...)`` on the hosted model, for
            connection errors, timeouts, 5xx and 429.
        retry_on: other exception types to retry on.
        retry_jitter: exponential back-off with jitter between attempts (off: no wait).
        fallback_to_local: when the hosted route still fails, the local route answers
            (``result.route == "local"``, ``result.fallback is True``).
        max_new_tokens: generation length of the local ``"generate"`` mode.
        calibration: local ``"score"`` mode: ``"contextual"`` divides out the label
            distribution the same prompt (same demonstrations) gives content-free queries
            ("N/A", "", "[MASK]"; Zhao et al., 2021), ``"pmi"`` subtracts the labels'
            log-probabilities after the bare answer prefix. The prior's prompts are scored in
            the same call as the query (they share its demonstration prefix), so the cost is
            small; ``result.label_probs`` are calibrated and the generation info keeps the raw
            ones. Off by default: see benchmarks/RESULTS.md for where it helps.
        generate_rationale: text form: let the model write a rationale before the answer.
        rationale_first: (x, r, y) demonstrations (the papers' order); False for (x, y, r).
        answer_prefix: chat form: "The answer is " before each demo's label.
        system_message: chat form: the instruction as a system message.
        keys: the selector's demo keys (default: the selector's ``keys`` or
            input/rationale/answer).
        input_key: the key of the query in a dict input.
        retriever: documents to show as context (see :mod:`amplify_agents.chains.rag`).
        context_header / context_formatter: how those documents are shown.

    Returns:
        A runnable taking a query string or ``{"input": query, "labels"?: [...]}`` and returning
        an :class:`AmplifyResult`. ``stream`` yields that result as one chunk.

    Example:
        .. code-block:: python

            selector = AmplifyExampleSelector(store, k=4, task="sports_understanding")
            chain = create_amplify_chain(
                selector,
                labels=["plausible", "implausible"],
                frame=Frame.from_task(task),
                local=load_causal_lm("gemma-3-270m"),
                hosted=ChatOpenAI(base_url=url, api_key=key, model=name, max_retries=0),
            )
            result = chain.invoke("Joao Moutinho caught the screen pass in the NFC championship.")
            result.answer, result.label_probs, result.model
            hosted = chain.with_config(configurable={"llm": "hosted"}).invoke(query)
    """
    style = PromptStyle(
        frame=frame,
        keys=keys or getattr(selector, "keys", None) or DemoKeys(),
        rationale_first=rationale_first,
        generate_rationale=generate_rationale,
        answer_prefix=answer_prefix,
        system_message=system_message,
        context_header=context_header,
        context_formatter=context_formatter,
    )
    router = _routes(
        local=local,
        hosted=hosted,
        local_mode=local_mode,
        labels=labels,
        style=style,
        default_route=default_route,
        hosted_attempts=hosted_attempts,
        retry_on=retry_on,
        retry_jitter=retry_jitter,
        fallback_to_local=fallback_to_local,
        max_new_tokens=max_new_tokens,
        calibration=calibration,
    )
    front = _front(selector, input_key=input_key, labels=labels, retriever=retriever)
    name = "AmplifyRAGChain" if retriever is not None else "AmplifyChain"
    return (front | router).with_config(run_name=name)
