"""``AmplifyExampleSelector``: a drop-in LangChain example selector over a rationale store.

It retrieves demonstrations by semantic similarity to the query, like LangChain's
``SemanticSimilarityExampleSelector``, and adds what users ask for and those selectors
lack: MMR diversity *with* metadata filters, label balance across the k demos, a
preference for high-MCS demos, a token budget counted with the target model's
tokenizer on the prompt the user's own template renders, and deduplication of
near-identical inputs.

It returns dicts with the input, rationale and answer keys a prompt's example template
names (with :meth:`AmplifyExampleSelector.from_examples`, the user's own key names), so it
works unchanged in ``FewShotPromptTemplate`` and ``FewShotChatMessagePromptTemplate``.
Its candidates come from the store's retriever view
(:class:`~amplify_agents.stores.DemonstrationRetriever`), so each selection shows up as a
retrieval in LangChain traces; the async methods go through Chroma's async HTTP client on a
server store.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from amplify_agents.defaults import DEFAULTS
from amplify_agents.demonstrations import DemoKeys, Demonstration
from amplify_agents.errors import LabelError
from amplify_agents.explainers.base import Explainer
from amplify_agents.framing import Frame
from amplify_agents.limits import DEFAULT_LIMITS, TextField, TextLimits
from amplify_agents.prompts import build_text_prompt
from amplify_agents.rationales import RationaleTemplate, template_for, write_demonstration
from amplify_agents.stores import DemonstrationRetriever, RationaleStore, document_to_demonstration
from amplify_agents.strategies import round_robin

__all__ = [
    "AmplifyExampleSelector",
    "PromptLayout",
    "RetrievalSettings",
    "TokenBudget",
    "infer_example_keys",
    "prompt_layout",
]

TokenCounter = Callable[[str], int]
PromptLayout = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], str]
"""``(prompt variables, selected examples) -> the whole prompt text``, as the user's template renders it."""

_ANSWER_NAMES = ("answer", "output", "label", "target", "completion", "response")
_RATIONALE_NAMES = ("rationale", "explanation", "reasoning")
_RESERVED = frozenset({"task", "demo_id"})  # consumed as metadata, never an input or answer key
_SCALARS = (str, int, float, bool)


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


def prompt_layout(
    prompt: FewShotPromptTemplate | PromptTemplate | PromptLayout,
    *,
    prefix: str = "",
    suffix: str = "",
    example_separator: str = "\n\n",
) -> PromptLayout:
    """How the user's prompt lays out the selected examples, for a :class:`TokenBudget`.

    Args:
        prompt: the user's ``FewShotPromptTemplate`` (rendered as it is, with the examples
            given instead of its selector's); or the ``PromptTemplate`` of one example (the
            ``example_prompt``), laid out as a ``FewShotPromptTemplate`` with ``prefix``,
            ``suffix`` and ``example_separator`` (LangChain's defaults); or a function
            ``(variables, examples) -> text`` (e.g. for a chat prompt rendered with the
            tokenizer's chat template).

    Raises:
        TypeError: a prompt of another kind (a chat prompt: pass a function).
    """
    if isinstance(prompt, FewShotPromptTemplate):
        template = prompt
    elif isinstance(prompt, PromptTemplate):
        template = FewShotPromptTemplate(
            examples=[], example_prompt=prompt, prefix=prefix, suffix=suffix, example_separator=example_separator
        )
    elif callable(prompt):
        return prompt
    else:
        raise TypeError(
            f"A token budget measures a FewShotPromptTemplate, an example PromptTemplate or a function "
            f"(variables, examples) -> text, got {type(prompt).__name__}: for a chat prompt pass a function "
            "that renders the messages as the model sees them (e.g. with the tokenizer's chat template)."
        )

    def layout(variables: Mapping[str, Any], examples: Sequence[Mapping[str, Any]]) -> str:
        # A copy with fixed examples: the same text the user's template renders with these.
        fixed = template.model_copy(update={"examples": [dict(e) for e in examples], "example_selector": None})
        return fixed.format(**variables)

    return layout


