"""AMPLIFY / Self-AMPLIFY prompt layouts: instruction, demonstrations, then the query.

Each demonstration is laid out (x, y, r), the rationale after the answer (the library's default,
:data:`~amplify_agents.defaults.DEFAULTS`, chosen on validation in issue 16), or (x, r, y) as in
both papers (``rationale_first=True``).

Two forms of the same content:

* **text** (base models, completion endpoints): one string, built by
  :func:`build_text_prompt` or, inside LangChain, by the ``FewShotPromptTemplate``
  from :func:`few_shot_text_template`;
* **chat** (chat models): user/assistant turns as in Self-AMPLIFY A.3, built by
  :func:`build_chat_messages` or :func:`few_shot_chat_template`.

A local chat model can have its answer prefilled ("The answer is (") with
:func:`render_chat_with_prefill`, which renders the tokenizer's chat template to a
string (LangChain's ``ChatHuggingFace`` needs the last message to be the user's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)

from amplify_agents.defaults import DEFAULTS
from amplify_agents.demonstrations import DemoKeys
from amplify_agents.framing import Frame

__all__ = [
    "DemoKeys",
    "Ending",
    "PromptStyle",
    "build_prompt",
    "format_documents",
    "build_text_prompt",
    "build_chat_messages",
    "few_shot_text_template",
    "few_shot_chat_template",
    "render_chat_with_prefill",
]


def _escape(text: str) -> str:
    """Escape braces so framing text is literal inside an f-string prompt template."""
    return text.replace("{", "{{").replace("}", "}}")


Ending = Literal["answer", "rationale"]
"""Where a prompt ends: at the answer cue (the label comes next) or where the query's own
rationale starts (the model writes it, then the answer cue)."""


def build_text_prompt(
    query: str,
    demos: Sequence[Mapping[str, Any]],
    frame: Frame = Frame(),
    *,
    rationale_first: bool = DEFAULTS.rationale_first,
    keys: DemoKeys = DemoKeys(),
    ending: Ending = "answer",
    context: str | None = None,
) -> str:
    """The text prompt: instruction, each demonstration, an optional context block, then the query.

    ``rationale_first`` puts each demo's rationale before its answer, (x, r, y), as in
    both papers; False gives (x, y, r); default: the library's. ``ending="answer"`` ends with the frame's answer cue
    (the label comes next); ``ending="rationale"`` ends after the query and a newline, where
    the query's rationale starts. ``context`` (retrieved documents, already formatted) goes
    on its own line before the query.
    """
    parts = [frame.instruction]
    for demo in demos:
        parts.append(
            frame.demo(
                str(demo[keys.input]),
                str(demo[keys.answer]),
                str(demo.get(keys.rationale) or ""),
                rationale_first=rationale_first,
            )
            + "\n"
        )
    if context is not None:
        parts.append(f"\n{context}")
    if ending == "answer":
        parts.append(frame.render(query, instruction=False)[0])
    elif ending == "rationale":
        rendered, (_, end) = frame.render(query, instruction=False)
        parts.append(rendered[:end] + "\n")  # the query as render lays it out (cue lines folded)
    else:
        raise ValueError(f"Unknown prompt ending {ending!r}: use 'answer' or 'rationale'.")
    return "".join(parts)


def few_shot_text_template(
    frame: Frame = Frame(),
    *,
    examples: Sequence[Mapping[str, Any]] | None = None,
    example_selector: BaseExampleSelector | None = None,
    rationale_first: bool = DEFAULTS.rationale_first,
    keys: DemoKeys = DemoKeys(),
    query_key: str = "input",
) -> FewShotPromptTemplate:
    """A LangChain ``FewShotPromptTemplate`` producing exactly :func:`build_text_prompt`'s text.

    Pass fixed ``examples`` or an ``example_selector`` (e.g. :class:`AmplifyExampleSelector`).
    Demonstrations without a rationale render as plain (x, y).

    User text renders verbatim: a plain ``FewShotPromptTemplate`` joins the formatted
    demonstrations into a new template and formats it again, so a demonstration holding
    ``{x}`` raises ``KeyError`` and one holding ``{{`` loses a brace. This one lays the
    text out with :func:`build_text_prompt` (through :class:`Frame`, which also folds cue
    lines) and formats nothing twice.
    """
    ip, op = _escape(frame.input_prefix), _escape(frame.output_prefix)
    # The template string only declares the demo's variables (FewShotPromptTemplate
    # passes just those); the text itself comes from Frame.demo, as in build_text_prompt.
    example_prompt = _FrameDemoPrompt(
        template=f"{{{keys.input}}}{{{keys.rationale}}}{{{keys.answer}}}",
        input_variables=sorted({keys.input, keys.rationale, keys.answer}),  # what the template would give
        frame=frame,
        keys=keys,
        rationale_first=rationale_first,
    )
    return _FrameFewShotPrompt(
        examples=[dict(e) for e in examples] if examples is not None else None,
        example_selector=example_selector,
        example_prompt=example_prompt,
        prefix=_escape(frame.instruction),
        suffix=f"{ip}{{{query_key}}}{op}",
        example_separator="",
        input_variables=[query_key],
        frame=frame,
        keys=keys,
        rationale_first=rationale_first,
        query_key=query_key,
    )


class _FrameFewShotPrompt(FewShotPromptTemplate):
    """A ``FewShotPromptTemplate`` whose text is :func:`build_text_prompt`'s, user text never re-parsed.

    ``prefix``, ``suffix`` and ``example_prompt`` stay set (what LangChain tooling shows);
    the formatting itself does not pass the demonstrations or the query through a template.
    """

    frame: Frame
    keys: DemoKeys
    rationale_first: bool = DEFAULTS.rationale_first
    query_key: str = "input"

    def format(self, **kwargs: Any) -> str:
        kwargs = self._merge_partial_and_user_variables(**kwargs)
        return self._lay_out(kwargs, self._get_examples(**kwargs))

    async def aformat(self, **kwargs: Any) -> str:
        kwargs = self._merge_partial_and_user_variables(**kwargs)
        return self._lay_out(kwargs, await self._aget_examples(**kwargs))

    def _lay_out(self, kwargs: Mapping[str, Any], examples: Sequence[Mapping[str, Any]]) -> str:
        return build_text_prompt(
            str(kwargs[self.query_key]), examples, self.frame, rationale_first=self.rationale_first, keys=self.keys
        )


class _FrameDemoPrompt(PromptTemplate):
    """Formats one demonstration with :meth:`Frame.demo` (rationale shown only when present)."""

    frame: Frame
    keys: DemoKeys
    rationale_first: bool = DEFAULTS.rationale_first

    def format(self, **kwargs: Any) -> str:
        return (
            self.frame.demo(
                str(kwargs[self.keys.input]),
                str(kwargs[self.keys.answer]),
                str(kwargs.get(self.keys.rationale) or ""),
                rationale_first=self.rationale_first,
            )
            + "\n"
        )


def _assistant_text(demo: Mapping[str, Any], keys: DemoKeys, answer_prefix: str, rationale_first: bool) -> str:
    """A demo's assistant turn: "<rationale> <answer_prefix><label>", or with the rationale after
    the answer, "<answer_prefix><label>" and the rationale on the next line."""
    rationale = str(demo.get(keys.rationale) or "").strip()
    answer = f"{answer_prefix}{demo[keys.answer]}"
    if not rationale:
        return answer
    return f"{rationale} {answer}" if rationale_first else f"{answer}\n{rationale}"


def build_chat_messages(
    query: str,
    demos: Sequence[Mapping[str, Any]],
    frame: Frame = Frame(),
    *,
    keys: DemoKeys = DemoKeys(),
    answer_prefix: str = "The answer is ",
    system: bool = True,
    rationale_first: bool = DEFAULTS.rationale_first,
) -> list[BaseMessage]:
    """Chat form (Self-AMPLIFY A.3): each demo is a user turn (the input) and an
    assistant turn (rationale, then "The answer is <label>"; with ``rationale_first=False``
    the answer, then the rationale on its own line); the query is the last user turn.

    With ``system=False`` the instruction is put in front of the first user turn instead
    (for chat templates that reject a system role, such as Gemma's).
    """
    messages: list[BaseMessage] = []
    instruction = frame.instruction.strip()
    if instruction and system:
        messages.append(SystemMessage(instruction))
    for i, demo in enumerate(demos):
        text = str(demo[keys.input])
        if i == 0 and instruction and not system:
            text = f"{instruction}\n\n{text}"
        messages.append(HumanMessage(text))
        messages.append(AIMessage(_assistant_text(demo, keys, answer_prefix, rationale_first)))
    last = query if (demos or not instruction or system) else f"{instruction}\n\n{query}"
    messages.append(HumanMessage(last))
    return messages


def few_shot_chat_template(
    frame: Frame = Frame(),
    *,
    examples: Sequence[Mapping[str, Any]] | None = None,
    example_selector: BaseExampleSelector | None = None,
    keys: DemoKeys = DemoKeys(),
    answer_prefix: str = "The answer is ",
    query_key: str = "input",
    rationale_first: bool = DEFAULTS.rationale_first,
) -> ChatPromptTemplate:
    """A ``ChatPromptTemplate`` with a ``FewShotChatMessagePromptTemplate`` inside.

    The demo's assistant turn is "{rationale} The answer is {answer}" (with
    ``rationale_first=False``: "The answer is {answer}", then the rationale on the next line);
    a demo without a rationale shows only the answer.
    """
    cue = f"{_escape(answer_prefix)}{{{keys.answer}}}"
    reply = f"{{{keys.rationale}}} {cue}" if rationale_first else f"{cue}\n{{{keys.rationale}}}"
    example_prompt = ChatPromptTemplate.from_messages([("human", f"{{{keys.input}}}"), ("ai", reply)])
    few_shot = FewShotChatMessagePromptTemplate(
        examples=[dict(e) for e in examples] if examples is not None else None,
        example_selector=example_selector,
        example_prompt=example_prompt,
        input_variables=[query_key],
    )
    messages: list[Any] = []
    if frame.instruction.strip():
        messages.append(("system", _escape(frame.instruction.strip())))
    messages += [few_shot, ("human", f"{{{query_key}}}")]
    return ChatPromptTemplate.from_messages(messages)


_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def render_chat_with_prefill(tokenizer: Any, messages: Sequence[BaseMessage], prefill: str = "The answer is (") -> str:
    """Render ``messages`` with the tokenizer's chat template and open an assistant turn
    that starts with ``prefill``, as a plain string for a local model.

    Raises:
        ValueError: the tokenizer has no chat template (base models): use the text form.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "This tokenizer has no chat template (a base model): build a text prompt with "
            "build_text_prompt() instead of a chat prompt."
        )
    turns = [{"role": _ROLES.get(m.type, m.type), "content": str(m.content)} for m in messages]
    rendered = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return rendered + prefill


# -- one prompt for every caller ------------------------------------------------------------------
PromptForm = Literal["text", "chat"]
DocumentFormatter = Callable[[Sequence[Document]], str]


def format_documents(docs: Sequence[Document]) -> str:
    """Number the documents' texts, one per line: ``[1] ...``."""
    return "\n".join(f"[{i}] {' '.join(doc.page_content.split())}" for i, doc in enumerate(docs, start=1))


@dataclass(frozen=True)
class PromptStyle:
    """How a prompt is laid out and its answer read back; shared by the chains and the answering path.

    Attributes:
        frame: instruction and the text around each input (text form); also where a text
            continuation ends (the next question's cue).
        keys: the demo dict keys (what the example selector returns).
        rationale_first: (x, r, y) demonstrations, as in both papers; False gives (x, y, r), in
            text and chat form. Default: the library's (:data:`~amplify_agents.defaults.DEFAULTS`).
        generate_rationale: text form: end the prompt after the query so the model writes a
            rationale, then the frame's answer cue and the answer (the demonstrations are then
            laid out (x, r, y) whatever ``rationale_first`` says). Default False: the prompt
            ends at the answer cue.
        answer_prefix: chat form: the demos' assistant turns say "<rationale> <answer_prefix>
            <label>"; the reply is read the same way.
        system_message: chat form: the instruction in a system message (False for chat
            templates without a system role).
        context_header / context_formatter: how retrieved documents are shown (RAG).
    """

    frame: Frame = Frame()
    keys: DemoKeys = DemoKeys()
    rationale_first: bool = DEFAULTS.rationale_first
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


def build_prompt(
    query: str,
    demos: Sequence[Mapping[str, Any]],
    style: PromptStyle = PromptStyle(),
    *,
    form: PromptForm = "text",
    history: Sequence[BaseMessage] = (),
    context: Sequence[Document] | None = None,
    ending: Ending | None = None,
) -> str | list[BaseMessage]:
    """The one prompt builder: query, demonstrations, and (when present) history and context.

    Text form: a string (:func:`build_text_prompt`), ending as ``ending`` says (default: at the
    rationale when ``style.generate_rationale``, else at the answer cue); past turns
    become answer-only demonstrations. Chat form: messages (:func:`build_chat_messages`), the
    history before the last user turn and the context block inside it; a chat prompt always
    ends with the user's turn (the model writes any rationale, then ``answer_prefix``).
    """
    block = f"{style.context_header}\n{style.context_formatter(context)}" if context is not None else None
    if form == "chat":
        messages = build_chat_messages(
            query,
            demos,
            style.frame,
            keys=style.keys,
            answer_prefix=style.answer_prefix,
            system=style.system_message,
            rationale_first=style.rationale_first,
        )
        last = messages.pop()
        if block is not None:
            last = HumanMessage(f"{block}\n\n{last.text}")
        return [*messages, *history, last]
    examples = list(demos) + _history_examples(history, style.keys)
    return build_text_prompt(
        query,
        examples,
        style.frame,
        # A model asked to write its rationale before the answer sees demonstrations in that order.
        rationale_first=style.rationale_first or style.generate_rationale,
        keys=style.keys,
        ending=ending or ("rationale" if style.generate_rationale else "answer"),
        context=block,
    )
