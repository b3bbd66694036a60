"""How one input text sits inside a prompt, and where the answer starts.

A :class:`Frame` renders ``instruction + input_prefix + text + output_prefix``; the
label is then scored (or generated) after ``label_prefix``. It also reports the
character span of the input text inside the prompt, which is what lets explainers
give scores to the input's tokens only, never to the instruction or template.

Trust boundary: every text a user gives (a query, a feedback item that becomes a
demonstration, an imported record) is laid out by :meth:`Frame.render` or
:meth:`Frame.demo`, and both pass it through :meth:`Frame.neutralise` first. A line of
user text that begins with one of the frame's own cues (the first word of the stripped
``input_prefix`` / ``output_prefix``, e.g. ``Q:`` and ``A:``, compared case-insensitively)
would read as a new turn of the prompt: a forged demonstration, or a forged answer. The
line breaks before such a line are folded into spaces, one space per break character,
so the text keeps its length and every character offset (the input span that explainers
rely on stays exact), and the same is done to the frame's own line break right before a
user text that begins with a cue. Folding is idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amplify_agents.defaults import DEFAULTS
from amplify_agents.tasks import Task

__all__ = ["Frame"]

# What a model or a reader takes for a line break: str.splitlines()'s set.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK_TABLE = {ord(c): " " for c in _BREAKS}
_WHITESPACE = re.compile(r"\s+")


def _cue(prefix: str) -> str:
    # "\nA: (" -> "A:": the first word is what makes a line look like the frame's turn.
    words = prefix.split()
    return words[0] if words else ""


@dataclass(frozen=True)
class Frame:
    """The text around one input in a prompt.

    Attributes:
        instruction: text before everything else (the task's instruction).
        input_prefix: text right before the input (e.g. "\\nQ: ").
        output_prefix: text right after the input, where the answer starts (e.g. "\\nA:").
        label_prefix: text between ``output_prefix`` and the label (" " by default).
    """

    instruction: str = ""
    input_prefix: str = "\nQ: "
    output_prefix: str = "\nA:"
    label_prefix: str = " "

    @property
    def cues(self) -> tuple[str, ...]:
        """The words that start a turn of this frame (e.g. ``("Q:", "A:")``); none for a bare frame."""
        return tuple(dict.fromkeys(c for c in (_cue(self.input_prefix), _cue(self.output_prefix)) if c))

    def neutralise(self, text: str) -> str:
        """``text`` with no line that starts with one of :attr:`cues`, same length and offsets.

        The line breaks before a cue line become spaces ("x\\nA: no\\n\\nQ: y" gives
        "x A: no  Q: y" for the default frame), so user text can never open a turn of the
        prompt; other text is returned unchanged.
        """
        if not text or not self.cues:
            return text

        def fold(run: re.Match[str]) -> str:
            spaces = run.group(0)
            if spaces.translate(_BREAK_TABLE) != spaces and self._starts_with_cue(text[run.end() : run.end() + 64]):
                return spaces.translate(_BREAK_TABLE)
            return spaces

        # One pass over the whitespace runs: linear, whatever the text (no backtracking regex).
        return _WHITESPACE.sub(fold, text)

    def _join(self, head: str, text: str) -> str:
        """``head + text``, the frame's own final line break folded when ``text`` starts with a cue."""
        if head and head[-1] in _BREAKS and self._starts_with_cue(text):
            head = head[:-1] + " "
        return head + text

    def _starts_with_cue(self, text: str) -> bool:
        start = text[:64].lstrip()
        return any(start[: len(c)].casefold() == c.casefold() for c in self.cues)

    @classmethod
    def from_task(cls, task: Task) -> Frame:
        """The frame a task file declares (BIG-bench prefixes), trailing spaces moved to the label."""
        out = task.output_prefix
        stripped = out.rstrip(" ")
        return cls(
            instruction=task.instruction,
            input_prefix=task.input_prefix,
            output_prefix=stripped,
            label_prefix=" " if stripped != out or not stripped.endswith(("\n", "(")) else "",
        )

    def render(self, text: str, *, instruction: bool = True) -> tuple[str, tuple[int, int]]:
        """The prompt for ``text`` and the character span of ``text`` inside it.

        ``text`` goes through :meth:`neutralise`, which keeps its length, so the span still
        covers its characters one for one.
        """
        head = (self.instruction if instruction else "") + self.input_prefix
        body = self._join(head, self.neutralise(text))
        return body + self.output_prefix, (len(head), len(head) + len(text))

    def demo(
        self, text: str, label: str, rationale: str = "", *, rationale_first: bool = DEFAULTS.rationale_first
    ) -> str:
        """One few-shot demonstration: the input, then rationale and answer in the chosen order.

        Input, label and rationale go through :meth:`neutralise`: none can open a turn of its own.
        """
        text, label, rationale = self.neutralise(text), self.neutralise(label), self.neutralise(rationale)
        body = self._join(self.input_prefix, text)
        answer = self._join(self.output_prefix + self.label_prefix, label)
        if not rationale:
            return body + answer
        if rationale_first:
            return self._join(body + "\n", rationale) + answer
        return self._join(body + answer + "\n", rationale)