@dataclass(frozen=True)
class TokenBudget:
    """A token budget for the whole rendered prompt, counted with the target model's tokenizer.

    The lowest-ranked demonstrations are dropped until the prompt fits. The prompt measured
    is ``layout``'s (the user's template, see :func:`prompt_layout`), else the selector's
    own frame layout (:func:`~amplify_agents.prompts.build_text_prompt`). A prompt whose
    fixed parts alone are over ``max_tokens`` gets no demonstrations.
    """

    max_tokens: int
    count: TokenCounter
    layout: PromptLayout | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"TokenBudget.max_tokens must be a positive int, got {self.max_tokens!r}.")

    @classmethod
    def from_tokenizer(
        cls,
        max_tokens: int,
        tokenizer: Any,
        *,
        prompt: FewShotPromptTemplate | PromptTemplate | PromptLayout | None = None,
        prefix: str = "",
        suffix: str = "",
        example_separator: str = "\n\n",
    ) -> TokenBudget:
        """A budget counted by a Hugging Face tokenizer (e.g. ``loaded.tokenizer``), special tokens included.

        ``prompt`` (with ``prefix``/``suffix``/``example_separator`` for an example prompt)
        is the user's template the budget measures; see :func:`prompt_layout`.
        """
        layout = (
            None
            if prompt is None
            else prompt_layout(prompt, prefix=prefix, suffix=suffix, example_separator=example_separator)
        )
        return cls(max_tokens, lambda text: len(tokenizer(text)["input_ids"]), layout)


def infer_example_keys(
    examples: Sequence[Mapping[str, Any]],
    input_keys: Sequence[str] | None = None,
    *,
    answer_key: str | None = None,
    rationale_key: str | None = None,
) -> tuple[tuple[str, ...], DemoKeys]:
    """Which keys of the user's example dicts are the input(s), the answer and the rationale.

    The rationale key is ``rationale_key``, else the first of ``rationale``, ``explanation``,
    ``reasoning`` that an example has (else ``"rationale"``: no example has one). The answer
    key is ``answer_key``; else, with ``input_keys``, the one key left in every example; else
    the first of ``answer``, ``output``, ``label``, ``target``, ``completion``, ``response``
    in every example. The inputs are ``input_keys``, else every other key of every example
    (as LangChain embeds every variable). ``task`` is read as the task, never an input.

    Returns:
        The input keys (the query's variables) and the :class:`DemoKeys` of the returned dicts
        (``input`` is the single input key; ``"input"`` with several).

    Raises:
        ValueError: no examples, an ambiguous answer key, or an example missing a key.
    """
    if not examples:
        raise ValueError("from_examples needs at least one example dict.")
    common = set.intersection(*(set(e) for e in examples))
    rationale = rationale_key or next((n for n in _RATIONALE_NAMES if any(n in e for e in examples)), "rationale")
    answer = answer_key
    if answer is None:
        rest = sorted(common - set(input_keys or ()) - {rationale} - _RESERVED)
        if input_keys and len(rest) == 1:
            answer = rest[0]
        else:
            answer = next((n for n in _ANSWER_NAMES if n in common), None)
        if answer is None:
            raise ValueError(
                f"Cannot tell which key of the examples holds the answer (keys in every example: {sorted(common)}): "
                "pass answer_key= naming it."
            )
    inputs = list(input_keys) if input_keys else sorted(common - {answer, rationale} - _RESERVED)
    if not inputs:
        raise ValueError(f"The examples have no input key besides {answer!r}: pass input_keys=[...].")
    if answer in inputs or rationale in inputs:
        raise ValueError(
            f"input_keys {inputs} must not include the answer or rationale key ({answer!r}, {rationale!r})."
        )
    for i, example in enumerate(examples):
        missing = [key for key in (*inputs, answer) if key not in example]
        if missing:
            raise ValueError(f"Example {i} has no {missing} (its keys: {sorted(example)}).")
    keys = DemoKeys(input=inputs[0] if len(inputs) == 1 else "input", rationale=rationale, answer=answer)
    return tuple(inputs), keys


