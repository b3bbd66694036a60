"""``AmplifyExampleSelector``: a drop-in LangChain example selector over a rationale store.

It retrieves demonstrations by semantic similarity to the query, like LangChain's
``SemanticSimilarityExampleSelector``, and adds what users ask for and those selectors
lack: MMR diversity *with* metadata filters, label balance across the k demos, a
preference for high-MCS demos, a token budget counted with the target model's
tokenizer, and deduplication of near-identical inputs.

It returns dicts with the input, rationale and answer keys a prompt's example template
names, so it works unchanged in ``FewShotPromptTemplate`` and
``FewShotChatMessagePromptTemplate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.example_selectors import BaseExampleSelector

from amplify_agents.demonstrations import DemoKeys, Demonstration
from amplify_agents.errors import LabelError
from amplify_agents.explainers.base import Explainer
from amplify_agents.framing import Frame
from amplify_agents.limits import DEFAULT_LIMITS, TextField, TextLimits
from amplify_agents.prompts import build_text_prompt
from amplify_agents.rationales import RationaleTemplate, template_for, write_demonstration
from amplify_agents.stores import RationaleStore
from amplify_agents.strategies import round_robin

__all__ = ["AmplifyExampleSelector", "RetrievalSettings", "TokenBudget"]

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class RetrievalSettings:
    """How the selector ranks candidate demonstrations for a query.

    Attributes:
        mmr: pick diverse demonstrations by maximal marginal relevance (filters still apply).
        fetch_k: candidates fetched for MMR, balance and dedup (default ``4 * k``).
        lambda_mult: MMR's trade-off, 1 = pure similarity, 0 = maximum diversity.
        balance_labels: take labels in turn among the ranked candidates (default on).
        mcs_weight: rank by ``(1 - w) * similarity + w * MCS`` (demos without MCS count as 0).
        dedup_threshold: drop a candidate whose word-set Jaccard similarity to an already
            chosen input is at least this (1.0 drops only exact duplicates; None keeps all).
    """

    mmr: bool = False
    fetch_k: int | None = None
    lambda_mult: float = 0.5
    balance_labels: bool = True
    mcs_weight: float = 0.0
    dedup_threshold: float | None = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.mcs_weight <= 1.0:
            raise ValueError(f"mcs_weight must be between 0 and 1, got {self.mcs_weight}.")

    @property
    def needs_candidates(self) -> bool:
        """True when more than k candidates must be fetched (balance, MCS re-ranking or dedup)."""
        return self.balance_labels or self.mcs_weight > 0 or self.dedup_threshold is not None


@dataclass(frozen=True)
class TokenBudget:
    """A token budget for the whole rendered prompt, counted with the target model's tokenizer.

    The lowest-ranked demonstrations are dropped until the prompt fits.
    """

    max_tokens: int
    count: TokenCounter

    @classmethod
    def from_tokenizer(cls, max_tokens: int, tokenizer: Any) -> TokenBudget:
        """A budget counted by a Hugging Face tokenizer (e.g. ``loaded.tokenizer``)."""
        return cls(max_tokens, lambda text: len(tokenizer(text)["input_ids"]))


class AmplifyExampleSelector(BaseExampleSelector):
    """Select rationale-annotated demonstrations for a query from a :class:`RationaleStore`.

    Args:
        store: where the demonstrations live.
        k: how many demonstrations to return.
        input_key: the prompt variable holding the query.
        keys: names of the input/rationale/answer keys of the returned dicts.
        task / explainer / strategy: keep only demonstrations with these metadata values.
        where: any other Chroma metadata filter (combined with the above by ``$and``).
        retrieval: how candidates are ranked: MMR, label balance, MCS weight, dedup
            (:class:`RetrievalSettings`).
        budget: a :class:`TokenBudget` for the whole rendered prompt (None: no budget).
        frame: how the prompt is laid out when the budget is measured.
        explainer / template: used by :meth:`add_example` to write a missing rationale (the
            template defaults to the explainer family's own, as in the builder).

    Example:
        >>> selector = AmplifyExampleSelector.from_store(store, k=4, task="snarks")
        >>> prompt = few_shot_text_template(frame, example_selector=selector)
        >>> prompt.format(input="Which statement is sarcastic? ...")
    """

    def __init__(
        self,
        store: RationaleStore,
        *,
        k: int = 4,
        input_key: str = "input",
        keys: DemoKeys = DemoKeys(),
        task: str | None = None,
        explainer: Explainer | str | None = None,
        strategy: str | None = None,
        where: Mapping[str, Any] | None = None,
        retrieval: RetrievalSettings = RetrievalSettings(),
        budget: TokenBudget | None = None,
        frame: Frame = Frame(),
        template: str | RationaleTemplate | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        self.store = store
        self.k = k
        self.input_key = input_key
        self.keys = keys
        self.explainer = explainer if isinstance(explainer, Explainer) else None
        explainer_name = explainer.name if isinstance(explainer, Explainer) else explainer
        self.where = _combine_filters(where, task=task, explainer=explainer_name, strategy=strategy)
        self.task = task
        self.retrieval = retrieval
        self.fetch_k = retrieval.fetch_k or 4 * k
        self.budget = budget
        self.frame = frame
        self.template = template_for(self.explainer, template)

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_store(cls, store: RationaleStore, **kwargs: Any) -> AmplifyExampleSelector:
        """A selector over an existing store (LangChain-style constructor)."""
        return cls(store, **kwargs)

    @classmethod
    def from_examples(
        cls,
        examples: Iterable[Mapping[str, Any]],
        *,
        store_name: str,
        persist_directory: str | None = None,
        embeddings: Embeddings | None = None,
        task: str = "default",
        **kwargs: Any,
    ) -> AmplifyExampleSelector:
        """Create (or open) a store, add ``examples`` and return a selector over it.

        Each example needs the input and answer keys; one without a rationale gets one
        from ``explainer=`` (required then).
        """
        if persist_directory is None:
            import tempfile

            persist_directory = tempfile.mkdtemp(prefix="amplify-store-")
        store = RationaleStore.local(store_name, persist_directory, embeddings=embeddings)
        selector = cls(store, task=task, **kwargs)
        selector.add_examples(list(examples))
        return selector

    # --------------------------------------------------------------- selection
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """The demonstrations for this query, best first, as example dicts."""
        if self.input_key not in input_variables:
            raise KeyError(
                f"The prompt variables {sorted(input_variables)} have no {self.input_key!r}: "
                f"pass input_key= naming the variable that holds the query."
            )
        query = str(input_variables[self.input_key])
        demos = self.select_demonstrations(query)
        # Cue lines folded here too, so a prompt template of the user's own, laid out with the
        # same frame, cannot be given a forged turn by a stored text (Frame.neutralise).
        texts = (self.keys.input, self.keys.rationale, self.keys.answer)
        return [
            {key: self.frame.neutralise(value) if key in texts else value for key, value in example.items()}
            for example in (d.to_example(self.keys, with_id=True) for d in demos)
        ]

    def select_demonstrations(self, query: str) -> list[Demonstration]:
        """Like :meth:`select_examples`, returning :class:`Demonstration` objects."""
        opts = self.retrieval
        n_candidates = self.fetch_k if opts.needs_candidates else self.k
        if opts.mmr:
            demos = self.store.mmr(
                query,
                k=min(n_candidates, self.fetch_k),
                fetch_k=max(self.fetch_k, 2 * n_candidates),
                lambda_mult=opts.lambda_mult,
                where=self.where,
            )
            ranked = demos  # MMR order is already the ranking
        else:
            pairs = self.store.search(query, k=n_candidates, where=self.where)
            if opts.mcs_weight > 0:
                w = opts.mcs_weight
                pairs = sorted(pairs, key=lambda p: -((1 - w) * p[1] + w * _mcs(p[0])))
            ranked = [d for d, _ in pairs]
        if opts.dedup_threshold is not None:
            ranked = _dedup(ranked, opts.dedup_threshold)
        chosen = _balance(ranked, self.k) if opts.balance_labels else ranked[: self.k]
        if self.budget is not None:
            chosen = self._fit_budget(query, chosen, self.budget)
        return chosen

    def _fit_budget(self, query: str, demos: list[Demonstration], budget: TokenBudget) -> list[Demonstration]:
        kept = list(demos)
        while kept:
            examples = [d.to_example(self.keys, with_id=True) for d in kept]
            prompt = build_text_prompt(query, examples, self.frame, keys=self.keys)
            if budget.count(prompt) <= budget.max_tokens:
                break
            kept.pop()  # the lowest-ranked demo goes first
        return kept

    # ------------------------------------------------------------------ adding
    def add_example(self, example: dict[str, Any], *, limits: TextLimits = DEFAULT_LIMITS) -> Any:
        """Add one labelled example; a missing rationale is written by the explainer first.

        Returns the new demonstration's id.

        Raises:
            LabelError: the example has no gold answer.
            ValueError: no rationale and no explainer to write one.
            InputTooLongError: an input, answer or rationale over ``limits``.
        """
        return self.add_examples([example], limits=limits)[0]

    def add_examples(self, examples: Sequence[Mapping[str, Any]], *, limits: TextLimits = DEFAULT_LIMITS) -> list[str]:
        """Add labelled examples in one batch (one explainer call, one store write).

        Every input, answer and rationale (given or written) is checked against ``limits``
        before anything is stored: one text too long and none of the batch is added.
        """
        for i, ex in enumerate(examples):
            self._check_lengths(ex, i, limits)  # before the explainer runs on any of them
            if not str(ex.get(self.keys.input) or "").strip():
                raise ValueError(f"Example {i} has no {self.keys.input!r}: an input text is required.")
            if not str(ex.get(self.keys.answer) or "").strip():
                raise LabelError(
                    f"Example {i} has no gold answer under {self.keys.answer!r}: only labelled examples "
                    f"can become demonstrations (put unverified feedback in a review queue instead)."
                )
        missing = [i for i, ex in enumerate(examples) if not ex.get(self.keys.rationale)]
        if missing and self.explainer is None:
            raise ValueError(
                f"{len(missing)} example(s) have no {self.keys.rationale!r} and this selector has no "
                f"explainer to write one: pass explainer= (e.g. a GradXInputExplainer) or add rationales."
            )
        written: dict[int, Demonstration] = {}
        if missing:
            assert self.explainer is not None
            exps = self.explainer.explain(
                [str(examples[i][self.keys.input]) for i in missing],
                [str(examples[i][self.keys.answer]) for i in missing],
            )
            for i, exp in zip(missing, exps):
                if not exp.ok:
                    raise ValueError(f"Example {i}: the explainer gave no usable explanation ({exp.degenerate}).")
                task = self.task or str(examples[i].get("task", "default"))
                written[i] = write_demonstration(exp, self.explainer, task=task, template=self.template)
        demos = [
            written.get(i)
            or Demonstration(
                input=str(ex[self.keys.input]),
                label=str(ex[self.keys.answer]),
                rationale=str(ex.get(self.keys.rationale) or ""),
                task=self.task or str(ex.get("task", "default")),
                explainer="provided",
            )
            for i, ex in enumerate(examples)
        ]
        for i, demo in written.items():
            limits.check("rationale", demo.rationale, where=f"Example {i} (the rationale written for it)")
        return self.store.add(demos)

    def _check_lengths(self, example: Mapping[str, Any], i: int, limits: TextLimits) -> None:
        fields: tuple[tuple[TextField, str], ...] = (
            ("input", self.keys.input),
            ("label", self.keys.answer),
            ("rationale", self.keys.rationale),
        )
        for kind, key in fields:
            limits.check(kind, str(example.get(key) or ""), where=f"Example {i} ({key!r})")


def _combine_filters(where: Mapping[str, Any] | None, **equal: str | None) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = [{key: value} for key, value in equal.items() if value is not None]
    if where:
        clauses.append(dict(where))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _mcs(demo: Demonstration) -> float:
    value = demo.scores.get("mcs")
    return float(value) if isinstance(value, (int, float)) and value == value else 0.0


_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(_TOKEN_RE.findall(text.lower()))


def _dedup(demos: list[Demonstration], threshold: float) -> list[Demonstration]:
    kept: list[Demonstration] = []
    seen: list[frozenset[str]] = []
    for demo in demos:
        words = _word_set(demo.input)
        if any(_jaccard(words, other) >= threshold for other in seen):
            continue
        kept.append(demo)
        seen.append(words)
    return kept


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _balance(ranked: list[Demonstration], k: int) -> list[Demonstration]:
    """Label round-robin over the ranked demos; the chosen ones keep their rank order."""
    rank = {id(d): i for i, d in enumerate(ranked)}
    return sorted(round_robin(ranked, k, key=lambda d: d.label), key=lambda d: rank[id(d)])
