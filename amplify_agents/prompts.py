"""AMPLIFY / Self-AMPLIFY prompt layouts: instruction, (x, r, y) demonstrations, then the query.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)

from amplify_agents.framing import Frame

__all__ = [
    "DemoKeys",
    "build_text_prompt",
    "build_chat_messages",
    "few_shot_text_template",
    "few_shot_chat_template",
    "render_chat_with_prefill",
]


@dataclass(frozen=True)
class DemoKeys:
    """Names of the keys an example dict uses (what the example selector returns)."""

    input: str = "input"
    rationale: str = "rationale"
    answer: str = "answer"


def _escape(text: str) -> str:
    """Escape braces so framing text is literal inside an f-string prompt template."""
    return text.replace("{", "{{").replace("}", "}}")


def build_text_prompt(
    query: str,
    demos: Sequence[Mapping[str, Any]],
    frame: Frame = Frame(),
    *,
    rationale_first: bool = True,
    keys: DemoKeys = DemoKeys(),
) -> str:
    """The text prompt: instruction, each demonstration, then the query up to the answer.

    ``rationale_first`` puts each demo's rationale before its answer, (x, r, y), as in
    both papers; False gives (x, y, r).
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
    parts.append(frame.render(query, instruction=False)[0])
    return "".join(parts)


def few_shot_text_template(
    frame: Frame = Frame(),
    *,
    examples: Sequence[Mapping[str, Any]] | None = None,
    example_selector: BaseExampleSelector | None = None,
    rationale_first: bool = True,
    keys: DemoKeys = DemoKeys(),
    query_key: str = "input",
) -> FewShotPromptTemplate:
    """A LangChain ``FewShotPromptTemplate`` producing exactly :func:`build_text_prompt`'s text.

    Pass fixed ``examples`` or an ``example_selector`` (e.g. :class:`AmplifyExampleSelector`).
    Demonstrations without a rationale render as plain (x, y).
    """
    ip, op = _escape(frame.input_prefix), _escape(frame.output_prefix)
    # The template string only declares the demo's variables (FewShotPromptTemplate
    # passes just those); the text itself comes from Frame.demo, as in build_text_prompt.
    example_prompt = _FrameDemoPrompt(
        template=f"{{{keys.input}}}{{{keys.rationale}}}{{{keys.answer}}}",
        frame=frame,
        keys=keys,
        rationale_first=rationale_first,
    )
    return FewShotPromptTemplate(
        examples=list(examples) if examples is not None else None,
        example_selector=example_selector,
        example_prompt=example_prompt,
        prefix=_escape(frame.instruction),
        suffix=f"{ip}{{{query_key}}}{op}",
        example_separator="",
        input_variables=[query_key],
    )


class _FrameDemoPrompt(PromptTemplate):
    """Formats one demonstration with :meth:`Frame.demo` (rationale shown only when present)."""

    frame: Frame
    keys: DemoKeys
    rationale_first: bool = True

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


def _assistant_text(demo: Mapping[str, Any], frame: Frame, keys: DemoKeys, answer_prefix: str) -> str:
    rationale = str(demo.get(keys.rationale) or "")
    answer = f"{answer_prefix}{demo[keys.answer]}"
    return f"{rationale} {answer}".strip() if rationale else answer


def build_chat_messages(
    query: str,
    demos: Sequence[Mapping[str, Any]],
    frame: Frame = Frame(),
    *,
    keys: DemoKeys = DemoKeys(),
    answer_prefix: str = "The answer is ",
    system: bool = True,
) -> list[BaseMessage]:
    """Chat form (Self-AMPLIFY A.3): each demo is a user turn (the input) and an
    assistant turn (rationale, then "The answer is <label>"); the query is the last user turn.

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
        messages.append(AIMessage(_assistant_text(demo, frame, keys, answer_prefix)))
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
) -> ChatPromptTemplate:
    """A ``ChatPromptTemplate`` with a ``FewShotChatMessagePromptTemplate`` inside.

    The demo's assistant turn is "{rationale} The answer is {answer}"; a demo without a
    rationale shows only the answer.
    """
    example_prompt = ChatPromptTemplate.from_messages(
        [("human", f"{{{keys.input}}}"), ("ai", f"{{{keys.rationale}}} {_escape(answer_prefix)}{{{keys.answer}}}")]
    )
    few_shot = FewShotChatMessagePromptTemplate(
        examples=list(examples) if examples is not None else None,
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
