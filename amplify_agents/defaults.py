"""The library's default configuration, in one place.

The builder (:class:`~amplify_agents.builder.BuildConfig`), the selector
(:class:`~amplify_agents.selectors.AmplifyExampleSelector`), the explainers, the command line
(``build``, ``select``, ``eval``), the evaluation (:class:`~amplify_agents.eval.EvalConfig`,
and its ``amplify`` method shorthand), and every prompt layout (text and chat prompts, the
LangChain templates, the agent middleware, the answering path) all read their defaults from
:data:`DEFAULTS`; ``tests/unit/test_defaults.py`` and ``tests/unit/test_placement.py`` check
that they agree.

Issue 16 chose these values on validation, with an instruction-tuned target
(Qwen2.5-Coder-0.5B-Instruct), by their mean validation rank across the four development tasks
(``benchmarks/rank_validation.py``, ``benchmarks/RESULTS.md``): ten configurations, 40
validation items per task, 3 seeds on three tasks and 1 on the fourth. The papers' explainer,
strategy and keyword count (Grad×Input, error selection, 5 keywords) ranked first with the
rationale laid out *after* the answer, (x, y, r) (mean rank 3.75; LangChain's semantic selector
4.75; plain 4-shot IO last, 6.75), so that is the default placement; the shot count is
LangChain's selector size (4). Its test figures, reported once, are in the README and RESULTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULTS", "Defaults", "DemoLayout"]

DemoLayout = Literal["xry", "xyr"]
"""Where a demonstration's rationale goes: before its answer, (x, r, y) as in both papers, or
after it, (x, y, r)."""


@dataclass(frozen=True)
class Defaults:
    """What the library does when the user does not say.

    Attributes:
        explainer: the explainer that writes rationales (``build --explainer``).
        strategy: how demonstrations are selected from the pool (``BuildConfig.strategy``).
        keywords: words per rationale (the explainers' and ``build``'s ``k``).
        shots: demonstrations per prompt (the selector's ``k``, ``eval --n-shot``).
        demonstrations: demonstrations a build ends up with (``BuildConfig.n``, ``build --n``),
            more than one prompt's worth so that retrieval has a choice.
        placement: where each demonstration's rationale goes in a prompt, ``"xry"`` (before
            the answer) or ``"xyr"`` (after it): the text and chat prompts
            (:class:`~amplify_agents.prompts.PromptStyle`), the LangChain templates, the agent
            middleware and the answering path (:class:`~amplify_agents.answering.AnswerSettings`).
    """

    explainer: str = "grad_x_input"
    strategy: str = "error"
    keywords: int = 5
    shots: int = 4
    demonstrations: int = 8
    placement: DemoLayout = "xyr"

    def __post_init__(self) -> None:
        if self.placement not in ("xry", "xyr"):
            raise ValueError(f"Unknown placement {self.placement!r}: use 'xry' or 'xyr'.")

    @property
    def rationale_first(self) -> bool:
        """Whether demonstrations are laid out (x, r, y) (the rationale before the answer)."""
        return self.placement == "xry"

    @property
    def amplify_method(self) -> str:
        """The evaluation method that the ``amplify`` shorthand names (``amplify:<explainer>:<strategy>``,
        with ``+xyr`` when the rationale goes after the answer)."""
        return f"amplify:{self.explainer}:{self.strategy}" + ("" if self.rationale_first else "+xyr")


DEFAULTS = Defaults()
