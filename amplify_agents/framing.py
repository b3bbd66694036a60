"""How one input text sits inside a prompt, and where the answer starts.

A :class:`Frame` renders ``instruction + input_prefix + text + output_prefix``; the
label is then scored (or generated) after ``label_prefix``. It also reports the
character span of the input text inside the prompt, which is what lets explainers
give scores to the input's tokens only, never to the instruction or template.
"""

from __future__ import annotations

from dataclasses import dataclass

from amplify_agents.tasks import Task

__all__ = ["Frame"]


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
        """The prompt for ``text`` and the character span of ``text`` inside it."""
        head = (self.instruction if instruction else "") + self.input_prefix
        return head + text + self.output_prefix, (len(head), len(head) + len(text))

    def demo(self, text: str, label: str, rationale: str = "", *, rationale_first: bool = True) -> str:
        """One few-shot demonstration: the input, then rationale and answer in the chosen order."""
        body = self.input_prefix + text
        if not rationale:
            return body + self.output_prefix + self.label_prefix + label
        if rationale_first:
            return body + "\n" + rationale + self.output_prefix + self.label_prefix + label
        return body + self.output_prefix + self.label_prefix + label + "\n" + rationale
