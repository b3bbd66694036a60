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
parsed once the model's text is complete). The result is an ``AIMessage`` (content: the answer
text), so ``chain | StrOutputParser()`` gives the answer text; the chain declares its input and
output schemas (``chain.as_tool()``, ``get_input_jsonschema()``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any, Literal

from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.language_models.llms import BaseLLM
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnablePassthrough, RunnableSequence
from pydantic import BaseModel, Field, create_model

from amplify_agents.answering.answerer import parse_completion, prior_prompts
from amplify_agents.answering.langchain_model import langchain_reply, model_name_of
from amplify_agents.answering.openai_compat import TOP_LOGPROBS, Endpoint
from amplify_agents.chains.llms import LabelScoringLLM, local_generation_llm
from amplify_agents.chains.result import AmplifyResult
from amplify_agents.chains.routing import HOSTED, LLM_FIELD, LOCAL, RouteSettings, switchable
from amplify_agents.demonstrations import DemoKeys
from amplify_agents.framing import Frame
from amplify_agents.models.calibration import CalibrationMethod
from amplify_agents.models.generation import cut_at_stops
from amplify_agents.models.loading import LoadedModel
from amplify_agents.prompts import PromptForm, PromptStyle, format_documents
from amplify_agents.prompts import build_prompt as build_any_prompt

__all__ = [
    "PromptStyle",
    "RouteSettings",
    "build_prompt",
    "chain_input_schema",
    "chain_style",
    "create_amplify_chain",
    "format_documents",
    "local_llm",
    "parse_completion",
]

LocalMode = Literal["score", "generate"]


def build_prompt(state: Mapping[str, Any], form: PromptForm, style: PromptStyle) -> PromptValue:
    """The prompt for one chain state (query, demonstrations, history, context), from the one
    prompt builder :func:`amplify_agents.prompts.build_prompt`, as a LangChain prompt value."""
    prompt = build_any_prompt(
        str(state["input"]),
        list(state.get("demonstrations") or []),
        style,
        form=form,
        history=list(state.get("history") or []),
        context=state.get("context"),
    )
    if isinstance(prompt, str):
        return StringPromptValue(text=prompt)
    return ChatPromptValue(messages=prompt)


# -- steps ------------------------------------------------------------------------------------------


def _completion(text: str, output: Any, info: Mapping[str, Any] | None, model: str | None) -> dict[str, Any]:
    """What the route's model gave: its text, the output itself (a message or a ``Generation``,
    read for top log-probabilities) and, from a label-scoring LLM, its label probabilities."""
    info = dict(info or {})
    completion: dict[str, Any] = {"text": text, "output": output, "model": model or info.get("model_name")}
    if "label_probs" in info:  # a LabelScoringLLM's generation: the labels were scored
        completion["label_probs"] = info["label_probs"]
        completion["outside_top_k"] = list(info.get("outside_top_k") or [])
    return completion


def _answer_cue(form: PromptForm, style: PromptStyle) -> str:
    """Where the answer starts in a reply: a chat reply's answer cue ("The answer is"), a text
    reply's output cue after a generated rationale; else its start (the prompt ends at the cue)."""
    if form == "chat":
        return style.answer_prefix
    return style.frame.output_prefix if style.generate_rationale else ""


def _label_reading(
    completion: Mapping[str, Any], labels: Sequence[str] | None, form: PromptForm, style: PromptStyle
) -> tuple[dict[str, float] | None, str | None, list[str]]:
    """(label probabilities, the label they pick, labels outside the top-k) of a completion.

    A scoring LLM gives the probabilities; otherwise they are read off the top log-probabilities
    the model returned, by the answering path's reader
    (:func:`~amplify_agents.answering.langchain_model.langchain_reply`). When there are none, or
    every label lies outside the returned top-k, the probabilities are ``None`` and the reply's
    text decides, as on the answering path (:meth:`~amplify_agents.answering.Reply.readable`).
    """
    if "label_probs" in completion:
        return completion["label_probs"], None, list(completion.get("outside_top_k") or [])
    if not labels:
        return None, None, []
    reply = langchain_reply(completion["output"], labels, _answer_cue(form, style))
    if reply.scores is None or not reply.readable(labels):
        return None, None, list(reply.outside_top_k)
    return reply.scores.probs, reply.scores.predicted, list(reply.outside_top_k)


def _from_llm_result(result: LLMResult) -> dict[str, Any]:
    gen = result.generations[0][0]
    return _completion(gen.text, gen, gen.generation_info, (result.llm_output or {}).get("model_name"))


def _from_output(out: Any) -> dict[str, Any]:
    if isinstance(out, BaseMessage):
        return _completion(out.text, out, None, out.response_metadata.get("model_name"))
    return _completion(str(out), out, None, None)


def _calibration_prompts(state: Mapping[str, Any], method: str, form: PromptForm, style: PromptStyle) -> list[str]:
    """The prompts of the label prior for this state (the answering path's :func:`prior_prompts`
    around this state's demonstrations, context and history)."""
    build = lambda x: build_prompt({**state, "input": x}, form, style).to_string()  # noqa: E731
    return [str(p) for p in prior_prompts(method, build, style)]


def _llm_step(
    llm: Runnable,
    stops: Sequence[str],
    name: str,
    prior_prompts: Callable[[Mapping[str, Any]], list[str]] | None = None,
    call_kwargs: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> Runnable[Mapping[str, Any], dict[str, Any]]:
    """Call the route's model on ``state["prompt"]``.

    A ``BaseLLM`` is called through ``generate_prompt`` so its ``generation_info`` (the
    label probabilities of :class:`LabelScoringLLM`, an ``OpenAI`` model's log-probabilities)
    survives; anything else (chat models, runnables) through ``invoke``. ``call_kwargs(state)``
    go to the model with the call (e.g. ``logprobs``). Callbacks from the config are passed on either way.
    """
    is_llm = isinstance(llm, BaseLLM)
    stop = list(stops) or None

    def extra(state: Mapping[str, Any]) -> dict[str, Any]:
        return dict(call_kwargs(state)) if call_kwargs is not None else {}

    def llm_kwargs(state: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = extra(state)
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
        return _from_output(llm.invoke(state["prompt"], config, **extra(state)))

    async def arun(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        if is_llm:
            result = await llm.agenerate_prompt(  # type: ignore[attr-defined]
                [state["prompt"]], stop=stop, callbacks=config.get("callbacks"), **llm_kwargs(state)
            )
            return _from_llm_result(result)
        return _from_output(await llm.ainvoke(state["prompt"], config, **extra(state)))

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
    call_kwargs: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    retry: Callable[[Runnable], Runnable] | None = None,
) -> Runnable[Any, AmplifyResult]:
    """prompt → LLM → AmplifyResult for one model; the result names this route and model.

    ``call_kwargs(state)`` go to the model with each call; ``retry`` wraps the model's step.
    """
    method = getattr(llm, "calibration", None) if isinstance(llm, LabelScoringLLM) else None
    prior_prompts = (lambda state: _calibration_prompts(state, method, form, style)) if method else None

    def finish(state: Mapping[str, Any], config: RunnableConfig) -> AmplifyResult:
        completion = state["completion"]
        text = cut_at_stops(completion["text"], stops)
        rationale, answer = parse_completion(text, state.get("labels"), form, style)
        label_probs, scored, outside = _label_reading(completion, state.get("labels"), form, style)
        requested = (config.get("configurable") or {}).get(LLM_FIELD.id, default_route)
        return AmplifyResult(
            answer=scored or answer,  # read label scores pick the label, as on the answering path
            raw_text=completion["text"],
            rationale=rationale,
            demonstrations=list(state.get("demonstrations") or []),
            label_probs=label_probs,
            outside_top_k=outside,
            model=completion.get("model") or model_name,
            route=name,
            fallback=requested != name,
            prompt=_prompt_text(state["prompt"]),
            context=list(state.get("context") or []),
        )

    step: Runnable = _llm_step(llm, stops, name=f"{name}_llm", prior_prompts=prior_prompts, call_kwargs=call_kwargs)
    return (
        RunnablePassthrough.assign(
            prompt=RunnableLambda(lambda state: build_prompt(state, form, style), name="amplify_prompt")
        )
        | RunnablePassthrough.assign(completion=retry(step) if retry is not None else step)
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


def chain_input_schema(input_key: str = "input") -> type[BaseModel]:
    """The input schema of a chain whose query is under ``input_key``: the query (a string) and,
    optionally, the query's own label space. Tools (``chain.as_tool()``) and
    ``chain.get_input_jsonschema()`` read it; the chain also takes the query as a bare string."""
    if not input_key.isidentifier() or input_key.startswith("_") or input_key == "labels":
        raise ValueError(
            f"input_key {input_key!r} cannot name the query field: use a Python identifier such as 'input' or "
            "'question' (not 'labels', not starting with '_')."
        )
    fields: dict[str, Any] = {
        input_key: (str, Field(description="The query to answer.")),
        "labels": (
            list[str] | None,
            Field(default=None, description="This query's own label space (default: the chain's labels)."),
        ),
    }
    return create_model(  # type: ignore[call-overload, no-any-return]
        "AmplifyChainInput",
        __doc__="A query for an AMPLIFY chain.",
        **fields,
    )


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


_name_of = model_name_of


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


def _hosted_model(hosted: Any, labels: Sequence[str] | None, style: PromptStyle) -> BaseLanguageModel:
    """The hosted route's LangChain model: an :class:`~amplify_agents.answering.Endpoint` with the
    completions API becomes a label-scoring LLM over it (label probabilities from the server's
    log-probabilities), with the chat API a ``ChatOpenAI``; a LangChain model is kept."""
    from amplify_agents.answering import open_endpoint

    if not isinstance(hosted, Endpoint):
        return hosted
    if hosted.api == "chat":
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        return ChatOpenAI(
            base_url=hosted.base_url,
            model=hosted.model,
            api_key=SecretStr(hosted.api_key()),
            timeout=hosted.timeout,
            # The openai client retries 408/409/429/5xx and honours Retry-After, which
            # LangChain's with_retry does not; the endpoint's attempts are its retries.
            max_retries=hosted.attempts - 1,
        )
    if not labels:
        raise ValueError("A completions Endpoint as the hosted model scores labels: pass labels=[...].")
    return LabelScoringLLM(backend=open_endpoint(hosted), labels=list(labels), label_prefix=style.frame.label_prefix)


def _logprob_kwargs(model: Any) -> dict[str, Any]:
    """What to ask an OpenAI model for so that the label probabilities can be read off its reply:
    top log-probabilities, as many as the model's own ``top_logprobs`` (``ChatOpenAI``) or
    ``logprobs`` (``OpenAI``) say, else the answering path's default
    (:data:`~amplify_agents.answering.openai_compat.TOP_LOGPROBS`, 20: OpenAI's own completions API
    allows 5, so set ``OpenAI(logprobs=5)`` there). Nothing for other models, or for a
    ``ChatOpenAI(logprobs=False)``."""
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
        from langchain_openai.llms.base import BaseOpenAI
    except ImportError:  # pragma: no cover - langchain-openai is a dependency
        return {}
    if isinstance(model, BaseChatOpenAI) and model.logprobs is not False:
        return {"logprobs": True, "top_logprobs": model.top_logprobs or TOP_LOGPROBS}
    if isinstance(model, BaseOpenAI):
        return {"logprobs": model.logprobs or TOP_LOGPROBS}
    return {}


def _stops_for(form: PromptForm, style: PromptStyle) -> list[str]:
    """Where a completion ends: the text form stops where the next question would start."""
    return style.text_stops if form == "text" else []


def _model_route(
    name: str, llm: BaseLanguageModel, style: PromptStyle, default: str
) -> Runnable[Mapping[str, Any], AmplifyResult]:
    """A route straight over ``llm`` (the local route; the chatbot's only route)."""
    form = _form_of(llm)
    stops = _stops_for(form, style)
    return _route(name, llm, form=form, style=style, model_name=_name_of(llm), default_route=default, stops=stops)


def _hosted_route(
    hosted: BaseLanguageModel | Endpoint,
    labels: Sequence[str] | None,
    style: PromptStyle,
    default: str,
    routing: RouteSettings,
) -> Runnable[Mapping[str, Any], AmplifyResult]:
    """The hosted route: the model asked for top log-probabilities (label probabilities off its
    reply), with stops, behind retries."""
    model = _hosted_model(hosted, labels, style)
    form = _form_of(model)
    stops = _stops_for(form, style)
    if isinstance(model, Runnable) and not isinstance(model, BaseLanguageModel) and stops:
        model = model.bind(stop=stops)  # any other runnable: stops as a bound argument
    # A scoring LLM over an endpoint retries inside its backend; a chat Endpoint inside the openai
    # client (it honours Retry-After); any other model gets LangChain's with_retry around its call.
    retry = None if isinstance(model, LabelScoringLLM) or isinstance(hosted, Endpoint) else routing.retrying
    asks = _logprob_kwargs(model)
    return _route(
        HOSTED,
        model,
        form=form,
        style=style,
        model_name=_name_of(model),
        default_route=default,
        stops=stops,
        call_kwargs=lambda state: asks if state.get("labels") else {},  # a call with a label space
        retry=retry,
    )


def _routes(
    local: BaseLanguageModel | None,
    hosted: BaseLanguageModel | Endpoint | None,
    labels: Sequence[str] | None,
    style: PromptStyle,
    routing: RouteSettings,
) -> Runnable[Mapping[str, Any], AmplifyResult]:
    if local is None and hosted is None:
        raise ValueError("Give a local model (local=...), a hosted one (hosted=...), or both.")
    default = routing.default_route or (LOCAL if local is not None else HOSTED)
    routes: dict[str, Runnable] = {}
    if local is not None:
        routes[LOCAL] = _model_route(LOCAL, local, style, default)
    if hosted is not None:
        route = _hosted_route(hosted, labels, style, default, routing)
        if LOCAL in routes and routing.fallback_to_local:
            route = route.with_fallbacks([routes[LOCAL]])
        routes[HOSTED] = route
    return switchable(routes, default)


def chain_style(selector: Any, frame: Frame | None = None, style: PromptStyle | None = None) -> PromptStyle:
    """The prompt style of a chain over ``selector``: ``style``, or one built from ``frame``.

    The frame is given once: as ``frame=`` or inside ``style=`` (both only when they agree). A style
    with the default demo keys takes the selector's ``keys``, so the selector and the chain agree on
    what a demonstration dict holds.
    """
    if style is None:
        style = PromptStyle(frame=frame if frame is not None else Frame())
    elif frame is not None and frame != style.frame:
        raise ValueError("Give the frame once: frame=... or style=PromptStyle(frame=...), not two different ones.")
    selector_keys = getattr(selector, "keys", None)
    if selector_keys and style.keys == DemoKeys():
        style = replace(style, keys=selector_keys)
    return style


def create_amplify_chain(
    selector: BaseExampleSelector | None = None,
    *,
    labels: Sequence[str] | None = None,
    frame: Frame | None = None,
    local: LoadedModel | BaseLanguageModel | None = None,
    hosted: BaseLanguageModel | Endpoint | None = None,
    style: PromptStyle | None = None,
    routing: RouteSettings = RouteSettings(),
    local_mode: LocalMode = "score",
    calibration: CalibrationMethod | None = None,
    max_new_tokens: int = 16,
    retriever: BaseRetriever | None = None,
    input_key: str = "input",
) -> Runnable[str | dict[str, Any], AmplifyResult]:
    """Build the AMPLIFY chain: few-shot demonstrations with rationales, retrieved per query.

    Args:
        selector: gives the demonstrations for each query (e.g. an
            :class:`~amplify_agents.selectors.AmplifyExampleSelector`); ``None`` for zero-shot.
        labels: the label space; answers are parsed onto it (a dict input may carry its own
            ``"labels"``). Required for local label scoring.
        frame: the prompt's instruction and the text around each input (default ``Frame()``);
            shorthand for ``style=PromptStyle(frame=frame)``.
        local: the local model: a :class:`LoadedModel` (base models use the text form) or any
            LangChain LLM / chat model.
        hosted: the hosted model (``max_retries=0``: retries happen here): an
            :class:`~amplify_agents.answering.Endpoint`, a ``ChatOpenAI`` (chat form), an ``OpenAI``
            (text form; ``max_tokens`` enough to spell the labels) or any LangChain model. With a
            label space, ``label_probs`` is read off the reply's top log-probabilities (labels
            outside them in ``outside_top_k``).
        style: the prompt layout, as the answering path takes it (:class:`~amplify_agents.prompts.PromptStyle`:
            frame, demo keys, (x, r, y) or (x, y, r), ``generate_rationale``, the chat form's
            ``answer_prefix`` and ``system_message``, the RAG context's layout). Default keys: the selector's.
        routing: the default route, the hosted model's retries and the fallback to the local
            route (:class:`~amplify_agents.chains.routing.RouteSettings`).
        local_mode: for a :class:`LoadedModel`: ``"score"`` (default) scores each label (``label_probs``);
            ``"generate"`` generates greedily (``HuggingFacePipeline``) and parses the text.
        calibration: local ``"score"`` mode: ``"contextual"`` or ``"pmi"`` divide out a label prior
            (:mod:`amplify_agents.models.calibration`); the generation info keeps the raw probabilities.
        max_new_tokens: generation length of the local ``"generate"`` mode.
        retriever: documents to show as context (see :mod:`amplify_agents.chains.rag`).
        input_key: the key of the query in a dict input (a Python identifier, not ``"labels"``).

    Returns:
        A runnable from a query string or ``{input_key: query, "labels"?: [...]}`` to an
        :class:`AmplifyResult` (an ``AIMessage`` whose content is the answer text), with typed
        input (:func:`chain_input_schema`) and output schemas: ``chain | StrOutputParser()`` and
        ``chain.as_tool()`` work as they do for a chat model.

    Example:
        .. code-block:: python

            chain = create_amplify_chain(
                AmplifyExampleSelector(store, k=4, task="sports_understanding"),
                labels=["plausible", "implausible"],
                frame=Frame.from_task(task),
                local=load_causal_lm("gemma-3-270m"),
                hosted=ChatOpenAI(base_url=url, api_key=key, model=name, max_retries=0),
                routing=RouteSettings(hosted_attempts=2),
            )
            hosted = chain.with_config(configurable={"llm": "hosted"}).invoke(query)
    """
    style = chain_style(selector, frame, style)
    local_model = None
    if local is not None:
        local_model = local_llm(
            local,
            mode=local_mode,
            labels=labels,
            frame=style.frame,
            calibration=calibration,
            max_new_tokens=max_new_tokens,
        )
    input_type = chain_input_schema(input_key)
    router = _routes(local_model, hosted, labels, style, routing)
    front = _front(selector, input_key=input_key, labels=labels, retriever=retriever)
    name = "AmplifyRAGChain" if retriever is not None else "AmplifyChain"
    pipeline: RunnableSequence = RunnableSequence(front, router, name=name)
    return pipeline.with_types(input_type=input_type, output_type=AmplifyResult).with_config(run_name=name)
