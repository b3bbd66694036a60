"""The library's default configuration, in one place.

The builder (:class:`~amplify_agents.builder.BuildConfig`), the selector
(:class:`~amplify_agents.selectors.AmplifyExampleSelector`), the explainers, the command line
(``build``, ``select``, ``eval``) and the evaluation (:class:`~amplify_agents.eval.EvalConfig`,
and its ``amplify`` method shorthand) all read their defaults from :data:`DEFAULTS`, and
``tests/unit/test_defaults.py`` checks that they agree.

Issue 16 chooses these values on validation, with an instruction-tuned target, by their mean
validation rank across the development tasks (``benchmarks/rank_validation.py``,
``benchmarks/RESULTS.md``). The search (3 seeds × 40 items on three tasks, one seed on the
fourth) ranks the rationale *after* the answer first, but its test figures do not beat
LangChain's semantic selector and the (x, y, r) layout is not yet supported in chat prompts, so
these stay the papers' settings (error selection, Grad×Input, 5 keywords) and LangChain's
selector size (4); no configuration has yet been shown to beat plain few-shot prompting (the
README says so).
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
    placement: DemoLayout = "xry"

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
