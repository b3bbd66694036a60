"""Length limits on every text that enters the library: task rows, feedback, imports, requests.

A text with no limit reaches memory: a 1 MB task input asks the model for gigabytes, a
16 MB rationale is stored and put into every prompt that retrieves it. The limits are
counted in characters, so they are checked before any tokenizer runs, and are tied to a
model's context by :meth:`TextLimits.for_context`; the model stage then checks the exact
token count (a prompt longer than the context raises, nothing is truncated).

Usage::

    limits = TextLimits()                    # defaults: a few thousand tokens of input
    limits.check("input", text, where="tasks.csv row 7")
    limits = TextLimits.for_context(2048)    # an input can fill at most a 2k-token context
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from amplify_agents.errors import InputTooLongError

__all__ = ["DEFAULT_LIMITS", "TextField", "TextLimits"]

TextField = Literal["input", "label", "rationale", "answer", "instruction"]

# A token of any tokenizer the library meets is at most this many characters on average
# over a text (English BPE averages about 4); a text longer than context x this cannot fit.
_CHARS_PER_TOKEN_CEILING = 8


@dataclass(frozen=True)
class TextLimits:
    """The most characters each kind of text may have.

    Attributes:
        max_input_chars: a task input, a query, a feedback query, a request prompt.
        max_label_chars: a label or a gold answer.
        max_rationale_chars: a rationale (keywords sentence or a p-step explanation).
        max_answer_chars: a model's free-text answer recorded as feedback.
        max_instruction_chars: a task's instruction or prompt prefix.
    """

    max_input_chars: int = 32_000
    max_label_chars: int = 500
    max_rationale_chars: int = 4_000
    max_answer_chars: int = 8_000
    max_instruction_chars: int = 8_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TextLimits.{name} must be a positive integer, got {value!r}.")

    @classmethod
    def for_context(cls, context_tokens: int) -> TextLimits:
        """Limits for a model whose context holds ``context_tokens`` tokens."""
        if context_tokens < 1:
            raise ValueError(f"context_tokens must be positive, got {context_tokens}.")
        return cls(max_input_chars=context_tokens * _CHARS_PER_TOKEN_CEILING)

    def limit_for(self, field: TextField) -> int:
        """The character limit of ``field``."""
        return int(getattr(self, f"max_{field}_chars"))

    def problem(self, field: TextField, text: str) -> str | None:
        """Why ``text`` is too long for ``field`` (one sentence), or ``None`` when it fits."""
        limit = self.limit_for(field)
        if len(text) <= limit:
            return None
        return (
            f"the {field} is {len(text):,} characters, over the limit of {limit:,} "
            f"(shorten it, or raise TextLimits.max_{field}_chars)"
        )

    def check(self, field: TextField, text: str, *, where: str) -> str:
        """Return ``text`` if it fits; else raise :class:`InputTooLongError` naming ``where``."""
        problem = self.problem(field, text)
        if problem is not None:
            raise InputTooLongError(f"{where}: {problem}.")
        return text


DEFAULT_LIMITS = TextLimits()