class AmplifyExampleSelector(BaseExampleSelector):
    """Select rationale-annotated demonstrations for a query from a :class:`RationaleStore`.

    Args:
        store: where the demonstrations live.
        k: how many demonstrations to return.
        input_key: the prompt variable holding the query, or several (LangChain's
            ``input_keys``), joined as LangChain's selectors join them (values in key order,
            space-separated).
        keys: names of the input/rationale/answer keys of the returned dicts.
        task / explainer / strategy: keep only demonstrations with these metadata values.
        where: any other Chroma metadata filter (combined with the above by ``$and``).
        retrieval: how candidates are ranked: MMR, label balance, MCS weight, dedup
            (:class:`RetrievalSettings`).
        budget: a :class:`TokenBudget` for the whole rendered prompt (None: no budget).
        frame: how the prompt is laid out when the budget has no layout of the user's.
        explainer / template: used by :meth:`add_example` to write a missing rationale (the
            template defaults to the explainer family's own, as in the builder).

    Attributes:
        plain_demos: an added example without a rationale (and no explainer to write one)
            becomes a plain input-output demonstration (``explainer="none"``) instead of an
            error; False by default, True for :meth:`from_examples`.
        budget: assignable after construction, e.g. a budget measuring the user's
            ``FewShotPromptTemplate`` that holds this selector.

    Candidates are fetched through :meth:`retriever` (a LangChain retriever, so selections
    are traced as retrievals), then balanced, de-duplicated and fitted to the budget.

    Example:
        >>> selector = AmplifyExampleSelector.from_store(store, k=4, task="snarks")
        >>> prompt = few_shot_text_template(frame, example_selector=selector)
        >>> prompt.format(input="Which statement is sarcastic? ...")
    """

    def __init__(
        self,
        store: RationaleStore,
        *,
        k: int = DEFAULTS.shots,
        input_key: str | Sequence[str] = "input",
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
        self.input_keys: tuple[str, ...] = (input_key,) if isinstance(input_key, str) else tuple(input_key)
        if not self.input_keys:
            raise ValueError("input_key must name at least one prompt variable.")
        self.store = store
        self.k = k
        self.input_key = self.input_keys[0]
        self.keys = keys
        explainer_name = explainer.name if isinstance(explainer, Explainer) else explainer
        self.where = _combine_filters(where, task=task, explainer=explainer_name, strategy=strategy)
        self.task = task
        self.retrieval = retrieval
        self.fetch_k = retrieval.fetch_k or 4 * k
        self.budget = budget
        self.frame = frame
        self.plain_demos = False
        self._set_writer(explainer if isinstance(explainer, Explainer) else None, template)

    def _set_writer(self, explainer: Explainer | None, template: str | RationaleTemplate | None) -> None:
        """The explainer (and its template) that write missing rationales in :meth:`add_examples`."""
        self.explainer = explainer
        self.template = template_for(explainer, template)

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_store(cls, store: RationaleStore, **kwargs: Any) -> AmplifyExampleSelector:
        """A selector over an existing store (LangChain-style constructor)."""
        return cls(store, **kwargs)

    @classmethod
    def from_examples(
        cls,
        examples: Iterable[Mapping[str, Any]],
        embeddings: Embeddings | None = None,
        *,
        k: int = DEFAULTS.shots,
        input_keys: Sequence[str] | None = None,
        answer_key: str | None = None,
        rationale_key: str | None = None,
        store: RationaleStore | None = None,
        store_name: str | None = None,
        persist_directory: str | None = None,
        task: str = "default",
        explainer: Explainer | None = None,
        plain_demos: bool = True,
        **kwargs: Any,
    ) -> AmplifyExampleSelector:
        """A selector over ``examples``, as ``SemanticSimilarityExampleSelector.from_examples``.

        The examples are dicts with the user's own keys, e.g. ``{"question", "answer"}``;
        ``input_keys`` name the embedded keys (and the query's prompt variables), the answer
        and rationale keys are inferred (:func:`infer_example_keys`) or named with
        ``answer_key``/``rationale_key``. Selected examples come back under the same keys
        (with ``demo_id``), so the user's own ``example_prompt`` formats them. An example
        without a rationale is a plain input-output demonstration (``explainer="none"``)
        unless ``explainer`` writes one (it does not filter the selection here), or an error
        with ``plain_demos=False``.

        The store is an in-memory Chroma (nothing on disk) unless ``persist_directory``
        (a store ``store_name``, default ``"amplify-examples"``, in that directory) or an open
        ``store`` is given. ``embeddings`` default to the offline MiniLM. Other keyword
        arguments go to the selector (``retrieval=``, ``budget=``, ``where=``, ...).

        Example:
            >>> selector = AmplifyExampleSelector.from_examples(  # doctest: +SKIP
            ...     [{"question": "2 + 2?", "answer": "4"}, ...], embeddings, k=2, input_keys=["question"])
        """
        rows = [dict(e) for e in examples]
        query_keys, inferred = infer_example_keys(rows, input_keys, answer_key=answer_key, rationale_key=rationale_key)
        kwargs.setdefault("keys", inferred)
        if store is not None and (store_name is not None or persist_directory is not None):
            raise ValueError("Give store= or store_name=/persist_directory=, not both.")
        if store is None:
            if persist_directory is not None:
                store = RationaleStore.local(store_name or "amplify-examples", persist_directory, embeddings)
            else:
                store = RationaleStore.in_memory(store_name, embeddings)
            owned = True
        else:
            owned = False
        try:
            selector = cls(store, k=k, input_key=query_keys, task=task, **kwargs)
            # The explainer writes missing rationales without filtering: the store holds just these.
            selector._set_writer(explainer, kwargs.get("template"))
            selector.plain_demos = plain_demos
            selector.add_examples(rows)
        except BaseException:
            if owned:
                store.close()  # an in-memory store drops its collection: nothing is left behind
            raise
        return selector

    # --------------------------------------------------------------- selection
    def retriever(self) -> DemonstrationRetriever:
        """The store's retriever that fetches this selector's candidates (filters applied)."""
        opts = self.retrieval
        n_candidates = self.fetch_k if opts.needs_candidates else self.k
        if opts.mmr:
            return self.store.as_retriever(
                k=min(n_candidates, self.fetch_k),
                fetch_k=max(self.fetch_k, 2 * n_candidates),
                lambda_mult=opts.lambda_mult,
                where=self.where,
                search_type="mmr",
                tags=["amplify_example_selector"],
            )
        return self.store.as_retriever(k=n_candidates, where=self.where, tags=["amplify_example_selector"])

    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """The demonstrations for this query, best first, as example dicts."""
        query = self._query(input_variables)
        return [e for _, e in self._choose(input_variables, query, self.retriever().invoke(query))]

    async def aselect_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """:meth:`select_examples`, awaited: Chroma's async HTTP client on a server store
        (``RationaleStore.server``), LangChain's executor otherwise."""
        query = self._query(input_variables)
        docs = await self.retriever().ainvoke(query)
        return [e for _, e in self._choose(input_variables, query, docs)]

    def select_demonstrations(self, query: str, variables: Mapping[str, Any] | None = None) -> list[Demonstration]:
        """Like :meth:`select_examples`, for a query text, returning :class:`Demonstration` objects.

        ``variables`` are the other prompt variables a budget's layout needs (its suffix's).
        """
        variables = {**(variables or {}), self.input_key: query}
        return [d for d, _ in self._choose(variables, query, self.retriever().invoke(query))]

    def _query(self, input_variables: Mapping[str, Any]) -> str:
        missing = [key for key in self.input_keys if key not in input_variables]
        if missing:
            raise KeyError(
                f"The prompt variables {sorted(input_variables)} have no {missing[0]!r}: "
                f"pass input_key= naming the variable that holds the query."
            )
        # As LangChain's selectors join several input keys: values in key order, space-separated.
        return " ".join(str(input_variables[key]) for key in sorted(self.input_keys))

    def _choose(
        self, variables: Mapping[str, Any], query: str, docs: Sequence[Document]
    ) -> list[tuple[Demonstration, dict[str, Any]]]:
        opts = self.retrieval
        pairs = [(document_to_demonstration(doc), float(doc.metadata.get("similarity", 0.0))) for doc in docs]
        if not opts.mmr and opts.mcs_weight > 0:  # MMR order is already the ranking
            w = opts.mcs_weight
            pairs = sorted(pairs, key=lambda p: -((1 - w) * p[1] + w * _mcs(p[0])))
        ranked = [d for d, _ in pairs]
        if opts.dedup_threshold is not None:
            ranked = _dedup(ranked, opts.dedup_threshold)
        chosen = _balance(ranked, self.k) if opts.balance_labels else ranked[: self.k]
        picked = [(d, self._example(d)) for d in chosen]
        return self._fit_budget(variables, query, picked, self.budget) if self.budget is not None else picked

    def _example(self, demo: Demonstration) -> dict[str, Any]:
        # Cue lines folded in every text, so a prompt template of the user's own, laid out with
        # the same frame, cannot be given a forged turn by a stored text (Frame.neutralise).
        return {
            key: self.frame.neutralise(value) if isinstance(value, str) and key != "demo_id" else value
            for key, value in demo.to_example(self.keys, with_id=True).items()
        }

    def _fit_budget(
        self,
        variables: Mapping[str, Any],
        query: str,
        picked: list[tuple[Demonstration, dict[str, Any]]],
        budget: TokenBudget,
    ) -> list[tuple[Demonstration, dict[str, Any]]]:
        kept = list(picked)
        while kept:
            examples = [e for _, e in kept]
            if budget.layout is not None:
                prompt = budget.layout(variables, examples)
            else:
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
            ValueError: no rationale, no explainer to write one and not ``plain_demos``.
            InputTooLongError: an input, answer or rationale over ``limits``.
        """
        return self.add_examples([example], limits=limits)[0]

    def add_examples(self, examples: Sequence[Mapping[str, Any]], *, limits: TextLimits = DEFAULT_LIMITS) -> list[str]:
        """Add labelled examples in one batch (one explainer call, one store write).

        Every input, answer and rationale (given or written) is checked against ``limits``
        before anything is stored: one text too long and none of the batch is added. The
        example's other scalar keys (not ``task``, which names the task) are kept with the
        demonstration and returned with it.
        """
        for i, ex in enumerate(examples):
            self._check_lengths(ex, i, limits)  # before the explainer runs on any of them
            for key in self.input_keys:
                if not str(ex.get(key) or "").strip():
                    raise ValueError(f"Example {i} has no {key!r}: an input text is required.")
            if not str(ex.get(self.keys.answer) or "").strip():
                raise LabelError(
                    f"Example {i} has no gold answer under {self.keys.answer!r}: only labelled examples "
                    f"can become demonstrations (put unverified feedback in a review queue instead)."
                )
        missing = [i for i, ex in enumerate(examples) if not ex.get(self.keys.rationale)]
        if missing and self.explainer is None and not self.plain_demos:
            raise ValueError(
                f"{len(missing)} example(s) have no {self.keys.rationale!r} and this selector has no "
                f"explainer to write one: pass explainer= (e.g. a GradXInputExplainer), add rationales, "
                f"or pass plain_demos=True to add them as plain input-output demonstrations."
            )
        inputs = [self._input_text(ex) for ex in examples]
        written: dict[int, Demonstration] = {}
        if missing and self.explainer is not None:
            exps = self.explainer.explain(
                [inputs[i] for i in missing], [str(examples[i][self.keys.answer]) for i in missing]
            )
            for i, exp in zip(missing, exps):
                if not exp.ok:
                    raise ValueError(f"Example {i}: the explainer gave no usable explanation ({exp.degenerate}).")
                task = self.task or str(examples[i].get("task", "default"))
                written[i] = write_demonstration(exp, self.explainer, task=task, template=self.template)
        demos = []
        for i, ex in enumerate(examples):
            rationale = str(ex.get(self.keys.rationale) or "")
            demo = written.get(i) or Demonstration(
                input=inputs[i],
                label=str(ex[self.keys.answer]),
                rationale=rationale,
                task=self.task or str(ex.get("task", "default")),
                explainer="provided" if rationale else "none",  # "none": a plain input-output demo
            )
            fields = self._fields(ex)
            if fields != {self.keys.input: demo.input}:  # the user's own keys, returned as given
                demo = dataclasses.replace(demo, extra={**demo.extra, "fields": fields})
            demos.append(demo)
        for i, demo in written.items():
            limits.check("rationale", demo.rationale, where=f"Example {i} (the rationale written for it)")
        return self.store.add(demos)

    def _input_text(self, example: Mapping[str, Any]) -> str:
        return " ".join(str(example[key]) for key in sorted(self.input_keys))

    def _fields(self, example: Mapping[str, Any]) -> dict[str, Any]:
        skip = {self.keys.answer, self.keys.rationale, *_RESERVED}
        return {key: value for key, value in example.items() if key not in skip and isinstance(value, _SCALARS)}

    def _check_lengths(self, example: Mapping[str, Any], i: int, limits: TextLimits) -> None:
        answer, rationale = self.keys.answer, self.keys.rationale
        fields: list[tuple[TextField, str]] = [
            ("input", key)
            for key, value in example.items()
            if isinstance(value, str) and key not in {answer, rationale}
        ]
        for kind, key in [*fields, ("label", answer), ("rationale", rationale)]:
            limits.check(kind, str(example.get(key) or ""), where=f"Example {i} ({key!r})")
        if len(self.input_keys) > 1:
            joined = " ".join(str(example.get(key) or "") for key in sorted(self.input_keys))
            limits.check("input", joined, where=f"Example {i} (its input keys joined)")


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
